"""Fault injection for crash tests: ``KFM_PROV_CRASH_AT=<point>`` kills the process there.

Each point names a moment at which a real crash (power loss, OOM killer, Ctrl-\\) could
leave the lake half-written; the crash tests kill kfm-prov at every one of them and check
that the next command finds the lake whole. Unset, a point is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from fnmatch import fnmatchcase

ENV = "KFM_PROV_CRASH_AT"
TRACE_ENV = "KFM_PROV_CRASH_TRACE"  # a file each point passed is appended to


def crash_point(point: str) -> None:
    """SIGKILL this process when ``$KFM_PROV_CRASH_AT`` (a glob) matches ``point``."""
    pattern = os.environ.get(ENV)
    if pattern and fnmatchcase(point, pattern):
        os.kill(os.getpid(), signal.SIGKILL)
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(point + "\n")
