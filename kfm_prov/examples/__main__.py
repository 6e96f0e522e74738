"""``python -m kfm_prov.examples``: set up the example families by hand, without the demo.

    python -m kfm_prov.examples --raw --pipelines pipelines

writes and records the example raw captures in the lake (``--root``, ``$KFM_PROV_ROOT`` or
the enclosing lake) and copies the example pipelines into ``pipelines/<family>/``, ready to
be committed to git and run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kfm_prov.examples import write_pipelines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kfm_prov.examples",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="lake root (default: $KFM_PROV_ROOT or the enclosing lake)")
    parser.add_argument("--raw", action="store_true", help="write and record the raw captures")
    parser.add_argument("--later", action="store_true",
                        help="also the later capture (glo_land_patents batch 2)")
    parser.add_argument("--pipelines", metavar="DIR", help="copy the example pipelines here")
    args = parser.parse_args(argv)
    if not (args.raw or args.later or args.pipelines):
        parser.error("nothing to do: give --raw, --later and/or --pipelines DIR")
    if args.raw or args.later:
        from kfm_prov.errors import KfmProvError
        from kfm_prov.examples.data import CAPTURES, LATER_CAPTURES, record_captures
        from kfm_prov.lake import Lake

        captures = (CAPTURES if args.raw else ()) + (LATER_CAPTURES if args.later else ())
        try:
            for rel in record_captures(Lake.open(args.root), captures):
                print(f"raw  {rel}")
        except KfmProvError as exc:
            parser.exit(exc.exit_code, f"error: {exc.one_line()}\n")
    if args.pipelines:
        for path in write_pipelines(Path(args.pipelines)):
            print(f"pipeline  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
