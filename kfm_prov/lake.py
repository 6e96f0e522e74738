"""``Lake``: the Python API a pipeline calls; the CLI is a thin layer over it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfm_prov.config import (
    CONFIG_NAME,
    CONFIG_TEMPLATE,
    DEFAULT_PATHS,
    LakeConfig,
    find_root,
    load_config,
)
from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.paths import to_relative
from kfm_prov.errors import InputError, UsageError
from kfm_prov.store.digests import DigestCache

if TYPE_CHECKING:
    from datetime import datetime

    import networkx as nx

    from kfm_prov.capture import Run
    from kfm_prov.core.keys import PublicKey
    from kfm_prov.export import Exported, Scope
    from kfm_prov.gate import GateReport
    from kfm_prov.gc import GcPlan
    from kfm_prov.publish.promote import PromotionResult
    from kfm_prov.record import RecordedRun
    from kfm_prov.site import SiteResult
    from kfm_prov.store.index import RunRow
    from kfm_prov.store.protocol import LineageStore
    from kfm_prov.store.rebuild import RebuildResult
    from kfm_prov.trace import Trace
    from kfm_prov.verify import VerifyReport
    from kfm_prov.versions import VersionInfo
    from kfm_prov.waive import WaiveResult


class Lake:
    """One governed lake: its layout, its digest cache, and the operations on it."""

    def __init__(self, config: LakeConfig) -> None:
        self.config = config
        self.root = config.root

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None) -> Lake:
        """Open the lake at ``root``, ``$KFM_PROV_ROOT`` or the nearest enclosing lake.

        Finishes any promotion a crash interrupted first (see ``promote.recover``), so
        every command sees the lake fully promoted or not at all, and records as
        ``interrupted`` the runs whose capturing process died (``capture.sweep_interrupted``).
        """
        from kfm_prov.publish.journal import recovery_pending
        from kfm_prov.store.live import live_markers

        lake = cls(load_config(find_root(root)))
        if recovery_pending(lake.config):  # import the machinery only when there is work
            from kfm_prov.publish.promote import recover

            recover(lake.config)
        if live_markers(lake.config):
            from kfm_prov.capture import sweep_interrupted

            sweep_interrupted(lake.config)
        return lake

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
        return DigestCache(self.config.dir("cache") / "digests.sqlite", self.config.root)

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
                by: str | None = None, base: Path | None = None) -> list:
        """Record raw captures (see ``store.raw.add``); paths relative to ``base`` or cwd."""
        from kfm_prov.store import raw

        rels = [self.rel(p, base=base) for p in paths]
        with ExitStack() as stack:
            # The index is opened once the arguments are checked (a refusal writes
            # nothing), before the hash: its imports and connection overlap the hashing
            # that ``kfm-prov raw add`` started on another thread (core/prehash.py).
            opened: list[LineageStore] = []
            results = raw.add(self.config, rels, license=license, attribution=attribution,
                              source_uri=source_uri, source_type=source_type,
                              sensitivity=sensitivity, by=by,
                              before_hash=lambda: opened.append(
                                  stack.enter_context(self.index())))
            self._index_raw([r.path for r in results], opened[0] if opened else None)
        return results

    def raw_relabel(self, paths: Sequence[str | os.PathLike[str]], *, reason: str,
                    by: str | None = None, license: str | None = None,
                    attribution: str | None = None, sensitivity: str | None = None,
                    base: Path | None = None) -> list:
        """Change recorded raw files' labels with a trail (see ``store.raw.relabel``); the
        index's rows follow, so ``trace`` shows the new labels at once."""
        from kfm_prov.store import raw

        rels = [self.rel(p, base=base) for p in paths]
        results = raw.relabel(self.config, rels, reason=reason, by=by, license=license,
                              attribution=attribution, sensitivity=sensitivity)
        self._index_raw([r.path for r in results if r.status == "relabelled"])
        return results

    def raw_adopt(self, paths: Sequence[str | os.PathLike[str]], *, reason: str,
                  by: str | None = None, base: Path | None = None) -> list:
        """Begin the label trail of manifests recorded before trails existed, vouching for
        their labels as they are (see ``store.raw.adopt``); the manifests are unchanged."""
        from kfm_prov.store import raw

        rels = [self.rel(p, base=base) for p in paths]
        return raw.adopt(self.config, rels, reason=reason, by=by)

    def _index_raw(self, rels: Sequence[str], index: LineageStore | None = None) -> None:
        """Put the labels the manifests now say into the index (a cache of them), through
        ``index`` when the caller has it open."""
        from kfm_prov.store import raw
        from kfm_prov.store.index import RawRow

        rows = [RawRow(info.path, info.digest, info.license, info.attribution,
                       info.sensitivity, info.manifest)
                for info in raw.lookup_many(self.config, rels).values() if info is not None]
        if not rows:
            return
        if index is not None:
            index.put_raw(rows)
            return
        with self.index() as opened:
            opened.put_raw(rows)

    def validate(self, path: str | os.PathLike[str]) -> list[Finding]:
        """Schema findings for a run directory or a receipt file (empty when valid)."""
        from kfm_prov.validate import validate_path

        target = Path(path)
        if not target.is_absolute():
            target = Path.cwd() / target
        return validate_path(target, display=self.display(target))

    # -- runs -------------------------------------------------------------------------------

    @contextmanager
    def capture(self, family: str, pipeline_id: str, *, params: Mapping[str, Any] | None = None,
                spec: Any = None, **options: Any) -> Iterator[Run]:
        """Capture the block as a run: ``with lake.capture("glo", "pipelines/glo") as run:``.

        ``spec`` is the pipeline spec (a JSON-like value, or a JSON/YAML file in the lake)
        whose RFC 8785 hash identifies the plan; ``commit``/``git_dir`` say where the
        pipeline's code is (default: the git repository of the current directory), and
        ``entry`` which file it is (default: the module calling this), which must be
        tracked and unchanged in that commit for the gate to promote the products.
        Inside the block, declare what the run reads and writes with ``Run.use``,
        ``Run.output``, ``Run.gate`` and ``Run.redact``.

        Receipts are written however the block ends: an exception inside it records the
        run as ``failed`` (``interrupted`` for Ctrl-C) and is re-raised; a block that ends
        normally but left a declared output unwritten or changed an input is recorded as
        ``failed`` and raises ``CheckFailed``. Raises ``UsageError`` before the block runs
        for a bad family name, an empty pipeline id or params that are not JSON values,
        and ``InputError`` for an unreadable spec file.
        """
        from kfm_prov.capture import capture

        with capture(self.config, family, pipeline_id, params=params, spec=spec,
                     **options) as run:
            yield run

    def run_command(self, family: str, pipeline_id: str, command: Sequence[str],
                    **options: Any) -> tuple[RecordedRun, int]:
        """Run any command as a captured run (see ``kfm_prov.runner.run_command``)."""
        from kfm_prov.runner import run_command

        return run_command(self.config, family, pipeline_id, command, **options)

    def record(self, run_dir: str | os.PathLike[str]) -> RecordedRun:
        """Take in a run whose receipts the pipeline wrote (``kfm-prov record``)."""
        from kfm_prov.record import record_run_dir

        return record_run_dir(self.config, self.rel(run_dir))

    def record_openlineage(self, events: str | os.PathLike[str] | Any) -> list[Any]:
        """Take in OpenLineage events: a JSON Lines file (``record --openlineage``) or one
        event as a dict (what ``kfm-prov serve`` receives). Runs that ended are recorded."""
        from kfm_prov.openlineage import intake

        if isinstance(events, dict):
            return [intake.accept(self.config, events)]
        path = Path(events)
        return intake.record_file(self.config, path, display=os.fspath(events))

    def index(self) -> LineageStore:
        from kfm_prov.store.rebuild import index_for

        return index_for(self.config)

    def rebuild_index(self, *, full: bool = False) -> RebuildResult:
        """Rebuild the index from the files, first recording dead ``running`` runs.

        Runs already checked with the same evidence under the same rules are not checked
        again; ``full`` re-checks every run (schemas and secrets).
        """
        from kfm_prov.capture import sweep_interrupted
        from kfm_prov.store.rebuild import rebuild_index

        sweep_interrupted(self.config, full=True)
        return rebuild_index(self.config, full=full)

    def runs(self, family: str | None = None, *, status: str | None = None,
             pipeline: str | None = None, last: bool = False) -> list[RunRow]:
        """Recorded runs (of a family, status, pipeline), oldest first; ``last``: the newest."""
        with self.index() as index:
            rows = [r for r in index.runs(family)
                    if (status is None or r.status == status)
                    and (pipeline is None or r.pipeline_id == pipeline)]
        if last and rows:
            rows = [max(rows, key=lambda r: (r.started_at, r.run_id))]
        return rows

    def code_problems(self, rows: Sequence[RunRow]) -> dict[str, list[str]]:
        """What capture found wrong with each run's code (``unknown-commit``, ...).

        Read from each run record's ``code``, for ``runs`` to show; the gate checks again.
        A run record that cannot be read counts as ``unknown-commit``.
        """
        problems: dict[str, list[str]] = {}
        for row in rows:
            rel = f"{row.run_dir}/run_record.json"
            try:
                code = jsonio.read_json(self.root / rel, display=rel).get("code")
            except (InputError, AttributeError):
                code = None
            found = code.get("problems") if isinstance(code, dict) else None
            # A record without ``code`` names no repository in which to check its commit.
            problems[row.run_id] = ([str(p) for p in found] if isinstance(found, list)
                                    else ["unknown-commit"])
        return problems

    def resolve_run(self, text: str) -> RunRow:
        """A run by its id or a unique prefix of at least 6 characters (any case)."""
        with self.index() as index:
            return index.resolve_run(text)

    def show(self, run_id: str) -> dict[str, Any]:
        """One run as ``kfm-prov show`` prints it: receipts, files, gates, upstream runs."""
        from kfm_prov.store.receipts import load_run_receipts

        row = self.resolve_run(run_id)
        receipts = load_run_receipts(self.root / row.run_dir, display=row.run_dir)
        with self.index() as index:
            upstream = index.upstream_runs(row.run_id)
        return {
            **row.to_dict(),
            "runner": receipts.record.runner.to_dict(),
            "exit_code": receipts.record.exit_code,
            "params": receipts.manifest.params,
            "code": receipts.record.code.to_dict() if receipts.record.code else None,
            "inputs": [e.to_dict() for e in receipts.manifest.inputs],
            "outputs": [e.to_dict() for e in receipts.manifest.outputs],
            "gates": [g.to_dict() for g in receipts.report.gates],
            "upstream_runs": upstream,
        }

    def waive(self, run_id: str, gates: Sequence[str], *, reason: str, by: str, until: str,
              replace: bool = False) -> WaiveResult:
        """Write the run's waiver (``kfm-prov waive``); see ``kfm_prov.waive``."""
        from kfm_prov.waive import waive

        return waive(self.config, run_id, gates, reason=reason, by=by, until=until,
                     replace=replace)

    def versions(self, family: str | None = None) -> list[VersionInfo]:
        """Promoted versions, oldest first (``kfm-prov versions``). Reads only."""
        from kfm_prov.versions import list_versions

        return list_versions(self.config, family)

    def lineage(self, run_id: str) -> nx.DiGraph:
        """The run's ancestry as a networkx graph (edges cause → effect)."""
        from kfm_prov.store.lineage import ancestry

        row = self.resolve_run(run_id)
        with self.index() as index:
            return ancestry(index, runs=[row.run_id])

    # -- the gate and promotion -------------------------------------------------------------

    def check(self, run_id: str, outputs: Sequence[str] = (), *,
              drop: Sequence[str] = ()) -> GateReport:
        """Every check of the promotion gate on the run's products; writes nothing.

        ``drop`` as for ``promote``: the check judges the same snapshot it would publish.
        """
        from kfm_prov.gate import evaluate

        return evaluate(self.config, self.resolve_run(run_id).run_id, outputs,
                        drop=tuple(drop))

    def promote(self, run_id: str, *, version: str | None = None, outputs: Sequence[str] = (),
                requested_by: str | None = None, drop: Sequence[str] = ()) -> PromotionResult:
        """The gate, then an atomic promotion with STAC, PROV bundle, DCAT and certificate.

        The new version is a snapshot of the family: the latest version's products that
        the run does not replace are carried forward, except those named in ``drop``.
        Raises ``CheckFailed`` (exit 1) with every finding when the gate refuses.
        """
        from kfm_prov.publish.promote import promote

        return promote(self.config, self.resolve_run(run_id).run_id, version=version,
                       outputs=tuple(outputs), requested_by=requested_by, drop=tuple(drop))

    # -- retention --------------------------------------------------------------------------

    def gc(self, keep: int, *, family: str | None = None, apply: bool = False,
           min_age_hours: float | None = None, now: datetime | None = None) -> GcPlan:
        """The retention plan for ``keep`` runs per family; carried out with ``apply``.

        See ``kfm_prov.gc``: raw, processed, promoted closures, running and young runs are
        never touched.
        """
        from kfm_prov.gc import apply_gc, plan_gc

        plan = plan_gc(self.config, keep, family, now=now, min_age_hours=min_age_hours)
        return apply_gc(self.config, plan, now=now) if apply else plan

    # -- audits and interchange: trace, verify, export ---------------------------------------

    def trace(self, artifact: str, *, down: bool = False, verify: bool = False,
              base: Path | None = None) -> Trace:
        """The lineage of a path, digest, run id or STAC item (see ``kfm_prov.trace``).

        Up to its raw sources, or ``down`` to every product derived from it; ``verify``
        re-hashes every file of it. Paths are relative to ``base`` (default: the current
        directory) or to the root. Writes nothing.
        """
        from kfm_prov.trace import trace

        return trace(self.config, artifact, down=down, verify=verify, base=base)

    def verify(self, *, require_signatures: bool = False,
               keys: Sequence[PublicKey] = ()) -> VerifyReport:
        """The lake-wide audit (see ``kfm_prov.verify``); writes nothing."""
        from kfm_prov.verify import audit

        return audit(self.config, require_signatures=require_signatures, keys=keys)

    def attest(self, family: str, version: str) -> str:
        """Sign an existing version after re-verifying it; the attestation's path.

        The lake-wide audit must find nothing about the family (its raw sources, version
        files, certificate, bundle, STAC and DCAT records), then ``publish.attest``
        re-checks the version under the publish lock and signs it. Writes only
        ``prov/<family>/<version>.intoto.jsonl``.
        """
        from kfm_prov.errors import CheckFailed
        from kfm_prov.publish.attest import attest_version
        from kfm_prov.publish.promote import existing_versions, publish_lock
        from kfm_prov.store.signing import signing_key
        from kfm_prov.verify import audit

        key = signing_key(self.config)
        if key is None:
            raise UsageError("no signing key configured", hint="set KFM_PROV_SIGNING_KEY"
                             " or [signing] key in kfm-prov.toml")
        marks = (f"/{family}/", f"/{family}.ttl", f"/{family}-{version}")
        problems = [f for f in audit(self.config).findings
                    if f.code != "attestation-missing"
                    and f.file and any(m in f.file for m in marks)]
        if problems:
            raise CheckFailed.from_findings(f"{family} {version} does not verify; not signed",
                                            problems)
        with publish_lock(self.config):  # no promotion rewrites the records meanwhile
            versions = existing_versions(self.config, family)
            return attest_version(self.config, family, version, key,
                                  latest=versions[-1] if versions else None)

    def site(self, out_dir: str | os.PathLike[str], families: Sequence[str] = (), *,
             include_logs: bool = False) -> SiteResult:
        """Write the static audit site into ``out_dir``, replacing it whole (see
        ``kfm_prov.site``); ``kfm_prov.site.render_site`` gives the pages without a folder."""
        from kfm_prov.site import build_site

        return build_site(self.config, out_dir, list(families), include_logs=include_logs)

    def export(self, scope: Scope | None = None, fmt: str = "prov-json", *,
               base: Path | None = None, jsonld_context: str = "url") -> Exported:
        """The PROV of the lake, a family, a run or an artifact's lineage, serialized.

        See ``kfm_prov.export`` for how documents are merged; writes nothing.
        """
        from kfm_prov.export import Scope, export

        return export(self.config, scope or Scope(), fmt, base=base,
                      jsonld_context=jsonld_context)
