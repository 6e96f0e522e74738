"""Retention: ``kfm-prov gc --keep N``, a dry run unless ``--apply``.

What gc may remove lives under ``runs/`` only, and goes in this order, one run at a time:
the run's ``tmp/``, then its ``artifacts/``, then its index rows and the rest of its
directory. A run is kept whole (its ``tmp/`` aside) when it is among the newest ``N`` of
its family, when it was promoted or is in the closure of any promoted product (read from
the certificates, the promotion index and the lineage index, so a product keeps every run
its gate relied on), or when it is upstream of such a run. The runs upstream of the
newest ``N`` keep their receipts, so those runs stay promotable, but lose their
artifacts. A running run, a run younger than ``policy.gc_min_age_hours`` and a run whose
record cannot be read are not touched at all.

``plan_gc`` reads only. ``apply_gc`` takes the lake's publish lock (so no promotion can
start publishing a run it is removing), plans again under it, and does only what both
plans agree on.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.timeutil import format_time, parse_time
from kfm_prov.errors import CheckFailed, InputError, UsageError

ACTIONS = ("delete-tmp", "delete-artifacts", "delete-run")
_RANK = {action: rank for rank, action in enumerate(ACTIONS)}
TRASH_DIR = "trash"


@dataclass(frozen=True)
class GcEntry:
    """One thing gc removes: which run, how deep, why, and how many bytes it frees."""

    run_id: str
    family: str
    run_dir: str  # root-relative
    action: str  # delete-tmp | delete-artifacts | delete-run
    reason: str
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Protected:
    """A run gc keeps whole (apart from a ``delete-tmp`` entry), and why."""

    run_id: str
    family: str
    run_dir: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class GcPlan:
    """What ``gc`` removes (``entries``) and keeps on purpose (``protected``), and why."""

    keep: int
    family: str | None
    min_age_hours: float
    planned_at: str
    entries: list[GcEntry] = field(default_factory=list)
    protected: list[Protected] = field(default_factory=list)
    applied: bool = False

    @property
    def bytes(self) -> int:
        return sum(e.bytes for e in self.entries)

    def to_dict(self) -> dict[str, Any]:
        return {"keep": self.keep, "family": self.family, "min_age_hours": self.min_age_hours,
                "planned_at": self.planned_at, "applied": self.applied, "bytes": self.bytes,
                "entries": [e.to_dict() for e in self.entries],
                "protected": [p.to_dict() for p in self.protected]}


@dataclass
class _Run:
    run_id: str
    family: str
    run_dir: str
    started: datetime | None = None
    last_seen: datetime | None = None  # ended_at, else started_at
    status: str | None = None
    problem: str | None = None  # why its record could not be read


# --- planning -----------------------------------------------------------------------------

def plan_gc(config: LakeConfig, keep: int, family: str | None = None, *,
            now: datetime | None = None, min_age_hours: float | None = None) -> GcPlan:
    """What ``gc --keep N`` would remove, and every run it keeps with the reason. Reads only.

    Raises ``CheckFailed`` when a certificate cannot be read: gc does not guess what a
    broken certificate protects.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise UsageError("--keep must be a whole number of runs, 0 or more", field="--keep")
    age = config.gc_min_age_hours if min_age_hours is None else float(min_age_hours)
    if age < 0:
        raise UsageError("the minimum age must not be negative", field="--min-age-hours")
    moment = now or datetime.now(UTC)
    plan = GcPlan(keep, family, age, format_time(moment))
    runs = _discover(config)
    if family is not None and not (config.dir("runs") / family).is_dir():
        raise InputError(f"no runs of family {family!r}", field="--family",
                         hint="see `kfm-prov runs`")
    young = moment - timedelta(hours=age)
    hard: dict[str, str] = {}  # run id → why nothing of it may go
    for run in runs:
        if run.problem is not None:
            hard[run.run_id] = run.problem
        elif run.status == "running":
            hard[run.run_id] = "still running"
        elif run.last_seen is not None and run.last_seen > young:
            hard[run.run_id] = f"younger than {age:g} hours (policy.gc_min_age_hours)"
    kept: dict[str, str] = {}  # run id → why it is kept whole
    newest: dict[str, list[_Run]] = {}
    for run in runs:
        if run.started is not None:
            newest.setdefault(run.family, []).append(run)
    for fam, members in newest.items():
        members.sort(key=lambda r: (r.started, r.run_id), reverse=True)
        for run in members[:keep]:
            kept[run.run_id] = f"one of the {keep} newest runs of {fam}"
    promoted = _promoted_closure(config)
    for run_id, reason in promoted.items():
        kept.setdefault(run_id, reason)
    lineage_of_kept = {run_id: f"upstream of kept run {served}" for run_id, served
                       in _upstream(config, sorted(r for r in kept if r not in promoted)).items()}
    for run in sorted(runs, key=lambda r: (r.family, r.run_dir)):
        if family is not None and run.family != family:
            continue
        if run.run_id in hard:
            plan.protected.append(Protected(run.run_id, run.family, run.run_dir,
                                            hard[run.run_id]))
            continue
        base = config.root / run.run_dir
        if run.run_id in kept:
            plan.protected.append(Protected(run.run_id, run.family, run.run_dir,
                                            kept[run.run_id]))
            size = _size(base / "tmp")
            if size:
                plan.entries.append(GcEntry(run.run_id, run.family, run.run_dir, "delete-tmp",
                                            f"scratch space of a kept run ({kept[run.run_id]})",
                                            size))
            continue
        if run.run_id in lineage_of_kept:
            plan.protected.append(Protected(run.run_id, run.family, run.run_dir,
                                            f"receipts kept: {lineage_of_kept[run.run_id]}"))
            size = _size(base / "tmp") + _size(base / "artifacts")
            if size:
                plan.entries.append(GcEntry(
                    run.run_id, run.family, run.run_dir, "delete-artifacts",
                    f"{lineage_of_kept[run.run_id]}; its receipts stay, its files go", size))
            continue
        reason = (f"not among the {keep} newest runs of {run.family}, not promoted and in"
                  " no promoted closure") if run.started is not None else "no run record"
        plan.entries.append(GcEntry(run.run_id, run.family, run.run_dir, "delete-run", reason,
                                    _size(base)))
    return plan


def _discover(config: LakeConfig) -> list[_Run]:
    """Every directory ``runs/<family>/<run_id>/`` with what its run record says."""
    from kfm_prov.capture import process_alive

    runs_dir = config.dir("runs")
    found: list[_Run] = []
    if not runs_dir.is_dir():
        return found
    live = config.dir("cache") / "live"
    for family_dir in sorted(runs_dir.iterdir()):
        if family_dir.is_symlink() or not family_dir.is_dir():
            continue
        for run_dir in sorted(family_dir.iterdir()):
            rel = run_dir.relative_to(config.root).as_posix()
            run = _Run(run_dir.name, family_dir.name, rel)
            found.append(run)
            if run_dir.is_symlink() or not run_dir.is_dir():
                run.problem = "not a run directory (a symlink or a file)"
                continue
            record_path = run_dir / "run_record.json"
            if not record_path.exists():
                marker = live / f"{run.run_id}.json"
                try:
                    info = jsonio.read_json(marker, display=marker.name)
                except InputError:
                    info = None
                if isinstance(info, dict) and process_alive(info.get("process")) is not False:
                    run.status = "running"
                mtime = datetime.fromtimestamp(run_dir.stat().st_mtime, UTC)
                run.last_seen = mtime
                continue
            try:
                data = jsonio.read_json(record_path, display=f"{rel}/run_record.json")
                run.status = data["status"]
                run.started = parse_time(data["started_at"])
                run.last_seen = parse_time(data["ended_at"]) if data.get("ended_at") else \
                    run.started
                if data.get("run_id") != run.run_id:
                    run.problem = "its run record names another run id"
            except (InputError, KeyError, TypeError, AttributeError):
                run.problem = "its run record cannot be read; see `kfm-prov validate`"
    return found


def _promoted_closure(config: LakeConfig) -> dict[str, str]:
    """Run id → why it is protected: promoted, or in a promoted product's closure."""
    from kfm_prov.store.certificate import certificates, read_certificate
    from kfm_prov.store.raw import read_checksums
    from kfm_prov.store.rebuild import index_for

    protected: dict[str, str] = {}
    for path in certificates(config):
        rel = path.relative_to(config.root).as_posix()
        try:
            cert = read_certificate(config, rel)
            name = f"{cert.family} {cert.version}"
            protected.setdefault(cert.run_id, f"promoted as {name}")
            for run in cert.runs:
                protected.setdefault(run.run_id, f"in the closure of {name} ({rel})")
        except (InputError, KeyError, TypeError) as exc:
            raise CheckFailed("a certificate cannot be read, so gc cannot tell what it"
                              " protects", file=rel,
                              hint="repair it (kfm-prov verify) before collecting"
                              ) from exc
    promoted_runs: dict[str, str] = {}
    with index_for(config) as index:
        for row in index.promotions():
            promoted_runs.setdefault(row.run_id, f"promoted as {row.family} {row.version}")
        processed = config.dir("processed")
        digests: dict[str, str] = {}
        if processed.is_dir():  # versions on disk, even without a certificate or index row
            for sums in sorted(processed.glob(f"*/*/{'checksums.sha256'}")):
                rel = sums.relative_to(config.root).as_posix()
                version = sums.parent.relative_to(processed).as_posix().replace("/", " ")
                try:
                    for digest in read_checksums(sums, display=rel).values():
                        digests.setdefault(digest, version)
                except InputError as exc:
                    raise CheckFailed("a processed checksums file cannot be read, so gc cannot"
                                      " tell what it protects", file=rel) from exc
        for output in index.producers(sorted(digests)):
            promoted_runs.setdefault(output.run_id, f"produced {digests[output.digest]}")
    for run_id, reason in promoted_runs.items():
        protected.setdefault(run_id, reason)
    for run_id, served in _upstream(config, sorted(promoted_runs)).items():
        protected.setdefault(run_id, f"upstream of promoted run {served}")
    return protected


def _upstream(config: LakeConfig, run_ids: list[str]) -> dict[str, str]:
    """Every run upstream of ``run_ids`` in the lineage index → the run it is upstream of."""
    from kfm_prov.store.lineage import ancestry, run_node
    from kfm_prov.store.rebuild import index_for

    found: dict[str, str] = {}
    if not run_ids:
        return found
    with index_for(config) as index:
        for run_id in run_ids:
            graph = ancestry(index, runs=[run_id])
            for node in graph.nodes:
                if node.startswith("run:") and node != run_node(run_id):
                    found.setdefault(node[4:], run_id)
    return found


def _size(path: Path) -> int:
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


# --- applying -----------------------------------------------------------------------------

def apply_gc(config: LakeConfig, plan: GcPlan, *, now: datetime | None = None) -> GcPlan:
    """Carry out ``plan``: what a fresh plan under the publish lock still agrees with.

    Mutates only run directories under ``runs/`` (and their index and digest-cache rows):
    ``tmp/`` first, ``artifacts/`` next, the index rows and the directory last, so a gc
    that is killed leaves runs that are whole or collected, and running it again finishes.
    Returns the plan of what was done.
    """
    from kfm_prov.publish.promote import publish_lock

    moment = now or parse_time(plan.planned_at)
    with publish_lock(config):
        _empty_trash(config)
        fresh = plan_gc(config, plan.keep, plan.family, now=moment,
                        min_age_hours=plan.min_age_hours)
        allowed = {e.run_id: e for e in fresh.entries}
        done = GcPlan(plan.keep, plan.family, plan.min_age_hours, fresh.planned_at,
                      protected=fresh.protected, applied=True)
        for entry in plan.entries:
            now_entry = allowed.get(entry.run_id)
            if now_entry is None or now_entry.run_dir != entry.run_dir:
                continue
            action = min(entry.action, now_entry.action, key=_RANK.__getitem__)
            _apply_one(config, entry.run_id, entry.run_dir, action)
            done.entries.append(GcEntry(entry.run_id, entry.family, entry.run_dir, action,
                                        now_entry.reason if action == now_entry.action
                                        else entry.reason, min(entry.bytes, now_entry.bytes)))
    return done


def _apply_one(config: LakeConfig, run_id: str, run_dir: str, action: str) -> None:
    from kfm_prov.core.crashpoints import crash_point
    from kfm_prov.store.digests import DigestCache
    from kfm_prov.store.rebuild import index_for

    base = _inside_runs(config, run_dir)
    _clear(base / "tmp")
    crash_point("gc-after-tmp")
    if action == "delete-tmp":
        return
    artifacts = base / "artifacts"
    gone = [f"{run_dir}/artifacts/{p.relative_to(artifacts).as_posix()}"
            for p in artifacts.rglob("*")] if artifacts.is_dir() and \
        not artifacts.is_symlink() else []
    _clear(artifacts)
    DigestCache(config.dir("cache") / "digests.sqlite").forget(gone)
    crash_point("gc-after-artifacts")
    if action == "delete-artifacts":
        return
    with index_for(config) as index:
        index.delete_run(run_id)
    crash_point("gc-after-index")
    trash = config.dir("cache") / TRASH_DIR / f"{run_id}-{os.getpid()}"
    trash.parent.mkdir(parents=True, exist_ok=True)
    os.rename(base, trash)  # gone from runs/ in one step
    jsonio.fsync_dir(base.parent)
    _remove(trash)


def _inside_runs(config: LakeConfig, run_dir: str) -> Path:
    """The run directory, refused unless it really is ``runs/<family>/<id>`` (no symlink)."""
    runs = config.dir("runs").resolve()
    base = config.root / run_dir
    if base.is_symlink() or base.resolve().parent.parent != runs:
        raise InputError("not a run directory under runs/; gc leaves it alone", file=run_dir)
    return base


def _clear(path: Path) -> None:
    """Empty a run's ``tmp/`` or ``artifacts/``, keeping the directory; a symlink is unlinked."""
    if path.is_symlink():
        path.unlink()
        path.mkdir()
        return
    if not path.is_dir():
        return
    for child in list(path.iterdir()):
        _remove(child)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return

    def retry(func: Any, target: str, _: Any) -> None:  # read-only directories
        os.chmod(os.path.dirname(target), 0o755)
        func(target)

    shutil.rmtree(path, onerror=retry)


def _empty_trash(config: LakeConfig) -> None:
    """What a killed gc had already taken out of ``runs/``."""
    trash = config.dir("cache") / TRASH_DIR
    if trash.is_dir():
        for leftover in trash.iterdir():
            _remove(leftover)
