"""Entry point: the command group and the one place errors become exit codes (SPEC §6).

Commands are loaded when named: a process imports its own command's module (and what that
module imports), never the other twenty (``COMMANDS``). ``--help`` loads them all, for
their one-line summaries.

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
from kfm_prov.cli.output import error_line
from kfm_prov.errors import KfmProvError

# name -> (module under kfm_prov.cli.commands, attribute): what ``kfm-prov NAME`` runs
COMMANDS: dict[str, tuple[str, str]] = {
    "attest": ("attest", "attest_command"),
    "check": ("promote", "check_command"),
    "demo": ("demo", "command"),
    "export": ("export", "command"),
    "gc": ("gc", "command"),
    "index": ("index", "command"),
    "init": ("init", "command"),
    "keys": ("keys", "command"),
    "promote": ("promote", "promote_command"),
    "prov-check": ("provcheck", "command"),
    "raw": ("raw", "command"),
    "record": ("record", "command"),
    "run": ("run", "command"),
    "runs": ("runs", "runs_command"),
    "serve": ("serve", "command"),
    "show": ("runs", "show_command"),
    "site": ("site", "command"),
    "trace": ("trace", "command"),
    "validate": ("validate", "command"),
    "verify": ("verify", "command"),
    "verify-artifact": ("attest", "verify_artifact_command"),
    "versions": ("versions", "command"),
    "waive": ("waive", "command"),
}


class KfmGroup(click.Group):
    """A group whose ``main`` applies the error contract, for real runs and CliRunner alike,
    and whose commands are imported when asked for (``list_commands``/``get_command``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            # __import__, not importlib.import_module: the latter skips the C import path
            # and so never shows in ``python -X importtime``, where start-up is measured
            loaded = __import__(f"kfm_prov.cli.commands.{module}", fromlist=[attribute])
            command: click.Command = getattr(loaded, attribute)
            if command.name != cmd_name:  # the table and the module disagree: a bug here
                raise RuntimeError(f"kfm_prov.cli.commands.{module}.{attribute} is"
                                   f" {command.name!r}, not {cmd_name!r}")
            self.add_command(command)
        return self.commands.get(cmd_name)

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


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(argv)
