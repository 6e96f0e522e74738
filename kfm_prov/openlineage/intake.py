"""OpenLineage events → recorded runs, through the same door as ``kfm-prov record``.

``accept`` checks an event, journals it durably, and when it ends a run (COMPLETE, FAIL,
ABORT) closes the run: the run's events are merged, file datasets inside the lake are
hashed (outputs copied into the run's ``artifacts/`` so the bytes the run made stay
there), other datasets are recorded by name as external, facets are scrubbed of secrets,
and the three receipts are written into ``<runs>/<family>/<run id>/`` exactly as a
pipeline would write them. ``record_run_dir`` then validates them, re-hashes every file,
scans for secrets, writes PROV and indexes the run. The kfm-prov run id is the
OpenLineage ``runId``.

What each part of an event becomes is in docs/guide-openlineage.md.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfm_prov import __version__
from kfm_prov.config import SENSITIVITIES, LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.mediatypes import media_type
from kfm_prov.core.paths import symlink_on_the_way, to_relative, walk_tree
from kfm_prov.core.secrets import SecretFinding, scrub_data, scrub_env, scrub_text
from kfm_prov.core.timeutil import format_time
from kfm_prov.core.validation import validate_data
from kfm_prov.errors import InputError, KfmProvError, RefusedError
from kfm_prov.gate import EXTERNAL_GATE
from kfm_prov.openlineage.events import Event, parse_event
from kfm_prov.openlineage.journal import Journal
from kfm_prov.record import RecordedRun, record_run_dir, run_dir_rel
from kfm_prov.store.digests import dir_hash1, hash_files, normalize_digest, spec_hash
from kfm_prov.store.rebuild import index_for
from kfm_prov.store.receipts import (
    FileEntry,
    Gate,
    RunManifest,
    Runner,
    RunRecord,
    ValidationReport,
)

MAX_DATASET_FILES = 100_000  # files of one directory dataset; beyond, it is external


@dataclass
class Accepted:
    """What became of one event."""

    digest: str
    run_id: str | None
    event_type: str | None
    duplicate: bool = False
    recorded: RecordedRun | None = None
    note: str | None = None
    refused: str | None = None  # the event is kept, but its run could not be recorded

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": self.digest, "run_id": self.run_id,
                               "event_type": self.event_type, "duplicate": self.duplicate}
        if self.recorded is not None:
            out["recorded"] = self.recorded.__dict__
        if self.note:
            out["note"] = self.note
        if self.refused:
            out["refused"] = self.refused
        return out


# --- accepting events ------------------------------------------------------------------------

def accept(config: LakeConfig, data: Any, *, file: str = "event") -> Accepted:
    """Check, journal and (for an ending event) record one event. Mutates the journal and,
    when the run ends, its run directory and the index."""
    return accept_events(config, [parse_event(data, file=file)])[0]


def parse_batch(items: Sequence[Any], *, file: str) -> list[Event]:
    """Check every event of a batch before any is journaled (all or nothing)."""
    return [parse_event(item, file=file, prefix=f"/{i}") for i, item in enumerate(items)]


def accept_events(config: LakeConfig, events: Sequence[Event]) -> list[Accepted]:
    """Journal checked events in order; record each run whose ending event arrives."""
    journal = Journal(config)
    for i, event in enumerate(events):  # refuse before anything of a batch is journaled
        if (event.terminal and event.run_id is not None and not journal.has(event)
                and journal.recorded(event.run_id) is not None):
            raise _already_ended(event, f"/{i}" if len(events) > 1 else "")
    return [_accept_one(config, journal, event) for event in events]


def _already_ended(event: Event, prefix: str) -> RefusedError:
    return RefusedError(f"run {event.run_id} has ended and is recorded; a second"
                        f" {event.event_type} cannot change it", field=f"{prefix}/eventType",
                        hint="send OTHER events for metadata that arrives after the end")


def _accept_one(config: LakeConfig, journal: Journal, event: Event) -> Accepted:
    result = Accepted(event.digest, event.run_id, event.event_type)
    with journal.lock(event.run_id):
        if journal.has(event):
            result.duplicate = True
            result.note = "this event was received before; recorded once"
            return result
        if event.run_id is not None and journal.recorded(event.run_id) is not None:
            if event.terminal:
                raise _already_ended(event, "")
            journal.append(event)
            result.note = "the run is recorded already; the event is kept in the journal"
            return result
        journal.append(event)
        if event.run_id is not None and event.terminal:
            try:
                result.recorded = close_run(config, journal, event.run_id)
            except KfmProvError as exc:  # accepted and kept; recorded once the cause is fixed
                result.refused = exc.one_line()
    return result


def recover(config: LakeConfig) -> list[RecordedRun]:
    """Record every journaled run that ended but was not recorded (a crash in between)."""
    journal = Journal(config)
    done = []
    for run_id in journal.run_ids():
        if journal.recorded(run_id) is not None:
            continue
        with journal.lock(run_id):
            if journal.recorded(run_id) is None and any(e.terminal for e in
                                                        journal.events(run_id)):
                try:
                    result = close_run(config, journal, run_id)
                except KfmProvError:
                    continue
                if result is not None:
                    done.append(result)
    return done


def record_file(config: LakeConfig, path: Path, *, display: str) -> list[Accepted]:
    """``kfm-prov record --openlineage FILE``: JSON Lines of events (the file transport).

    Every line is checked before any is journaled; a bad line is an ``InputError`` naming
    its line number and JSON pointer.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=display) from None
    if len(text) > jsonio.MAX_JSON_BYTES:
        raise InputError("file too large", file=display)
    events = []
    for number, line in enumerate(text.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{display} line {number}"
        events.append(parse_event(jsonio.loads(line, file=where), file=where))
    if not events:
        raise InputError("no OpenLineage events in the file", file=display)
    return accept_events(config, events)


# --- closing a run ---------------------------------------------------------------------------

@dataclass
class _Dataset:
    namespace: str
    name: str
    facets: dict[str, Any] = field(default_factory=dict)  # dataset facets
    io_facets: dict[str, Any] = field(default_factory=dict)  # input/output facets

    @property
    def label(self) -> str:
        return f"{self.namespace}:{self.name}"


@dataclass
class _Merged:
    """A run's events folded into one view (later facets win)."""

    events: list[Event]
    terminal: Event
    run_facets: dict[str, Any]
    job_facets: dict[str, Any]
    inputs: list[_Dataset]
    outputs: list[_Dataset]

    @property
    def job(self) -> dict[str, Any]:
        job: dict[str, Any] = self.terminal.data["job"]
        return job


def _merge(events: list[Event]) -> _Merged | None:
    terminal = next((e for e in reversed(events) if e.terminal), None)
    if terminal is None:
        return None
    run_facets: dict[str, Any] = {}
    job_facets: dict[str, Any] = {}
    datasets: dict[str, dict[tuple[str, str], _Dataset]] = {"inputs": {}, "outputs": {}}
    for event in events:
        run_facets.update(event.data["run"].get("facets") or {})
        job_facets.update(event.data["job"].get("facets") or {})
        for direction, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
            for item in event.data.get(direction) or []:
                key = (item["namespace"], item["name"])
                dataset = datasets[direction].setdefault(key, _Dataset(*key))
                dataset.facets.update(item.get("facets") or {})
                dataset.io_facets.update(item.get(extra) or {})
    return _Merged(events, terminal, run_facets, job_facets,
                   list(datasets["inputs"].values()), list(datasets["outputs"].values()))


class _Secrets:
    def __init__(self) -> None:
        self.found: list[SecretFinding] = []

    def data(self, value: Any, where: str) -> Any:
        clean, found = scrub_data(value, where)
        self.found += found
        return clean

    def text(self, value: str, where: str) -> str:
        clean, found = scrub_text(value, where)
        self.found += found
        return clean


def close_run(config: LakeConfig, journal: Journal, run_id: str) -> RecordedRun | None:
    """Turn the journaled events of ``run_id`` into a recorded run (hold the run's lock).

    Writes the run directory and, through ``record_run_dir``, its PROV and index entry. If
    the record is refused, the directory is removed again and the refusal raised: nothing
    is left half-written.
    """
    entries = journal.entries(run_id)
    merged = _merge([event for event, _ in entries])
    if merged is None:
        return None
    family, pipeline_id = config.job_mapping(merged.job["namespace"], merged.job["name"])
    rel_dir = run_dir_rel(config, family, run_id)
    with index_for(config) as index:
        existing = index.run(run_id)
    if existing is not None:  # recorded before a crash kept us from saying so
        result = RecordedRun(existing.run_id, existing.run_dir, existing.status,
                             existing.overall_status, f"{existing.run_dir}/prov.json")
        journal.mark_recorded(run_id, result.__dict__)
        return result
    absolute = config.root / rel_dir
    if absolute.exists():  # ours, left by a crash before the index: build it again
        shutil.rmtree(absolute)
    try:
        scrubbed = [SecretFinding(f"/events/{i}{s['location']}", s["kind"])
                     for i, (_, found) in enumerate(entries) for s in found]
        _write_run_dir(config, merged, family, pipeline_id, rel_dir, scrubbed)
        result = record_run_dir(config, rel_dir)
    except BaseException:
        shutil.rmtree(absolute, ignore_errors=True)
        raise
    journal.mark_recorded(run_id, result.__dict__)
    return result


def _write_run_dir(config: LakeConfig, merged: _Merged, family: str, pipeline_id: str,
                   rel_dir: str, scrubbed: list[SecretFinding]) -> None:
    run_id = merged.terminal.run_id
    assert run_id is not None
    run_dir = config.root / rel_dir
    (run_dir / "artifacts").mkdir(parents=True)
    (run_dir / "logs").mkdir()
    secrets = _Secrets()
    secrets.found += scrubbed  # removed before the events were journaled
    gates: list[Gate] = []
    terminal = merged.terminal
    status = {"COMPLETE": "success", "FAIL": "failed", "ABORT": "interrupted"}[
        str(terminal.event_type)]

    inputs, external_in, digest_problems = _inputs(config, merged.inputs, secrets)
    outputs, external_out, missing, out_problems = _outputs(config, merged.outputs, rel_dir,
                                                             secrets)
    digest_problems += out_problems
    if external_in:
        gates.append(Gate(EXTERNAL_GATE, "fail", {
            "datasets": external_in,
            "reason": "kfm-prov cannot read these datasets, so nothing made from them can"
                      " be proven reconstructible from raw data"}))
    if external_out:
        gates.append(Gate("external_outputs", "warn", {
            "datasets": external_out, "note": "recorded by name only; not in the lineage"}))
    if missing:
        gates.append(Gate("outputs", "fail" if status == "success" else "warn",
                          {"missing": missing}))
        if status == "success":
            status = "failed"
    else:
        gates.append(Gate("outputs", "pass", {"outputs": len(outputs)}))
    if digest_problems:
        gates.append(Gate("kfm_digest", "fail", {"mismatches": digest_problems}))
    gates += _quality_gates(merged, secrets)

    facets = secrets.data(merged.run_facets, "/run/facets")
    job_facets = secrets.data(merged.job_facets, "/job/facets")
    job = {"namespace": secrets.text(merged.job["namespace"], "/job/namespace"),
           "name": secrets.text(merged.job["name"], "/job/name")}
    openlineage: dict[str, Any] = {
        "run_id": run_id, "job": job,
        "producer": secrets.text(terminal.data["producer"], "/producer"),
        "events": [{"eventType": e.event_type or "OTHER", "eventTime": e.data["eventTime"],
                    "digest": e.digest} for e in merged.events],
    }
    for facet, key in (("parent", "parent"), ("nominalTime", "nominal_time"),
                       ("processing_engine", "processing_engine"), ("errorMessage", "error"),
                       ("tags", "tags")):
        if isinstance(facets.get(facet), dict):
            openlineage[key] = _without_base(facets[facet])
    for facet, key in (("jobType", "job_type"), ("sourceCodeLocation", "source_code_location"),
                       ("sql", "sql")):
        if isinstance(job_facets.get(facet), dict):
            openlineage[key] = _without_base(job_facets[facet])
    software = {"kfm-prov": __version__}
    engine = openlineage.get("processing_engine")
    if isinstance(engine, dict) and isinstance(engine.get("name"), str):
        software[engine["name"]] = str(engine.get("version", ""))
    environment = None
    variables = facets.get("environmentVariables", {}).get("environmentVariables")
    if isinstance(variables, list):
        raw_env = {str(v.get("name")): str(v.get("value")) for v in variables
                   if isinstance(v, dict) and "name" in v}
        environment, found = scrub_env(raw_env, "/environment")
        secrets.found += found
    params = {}
    parameters = facets.get("executionParameters", {}).get("parameters")
    if isinstance(parameters, list):
        params = {str(p["key"]): p.get("value") for p in parameters
                  if isinstance(p, dict) and "key" in p}
    started = next((e for e in merged.events if e.event_type == "START"), merged.events[0])
    started_at = format_time(started.time)
    ended_at = max(format_time(terminal.time), started_at)
    if secrets.found:
        gates.append(Gate("secrets", "warn", {
            "redacted": [f.to_dict() for f in sorted(set(secrets.found),
                                                     key=lambda f: (f.location, f.kind))],
            "note": "values were replaced by [REDACTED] before anything was written"}))
    record = RunRecord(
        run_id=run_id, dataset_family=family, pipeline_id=pipeline_id,
        git_commit=_commit(openlineage.get("source_code_location")), started_at=started_at,
        ended_at=ended_at, status=status, runner=Runner(type="cluster"),
        environment=environment, software=software, extra={"openlineage": openlineage})
    manifest = RunManifest(
        run_id=run_id, spec_hash=spec_hash({"openlineage_job": job, "facets": job_facets}),
        inputs=inputs, outputs=outputs, params=params, versions={"kfm-prov": __version__},
        extra={k: v for k, v in (("external_inputs", external_in),
                                 ("external_outputs", external_out)) if v})
    overall = "fail" if any(g.status == "fail" for g in gates) else "pass"
    report = ValidationReport(run_id=run_id, overall_status=overall, gates=gates,
                              policy={"labels_emitted": sorted({
                                  o.extra["sensitivity"] for o in outputs
                                  if "sensitivity" in o.extra}), "redactions_applied": False})
    _write_logs(run_dir, merged, openlineage)
    # run record last, as capture writes it: until then the directory is not a run
    _write_receipt(run_dir, "run_manifest", manifest.to_dict())
    _write_receipt(run_dir, "validation_report", report.to_dict())
    _write_receipt(run_dir, "run_record", record.to_dict())


def _write_receipt(run_dir: Path, kind: str, data: dict[str, Any]) -> None:
    findings = validate_data(kind, data, file=kind)
    if findings:  # what we write always validates; anything else is a bug here
        raise AssertionError(f"kfm-prov wrote an invalid {kind}: {findings[0].one_line()}")
    jsonio.write_json(run_dir / f"{kind}.json", data)


def _write_logs(run_dir: Path, merged: _Merged, openlineage: dict[str, Any]) -> None:
    """The events as received (scrubbed, a line each) and a human log of the run."""
    import json

    lines = []
    for event in merged.events:
        clean, _ = scrub_data(event.data)
        text, _ = scrub_text(json.dumps(clean, ensure_ascii=False, sort_keys=True))
        lines.append(text + "\n")
    jsonio.atomic_write(run_dir / "logs" / "openlineage.jsonl", "".join(lines).encode())
    human = [f"{format_time(e.time)} INFO  OpenLineage {e.event_type or 'event'}"
             f" {e.digest[:19]}…\n" for e in merged.events]
    error = openlineage.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        message = " ".join(error["message"].split())
        human.append(f"{format_time(merged.terminal.time)} ERROR {message}\n")
    text, _ = scrub_text("".join(human))
    jsonio.atomic_write(run_dir / "logs" / "run.log", text.encode("utf-8"))


def _without_base(facet: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in facet.items() if k not in ("_producer", "_schemaURL")}


def _commit(location: Any) -> str:
    import re

    version = location.get("version") if isinstance(location, dict) else None
    if isinstance(version, str) and re.fullmatch(r"[0-9a-fA-F]{7,64}", version):
        return version.lower()
    return "unknown"


# --- datasets --------------------------------------------------------------------------------

def _locate(config: LakeConfig, dataset: _Dataset) -> tuple[list[str], str | None, str | None]:
    """(files, the dataset's own path, or the reason it cannot be read) of a dataset.

    Only ``file`` datasets whose path lies inside the lake root are read; a path that leaves
    the root (``..``, a symlink) is never followed, so a producer cannot make kfm-prov read
    or copy a file outside the lake.
    """
    namespace, name = dataset.namespace, dataset.name
    if namespace != "file" and not namespace.startswith("file:"):
        scheme = namespace.split(":", 1)[0] or namespace
        return [], None, (f"a {scheme} dataset, which kfm-prov cannot read: recorded by name,"
                          " never joined by name")
    try:
        rel = to_relative(config.root, name, base=config.root)
    except InputError:
        return [], None, "not a path inside the lake root"
    absolute = config.root / rel
    if rel in ("", ".") or symlink_on_the_way(config.root, rel):
        return [], None, "reached through a symlink, or the lake root itself"
    if absolute.is_file():
        return [rel], rel, None
    if absolute.is_dir():
        files, _links = walk_tree(absolute, rel)
        if not files:
            return [], rel, "an empty directory"
        if len(files) > MAX_DATASET_FILES:
            return [], rel, f"a directory of more than {MAX_DATASET_FILES} files"
        return sorted(files), rel, None
    return [], rel, "missing when the run ended"


def _external(dataset: _Dataset, reason: str, secrets: _Secrets, pointer: str) -> dict[str, str]:
    return {"namespace": secrets.text(dataset.namespace, f"{pointer}/namespace"),
            "name": secrets.text(dataset.name, f"{pointer}/name"), "reason": reason}


def _claimed(dataset: _Dataset) -> str | None:
    facet = dataset.facets.get("kfm_digest")
    if not isinstance(facet, dict) or not isinstance(facet.get("sha256"), str):
        return None
    try:
        return normalize_digest(facet["sha256"])
    except InputError:
        return None


def _check_claim(config: LakeConfig, dataset: _Dataset, files: list[str], digests: list[str],
                 where: str | None, secrets: _Secrets, pointer: str) -> dict[str, Any] | None:
    """The producer's ``kfm_digest`` against the bytes; a mismatch, or None."""
    claimed = _claimed(dataset)
    if claimed is None or where is None:
        return None
    actual = (digests[0] if len(files) == 1 and files[0] == where
              else dir_hash1(config.root / where))
    if actual == claimed:
        return None
    return {"dataset": secrets.text(dataset.name, f"{pointer}/name"), "path": where,
            "claimed": claimed, "actual": actual}


def _inputs(config: LakeConfig, datasets: list[_Dataset], secrets: _Secrets,
            ) -> tuple[list[FileEntry], list[dict[str, str]], list[dict[str, Any]]]:
    entries: dict[str, FileEntry] = {}
    external: list[dict[str, str]] = []
    problems: list[dict[str, Any]] = []
    for i, dataset in enumerate(datasets):
        pointer = f"/inputs/{i}"
        files, where, reason = _locate(config, dataset)
        if reason is not None:
            external.append(_external(dataset, reason, secrets, pointer))
            continue
        digests = hash_files([config.root / rel for rel in files])
        for rel, digest in zip(files, digests, strict=True):
            entries[rel] = FileEntry(rel, digest, "primary", os.stat(config.root / rel).st_size,
                                     media_type(rel))
        mismatch = _check_claim(config, dataset, files, digests, where, secrets, pointer)
        if mismatch:
            problems.append(mismatch)
    return sorted(entries.values(), key=lambda e: e.path), external, problems


def _outputs(config: LakeConfig, datasets: list[_Dataset], rel_dir: str, secrets: _Secrets,
             ) -> tuple[list[FileEntry], list[dict[str, str]], list[str], list[dict[str, Any]]]:
    """Output files, each copied into ``artifacts/`` (unless written there) and hashed."""
    artifacts = f"{rel_dir}/artifacts"
    entries: dict[str, FileEntry] = {}
    external: list[dict[str, str]] = []
    missing: list[str] = []
    problems: list[dict[str, Any]] = []
    for i, dataset in enumerate(datasets):
        pointer = f"/outputs/{i}"
        files, where, reason = _locate(config, dataset)
        if reason is not None:
            if where is not None and reason.startswith("missing"):
                missing.append(where)
            else:
                external.append(_external(dataset, reason, secrets, pointer))
            continue
        assert where is not None
        targets = []
        parent = where.rpartition("/")[0]
        own = where.startswith(artifacts + "/")
        clash = any(f"{artifacts}/{rel[len(parent):].lstrip('/')}" in entries for rel in files)
        for rel in files:
            # artifacts/<file name> (a directory keeps its name and tree), unless two
            # datasets share a name: then artifacts/<path in the lake>
            name = rel if clash else rel[len(parent):].lstrip("/")
            target = rel if own else f"{artifacts}/{name}"
            if target != rel:
                (config.root / target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(config.root / rel, config.root / target)
            targets.append(target)
        digests = hash_files([config.root / t for t in targets])
        label = dataset.facets.get("kfm_sensitivity", {}).get("sensitivity")
        extra: dict[str, Any] = {"sensitivity": label} if label in SENSITIVITIES else {}
        for rel, target, digest in zip(files, targets, digests, strict=True):
            moved = {"written_to": rel} if target != rel else {}
            entries[target] = FileEntry(target, digest, "product",
                                        os.stat(config.root / target).st_size,
                                        media_type(target), {**extra, **moved})
        copy_root = where if own else (
            f"{artifacts}/{where if clash else where[len(parent):].lstrip('/')}")
        mismatch = _check_claim(config, dataset, targets, digests, copy_root, secrets, pointer)
        if mismatch:
            mismatch["path"] = where
            problems.append(mismatch)
    return sorted(entries.values(), key=lambda e: e.path), external, missing, problems


def _quality_gates(merged: _Merged, secrets: _Secrets) -> list[Gate]:
    """``dataQualityAssertions`` of every dataset → one validation gate per assertion."""
    gates = []
    for direction, datasets in (("inputs", merged.inputs), ("outputs", merged.outputs)):
        for i, dataset in enumerate(datasets):
            facet = dataset.io_facets.get("dataQualityAssertions") or dataset.facets.get(
                "dataQualityAssertions")
            if not isinstance(facet, dict):
                continue
            for j, assertion in enumerate(facet.get("assertions") or []):
                if not isinstance(assertion, dict):
                    continue
                parts = [dataset.name.rsplit("/", 1)[-1], str(assertion.get("assertion"))]
                if assertion.get("column"):
                    parts.append(str(assertion["column"]))
                name = secrets.text(":".join(["dq", *parts]), f"/{direction}/{i}/dq/{j}")[:200]
                severity = assertion.get("severity")
                status = ("pass" if assertion.get("success") else
                          "warn" if severity == "warn" else "fail")
                details = secrets.data(_without_base(assertion), f"/{direction}/{i}/dq/{j}")
                details["dataset"] = secrets.text(dataset.label, f"/{direction}/{i}/name")
                gates.append(Gate(name, status, details))
    return gates
