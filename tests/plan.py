"""``make test`` says in one line what it is about to run: ``python -m tests.plan WORKERS``.

The PostgreSQL and browser tests skip on a machine without their server or browser, and in
CI (``CI=true``) they must run; this line shows which case a run is in before it starts.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys


def workers(requested: str) -> str:
    """What ``pytest -n`` makes of ``auto`` (one worker per CPU), or the number given."""
    if requested == "auto":
        return str(os.cpu_count() or 1)
    return requested


def postgres() -> str:
    if os.environ.get("KFM_PROV_TEST_PG_URL"):
        return "on (KFM_PROV_TEST_PG_URL)"
    if os.environ.get("CI") == "true":
        return "on (CI: required)"
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return "on (127.0.0.1:5432)"
    except OSError:
        return "off (no server; set KFM_PROV_TEST_PG_URL)"


def browser() -> str:
    if os.environ.get("CI") == "true":
        return "on (CI: required)"
    found = next((n for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    return f"on ({found})" if found else "off (no chromium; apt-get install chromium)"


def summary(requested: str) -> str:
    count = workers(requested)
    return (f"make test: ruff + pytest ({count} worker{'s' if count != '1' else ''}),"
            f" PG tests: {postgres()}, browser tests: {browser()}")


if __name__ == "__main__":
    print(summary(sys.argv[1] if len(sys.argv) > 1 else "auto"), flush=True)
