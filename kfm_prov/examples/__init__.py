"""Example pipelines of four KFM-style families, and the small data they run on.

They ship inside the package so that ``kfm-prov demo`` works from a wheel as well as
from a clone (where ``examples/`` at the top of the repository points here). The demo
copies each family's files into a git repository of its own inside the demo lake, commits
them, and runs them from there: the promotion gate insists on committed pipeline code.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

FAMILIES = ("glo_land_patents", "khri_sites", "nhgis_tracts", "kansas_memory")


def pipeline_files(family: str) -> dict[str, bytes]:
    """The files of one example pipeline (name → bytes), as a user would commit them."""
    folder: Traversable = resources.files(__name__) / family
    return {entry.name: entry.read_bytes() for entry in sorted(folder.iterdir(),
                                                                 key=lambda e: e.name)
            if entry.is_file() and entry.name != "__init__.py"
            and not entry.name.endswith((".pyc", ".pyo"))}


def write_pipelines(target: Path) -> list[Path]:
    """Copy every example pipeline into ``target/<family>/``; returns the files written."""
    written = []
    for family in FAMILIES:
        for name, data in pipeline_files(family).items():
            path = target / family / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append(path)
    return written
