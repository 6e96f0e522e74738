"""The real PostgreSQL server for the tests: one database per test session, dropped after.

``KFM_PROV_TEST_PG_URL`` names a server and a database the tests may connect to and
``CREATE DATABASE`` from (default: ``postgresql://127.0.0.1:5432/postgres`` as the
current user, then as ``postgres``). In CI (``CI=true``) an unreachable server fails the
tests; elsewhere they are skipped with one line saying how to enable them.
``KFM_PROV_TEST_INDEX=postgres`` puts every test lake's index on that server (the
whole suite on the PostgreSQL backend).
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

URL_ENV = "KFM_PROV_TEST_PG_URL"
SUITE_ENV = "KFM_PROV_TEST_INDEX"
DEFAULTS = ("postgresql://127.0.0.1:5432/postgres", "postgresql://postgres@127.0.0.1:5432/postgres")


def admin_url() -> tuple[str | None, str]:
    """A URL that connects, or None and why not."""
    import psycopg

    candidates = [os.environ[URL_ENV]] if os.environ.get(URL_ENV) else list(DEFAULTS)
    reason = ""
    for url in candidates:
        try:
            with psycopg.connect(url, connect_timeout=5):
                return url, ""
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return None, reason


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def create_database(admin: str) -> str:
    import psycopg

    name = f"kfm_prov_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(admin: str, name: str) -> None:
    import psycopg

    from kfm_prov.store.postgres import close_pools

    close_pools()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
