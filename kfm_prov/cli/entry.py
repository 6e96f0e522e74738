"""The ``kfm-prov`` executable: start what can overlap the imports, then the CLI.

``raw add`` and ``run`` (its ``--input`` files) hash on a thread from here
(``core.prehash``), while the command group and its libraries import; every other
command goes straight to ``cli.main``. A digest nobody takes costs only the hash, and
``run`` stops it for an input the digest cache knows.
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


_INPUT_ROLES = (":primary", ":auxiliary", ":config")


def _run_inputs(argv: Sequence[str]) -> list[str]:
    """The ``--input``/``-i`` values of ``run`` (before its ``--``), role suffix dropped,
    under ``--root`` (else ``$KFM_PROV_ROOT``, else here), where ``run`` reads them."""
    import os

    words = list(argv)
    if "run" not in words:
        return []
    root = os.environ.get("KFM_PROV_ROOT") or "."
    values = []
    for index, word in enumerate(words):
        if word == "--":
            break
        following = words[index + 1] if index + 1 < len(words) else None
        if word == "--root" and following is not None:
            root = following
        elif word.startswith("--root="):
            root = word.partition("=")[2]
        elif word in ("-i", "--input") and following is not None:
            values.append(following)
        elif word.startswith("--input="):
            values.append(word.partition("=")[2])
    paths = []
    for value in values:
        for suffix in _INPUT_ROLES:
            value = value.removesuffix(suffix)
        paths.append(os.path.join(root, value))
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    candidates = _raw_add_paths(args) or _run_inputs(args)
    if candidates:
        from kfm_prov.core import prehash

        prehash.start(candidates)
    from kfm_prov.cli.main import main as cli_main

    cli_main(args if argv is not None else None)
