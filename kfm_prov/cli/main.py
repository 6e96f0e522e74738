"""Entry point: the command group and the one place errors become exit codes (SPEC §6).

0 ok; 1 a check failed or was refused; 2 bad usage or input. Errors are one line on
stderr, ``kfm-prov: error: <what> (<file>[: <field>])``; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from kfm_prov import __version__
from kfm_prov.cli.commands import attest as attest_cmd
from kfm_prov.cli.commands import demo as demo_cmd
from kfm_prov.cli.commands import export as export_cmd
from kfm_prov.cli.commands import gc as gc_cmd
from kfm_prov.cli.commands import index as index_cmd
from kfm_prov.cli.commands import init as init_cmd
from kfm_prov.cli.commands import keys as keys_cmd
from kfm_prov.cli.commands import promote as promote_cmd
from kfm_prov.cli.commands import provcheck as provcheck_cmd
from kfm_prov.cli.commands import raw as raw_cmd
from kfm_prov.cli.commands import record as record_cmd
from kfm_prov.cli.commands import run as run_cmd
from kfm_prov.cli.commands import runs as runs_cmd
from kfm_prov.cli.commands import serve as serve_cmd
from kfm_prov.cli.commands import site as site_cmd
from kfm_prov.cli.commands import trace as trace_cmd
from kfm_prov.cli.commands import validate as validate_cmd
from kfm_prov.cli.commands import verify as verify_cmd
from kfm_prov.cli.commands import versions as versions_cmd
from kfm_prov.cli.commands import waive as waive_cmd
from kfm_prov.cli.output import error_line
from kfm_prov.errors import KfmProvError


class KfmGroup(click.Group):
    """A group whose ``main`` applies the error contract, for real runs and CliRunner alike."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        try:
            result = super().main(argv, prog_name or "kfm-prov", complete_var,
                                  standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            _fail(exc.format_message(), debug)
            code = 2
        except click.exceptions.Abort:
            error_line("aborted")
            code = 1
        except KfmProvError as exc:
            _fail(exc.one_line(), debug)
            code = exc.exit_code
        except BrokenPipeError:
            code = 1
        except Exception as exc:  # a bug: still one line, never a bare traceback
            _fail(f"internal error: {type(exc).__name__}: {exc}; rerun with --debug and"
                  " report it", debug)
            code = 2
        else:
            code = result if isinstance(result, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)


def _fail(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    error_line(message)


@click.group(cls=KfmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", type=click.Path(file_okay=False), envvar="KFM_PROV_ROOT",
              help="Lake root (default: $KFM_PROV_ROOT, else the nearest directory holding"
                   " kfm-prov.toml or data/).")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(__version__, prog_name="kfm-prov")
def cli(root: str | None, debug: bool) -> None:
    """Provenance, a fail-closed promotion gate and catalogs for a raw → work → processed lake.

    \b
    Example:
      kfm-prov init my-lake && cd my-lake
      kfm-prov raw add data/raw/parcels/parcels.csv --license CC-BY-4.0 --attribution "County GIS"
    """


for _command in (init_cmd.command, raw_cmd.command, run_cmd.command, record_cmd.command,
                 validate_cmd.command, runs_cmd.runs_command, runs_cmd.show_command,
                 promote_cmd.check_command, promote_cmd.promote_command, index_cmd.command,
                 demo_cmd.command, gc_cmd.command, trace_cmd.command, verify_cmd.command,
                 export_cmd.command, provcheck_cmd.command, waive_cmd.command,
                 versions_cmd.command, site_cmd.command, serve_cmd.command, keys_cmd.command,
                 attest_cmd.attest_command, attest_cmd.verify_artifact_command):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(argv)
