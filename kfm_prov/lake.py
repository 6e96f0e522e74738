"""``Lake``: the Python API a pipeline calls; the CLI is a thin layer over it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kfm_prov import jsonio
from kfm_prov.config import (
    CONFIG_NAME,
    CONFIG_TEMPLATE,
    DEFAULT_PATHS,
    LakeConfig,
    find_root,
    load_config,
)
from kfm_prov.digests import DigestCache
from kfm_prov.errors import InputError
from kfm_prov.findings import Finding
from kfm_prov.paths import to_relative


class Lake:
    """One governed lake: its layout, its digest cache, and the operations on it."""

    def __init__(self, config: LakeConfig) -> None:
        self.config = config
        self.root = config.root

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None) -> Lake:
        """Open the lake at ``root``, ``$KFM_PROV_ROOT`` or the nearest enclosing lake."""
        return cls(load_config(find_root(root)))

    @classmethod
    def init(cls, root: str | os.PathLike[str]) -> Lake:
        """Create the layout and a commented config; existing files are left as they are."""
        base = Path(root)
        if base.exists() and not base.is_dir():
            raise InputError("exists and is not a directory", file=str(base))
        base.mkdir(parents=True, exist_ok=True)
        base = base.resolve()
        config_path = base / CONFIG_NAME
        if not config_path.exists():
            jsonio.atomic_write(config_path, CONFIG_TEMPLATE.encode("utf-8"))
        config = load_config(base)
        for name in DEFAULT_PATHS:
            config.dir(name).mkdir(parents=True, exist_ok=True)
        return cls(config)

    # -- helpers shared by the operations ---------------------------------------------------

    @property
    def digest_cache(self) -> DigestCache:
        return DigestCache(self.config.dir("cache") / "digests.sqlite")

    def rel(self, path: str | os.PathLike[str], *, base: Path | None = None) -> str:
        """Root-relative POSIX path of a user-typed path, refused if it leaves the root."""
        return to_relative(self.root, path, base=base)

    def display(self, path: Path) -> str:
        """How a path is named in messages: root-relative when inside the lake."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # -- operations -------------------------------------------------------------------------

    def raw_add(self, paths: Sequence[str | os.PathLike[str]], *, license: str,
                attribution: str, source_uri: str | None = None,
                source_type: str | None = None, sensitivity: str | None = None,
                base: Path | None = None) -> list:
        """Record raw captures (see ``kfm_prov.raw.add``); paths relative to ``base`` or cwd."""
        from kfm_prov import raw

        rels = [self.rel(p, base=base) for p in paths]
        return raw.add(self.config, rels, license=license, attribution=attribution,
                       source_uri=source_uri, source_type=source_type, sensitivity=sensitivity)

    def validate(self, path: str | os.PathLike[str]) -> list[Finding]:
        """Schema findings for a run directory or a receipt file (empty when valid)."""
        from kfm_prov.validate import validate_path

        target = Path(path)
        if not target.is_absolute():
            target = Path.cwd() / target
        return validate_path(target, display=self.display(target))
