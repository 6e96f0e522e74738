"""PROV documents of runs (SPEC §4), built with the ``prov`` package.

Identifiers are deterministic and carry no path, coordinate or person: a file entity is
``kfm:file-<zone>-<sha256 hex>`` (a file at a content state in a zone), a run is
``kfm:run-<run id>``, a pipeline ``kfm:pipeline-<hash of its id>-<commit>``, a plan
``kfm:plan-<spec hash>``. Records are added in a fixed order so the same receipts give
byte-identical PROV-JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kfm_prov.config import LakeConfig, zone_rank
from kfm_prov.core.mediatypes import media_type
from kfm_prov.core.perf import gc_paused
from kfm_prov.core.timeutil import parse_time
from kfm_prov.store import raw
from kfm_prov.store.digests import hex_of
from kfm_prov.store.evidence import REPORT_FILE
from kfm_prov.store.index import RawRow
from kfm_prov.store.receipts import FileEntry, RunReceipts

if TYPE_CHECKING:
    from prov.model import ProvActivity, ProvBundle, ProvDocument, QualifiedName

ENTITY_TYPES = {"raw": "RawFile", "work": "WorkFile", "processed": "ProcessedFile",
                "external": "ExternalFile"}


@dataclass(frozen=True)
class FileState:
    """What PROV says of one file: its content state and where it sits."""

    path: str
    digest: str
    zone: str
    role: str | None = None
    size: int | None = None
    media_type: str | None = None
    license: str | None = None
    attribution: str | None = None
    sensitivity: str | None = None


def file_id(zone: str, digest: str) -> str:
    return f"file-{zone}-{hex_of(digest)}"


def run_id_local(run_id: str) -> str:
    return f"run-{run_id}"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class ProvBuilder:
    """Accumulates records in one ``ProvDocument`` under the ``kfm`` namespace."""

    def __init__(self, namespace: str) -> None:
        from prov.model import PROV, ProvDocument

        self.doc: ProvDocument = ProvDocument()
        self.kfm = self.doc.add_namespace("kfm", namespace)
        self.prov = PROV
        self.target: ProvBundle = self.doc  # where records go: the document or one bundle
        self._entities: set[str] = set()  # local ids of the entities in the current scope
        self._agents: set[str] = set()
        self._derivations: set[tuple[str, str]] = set()

    def entity_ids(self) -> list[str]:
        return sorted(self._entities)

    def q(self, local: str) -> QualifiedName:
        return self.kfm[local]

    def open_bundle(self, local: str, attributed_to: QualifiedName) -> QualifiedName:
        """Send further records into a named bundle, described at top level as a prov:Bundle."""
        bundle_id = self.q(local)
        self.doc.entity(bundle_id, {self.prov["type"]: self.prov["Bundle"]})
        self.doc.wasAttributedTo(bundle_id, attributed_to)
        self.target = self.doc.bundle(bundle_id)
        self._entities.clear()
        self._agents.clear()
        self._derivations.clear()
        return bundle_id

    def derive(self, generated: QualifiedName, used: QualifiedName,
               activity: ProvActivity | QualifiedName | None = None,
               attrs: Mapping[Any, Any] | None = None) -> None:
        """``wasDerivedFrom`` once per pair: the same bytes reached twice need one record."""
        key = (str(generated), str(used))
        if key not in self._derivations:
            self._derivations.add(key)
            self.target.wasDerivedFrom(generated, used, activity,
                                       other_attributes=dict(attrs) if attrs else None)

    def link_copies(self) -> None:
        """Same bytes in two zones are two entities: the later zone derives from the earlier."""
        by_digest: dict[str, list[str]] = {}
        for local in self.entity_ids():
            if local.startswith("file-"):
                _, zone, hex_digest = local.split("-", 2)
                by_digest.setdefault(hex_digest, []).append(zone)
        for hex_digest, zones in sorted(by_digest.items()):
            zones.sort(key=zone_rank)
            first = self.q(f"file-{zones[0]}-{hex_digest}")
            for zone in zones[1:]:
                self.derive(self.q(f"file-{zone}-{hex_digest}"), first,
                            attrs={self.prov["type"]: self.q("Copy")})

    def software_agent(self, name: str, version: str) -> QualifiedName:
        return self.agent(f"software-{name}-{version}", {
            self.prov["type"]: self.prov["SoftwareAgent"], self.q("name"): name,
            self.q("version"): version})

    def file(self, state: FileState) -> QualifiedName:
        """The entity of a file state, added once however often it is referred to."""
        local = file_id(state.zone, state.digest)
        if local not in self._entities:
            self._entities.add(local)
            attrs: dict[Any, Any] = {
                self.prov["type"]: self.q(ENTITY_TYPES.get(state.zone, "ExternalFile")),
                self.q("digest"): state.digest,
                self.q("zone"): state.zone,
                self.q("path"): state.path,
            }
            for key, value in (("size", state.size), ("mediaType", state.media_type),
                               ("license", state.license), ("attribution", state.attribution),
                               ("sensitivity", state.sensitivity)):
                if value is not None:
                    attrs[self.q(key)] = value
            self.target.entity(self.q(local), attrs)
        return self.q(local)

    def agent(self, local: str, attrs: Mapping[Any, Any]) -> QualifiedName:
        if local not in self._agents:
            self._agents.add(local)
            self.target.agent(self.q(local), dict(attrs))
        return self.q(local)

    @gc_paused  # thousands of records that all stay alive: see perf.paused_gc
    def run(self, receipts: RunReceipts, inputs: Iterable[FileState],
            outputs: Iterable[FileState], *, report: FileState | None = None,
            publish_user: bool = False) -> ProvActivity:
        """The run activity with its usages, generations, derivations and associations.

        A redacted output (``manifest.redactions``) is generated by a redaction activity of
        its own, informed by the run, that used the redaction's source.
        """
        import rfc8785

        record, manifest = receipts.record, receipts.manifest
        started = parse_time(record.started_at)
        ended = parse_time(record.ended_at) if record.ended_at else None
        activity = self.target.activity(self.q(run_id_local(record.run_id)), started, ended, {
            self.prov["type"]: self.q("PipelineRun"),
            self.q("runId"): record.run_id,
            self.q("family"): record.dataset_family,
            self.q("pipelineId"): record.pipeline_id,
            self.q("gitCommit"): record.git_commit,
            self.q("specHash"): manifest.spec_hash,
            self.q("status"): record.status,
            self.q("validation"): receipts.report.overall_status,
            self.q("params"): rfc8785.dumps(manifest.params).decode("utf-8"),
        })
        used = sorted(inputs, key=lambda s: (s.path, s.digest))
        made = sorted(outputs, key=lambda s: (s.path, s.digest))
        input_ids = [self.file(state) for state in used]
        for state, entity in zip(used, input_ids, strict=True):
            self.target.used(activity, entity, started,
                          other_attributes={self.prov["role"]: self.q(state.role or "primary")})
        redacted = {r["output"]: r for r in manifest.redactions or []}
        states = {s.path: s for s in [*used, *made]}
        for state in made:
            entity = self.file(state)
            if state.path in redacted:
                self._redaction(activity, record.run_id, redacted[state.path], entity,
                                states.get(redacted[state.path]["source"]), started, ended)
                continue
            self.target.wasGeneratedBy(entity, activity, ended, other_attributes={
                self.prov["role"]: self.q(state.role or "intermediate")})
            for source in input_ids:
                self.derive(entity, source, activity)
        if report is not None:
            self.target.wasGeneratedBy(self.file(report), activity, ended,
                                    other_attributes={self.prov["role"]: self.q("validation")})
        self._associate(activity, receipts, publish_user)
        return activity

    def _redaction(self, run: ProvActivity, run_id: str, redaction: Mapping[str, Any],
                   output: QualifiedName, source: FileState | None, started: datetime,
                   ended: datetime | None) -> None:
        import rfc8785

        # The redaction happens as the run ends: its source may be one of the run's outputs.
        when = ended or started
        local = f"redaction-{run_id}-{_short_hash(redaction['output'])}"
        activity = self.target.activity(self.q(local), when, when, {
            self.prov["type"]: self.q("Redaction"),
            self.q("profile"): rfc8785.dumps(redaction.get("profile", {})).decode("utf-8"),
            self.q("sensitivity"): redaction["sensitivity"],
        })
        self.target.wasInformedBy(activity, run)
        self.target.wasGeneratedBy(output, activity, when)
        if source is not None:
            source_id = self.file(source)
            self.target.used(activity, source_id, when)
            self.derive(output, source_id, activity)

    def _associate(self, activity: ProvActivity, receipts: RunReceipts,
                   publish_user: bool) -> None:
        record, manifest = receipts.record, receipts.manifest
        commit = record.git_commit
        pipeline = self.agent(f"pipeline-{_short_hash(record.pipeline_id)}-{commit}", {
            self.prov["type"]: self.prov["SoftwareAgent"],
            self.q("pipelineId"): record.pipeline_id,
            self.q("gitCommit"): commit,
        })
        plan_local = f"plan-{hex_of(manifest.spec_hash)}"
        if plan_local not in self._entities:
            self._entities.add(plan_local)
            self.target.entity(self.q(plan_local), {self.prov["type"]: self.prov["Plan"],
                                                 self.q("specHash"): manifest.spec_hash})
        self.target.wasAssociatedWith(activity, pipeline, self.q(plan_local),
                                   other_attributes={self.prov["role"]: self.q("pipeline")})
        runner = record.runner
        identity = f"{runner.type}|{runner.host or ''}|{runner.user if publish_user else ''}"
        attrs: dict[Any, Any] = {self.q("runnerType"): runner.type}
        if runner.host:
            attrs[self.q("host")] = runner.host
        if publish_user and runner.user:
            attrs[self.q("user")] = runner.user
        runner_agent = self.agent(f"runner-{runner.type}-{_short_hash(identity)}", attrs)
        self.target.wasAssociatedWith(activity, runner_agent,
                                   other_attributes={self.prov["role"]: self.q("runner")})

    def serialize(self) -> bytes:
        return prov_json_bytes(self.doc)


def prov_json_bytes(doc: ProvDocument) -> bytes:
    """PROV-JSON as written to disk: indented, newline-terminated, byte-stable.

    The bytes of ``doc.serialize(format="json", indent=2)``: prov's own encoder makes the
    PROV-JSON object and ``json.dumps`` writes it, without ``serialize``'s round trip
    through a stream, and with the garbage collector paused (``perf.paused_gc``).
    """
    import json

    from prov.serializers.provjson import encode_json_document

    from kfm_prov.core.perf import paused_gc

    with paused_gc():
        return (json.dumps(encode_json_document(doc), indent=2) + "\n").encode("utf-8")


# --- the PROV view of a run's receipts ----------------------------------------------------

def _state(config: LakeConfig, entry: FileEntry) -> FileState:
    return FileState(path=entry.path, digest=entry.digest, zone=config.zone_of(entry.path),
                     role=entry.role, size=entry.size,
                     media_type=entry.media_type or media_type(entry.path),
                     sensitivity=entry.extra.get("sensitivity"))


def _raw_state(state: FileState, info: raw.RawInfo) -> FileState:
    return FileState(path=state.path, digest=state.digest, zone="raw", role=state.role,
                     size=state.size, media_type=state.media_type, license=info.license,
                     attribution=info.attribution, sensitivity=info.sensitivity)


def run_states(config: LakeConfig, receipts: RunReceipts,
               raw_infos: dict[str, raw.RawInfo | None] | None = None,
               ) -> tuple[list[FileState], list[FileState], list[RawRow]]:
    """The PROV view of a run's inputs and outputs; raw inputs carry license and label."""
    raw_paths = [e.path for e in receipts.manifest.inputs if config.zone_of(e.path) == "raw"]
    infos = raw_infos if raw_infos is not None else raw.lookup_many(config, raw_paths)
    inputs: list[FileState] = []
    raw_rows: list[RawRow] = []
    for entry in receipts.manifest.inputs:
        state = _state(config, entry)
        info = infos.get(entry.path) if state.zone == "raw" else None
        if info is not None and info.digest == entry.digest:
            state = _raw_state(state, info)
            raw_rows.append(RawRow(info.path, info.digest, info.license, info.attribution,
                                   info.sensitivity, info.manifest))
        inputs.append(state)
    outputs = [_state(config, entry) for entry in receipts.manifest.outputs]
    return inputs, outputs, raw_rows


def report_state(run_dir: str, report_digest: str) -> FileState:
    return FileState(path=f"{run_dir}/{REPORT_FILE}", digest=report_digest, zone="work",
                     role="validation", media_type="application/json")


def build_run_prov(config: LakeConfig, receipts: RunReceipts, run_dir: str,
                   report_digest: str) -> tuple[bytes, list[RawRow]]:
    """PROV-JSON of one run, and the raw rows of the inputs the manifests know."""
    builder = ProvBuilder(config.namespace)
    inputs, outputs, raw_rows = run_states(config, receipts)
    builder.run(receipts, inputs, outputs, report=report_state(run_dir, report_digest),
                publish_user=config.publish_user)
    return builder.serialize(), raw_rows
