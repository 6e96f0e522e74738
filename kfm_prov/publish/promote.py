"""Promotion: the gate, then one atomic step into processed, STAC, PROV, DCAT.

Everything a promotion publishes is first staged under ``staging/kfm-prov/<tx>/`` and
fsynced; then a journal naming each staged file and its target is written (atomically),
and the files are moved into place (the version directory in one rename). A crash before
the journal leaves only staging, which is removed on the next command (rolled back); a
crash after it is rolled forward by ``recover``, which every command runs first. So the
lake is seen either fully promoted or not promoted at all.

A refusal writes ``refusals/<time>.json`` in the run's directory and nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kfm_prov import __version__
from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.crashpoints import crash_point
from kfm_prov.core.keys import SigningKey
from kfm_prov.core.timeutil import now_utc
from kfm_prov.errors import CheckFailed, InputError, RefusedError
from kfm_prov.gate import SENSITIVITY_RANK, GateReport, evaluate
from kfm_prov.publish.journal import (
    Journal,
    Move,
    journal_dir,
    read_journal,
    recovery_pending,
    write_journal,
)
from kfm_prov.store.certificate import (
    CheckOutcome,
    bound_records,
    build_certificate,
    certificate_rel,
)
from kfm_prov.store.digests import hash_files
from kfm_prov.store.published import item_path, promotion_rows_of
from kfm_prov.store.rebuild import index_for
from kfm_prov.store.refusal import Refusal
from kfm_prov.store.release import CarriedFrom, Release, ReleaseFile

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PUBLISH_LOCK = "publish"
LOCK_TIMEOUT = 600.0


@dataclass(frozen=True)
class PromotionResult:
    """A published version: its files and the STAC item, PROV bundle, certificate and DCAT."""

    family: str
    version: str
    run_id: str
    files: list[str]  # promoted files, root-relative
    stac_item: str
    prov_bundle: str
    certificate: str
    dcat: str
    attestation: str | None = None  # data/prov/<family>/<version>.intoto.jsonl when signed
    #: True when the products were byte-identical to the family's latest version: nothing
    #: was written, and this names that version.
    already_published: bool = False
    #: Files of the version carried forward unchanged from the previous one (a subset of
    #: ``files``), and the previous version's products left out on purpose (``--drop``).
    carried: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def promote(config: LakeConfig, run_id: str, *, version: str | None = None,
            outputs: tuple[str, ...] = (), requested_by: str | None = None,
            drop: tuple[str, ...] = ()) -> PromotionResult:
    """Run the gate and, if it passes, publish the products as a new immutable version.

    A version is a snapshot of the family: the latest version's products this run does
    not replace are carried forward into it (same bytes, re-verified, their lineage still
    their first promotion's), except those named in ``drop``.

    Mutates: ``processed/<family>/<version>/``, the family's STAC collection and item (and
    the root catalog), ``prov/<family>/<version>.json`` and its certificate, the family's
    DCAT file, and the index. On refusal only ``<run_dir>/refusals/`` is written.
    """
    from kfm_prov.store.signing import signing_key

    recover(config)
    key = signing_key(config)  # an unusable key fails here, before anything is written
    run = _run_row(config, run_id)
    requested = {"version": version, "outputs": list(outputs),
                 **({"drop": list(drop)} if drop else {})}
    report = _judged(config, evaluate(config, run.run_id, outputs, drop=drop), requested)
    # One publisher at a time, lake-wide: the catalog is shared by every family, versions
    # are chosen here, and `recover` must never judge the staging of a live promotion.
    with publish_lock(config):
        _recover_locked(config)
        _check_closure_present(config, report)
        if not _snapshot_current(config, report):
            # Another promotion of this family landed while the gate ran (it ran outside
            # the lock): what to carry has changed, so the gate judges the new snapshot.
            report = _judged(config, evaluate(config, run.run_id, outputs, drop=drop),
                             requested)
        same = _latest_if_identical(config, report)
        if same is not None:
            return same
        version = _choose_version(config, run.family, version)
        return _publish(config, report, version, requested_by, key)


def _judged(config: LakeConfig, report: GateReport, requested: dict[str, Any]) -> GateReport:
    """The report when it passes; otherwise its refusal receipt is written and raised."""
    if not report.ok:  # a refusal writes only its receipt
        refusal = write_refusal(config, report, requested)
        raise CheckFailed.from_findings(f"promotion refused; see {refusal}", report.findings)
    return report


def _snapshot_current(config: LakeConfig, report: GateReport) -> bool:
    """Whether the family's latest version is still the one the gate chose to carry from."""
    versions = existing_versions(config, report.run.family)
    return (versions[-1] if versions else None) == report.snapshot_of


def _latest_if_identical(config: LakeConfig, report: GateReport) -> PromotionResult | None:
    """The family's latest version when the new snapshot would hold exactly its bytes.

    That is: each product of the run has the bytes the latest version holds under its
    name, nothing is dropped, and every other product of it would be carried unchanged.
    A second version with the same bytes would only repeat the first (and add a DCAT
    distribution for nothing). The comparison is with the version's ``checksums.sha256``
    on disk, not with the index.
    """
    from kfm_prov.store.raw import read_checksums

    family = report.run.family
    latest = report.snapshot_of
    if latest is None or report.dropped:
        return None
    version_rel = f"{config.rel('processed')}/{family}/{latest}"
    sums = config.root / version_rel / "checksums.sha256"
    if not sums.is_file():
        return None
    try:
        published = read_checksums(sums, display=f"{version_rel}/checksums.sha256")
    except InputError:
        return None
    artifacts = f"{report.run.run_dir}/artifacts/"
    wanted = {p.path[len(artifacts):]: p.digest for p in report.products}
    wanted |= {c.name: str(c.entry["digest"]) for c in report.carried}
    if wanted != published:
        return None
    attestation = f"{config.rel('prov')}/{family}/{latest}.intoto.jsonl"
    return PromotionResult(
        family, latest, report.run.run_id, sorted(f"{version_rel}/{n}" for n in published),
        item_path(family, latest, config.rel("stac")),
        f"{config.rel('prov')}/{family}/{latest}.json", certificate_rel(config, family, latest),
        f"{config.rel('dcat')}/{family}.ttl",
        attestation if (config.root / attestation).is_file() else None,
        already_published=True,
        carried=sorted(f"{version_rel}/{c.name}" for c in report.carried))


def _check_closure_present(config: LakeConfig, report: GateReport) -> None:
    """The gate ran before the lock: refuse if a run it relied on was removed since (gc)."""
    for run in report.runs.values():
        if not (config.root / run.run_dir / "run_record.json").is_file():
            raise CheckFailed(f"run {run.run_id} of the closure was removed during the"
                              " promotion", file=run.run_dir, hint="check and promote again")


def publish_lock(config: LakeConfig, *, timeout: float = LOCK_TIMEOUT) -> Any:
    """The lake-wide lock promotions publish under; ``gc --apply`` deletes under it too."""
    return _lock(config, PUBLISH_LOCK, timeout=timeout)


@contextmanager
def _lock(config: LakeConfig, name: str, *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold ``<cache>/locks/<name>.lock``; a clear refusal if it cannot be had in time."""
    from filelock import FileLock, Timeout

    path = config.dir("cache") / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise RefusedError(f"another kfm-prov process holds {name}.lock",
                           file=path.relative_to(config.root).as_posix(),
                           hint="wait for it to finish and retry") from None
    try:
        yield
    finally:
        lock.release()


def _run_row(config: LakeConfig, run_id: str) -> Any:
    from kfm_prov.errors import NotFoundError

    with index_for(config) as index:
        run = index.run(run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id!r} in the index", hint="see `kfm-prov runs`")
    return run


def write_refusal(config: LakeConfig, report: GateReport, requested: dict[str, Any]) -> str:
    """The refusal receipt: what was checked and what failed, in the run's directory."""
    from ulid import ULID

    refusal = Refusal(report.run.run_id, now_utc(), requested,
                      tuple(CheckOutcome(c.id, c.title, c.status,
                                         tuple(sorted({f.code for f in c.findings})))
                            for c in report.checks),
                      tuple(report.findings))
    rel = refusal.rel(report.run.run_dir, str(ULID()))
    jsonio.write_json(config.root / rel, refusal.to_dict())
    return rel


# --- versions ----------------------------------------------------------------------------------

def existing_versions(config: LakeConfig, family: str) -> list[str]:
    """Versions of a family, in promotion order (``published.family_versions``)."""
    from kfm_prov.store.published import family_versions

    with index_for(config) as index:
        return family_versions(config, index, family)


def _choose_version(config: LakeConfig, family: str, version: str | None) -> str:
    taken = existing_versions(config, family)
    if version is None:
        numbers = [int(v[1:]) for v in taken if re.fullmatch(r"v\d+", v)]
        return f"v{max(numbers, default=0) + 1}"
    if not _VERSION.match(version):
        raise InputError(f"version must be letters, digits, '.', '_' or '-': {version!r}",
                         field="--version")
    if version in taken or (config.dir("processed") / family / version).exists():
        raise RefusedError(f"{family} {version} exists already; versions are immutable",
                           file=f"{config.rel('processed')}/{family}/{version}",
                           hint="omit --version to take the next one")
    return version


# --- publishing --------------------------------------------------------------------------------

def _publish(config: LakeConfig, report: GateReport, version: str,
             requested_by: str | None, key: SigningKey | None = None) -> PromotionResult:
    from ulid import ULID

    from kfm_prov.publish import dcat, stac

    run = report.run
    family = run.family
    promoted_at = now_utc()
    promotion_id = f"promotion-{family}-{version}"
    version_rel = f"{config.rel('processed')}/{family}/{version}"
    tx = f"promote-{family}-{version}-{ULID()}"
    stage = config.dir("staging") / "kfm-prov" / tx
    staged_version = stage / "version"
    _hook("before-stage")
    staged_version.mkdir(parents=True)
    try:
        files = _stage_products(config, report, staged_version, version_rel)
        previous = _previous_version(config, family, version)
        cert_rel = certificate_rel(config, family, version)
        bundle_rel = f"{config.rel('prov')}/{family}/{version}.json"
        release = _release(config, report, version, files, promoted_at, promotion_id,
                           bundle_rel, cert_rel, previous)
        bundle = _bundle(config, report, release, files, previous, requested_by)
        outputs: dict[str, bytes] = {bundle_rel: bundle}
        outputs |= stac.render_stac(release, existing=stac.existing_stac_files(
            config.root, family, config.rel("stac")),
            root=_StagedRoot(config.root, version_rel, staged_version))
        dcat_rel = dcat.dcat_path(family, config.rel("dcat"))
        dcat_file = config.root / dcat_rel
        outputs[dcat_rel] = dcat.render_dcat(
            release, existing=dcat_file.read_bytes() if dcat_file.exists() else None,
            extent=stac.collection_extent(
                outputs[stac.collection_path(family, config.rel("stac"))]))
        item_rel = stac.item_path(family, version, config.rel("stac"))
        names = [f["path"].removeprefix(f"{version_rel}/") for f in files]
        subjects = [str(dcat.distribution_iri(config.namespace, family, version, name))
                    for name in names]
        records = bound_records((bundle_rel, outputs[bundle_rel]), (item_rel, outputs[item_rel]),
                                (dcat_rel, outputs[dcat_rel], subjects))
        certificate = build_certificate(report, version=version, products=files,
                                        promotion_id=promotion_id, issued_at=promoted_at,
                                        records=records, dropped=report.dropped)
        outputs[cert_rel] = jsonio.dumps_sorted(certificate.to_dict())
        attestation = None
        if key is not None:  # staged with the rest: no version without it, nor it without one
            attestation = _attestation(config, key, certificate.to_dict(), outputs,
                                       run.run_dir)
            outputs |= attestation
        moves = [Move("version", version_rel)]
        for index_number, (rel, data) in enumerate(sorted(outputs.items())):
            name = f"f{index_number}"
            _write_durable(stage / name, data)
            _hook(f"staged-{name}")
            moves.append(Move(name, rel))
        journal = Journal(tx, family, version, tuple(moves),
                          stage.relative_to(config.root).as_posix())
        _hook("before-journal")
        write_journal(config, journal)
    except BaseException:
        _remove_stage(stage)
        raise
    _hook("after-journal")
    if not _roll_forward(config, journal_dir(config) / f"{tx}.json"):
        raise RefusedError(f"{family} {version} was published by another process meanwhile",
                           file=version_rel, hint="retry; the next version will be taken")
    item = stac.item_path(family, version, config.rel("stac"))
    return PromotionResult(family, version, run.run_id, [f["path"] for f in files], item,
                           bundle_rel, cert_rel, dcat_rel,
                           next(iter(attestation)) if attestation else None,
                           carried=[f["path"] for f in files if f.get("carried_from")],
                           dropped=list(report.dropped))


def _attestation(config: LakeConfig, key: SigningKey, certificate: dict[str, Any],
                 outputs: dict[str, bytes], run_dir: str) -> dict[str, bytes]:
    """The version's signed statements, from the staged records' bytes."""
    from kfm_prov.publish import attest

    family, version = certificate["family"], certificate["version"]
    records = {role: outputs[rel]
               for role, rel in attest.record_paths(config, family, version).items()}
    payloads = attest.statements(config, certificate, records,
                                 attest.run_params(config, run_dir),
                                 time_verified=certificate["issued_at"])
    return {attest.attestation_rel(config, family, version): attest.render(key, payloads)}


class _StagedRoot(type(Path())):  # type: ignore[misc]
    """The lake root, except that the new version's files are read from staging."""

    def __new__(cls, root: Path, version_rel: str, staged: Path) -> _StagedRoot:
        obj = super().__new__(cls, root)
        obj._version_rel = version_rel  # type: ignore[attr-defined]
        obj._staged = staged  # type: ignore[attr-defined]
        return obj

    def __truediv__(self, other: Any) -> Path:
        rel = PurePosixPath(str(other)).as_posix()
        prefix = self._version_rel + "/"  # type: ignore[attr-defined]
        if rel.startswith(prefix):
            return self._staged / rel[len(prefix):]  # type: ignore[attr-defined]
        return Path(str(self)) / other


def _stage_products(config: LakeConfig, report: GateReport, staged: Path,
                    version_rel: str) -> list[dict[str, Any]]:
    """Copy the products, and those carried from the previous version, into staging;
    verify the copies against the digests the gate proved; write checksums.sha256."""
    artifacts = f"{report.run.run_dir}/artifacts/"
    # (name, file copied, its proven digest, the certificate entry without path and size)
    wanted: list[tuple[str, str, str, dict[str, Any]]] = [
        (p.path[len(artifacts):], p.path, p.digest,
         {"source_path": p.path, "media_type": p.media_type or "application/octet-stream",
          "sensitivity": report.product_sensitivity[p.path]}) for p in report.products]
    wanted += [(c.name, c.previous, str(c.entry["digest"]),
                {"source_path": c.entry["source_path"],
                 "media_type": c.entry.get("media_type") or "application/octet-stream",
                 "sensitivity": c.entry["sensitivity"], "carried_from": c.origin.to_dict()})
               for c in report.carried]
    files: list[tuple[str, str, str, dict[str, Any], Path]] = []
    for name, source, digest, entry in wanted:
        target = staged / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            jsonio.clone_file(config.root / source, target)
        except FileNotFoundError:
            raise CheckFailed(f"product {source} vanished during the promotion",
                              file=source, hint="check and promote again") from None
        _hook(f"staged-product-{len(files)}")
        files.append((name, source, digest, entry, target))
    copies = hash_files([f[-1] for f in files])
    result = []
    for (name, source, proven, entry, target), digest in zip(files, copies, strict=True):
        if digest != proven:
            raise CheckFailed(f"the copy of {source} does not match its digest",
                              file=source, hint="the file changed during promotion")
        os.chmod(target, 0o444)
        result.append({"path": f"{version_rel}/{name}", "digest": digest,
                       "size": target.stat().st_size, **entry})
    from kfm_prov.store.raw import render_checksums

    _write_durable(staged / "checksums.sha256",
                   render_checksums({f["path"][len(version_rel) + 1:]: f["digest"]
                                     for f in result}))
    _hook("staged-checksums")
    for path in staged.rglob("*"):
        if path.is_file() and path.name != "checksums.sha256":
            jsonio.fsync_path(path)
    return sorted(result, key=lambda f: f["path"])


def _previous_version(config: LakeConfig, family: str, version: str) -> str | None:
    earlier = [v for v in existing_versions(config, family) if v != version]
    return earlier[-1] if earlier else None


def _release(config: LakeConfig, report: GateReport, version: str, files: list[dict[str, Any]],
             promoted_at: str, promotion_id: str, bundle_rel: str, cert_rel: str,
             previous: str | None) -> Release:
    run = report.run
    raws = [e for e in report.entities.values() if e.kind == "raw"]
    licenses = sorted({e.license for e in raws if e.license})
    attributions = sorted({e.attribution for e in raws if e.attribution})
    with index_for(config) as index:
        derived = sorted({p.item for p in index.promotions_by_digest(
            [e.digest for e in report.entities.values() if e.kind == "processed"]) if p.item})
    sensitivity = max((f["sensitivity"] for f in files), key=SENSITIVITY_RANK.__getitem__)
    return Release(
        family=run.family, version=version, run_id=run.run_id, promotion_id=promotion_id,
        promoted_at=promoted_at, run_started_at=run.started_at,
        run_ended_at=run.ended_at or run.started_at, pipeline_id=run.pipeline_id,
        git_commit=run.git_commit, spec_hash=run.spec_hash,
        license=" AND ".join(licenses) if licenses else "other",
        attribution="; ".join(attributions) or "unknown", sensitivity=sensitivity,
        files=tuple(ReleaseFile(f["path"], f["digest"], f["size"], f["media_type"],
                                carried_from=CarriedFrom.from_dict(f["carried_from"])
                                if f.get("carried_from") else None)
                    for f in files),
        dropped=tuple(report.dropped),
        prov_bundle_path=bundle_rel, certificate_path=cert_rel, namespace=config.namespace,
        predecessor_version=previous, derived_from_items=tuple(derived),
        software={"kfm-prov": __version__, run.pipeline_id: run.git_commit},
        stac_dir=config.rel("stac"), processed_dir=config.rel("processed"),
        title=config.family(run.family).title,
        description=config.family(run.family).description,
        metadata=config.family(run.family), catalog=config.catalog,
        lineage=(f"Promoted from run {run.run_id} of {run.pipeline_id} at {run.git_commit};"
                 f" proven reconstructible from {len(raws)} raw file(s) through"
                 f" {len(report.runs)} run(s), see {cert_rel}." + _carried_sentence(report)),
    )


def _carried_sentence(report: GateReport) -> str:
    if not report.carried:
        return ""
    return (f" Carried forward unchanged from {report.snapshot_of}: "
            + "; ".join(f"{c.name} (first promoted in {c.origin.version} from run"
                        f" {c.origin.run_id})" for c in report.carried) + ".")


def _bundle(config: LakeConfig, report: GateReport, release: Release,
            files: list[dict[str, Any]], previous: str | None,
            requested_by: str | None) -> bytes:
    from kfm_prov.prov.bundle import promotion_bundle

    return promotion_bundle(config, report, release, files, previous, requested_by)


# --- committing and recovering ----------------------------------------------------------------

def _hook(point: str) -> None:
    """Crash tests set KFM_PROV_CRASH_AT to a point name to kill the process there."""
    crash_point(point)


def _roll_forward(config: LakeConfig, journal_path: Path) -> bool:
    """Move every staged file into place (idempotent), index, then drop the journal.

    The version directory is the first move, so while it is still staged nothing of the
    transaction is visible. If its target exists then (someone else took the version),
    the transaction is rolled back instead and False returned.
    """
    journal = read_journal(journal_path)
    stage = config.root / journal.stage
    moves = journal.moves
    first_staged = (stage / moves[0].staged).exists()
    if first_staged == (config.root / moves[0].target).exists():
        # Taken by another promotion, or the staging vanished before any move: undo.
        os.unlink(journal_path)
        _hook("rollback-unjournaled")
        _remove_stage(stage)
        return False
    for number, move in enumerate(moves):
        _hook(f"move-{number}")
        staged = stage / move.staged
        target = config.root / move.target
        if not staged.exists():
            continue  # moved before a crash
        target.parent.mkdir(parents=True, exist_ok=True)
        if staged.is_dir():
            os.rename(staged, target)
        else:
            os.replace(staged, target)
        jsonio.fsync_dir(target.parent)
        _hook(f"moved-{number}")
    _hook("before-index")
    index_promotion(config, journal.certificate())
    _hook("before-unjournal")
    os.unlink(journal_path)
    jsonio.fsync_dir(journal_path.parent)
    _hook("before-unstage")
    _remove_stage(stage)
    return True


def recover(config: LakeConfig) -> list[str]:
    """Finish interrupted promotions (journal present) and drop abandoned staging.

    Returns the transactions it completed. Cheap, and lock-free, when there is nothing
    to do; skipped while another process is publishing (it finishes its own work, and a
    later command recovers it if it dies).
    """
    if not recovery_pending(config):
        return []
    try:
        with publish_lock(config, timeout=0):
            return _recover_locked(config)
    except RefusedError:  # another process is publishing; it finishes its own work
        return []


def _recover_locked(config: LakeConfig) -> list[str]:
    """``recover`` for a caller holding the publish lock: no other publisher is alive."""
    done = []
    journals = journal_dir(config)
    if journals.is_dir():
        for journal in sorted(journals.glob("*.json")):
            if _roll_forward(config, journal):
                done.append(journal.stem)
        for leftover in journals.glob(".*.tmp"):  # a journal write cut short
            leftover.unlink(missing_ok=True)
    staging = config.dir("staging") / "kfm-prov"
    if staging.is_dir():
        for leftover in staging.iterdir():
            if not (journals / f"{leftover.name}.json").exists():
                _remove_stage(leftover)
    return done


def _remove_stage(stage: Path) -> None:
    if stage.exists():
        _make_writable(stage)
        shutil.rmtree(stage, ignore_errors=True)


def index_promotion(config: LakeConfig, cert_rel: str) -> None:
    cert = jsonio.read_json(config.root / cert_rel, display=cert_rel)
    with index_for(config) as index:
        index.put_promotions(promotion_rows_of(config, cert, cert_rel))


def _write_durable(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _make_writable(path: Path) -> None:
    for child in [path, *path.rglob("*")] if path.is_dir() else [path]:
        if child.is_file():
            os.chmod(child, 0o644)
