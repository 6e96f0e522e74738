"""Choosing the lineage index's backend: the one place that does.

SQLite under the cache directory unless ``[index] url`` (or ``$KFM_PROV_INDEX_URL``)
names a PostgreSQL database; psycopg is imported only then.
"""

from __future__ import annotations

from pathlib import Path

from kfm_prov.config import LakeConfig
from kfm_prov.store.index import LineageIndex
from kfm_prov.store.protocol import LineageStore


def backend_for(config: LakeConfig) -> LineageStore:
    """The lake's index, unopened."""
    if config.index.url is None:
        return LineageIndex(config.dir("cache") / "lineage.sqlite")
    return postgres_index(config, config.index.url)


def postgres_index(config: LakeConfig, url: str) -> LineageStore:
    """The lake's index in the PostgreSQL database at ``url`` (``index migrate --to``)."""
    try:
        from kfm_prov.store.postgres import PgLineageIndex
    except ImportError:
        from kfm_prov.errors import InputError

        raise InputError("a PostgreSQL index needs psycopg: pip install 'kfm-prov[postgres]'",
                         file="kfm-prov.toml", field="index.url") from None
    password_file = None
    if config.index.password_file is not None:
        password_file = Path(config.index.password_file).expanduser()
        if not password_file.is_absolute():
            password_file = config.root / password_file
    return PgLineageIndex(url, config.lake_name(), password_file=password_file)
