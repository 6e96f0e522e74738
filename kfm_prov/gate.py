"""The promotion gate (SPEC §5): prove that a run's products can be rebuilt from raw data.

One pass over the closure: starting at the run, each level of inputs is resolved in a few
batched index queries to raw captures, certified processed files, or the run that
generated them (by digest). Everything the proof rests on is then re-hashed fresh, in one
parallel batch: products, raw files, and each run's evidence (receipts, prov.json, logs),
whose digest the index kept when the run was recorded. Every check runs and every
failure is reported with a stable reason code and the lineage path that fails.

Nothing here writes: ``evaluate`` is what ``kfm-prov check`` prints and what
``promote`` requires.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kfm_prov.config import SENSITIVITY_RANK, LakeConfig
from kfm_prov.context import UNKNOWN_COMMIT
from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.paths import is_under, symlink_on_the_way
from kfm_prov.core.timeutil import format_time, now_utc, parse_time
from kfm_prov.errors import InputError, NotFoundError
from kfm_prov.store import raw
from kfm_prov.store.certificate import Entity, read_certificate, verify_certificate
from kfm_prov.store.digests import hash_files
from kfm_prov.store.evidence import RunEvidence, index_entry, read_evidence, scan_evidence
from kfm_prov.store.index import IndexEntry, IoRow, RawRow, RunRow
from kfm_prov.store.lineage import (
    ClosureView,
    LineageGraph,
    closure_view,
    file_node,
    run_node,
)
from kfm_prov.store.protocol import LineageStore
from kfm_prov.store.rebuild import index_for
from kfm_prov.store.receipts import (
    WAIVER_FILE,
    CodeIdentity,
    RunRecord,
    receipt_inconsistencies,
)
from kfm_prov.store.release import CarriedFrom, CarriedProduct

CHECKS: dict[str, str] = {
    "receipts": "receipts exist, validate and are unchanged since recorded",
    "validation": "validation passed, or passed with a valid waiver",
    "raw-sources": "every ancestor ends in unchanged raw files with a license and attribution",
    "upstream-runs": "every run on the way succeeded, with its git commit",
    "inputs": "no orphan input, none from staging, tmp, cache or outside the root",
    "graph": "no cycle; every file was generated before it was used",
    "outputs": "product digests match and the products stay under their run",
    "sensitivity": "sensitivity never falls along a path without a recorded redaction",
    "secrets": "no receipt or log of the closure holds a secret",
    "signatures": "every run of the closure is signed by a trusted key (require_signed_runs)",
    "carried": "products carried forward from the family's latest version still hold",
}
_UNKNOWN_LICENSES = {"NOASSERTION", "NONE", "UNKNOWN", "OTHER"}
# The validation gate a run gets for inputs kfm-prov could not read (a warehouse table, an
# object store: OpenLineage intake); any run of the closure with it makes products unprovable.
EXTERNAL_GATE = "external_inputs"


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    status: str  # pass | fail
    findings: tuple[Finding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "title": self.title, "status": self.status}
        if self.findings:
            out["reasons"] = sorted({f.code for f in self.findings})
            out["findings"] = [f.to_dict() for f in self.findings]
        return out


@dataclass
class GateReport:
    """The outcome of the gate for one run's products."""

    run: RunRow
    products: list[IoRow]
    checks: list[CheckResult]
    runs: dict[str, RunRow]
    entities: dict[tuple[str, str], Entity]
    edges: list[tuple[str, str, str]]  # (from node, to node, relation)
    product_sensitivity: dict[str, str]
    waiver: dict[str, Any] | None
    checked_at: str
    warnings: list[Finding] = field(default_factory=list)
    #: Relabels of the closure's raw files, from their trails (``raw relabel``).
    steward_decisions: list[dict[str, Any]] = field(default_factory=list)
    #: The family's latest version when the gate ran (the snapshot this one follows),
    #: its products this run does not replace and the user did not drop, and the dropped.
    snapshot_of: str | None = None
    carried: list[CarriedProduct] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status == "pass" for c in self.checks)

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.checks for f in c.findings]

    def node_label(self, node: str) -> str:
        """A lineage node as a person reads it: a file by its path (a raw capture's first,
        where several paths hold the bytes), a run by its id."""
        kind, _, ident = node.partition(":")
        if kind == "run":
            return f"run {ident}"
        order = ("raw", "processed", "product", "work", "orphan")
        paths = sorted((order.index(e.kind) if e.kind in order else len(order), e.path)
                       for e in self.entities.values() if e.digest == ident)
        paths += [(0, p.path) for p in self.products if p.digest == ident]
        return min(paths)[1] if paths else node

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id,
            "family": self.run.family,
            "ok": self.ok,
            "checked_at": self.checked_at,
            "products": [{"path": p.path, "digest": p.digest,
                          "sensitivity": self.product_sensitivity[p.path]}
                         for p in self.products],
            "checks": [c.to_dict() for c in self.checks],
            "closure": {"runs": sorted(self.runs), "entities": len(self.entities)},
            **({"steward_decisions": self.steward_decisions} if self.steward_decisions
               else {}),
            "snapshot": {"of": self.snapshot_of, "dropped": list(self.dropped),
                         "carried": [{"path": c.previous, "digest": c.entry["digest"],
                                      "carried_from": c.origin.to_dict()}
                                     for c in self.carried]},
        }


class _Walk:
    """Collects the closure and the findings while walking it."""

    def __init__(self, config: LakeConfig, index: LineageStore | ClosureView) -> None:
        self.config = config
        self.index: Any = index
        self.findings: dict[str, list[Finding]] = defaultdict(list)
        self.runs: dict[str, RunRow] = {}
        self.entities: dict[tuple[str, str], Entity] = {}
        self.edges: list[tuple[str, str, str]] = []
        self.inputs_of: dict[str, list[IoRow]] = {}
        self.raw_inputs: dict[str, RawRow] = {}  # raw path → the row the walk relies on
        self.certified: dict[str, dict[str, Any]] = {}  # digest → certificate product entry
        self.evidence: dict[str, RunEvidence] = {}  # run dir → receipts as read and hashed
        self.raw_infos: tuple[list[str], dict[str, raw.RawInfo | None]] | None = None
        #: path → digest of the files this walk has hashed (raw sources, products), so a
        #: certificate checked later in the walk does not hash them again.
        self.fresh: dict[str, str] = {}

    def fail(self, check: str, code: str, message: str, *, file: str | None = None,
             pointer: str | None = None, hint: str | None = None,
             nodes: Sequence[str] | None = None) -> None:
        self.findings[check].append(Finding(code, message, file, pointer, hint,
                                            tuple(nodes) if nodes else None))

    def entity(self, row: IoRow | RawRow, zone: str, kind: str, **attrs: Any) -> Entity:
        key = (row.path, row.digest)
        if key not in self.entities:
            self.entities[key] = Entity(row.path, row.digest, zone, kind, **attrs)
        return self.entities[key]


def evaluate(config: LakeConfig, run_id: str, outputs: Sequence[str] = (), *,
             now: datetime | None = None, drop: Sequence[str] = ()) -> GateReport:
    """Every check of SPEC §5 on the products of ``run_id`` and their whole ancestry.

    ``outputs`` names the outputs to promote (root-relative paths or names under the
    run's ``artifacts/``); by default the ``product`` outputs. The new version is a
    snapshot of the family: the latest version's other products are carried forward,
    except those named in ``drop``, and must still hold. Writes nothing.
    """
    with index_for(config) as index:
        run = index.run(run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id!r} in the index", hint="see `kfm-prov runs`")
        # the closure's rows in a few queries, then the walk in memory (lineage.ClosureView)
        walk = _Walk(config, closure_view(index, runs=[run.run_id]))
        products = _products(index, run, outputs)
        _walk_closure(walk, run)
        _check_products(walk, run, products)
        _check_runs(walk, run)
        _check_raw(walk)
        decisions = _check_raw_labels(walk)
        _check_raw_ancestry(walk, run)
        waiver = _check_validation(walk, run, now or datetime.now(UTC))
        levels = _check_sensitivity(walk, run, products)
        _check_graph(walk)
        _check_signed_runs(walk)
        _check_product_formats(walk, products)
        snapshot_of, carried, dropped = _check_carried(walk, index, run, products, drop)
    checks = [CheckResult(cid, title, "fail" if walk.findings.get(cid) else "pass",
                          tuple(walk.findings.get(cid, ())))
              for cid, title in CHECKS.items()
              if cid != "signatures" or config.require_signed_runs]
    return GateReport(run=run, products=products, checks=checks, runs=walk.runs,
                      entities=walk.entities, edges=sorted(set(walk.edges)),
                      product_sensitivity=levels, waiver=waiver,
                      checked_at=format_time(now) if now else now_utc(),
                      steward_decisions=decisions,
                      snapshot_of=snapshot_of, carried=carried, dropped=dropped)


def _products(index: LineageStore, run: RunRow, wanted: Sequence[str]) -> list[IoRow]:
    outputs = index.files([run.run_id], "out")
    if not wanted:
        chosen = [o for o in outputs if o.role == "product"]
        if not chosen:
            raise InputError(f"run {run.run_id} has no product outputs", file=run.run_dir,
                             hint="mark outputs as products (role 'product') or name them"
                                  " with --output")
        return chosen
    by_path = {o.path: o for o in outputs}
    chosen = []
    for name in wanted:
        path = name if name in by_path else f"{run.run_dir}/artifacts/{name}"
        if path not in by_path:
            raise InputError(f"run {run.run_id} has no output {name!r}", field="--output")
        chosen.append(by_path[path])
    return sorted(set(chosen), key=lambda o: o.path)


# --- the walk ----------------------------------------------------------------------------------

def _walk_closure(walk: _Walk, start: RunRow) -> None:
    """Breadth-first from the run to raw: each input resolved by digest, a level at a time."""
    walk.runs[start.run_id] = start
    level = [start.run_id]
    while level:
        inputs = walk.index.files(level, "in")
        digests = sorted({row.digest for row in inputs})
        raw_by_digest: dict[str, list[RawRow]] = defaultdict(list)
        for raw_row in walk.index.raw_by_digest(digests):
            raw_by_digest[raw_row.digest].append(raw_row)
        certified = {p.digest: p for p in walk.index.promotions_by_digest(digests)}
        producers: dict[str, list[IoRow]] = defaultdict(list)
        for output in walk.index.producers(digests):
            producers[output.digest].append(output)
        producer_runs = walk.index.runs_by_id(sorted({r.run_id for rows in producers.values()
                                                      for r in rows}))
        next_level: set[str] = set()
        for row in inputs:
            walk.inputs_of.setdefault(row.run_id, []).append(row)
            consumer = walk.runs[row.run_id]
            chosen = _resolve(walk, consumer, row, raw_by_digest[row.digest],
                              certified.get(row.digest), producers[row.digest], producer_runs)
            if chosen is not None and chosen.run_id not in walk.runs:
                walk.runs[chosen.run_id] = chosen
                next_level.add(chosen.run_id)
        level = sorted(next_level)


def _resolve(walk: _Walk, consumer: RunRow, row: IoRow, raws: list[RawRow],
             promotion: Any, producers: list[IoRow],
             producer_runs: dict[str, RunRow]) -> RunRow | None:
    """Classify one input; returns the producing run to walk into, if any."""
    config = walk.config
    here = [file_node(row.digest), run_node(consumer.run_id)]
    walk.edges.append((file_node(row.digest), run_node(consumer.run_id), "used"))
    if config.is_transient(row.path):
        walk.fail("inputs", "transient-input", f"input {row.path} lies in staging, a run's"
                  " tmp/ or a cache", file=row.path, nodes=here,
                  hint="capture it under data/raw/ or produce it in a recorded run")
    elif row.zone == "external":
        walk.fail("inputs", "input-outside-root", f"input {row.path} is outside the lake zones",
                  file=row.path, nodes=here)
    if raws:
        source = next((r for r in raws if r.path == row.path), raws[0])
        walk.raw_inputs.setdefault(source.path, source)
        walk.entity(source, "raw", "raw", license=source.license,
                    attribution=source.attribution, sensitivity=source.sensitivity)
        return None
    if row.zone == "raw":
        walk.entity(row, "raw", "orphan")
        walk.fail("raw-sources", "raw-not-recorded", f"{row.path} was used with bytes that no"
                  " raw manifest records", file=row.path, nodes=here,
                  hint=f"kfm-prov raw add {row.path} (if these bytes are the capture)")
        return None
    if promotion is not None:
        _certified_input(walk, row, promotion, here)
        return None
    candidates = [p for p in producers if p.run_id != consumer.run_id]
    if not candidates and producers:
        walk.entity(row, row.zone, "work")
        walk.fail("graph", "cycle", f"run {consumer.run_id} used {row.path}, which only it"
                  " generated: a file cannot be an input of the run that made it",
                  file=row.path, nodes=[*here, file_node(row.digest)],
                  hint="read the input from where it came from (a raw capture or an earlier"
                       " run's output)")
        return None
    if not candidates:
        walk.entity(row, row.zone, "orphan")
        walk.fail("inputs", "orphan-input", f"no recorded run produced {row.path} and it is no"
                  " recorded raw file", file=row.path, nodes=here,
                  hint="produce it in a captured run or record it as raw")
        return None
    walk.entity(row, row.zone, "work")
    return _choose_producer(walk, consumer, row, candidates, producer_runs, here)


def _certified_input(walk: _Walk, row: IoRow, promotion: Any, here: list[str]) -> None:
    """A processed input counts when its version's certificate names it and still holds.

    The index only says which certificate to read. The certificate must validate, hash to
    its Merkle root, and agree with the files it names (products, raw sources and their
    labels, the receipts of its closure, its PROV bundle and STAC item; the DCAT is
    `verify`'s, as the proof never reads it): a forged or edited
    certificate makes the input uncertified and never lowers the label it carries.
    """
    walk.entity(row, "processed", "processed")
    cert_path = promotion.certificate
    problems: list[Finding] = []
    entry = None
    if cert_path and (walk.config.root / cert_path).is_file():
        problems = verify_certificate(walk.config, cert_path, catalog=False)
        if not problems:
            entry = read_certificate(walk.config, cert_path).product(row.digest)
    if entry is None:
        why = problems[0].message if problems else "is missing or does not name it"
        walk.fail("raw-sources", "processed-uncertified", f"{row.path} comes from"
                  f" {promotion.family} {promotion.version} whose certificate does not hold:"
                  f" {why}", file=cert_path or row.path, nodes=here,
                  hint="kfm-prov verify names what changed")
    else:
        walk.certified[row.digest] = entry


def _choose_producer(walk: _Walk, consumer: RunRow, row: IoRow, candidates: list[IoRow],
                     producer_runs: dict[str, RunRow], here: list[str]) -> RunRow:
    """The derivation the consumer actually used, or else one that qualifies.

    When the input's path is a run's output (``<runs>/<family>/<run>/artifacts/…``) and
    that run recorded these bytes there, that run is the producer: the consumer read its
    file. Otherwise the earliest run that qualifies (succeeded, from a known, clean
    commit, ended before the use), so a rerun from committed code is promotable beside an
    older run that was not. Failing that, the best candidate, whose faults the checks
    then report.
    """
    used_at = parse_time(consumer.started_at)
    runs = sorted((producer_runs[c.run_id] for c in candidates if c.run_id in producer_runs),
                  key=lambda r: (r.ended_at or "9999", r.run_id))

    def before(r: RunRow) -> bool:
        return r.ended_at is not None and parse_time(r.ended_at) <= used_at

    def qualifies(r: RunRow) -> bool:
        clean = r.git_commit != UNKNOWN_COMMIT and (
            not r.git_commit.endswith("-dirty") or walk.config.allow_dirty_commits)
        return r.status == "success" and clean and before(r)

    named = walk.config.run_of_output(row.path)
    at_path = {c.run_id for c in candidates if c.path == row.path}
    chosen = (next((r for r in runs if r.run_id == named and r.run_id in at_path), None)
              or next((r for r in runs if qualifies(r)), None)
              or next((r for r in runs if r.status == "success" and before(r)), None)
              or next((r for r in runs if before(r)), None) or runs[0])
    walk.edges.append((run_node(chosen.run_id), file_node(row.digest), "generated"))
    if not before(chosen):
        walk.fail("graph", "use-before-generation", f"{row.path} was used by run"
                  f" {consumer.run_id} at {consumer.started_at}, before run {chosen.run_id}"
                  f" generated it (ended {chosen.ended_at})", file=row.path,
                  nodes=[run_node(chosen.run_id), *here])
    return chosen


# --- the checks --------------------------------------------------------------------------------

def _check_products(walk: _Walk, run: RunRow, products: list[IoRow]) -> None:
    artifacts = f"{run.run_dir}/artifacts"
    present = []
    for product in products:
        walk.entity(product, product.zone, "product")
        path = walk.config.root / product.path
        if not is_under(product.path, artifacts):
            walk.fail("outputs", "output-outside-run", f"product {product.path} is not under"
                      f" {artifacts}/", file=product.path)
        elif symlink_on_the_way(walk.config.root, product.path) or not path.is_file():
            walk.fail("outputs", "output-missing", f"product {product.path} is missing or a"
                      " symlink", file=product.path)
        else:
            present.append((product, path))
    for (product, _), digest in zip(present, hash_files([p for _, p in present]), strict=True):
        walk.fresh[product.path] = digest
        if digest != product.digest:
            walk.fail("outputs", "output-digest-mismatch", f"product {product.path} has"
                      f" {digest[:19]}…, recorded {product.digest[:19]}…", file=product.path,
                      hint="the file changed after its run; rerun the pipeline")


def _check_runs(walk: _Walk, start: RunRow) -> None:
    """Every run of the closure as its files say: read, re-hashed, checked against the index.

    The index only located these runs. Status, commit, validation outcome, inputs,
    outputs and redactions are taken from the receipts whose bytes were just hashed; where
    the index says otherwise it is stale (or was edited), and the gate refuses rather than
    believe either. The secret scan runs on those same files.
    """
    evidence = read_evidence(walk.config, [run.run_dir for run in walk.runs.values()])
    walk.evidence = evidence
    code: dict[str, tuple[str, CodeIdentity | None]] = {}  # commit and code, per run
    for run_id, indexed in sorted(walk.runs.items()):
        ev = evidence[indexed.run_dir]
        nodes = [run_node(run_id)]
        check = "receipts" if run_id == start.run_id else "upstream-runs"
        if ev.digest != indexed.evidence_digest:
            walk.fail("receipts", "receipt-modified", f"receipts, prov.json or logs of run"
                      f" {run_id} changed after it was recorded", file=indexed.run_dir,
                      nodes=nodes, hint=f"if the change is legitimate: kfm-prov record"
                      f" {indexed.run_dir}")
        for finding in ev.findings:
            walk.fail("receipts", "missing-receipt" if finding.code == "missing-receipt"
                      else "invalid-receipt", f"run {run_id}: {finding.message}",
                      file=finding.file, pointer=finding.pointer, nodes=nodes)
        for finding in scan_evidence(walk.config, indexed.run_dir, ev.datas, list(ev.files),
                                     blobs=ev.blobs):
            walk.fail("secrets", finding.code, finding.message, file=finding.file,
                      pointer=finding.pointer, nodes=nodes, hint=finding.hint)
        if ev.receipts is None:
            continue  # no facts to check: refused above
        receipts = ev.receipts
        for finding in receipt_inconsistencies(receipts, display=indexed.run_dir):
            walk.fail("receipts", "inconsistent-receipt", f"run {run_id}: {finding.message}",
                      file=finding.file, pointer=finding.pointer, nodes=nodes,
                      hint="the receipts contradict each other: they were edited after the run")
        entry = index_entry(walk.config, receipts, indexed.run_dir, evidence=ev.digest,
                            secrets=indexed.secrets)
        stale = _index_differences(walk, indexed, entry)
        if stale:
            walk.fail("receipts", "index-stale", f"the index disagrees with the receipts of run"
                      f" {run_id} ({', '.join(stale)})", file=indexed.run_dir, nodes=nodes,
                      hint="kfm-prov index rebuild, then check again")
        run = entry.run
        walk.runs[run_id] = run  # the facts below, and the certificate, come from the files
        _check_external(walk, run, receipts.report.gates, nodes)
        if run.status != "success":
            walk.fail(check, "run-not-success" if check == "receipts" else "upstream-failed",
                      f"run {run_id} ended {run.status}", file=f"{run.run_dir}/run_record.json",
                      pointer="/status", nodes=nodes)
        code[run_id] = (receipts.record.git_commit, _code_of(walk, receipts.record))
    _check_code(walk, code)


_CODE_HINTS = {
    "missing-git-commit": "run pipelines from a git checkout (or pass --commit)",
    "dirty-commit": "commit the pipeline and rerun, or set policy.allow_dirty_commits",
    "untracked-code": "commit the pipeline's code (git add, git commit) and rerun from the"
                      " checkout given as --git-dir",
    "unknown-commit": "rerun from a checkout that has the commit; the run record's `code`"
                      " says where the repository was",
}


def _code_of(walk: _Walk, record: RunRecord) -> CodeIdentity | None:
    """The run's code; for a run that names its repository only by URL (OpenLineage's
    sourceCodeLocation), the checkout configured in ``policy.checkouts``, if any."""
    if record.code is not None:
        return record.code
    openlineage = record.extra.get("openlineage")
    location = openlineage.get("source_code_location") if isinstance(openlineage, dict) else None
    url = location.get("url") if isinstance(location, dict) else None
    checkout = dict(walk.config.checkouts).get(url) if isinstance(url, str) else None
    return CodeIdentity(None, checkout, None) if checkout else None


def _check_code(walk: _Walk, records: dict[str, tuple[str, CodeIdentity | None]]) -> None:
    """Code identity (issue 12 §4): the run records' commit and code, asked of the repository.

    Each checkout is asked once for the whole closure (``context.check_codes``).
    """
    from kfm_prov.context import check_codes

    asked = check_codes(records)
    for run_id, (commit, _) in sorted(records.items()):
        rel, nodes = f"{walk.runs[run_id].run_dir}/run_record.json", [run_node(run_id)]
        found: list[tuple[str, str]] = []
        if commit == UNKNOWN_COMMIT:
            found.append(("missing-git-commit", f"run {run_id} has no git commit"))
        elif commit.endswith("-dirty"):
            found.append(("dirty-commit", f"run {run_id} ran uncommitted code ({commit})"))
        found += [(reason, f"run {run_id}: {message}") for reason, message in asked[run_id]]
        for reason, message in dict.fromkeys(found):  # one branch per code, for docs/gen.py
            if reason == "missing-git-commit":
                walk.fail("upstream-runs", "missing-git-commit", message, file=rel,
                          pointer="/git_commit", hint=_CODE_HINTS[reason], nodes=nodes)
            elif reason == "dirty-commit" and not walk.config.allow_dirty_commits:
                walk.fail("upstream-runs", "dirty-commit", message, file=rel,
                          pointer="/git_commit", hint=_CODE_HINTS[reason], nodes=nodes)
            elif reason == "untracked-code":
                walk.fail("upstream-runs", "untracked-code", message, file=rel,
                          pointer="/code/entry", hint=_CODE_HINTS[reason], nodes=nodes)
            elif reason == "unknown-commit":
                walk.fail("upstream-runs", "unknown-commit", message, file=rel,
                          pointer="/git_commit", hint=_CODE_HINTS[reason], nodes=nodes)


def _check_external(walk: _Walk, run: RunRow, gates: Sequence[Any], nodes: list[str]) -> None:
    """A run that read datasets kfm-prov cannot hash (its ``external_inputs`` gate failed)."""
    for i, gate in enumerate(gates):
        if gate.name != EXTERNAL_GATE or gate.status != "fail":
            continue
        datasets = gate.details.get("datasets") or [{}]
        names = ", ".join(f"{d.get('namespace')}:{d.get('name')} ({d.get('reason')})"
                          for d in datasets[:3] if isinstance(d, dict))
        walk.fail("inputs", "external-input", f"run {run.run_id} read dataset(s) kfm-prov"
                  f" cannot read or hash: {names}",
                  file=f"{run.run_dir}/validation_report.json", pointer=f"/gates/{i}",
                  nodes=nodes, hint="capture the data under data/raw/ (or produce it in a"
                                    " recorded run) and read it from there")


def _index_differences(walk: _Walk, indexed: RunRow, entry: IndexEntry) -> list[str]:
    """What the index says of a run that its receipts do not (field names, for the finding)."""
    differ = [name for name in ("family", "pipeline_id", "status", "overall_status",
                                "started_at", "ended_at", "git_commit", "spec_hash", "run_dir")
              if getattr(indexed, name) != getattr(entry.run, name)]
    files = sorted(tuple(f.__dict__.values()) for f in walk.index.files([indexed.run_id]))
    if files != sorted(tuple(f.__dict__.values()) for f in entry.files):
        differ.append("inputs/outputs")
    redactions = sorted(tuple(r.__dict__.values())
                        for r in walk.index.redactions([indexed.run_id]))
    if redactions != sorted(tuple(r.__dict__.values()) for r in entry.redactions):
        differ.append("redactions")
    return differ


def _check_raw(walk: _Walk) -> None:
    """Raw sources: bytes unchanged (fresh hash), manifest lists them, license, attribution."""
    rows = sorted(walk.raw_inputs.values(), key=lambda r: r.path)
    infos = _lookup(walk, [r.path for r in rows])
    present = [(r, walk.config.root / r.path) for r in rows
               if (walk.config.root / r.path).is_file()]
    fresh = dict(zip([r.path for r, _ in present], hash_files([p for _, p in present]),
                     strict=True))
    walk.fresh.update(fresh)
    for row in rows:
        nodes = [file_node(row.digest)]
        info = infos.get(row.path)
        if row.path not in fresh:
            walk.fail("raw-sources", "raw-missing", f"raw file {row.path} is gone",
                      file=row.path, nodes=nodes)
            continue
        if fresh[row.path] != row.digest:
            walk.fail("raw-sources", "raw-modified", f"raw file {row.path} changed: now"
                      f" {fresh[row.path][:19]}…, recorded {row.digest[:19]}…", file=row.path,
                      nodes=nodes, hint="raw is write-once; capture new bytes under a new path")
            continue
        if info is None or info.digest != row.digest:
            walk.fail("raw-sources", "raw-not-recorded", f"no raw manifest records {row.path}"
                      " with these bytes", file=row.path, nodes=nodes)
            continue
        _check_license(walk, info, nodes)


def _check_raw_labels(walk: _Walk) -> list[dict[str, Any]]:
    """Raw labels as the manifests say, vouched for by their label trails.

    The certificate binds the labels the manifests say now (not the index's copy). A
    manifest whose labels disagree with its trail was edited outside ``raw relabel``
    (``raw-labels-edited``); the relabels the trail records for the closure's files are
    steward decisions the certificate names (who, when, why, old → new, the entry's
    digest). A manifest without a trail is refused (``raw-labels-untracked``): a deleted
    trail and a trail never begun look the same, and either leaves the labels unvouched.
    """
    from kfm_prov.store import labels

    rows = {r.path: r for r in walk.raw_inputs.values()}
    infos = [i for i in _lookup(walk, sorted(rows), quiet=True).values()
             if i is not None and i.digest == rows[i.path].digest]
    checked = labels.check_trails(walk.config, infos, partial=True)
    for finding in checked.findings:
        if finding.code == "raw-labels-trail-invalid":
            walk.fail("raw-sources", "raw-labels-trail-invalid", finding.message,
                      file=finding.file, pointer=finding.pointer, hint=finding.hint)
        elif finding.code == "raw-labels-untracked":
            walk.fail("raw-sources", "raw-labels-untracked", finding.message,
                      file=finding.file, pointer=finding.pointer, hint=finding.hint)
        else:
            walk.fail("raw-sources", "raw-labels-edited", finding.message, file=finding.file,
                      pointer=finding.pointer, hint=finding.hint)
    relabels: dict[tuple[str, str], list[tuple[str, labels.LabelEvent]]] = defaultdict(list)
    for directory, events in checked.trails.items():
        for event in events:
            if event.action == "relabel":
                relabels[(event.path, event.digest)].append((directory, event))
    decisions = []
    for info in infos:
        entity = walk.entities.get((info.path, info.digest))
        if entity is not None:
            entity.license, entity.attribution = info.license, info.attribution
            entity.sensitivity = info.sensitivity
        for directory, event in relabels.get((info.path, info.digest), ()):
            decisions.append({"path": event.path, "digest": event.digest, "at": event.at,
                              "by": event.by, "reason": event.reason, "old": event.old,
                              "new": event.new, "changed": event.changed(),
                              "trail": labels.trail_rel(directory),
                              "entry": event.entry_digest})
    return decisions


def _lookup(walk: _Walk, paths: list[str], *, quiet: bool = False
            ) -> dict[str, raw.RawInfo | None]:
    """The manifests' word on ``paths``, read once per walk (``quiet``: a second reader,
    which leaves reporting an unreadable manifest to the first)."""
    if walk.raw_infos is not None and walk.raw_infos[0] == paths:
        return walk.raw_infos[1]
    try:
        infos = raw.lookup_many(walk.config, paths)
    except InputError as exc:
        if not quiet:
            walk.fail("raw-sources", "raw-manifest-invalid", exc.message, file=exc.file,
                      pointer=exc.field)
        infos = {}
    walk.raw_infos = (paths, infos)
    return infos


def _check_license(walk: _Walk, info: raw.RawInfo, nodes: list[str]) -> None:
    license = (info.license or "").strip()
    if not license or license.upper() in _UNKNOWN_LICENSES:
        walk.fail("raw-sources", "license-missing", f"raw file {info.path} has no known license",
                  file=info.manifest, pointer="license", nodes=nodes,
                  hint="set an SPDX id in the manifest")
    else:
        try:
            raw.canonical_license(license, file=info.manifest)
        except InputError as exc:
            walk.fail("raw-sources", "license-unknown", exc.message, file=info.manifest,
                      pointer="license", nodes=nodes, hint=exc.hint)
    if not (info.attribution or "").strip():
        walk.fail("raw-sources", "attribution-missing", f"raw file {info.path} has no"
                  " attribution", file=info.manifest, pointer="attribution", nodes=nodes)


def _check_validation(walk: _Walk, run: RunRow, now: datetime) -> dict[str, Any] | None:
    """``pass``; or ``pass_with_waiver`` with a waiver that is valid, current and complete."""
    report_file = f"{run.run_dir}/validation_report.json"
    if run.overall_status == "pass":
        return None
    if run.overall_status == "fail":
        walk.fail("validation", "validation-failed", f"validation of run {run.run_id} failed",
                  file=report_file, pointer="/overall_status",
                  hint="fix the data, or have a steward approve a waiver (waiver.json)")
        return None
    from kfm_prov.core.validation import validate_data

    waiver_file = f"{run.run_dir}/{WAIVER_FILE}"
    path = walk.config.root / waiver_file
    if not path.is_file():
        walk.fail("validation", "waiver-missing", "pass_with_waiver needs a waiver.json",
                  file=waiver_file, hint=f"a steward approves it: kfm-prov waive {run.run_id}"
                  " --gate NAME --reason TEXT --by WHO --until YYYY-MM-DD")
        return None
    try:
        waiver = jsonio.read_json(path, display=waiver_file)
    except InputError as exc:
        walk.fail("validation", "waiver-invalid", exc.message, file=waiver_file)
        return None
    problems = validate_data("waiver", waiver, file=waiver_file)
    if problems:
        for problem in problems:
            walk.fail("validation", "waiver-invalid", problem.message, file=waiver_file,
                      pointer=problem.pointer)
        return None
    if waiver["run_id"] != run.run_id:
        walk.fail("validation", "waiver-wrong-run", f"the waiver is for run {waiver['run_id']}",
                  file=waiver_file, pointer="/run_id")
    if parse_time(waiver["expires_at"]) <= now:
        walk.fail("validation", "waiver-expired", f"the waiver expired at"
                  f" {waiver['expires_at']}", file=waiver_file, pointer="/expires_at")
    ev = walk.evidence.get(run.run_dir)
    report = ev.datas.get("validation_report") if ev is not None else None
    if report is None:  # it did not validate when the gate read it: no gate list to trust
        walk.fail("validation", "invalid-receipt", "the validation report the waiver refers"
                  " to does not validate", file=report_file)
        return dict(waiver)
    needed = {g["name"] for g in report["gates"] if g.get("status") in ("fail", "waived")}
    uncovered = sorted(needed - set(waiver["gates"]))
    if uncovered:
        walk.fail("validation", "waiver-incomplete", f"the waiver does not cover gate(s)"
                  f" {', '.join(uncovered)}", file=waiver_file, pointer="/gates")
    return dict(waiver)


def _check_sensitivity(walk: _Walk, run: RunRow, products: list[IoRow]) -> dict[str, str]:
    """Propagate labels from raw to products; a drop needs a recorded redaction.

    Sensitivity is a property of bytes: every file of the closure starts at the highest
    label any raw capture of its digest carries, read from the manifests on disk (not the
    index), wherever it lies and whether or not the run declared it. A redaction lowers
    what a file inherits from its inputs, never the label of its own bytes.
    """
    graph = _edge_graph(walk)
    for product in products:
        graph.add_edge(run_node(run.run_id), file_node(product.digest))
    outputs_by_run: dict[str, list[IoRow]] = defaultdict(list)
    for row in walk.index.files(sorted(walk.runs), "out"):
        outputs_by_run[row.run_id].append(row)
    digests = ({digest for _, digest in walk.entities} | {p.digest for p in products}
               | {o.digest for rows in outputs_by_run.values() for o in rows})
    captures, problems = raw.captures_by_digest(walk.config, digests)
    for problem in problems:
        walk.fail("sensitivity", "raw-manifest-invalid", f"{problem.message}: the labels it"
                  " records are unknown", file=problem.file, pointer=problem.pointer)
    top = {file_node(d): raw.most_sensitive(c) for d, c in captures.items()}
    floor = {node: raw.sensitivity_rank(c.sensitivity) for node, c in top.items() if c}
    level: dict[str, int] = dict(floor)

    def raise_to(node: str, rank: int) -> None:
        level[node] = max(level.get(node, 0), rank)

    for (_, digest), entity in walk.entities.items():  # entities sharing bytes: the highest
        if entity.kind == "raw":
            raise_to(file_node(digest), raw.sensitivity_rank(entity.sensitivity))
        elif entity.kind == "processed":
            label = walk.certified.get(digest, {}).get("sensitivity")
            raise_to(file_node(digest), raw.sensitivity_rank(label))
        elif entity.kind == "orphan":
            raise_to(file_node(digest), raw.sensitivity_rank(None))  # unknown: restricted
    origin = dict(level)  # what each file is by itself, before anything is inherited
    redactions = {(r.run_id, r.output): r for r in walk.index.redactions(sorted(walk.runs))}
    for run_id in _upstream_first(walk):
        inputs = walk.inputs_of.get(run_id, [])
        own_outputs = {o.path for o in outputs_by_run.get(run_id, [])}
        for out in outputs_by_run.get(run_id, []):
            redaction = redactions.get((run_id, out.path))
            if redaction is None:
                considered = inputs
            elif redaction.source in own_outputs:
                considered = []  # redacting the run's own result supersedes all it came from
            else:
                considered = [i for i in inputs if i.path != redaction.source]
            floor_of_redaction = SENSITIVITY_RANK[redaction.sensitivity] if redaction else 0
            derived = max([floor_of_redaction]
                          + [level.get(file_node(i.digest), 1) for i in considered])
            raise_to(file_node(out.digest), derived)
    names = {rank: name for name, rank in SENSITIVITY_RANK.items()}
    result: dict[str, str] = {}
    for product in products:
        node = file_node(product.digest)
        derived = level.get(node, 1)
        declared = product.sensitivity
        if declared is not None and SENSITIVITY_RANK[declared] < derived:
            same = top.get(node)
            if same is not None and floor[node] == derived:
                walk.fail("sensitivity", "sensitivity-downgrade", f"product {product.path} is"
                          f" declared {declared} but has the bytes of {same.path},"
                          f" {_recorded(same)}", file=product.path,
                          nodes=[node, run_node(run.run_id), node],
                          hint=_unlabelled_hint(same) or "publish a redacted derivative"
                          " (run.redact), not the capture")
            else:
                source = _most_sensitive_source(walk, graph, run.run_id, product, derived,
                                                origin)
                start = source[0] if source else None
                capture = top.get(start) if start is not None else None
                if capture is None or floor.get(start or "") != derived:
                    capture = None
                bytes_of = (f" (the bytes of {capture.path}, {_recorded(capture)})"
                            if capture is not None else "")
                walk.fail("sensitivity", "sensitivity-downgrade", f"product {product.path}"
                          f" is declared {declared} but descends from {names[derived]}"
                          f" data{bytes_of} with no recorded redaction", file=product.path,
                          nodes=source,
                          hint=(_unlabelled_hint(capture) if capture is not None else None)
                          or "redact with run.redact(...) (e.g. snap coordinates to a grid)")
        result[product.path] = declared if declared is not None and not (
            SENSITIVITY_RANK[declared] < derived) else names[derived]
    return result


def _recorded(capture: raw.RawInfo) -> str:
    """How a capture's label reads in a refusal: an absent label is not a recorded one."""
    if capture.labelled:
        return f"recorded {capture.sensitivity}"
    return (f"which has no sensitivity label in {capture.manifest} and is therefore treated"
            f" as {capture.sensitivity}")


def _unlabelled_hint(capture: raw.RawInfo) -> str | None:
    if capture.labelled:
        return None
    levels = "|".join(SENSITIVITY_RANK)
    return (f"if it is less sensitive, label it: kfm-prov raw relabel {capture.path}"
            f" --sensitivity {levels} --reason TEXT; else redact with run.redact(...)")


def _check_raw_ancestry(walk: _Walk, run: RunRow) -> None:
    """"Reconstructible from raw" is not vacuously true: some input must lead to raw.

    A run with no declared inputs, or whose inputs are all orphans, proves nothing; only
    a recorded raw capture or a certified product counts as where a path begins.
    """
    graph = _edge_graph(walk)
    start = run_node(run.run_id)
    sources = {file_node(digest) for (_, digest), e in walk.entities.items()
               if e.kind == "raw" or (e.kind == "processed" and digest in walk.certified)}
    if start in graph and sources & graph.ancestors(start):
        return
    declared = len(walk.inputs_of.get(run.run_id, []))
    walk.fail("raw-sources", "no-raw-ancestry", f"run {run.run_id} has no raw ancestry:"
              + (" it declared no inputs" if not declared else
                 " none of its inputs leads to a recorded raw file or a certified product"),
              file=f"{run.run_dir}/run_manifest.json", pointer="/inputs", nodes=[start],
              hint="declare what the run read (kfm-prov run -i PATH, run.use(PATH)) and record"
                   " sources with kfm-prov raw add")


def _upstream_first(walk: _Walk) -> list[str]:
    """Runs of the closure, every producer before its consumers.

    Ordered on runs, not files: a run whose output has the same bytes as its input would
    otherwise look like a cycle. A real cycle is reported by the graph check; here the
    walk order stands in for it.
    """
    graph = LineageGraph()
    for run_id in walk.runs:
        graph.add_node(run_id)
    producers = {b: a for a, b, relation in walk.edges if relation == "generated"}
    for a, b, relation in walk.edges:
        if relation == "used" and a in producers and producers[a][4:] != b[4:]:
            graph.add_edge(producers[a][4:], b[4:])
    order = graph.topological_order()
    return list(reversed(walk.runs)) if order is None else order


def _most_sensitive_source(walk: _Walk, graph: LineageGraph, run_id: str, product: IoRow,
                           rank: int, level: dict[str, int]) -> list[str] | None:
    """The lineage path from a source at ``rank`` to the product, for the finding.

    ``level`` is what each file is by itself: a raw, certified or orphan file's label, or
    the label recorded for its bytes (an intermediate copy of a sensitive capture).
    """
    target = file_node(product.digest)
    sources = sorted(node for node, own in level.items() if own == rank)
    for source in sources:
        if source == target:  # the product has the very bytes of the source
            return [source, run_node(run_id), target]
        path = graph.shortest_path(source, target)
        if path is not None:
            return path
    return None


def _edge_graph(walk: _Walk) -> LineageGraph:
    """The closure's file and run nodes, cause → effect, in the order the walk found them.

    The checks' graph algorithms (ancestors, order, acyclicity, a shortest path) are the
    linear ones of ``LineageGraph``, so a gate that passes never imports networkx.
    """
    graph = LineageGraph()
    for a, b, _ in walk.edges:
        graph.add_edge(a, b)
    return graph


def _check_graph(walk: _Walk) -> None:
    graph = _edge_graph(walk)
    if graph.is_acyclic():  # linear; find_cycle is quadratic on long chains
        return
    import networkx as nx  # only to name the cycle: rare, and worth its import

    cycle = nx.find_cycle(graph.to_networkx())
    walk.fail("graph", "cycle", "the lineage has a cycle", nodes=[a for a, _ in cycle])


def _check_signed_runs(walk: _Walk) -> None:
    """Policy ``require_signed_runs``: each run's evidence and outputs signed by a trusted key.

    The index only locates: what counts is ``run.intoto.jsonl`` checked against the
    trusted keys and the files' current bytes (``signing.run_signature_problem``).
    """
    if not walk.config.require_signed_runs:
        return
    from kfm_prov.store.evidence import evidence_files
    from kfm_prov.store.signing import run_signature_problem, trusted_keys

    try:
        trusted = trusted_keys(walk.config)
    except InputError as exc:
        walk.fail("signatures", "run-signature-invalid", exc.message, file=exc.file,
                  hint="fix [trust] keys in kfm-prov.toml")
        return
    outputs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in walk.index.files(sorted(walk.runs), "out"):
        outputs[row.run_id].append((row.path, row.digest))
    for run_id, run in sorted(walk.runs.items()):
        problem = run_signature_problem(walk.config, run.run_dir, run_id, outputs[run_id],
                                        evidence_files(walk.config, run.run_dir), trusted)
        if problem is None:
            continue
        if problem.kind == "unsigned":
            walk.fail("signatures", "run-unsigned", problem.message, file=problem.file,
                      nodes=[run_node(run_id)], hint="capture the run with a signing key"
                      " (KFM_PROV_SIGNING_KEY), or `kfm-prov record RUN_DIR` with one")
        else:
            walk.fail("signatures", "run-signature-invalid", problem.message,
                      file=problem.file, nodes=[run_node(run_id)],
                      hint="find out who changed the run; rerun it with a trusted key")


# --- what promote would refuse beyond the lineage (checked here so `check` agrees) ----------

def _check_product_formats(walk: _Walk, products: list[IoRow]) -> None:
    """Products the catalogs must describe: a media type they accept, and a GeoJSON
    product that parses and stays in WGS 84.

    The STAC item's bbox and geometry come from the GeoJSON products, so one that does not
    parse would fail the promotion after the gate; here ``check`` refuses it too, naming
    the run's file. Only bytes that hash to the recorded digest are judged (any other is
    ``output-digest-mismatch`` already).
    """
    from kfm_prov.core.geojson import is_geojson, read_geojson_bbox
    from kfm_prov.core.mediatypes import is_media_type
    from kfm_prov.store.digests import sha256_bytes

    for product in products:
        if product.media_type and not is_media_type(product.media_type):
            walk.fail("outputs", "product-malformed", f"product {product.path} has media type"
                      f" {product.media_type!r}, not type/subtype", file=product.path,
                      pointer="media_type", hint="declare an IANA media type, e.g."
                      " application/geo+json, in the run's receipts")
            continue
        if not is_geojson(product.media_type):
            continue
        path = walk.config.root / product.path
        try:
            data = path.read_bytes()
        except OSError:
            continue  # output-missing
        if sha256_bytes(data) != product.digest:
            continue
        try:
            read_geojson_bbox(data, product.path)
        except InputError as exc:
            walk.fail("outputs", "product-malformed", f"product {product.path}: {exc.message}",
                      file=product.path, pointer=exc.field,
                      hint="fix the pipeline so it writes valid GeoJSON (RFC 7946), rerun")


def _check_carried(walk: _Walk, index: LineageStore, run: RunRow, products: list[IoRow],
                   drop: Sequence[str]) -> tuple[str | None, list[CarriedProduct], list[str]]:
    """The family's latest version, and its products this version carries forward.

    A version is a snapshot of the family: a product name this run makes replaces the
    latest version's; every other product of it is carried unless named in ``drop``. The
    carried bytes rest on that version's certificate, so it must still hold (re-hashed
    here, the carried files included); a carried product's lineage stays its first
    promotion's. ``drop`` naming nothing of the latest version is bad input.
    """
    from kfm_prov.store.certificate import certificate_rel
    from kfm_prov.store.published import family_versions

    config = walk.config
    family = run.family
    versions = family_versions(config, index, family)
    if not versions:
        if drop:
            raise InputError(f"{family} has no version yet: there is nothing to drop",
                             field="--drop")
        return None, [], []
    latest = versions[-1]
    version_rel = f"{config.rel('processed')}/{family}/{latest}"
    cert_rel = certificate_rel(config, family, latest)
    cert = None
    try:
        cert = read_certificate(config, cert_rel)
        names = {p["path"].removeprefix(f"{version_rel}/"): p for p in cert.products}
    except InputError:
        names = {name: {} for name in _listed_names(config, version_rel)}
    artifacts = f"{run.run_dir}/artifacts/"
    made = {p.path.removeprefix(artifacts) for p in products}
    for name in drop:
        if name in made:
            raise InputError(f"run {run.run_id} makes {name!r}: it is in the new version,"
                             " so it cannot also be dropped", field="--drop")
        if name not in names:
            raise InputError(f"{family} {latest} has no product {name!r} to drop (it has:"
                             f" {', '.join(sorted(names)) or 'none'})", field="--drop")
    keep = sorted(set(names) - made - set(drop))
    if not keep:
        return latest, [], sorted(drop)
    problems = (verify_certificate(config, cert_rel, walk.fresh, catalog=False)
                if cert is not None else [])
    if cert is None or problems:
        paths = {f"{version_rel}/{n}" for n in keep}
        hit = next((f for f in problems if f.code in ("file-modified", "file-missing")
                    and f.file in paths), None)
        first = hit or (problems[0] if problems else None)
        why = first.message if first else "it is missing or unreadable"
        walk.fail("carried", "carried-modified" if hit else "carried-uncertified",
                  f"{family} {latest}'s {', '.join(keep)} cannot be carried into the next"
                  f" version: its certificate no longer holds ({why})",
                  file=hit.file if hit else cert_rel,
                  hint=f"kfm-prov verify names what changed; or leave them out:"
                       f" {' '.join('--drop ' + n for n in keep)}")
        return latest, [], sorted(drop)
    carried = []
    for name in keep:
        entry = names[name]
        origin = (CarriedFrom.from_dict(entry["carried_from"]) if entry.get("carried_from")
                  else CarriedFrom(latest, cert.run_id, entry["path"], cert_rel))
        carried.append(CarriedProduct(name, entry["path"], dict(entry), origin))
    return latest, carried, sorted(drop)


def _listed_names(config: LakeConfig, version_rel: str) -> list[str]:
    """The files a version's ``checksums.sha256`` lists (none when it is unreadable)."""
    try:
        return sorted(raw.read_checksums(config.root / version_rel / "checksums.sha256",
                                         display=f"{version_rel}/checksums.sha256"))
    except InputError:
        return []
