"""The ``kfm-prov`` executable: start what can overlap the imports, then the CLI.

``raw add``, ``run`` (its ``--input`` files), ``check`` and ``promote`` (the run's
products) hash on a thread from here (``core.prehash``), while the command group and its
libraries import; every other command goes straight to ``cli.main``. A digest nobody
takes costs only the hash, and ``run`` stops it for an input the digest cache knows.
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


_ULID_LENGTH = 26


def _gated_artifacts(argv: Sequence[str]) -> list[str]:
    """The files of ``check RUN_ID`` / ``promote RUN_ID`` in the default layout
    (``data/work/runs/<family>/<run id>/artifacts/``): the gate hashes its products afresh,
    so that hash can overlap the imports too. A full run id only; a guess that misses (a
    prefix, another layout) costs a directory listing and nothing is started."""
    import os

    words = list(argv)
    root, command, run_id = os.environ.get("KFM_PROV_ROOT") or ".", None, None
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else None
        if command is None and word == "--root" and following is not None:
            root = following
        elif command is None and word.startswith("--root="):
            root = word.partition("=")[2]
        elif command is None and word in ("check", "promote"):
            command = word
        elif command is not None and not word.startswith("-"):
            run_id = word
            break
    if run_id is None or len(run_id) != _ULID_LENGTH or not run_id.isalnum():
        return []
    runs = os.path.join(root, "data", "work", "runs")
    try:
        families = [entry.path for entry in os.scandir(runs) if entry.is_dir()]
    except OSError:
        return []
    for family in families:
        artifacts = os.path.join(family, run_id, "artifacts")
        if os.path.isdir(artifacts):
            return [os.path.join(top, name) for top, _, names in os.walk(artifacts)
                    for name in names]
    return []


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    candidates = _raw_add_paths(args) or _run_inputs(args) or _gated_artifacts(args)
    if candidates:
        from kfm_prov.core import prehash

        prehash.start(candidates)
    from kfm_prov.cli.main import main as cli_main

    cli_main(args if argv is not None else None)
