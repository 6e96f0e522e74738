"""The ``kfm-prov`` executable: start what can overlap the imports, then the CLI.

``raw add`` hashes its files on a thread from here (``core.prehash``), while the command
group and its libraries import; every other command goes straight to ``cli.main``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def _raw_add_paths(argv: Sequence[str]) -> list[str]:
    """The arguments after ``raw add`` (options and their values included: prehash keeps
    only large regular files, and a digest nobody takes costs nothing but the hash)."""
    words = list(argv)
    for index in range(len(words) - 1):
        if words[index] == "raw" and words[index + 1] == "add":
            return words[index + 2:]
    return []


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    candidates = _raw_add_paths(args)
    if candidates:
        from kfm_prov.core import prehash

        prehash.start(candidates)
    from kfm_prov.cli.main import main as cli_main

    cli_main(args if argv is not None else None)
