"""Recorded runs as OpenLineage RunEvents: START and COMPLETE/FAIL/ABORT per run.

Standard facets where they fit (``sourceCodeLocation`` with the commit, ``jobType``,
``parent``, ``nominalTime``, ``errorMessage``, ``dataQualityAssertions`` from the gates),
plus our own: ``kfm_digest``, ``kfm_license``, ``kfm_sensitivity`` on datasets and
``kfm_promotion`` on promoted outputs, each with the ``_schemaURL`` of the JSON Schema that
ships in ``kfm_prov/schemas/openlineage/kfm/``. Events are deterministic: the same
receipts give the same bytes. Reads only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from kfm_prov import __version__
from kfm_prov.config import LakeConfig
from kfm_prov.errors import CheckFailed, InputError, UsageError
from kfm_prov.store.receipts import FileEntry, RunReceipts, load_run_receipts

PRODUCER = f"https://kfm-prov.org/kfm-prov/{__version__}"
EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_OL_FACETS = "https://openlineage.io/spec/facets/"
FACET_SCHEMAS = {
    "sourceCodeLocation": f"{_OL_FACETS}1-1-0/SourceCodeLocationJobFacet.json"
                          "#/$defs/SourceCodeLocationJobFacet",
    "jobType": f"{_OL_FACETS}2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "parent": f"{_OL_FACETS}1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "nominalTime": f"{_OL_FACETS}1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
    "errorMessage": f"{_OL_FACETS}1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "dataQualityAssertions": f"{_OL_FACETS}1-1-0/DataQualityAssertionsDatasetFacet.json"
                             "#/$defs/DataQualityAssertionsDatasetFacet",
    "processing_engine": f"{_OL_FACETS}1-1-1/ProcessingEngineRunFacet.json"
                         "#/$defs/ProcessingEngineRunFacet",
}
_KFM_FACETS = "https://kfm-prov.org/spec/facets/1-0-0/"
for _key, _name in (("kfm_digest", "KfmDigestDatasetFacet"),
                    ("kfm_license", "KfmLicenseDatasetFacet"),
                    ("kfm_sensitivity", "KfmSensitivityDatasetFacet"),
                    ("kfm_promotion", "KfmPromotionDatasetFacet")):
    FACET_SCHEMAS[_key] = f"{_KFM_FACETS}{_name}.json#/$defs/{_name}"
_ENDED = {"success": "COMPLETE", "failed": "FAIL", "interrupted": "ABORT"}


def _facet(key: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": FACET_SCHEMAS[key], **fields}


def openlineage_run_id(run_id: str) -> str:
    """The OpenLineage ``runId`` (a UUID) of a kfm-prov run id.

    A UUID stays itself (runs received over OpenLineage); a ULID is the same 128 bits as a
    UUID; any other token gets a name-based UUID, so the mapping is stable.
    """
    try:
        return str(uuid.UUID(run_id))
    except ValueError:
        pass
    try:
        from ulid import ULID

        return str(ULID.from_str(run_id).to_uuid())
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kfm-prov:run:{run_id}"))


def run_events(config: LakeConfig, run_dirs: Sequence[str]) -> list[dict[str, Any]]:
    """START and the ending event of each run (runs still running get only START)."""
    from kfm_prov.store import raw
    from kfm_prov.store.rebuild import index_for

    loaded = [(d, load_run_receipts(config.root / d, display=d)) for d in run_dirs]
    raw_paths = sorted({e.path for _, r in loaded for e in r.manifest.inputs
                        if config.zone_of(e.path) == "raw"})
    raw_infos = raw.lookup_many(config, raw_paths)
    digests = sorted({e.digest for _, r in loaded for e in r.manifest.outputs})
    with index_for(config) as index:
        promotions: dict[str, list[Any]] = {}
        for row in index.promotions_by_digest(digests):
            promotions.setdefault(row.digest, []).append(row)
    events: list[dict[str, Any]] = []
    for run_dir, receipts in loaded:
        events += _events_of(config, run_dir, receipts, raw_infos, promotions)
    return events


def _events_of(config: LakeConfig, run_dir: str, receipts: RunReceipts,
               raw_infos: dict[str, Any], promotions: dict[str, list[Any]],
               ) -> list[dict[str, Any]]:
    record, manifest, report = receipts.record, receipts.manifest, receipts.report
    found = record.extra.get("openlineage")
    origin: dict[str, Any] = found if isinstance(found, dict) else {}
    job_ref: dict[str, Any] = origin["job"] if isinstance(origin.get("job"), dict) else {}
    job_facets: dict[str, Any] = {
        "jobType": _facet("jobType", processingType="BATCH", integration="KFM-PROV",
                          jobType="RUN")}
    location = origin.get("source_code_location")
    if record.git_commit != "unknown":
        url = (location.get("url") if isinstance(location, dict)
               and isinstance(location.get("url"), str) else
               f"{config.namespace}pipeline/{record.pipeline_id}")
        job_facets["sourceCodeLocation"] = _facet("sourceCodeLocation", type="git", url=url,
                                                  version=record.git_commit.split("-")[0])
    job = {"namespace": str(job_ref.get("namespace") or config.openlineage_namespace),
           "name": str(job_ref.get("name") or f"{record.dataset_family}.{record.pipeline_id}"),
           "facets": job_facets}
    run_facets: dict[str, Any] = {
        "processing_engine": _facet("processing_engine", version=__version__, name="kfm-prov",
                                    openlineageAdapterVersion=__version__)}
    for key, facet in (("parent", "parent"), ("nominal_time", "nominalTime")):
        if isinstance(origin.get(key), dict):
            run_facets[facet] = _facet(facet, **origin[key])
    run = {"runId": openlineage_run_id(record.run_id), "facets": run_facets}
    inputs = [_dataset(config, e, raw_infos.get(e.path), []) for e in manifest.inputs]
    start = {"eventType": "START", "eventTime": record.started_at, "producer": PRODUCER,
             "schemaURL": EVENT_SCHEMA, "run": run, "job": job, "inputs": inputs,
             "outputs": []}
    ended = _ENDED.get(record.status)
    if ended is None or record.ended_at is None:
        return [start]
    end_facets = dict(run_facets)
    if ended != "COMPLETE":
        error: dict[str, Any] = origin["error"] if isinstance(origin.get("error"),
                                                              dict) else {}
        end_facets["errorMessage"] = _facet(
            "errorMessage", message=str(error.get("message") or f"run {record.status}"
                                        f" (exit code {record.exit_code})"),
            programmingLanguage=str(error.get("programmingLanguage") or "unknown"))
    outputs = [_dataset(config, e, None, promotions.get(e.digest, [])) for e in manifest.outputs]
    end_inputs = [dict(i) for i in inputs]
    assertions = [{"assertion": g.name, "success": g.status in ("pass", "skip", "waived"),
                   "severity": "warn" if g.status in ("warn", "waived") else "error"}
                  for g in report.gates]
    if assertions and end_inputs:  # the gates judge the run; OpenLineage puts them on inputs
        end_inputs[0]["inputFacets"] = {"dataQualityAssertions": _facet(
            "dataQualityAssertions", assertions=assertions)}
    end = {**start, "eventType": ended, "eventTime": record.ended_at,
           "run": {**run, "facets": end_facets}, "inputs": end_inputs, "outputs": outputs}
    return [start, end]


def _dataset(config: LakeConfig, entry: FileEntry, raw_info: Any,
             promoted: list[Any]) -> dict[str, Any]:
    from kfm_prov.store.digests import hex_of

    facets: dict[str, Any] = {"kfm_digest": _facet("kfm_digest", sha256=hex_of(entry.digest),
                                                   **({"size": entry.size}
                                                      if entry.size is not None else {}))}
    sensitivity = entry.extra.get("sensitivity")
    if raw_info is not None and raw_info.digest == entry.digest:
        if raw_info.license:
            facets["kfm_license"] = _facet("kfm_license", license=raw_info.license,
                                           **({"attribution": raw_info.attribution}
                                              if raw_info.attribution else {}))
        sensitivity = raw_info.sensitivity
    if sensitivity:
        facets["kfm_sensitivity"] = _facet("kfm_sensitivity", sensitivity=sensitivity)
    dataset: dict[str, Any] = {"namespace": "file", "name": (config.root / entry.path).as_posix(),
                               "facets": facets}
    if promoted:
        row = sorted(promoted, key=lambda p: (p.promoted_at, p.version))[-1]
        fields = {"family": row.family, "version": row.version, "path": row.path,
                  "promoted_at": row.promoted_at, "certificate": row.certificate or ""}
        if row.bundle:
            fields["bundle"] = row.bundle
        root = _merkle_root(config, row.certificate)
        if root:
            fields["merkle_root"] = root
        dataset["outputFacets"] = {"kfm_promotion": _facet("kfm_promotion", **fields)}
    return dataset


def _merkle_root(config: LakeConfig, certificate: str | None) -> str | None:
    from kfm_prov.core import jsonio

    if not certificate:
        return None
    try:
        data = jsonio.read_json(config.root / certificate, display=certificate)
        return str(data["merkle"]["root"])
    except (InputError, KeyError, TypeError):
        return None


def to_jsonl(events: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n"
                   for e in events).encode("utf-8")


def emit(events: Sequence[dict[str, Any]], url: str, *, api_key: str | None = None,
         timeout: float = 30.0) -> int:
    """POST each event to an OpenLineage receiver; returns how many it accepted.

    ``url`` is the receiver's base (``/api/v1/lineage`` is added when it has no path) or
    the full endpoint. Stops at the first refusal with ``CheckFailed`` naming it.
    """
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError("--emit needs an http(s) URL", field="--emit")
    if parts.path in ("", "/"):
        url = url.rstrip("/") + "/api/v1/lineage"
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    sent = 0
    for event in events:
        body = json.dumps(event, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", errors="replace")
            raise CheckFailed(f"the receiver refused the {event['eventType']} event of run"
                              f" {event['run']['runId']}: HTTP {exc.code} {detail}",
                              file=url) from None
        except (urllib.error.URLError, OSError) as exc:
            raise CheckFailed(f"cannot reach the receiver: {exc}", file=url) from None
        sent += 1
    return sent


def export_events(config: LakeConfig, scope: Any, *, base: Any = None) -> list[dict[str, Any]]:
    """The events of an export scope (``export.Scope``: family, run, artifact or all)."""
    from kfm_prov.errors import NotFoundError
    from kfm_prov.export import collect

    sources = collect(config, scope, base=base)
    if not sources.runs:
        raise NotFoundError(f"{scope.describe()} has no recorded run to export",
                            hint="see `kfm-prov runs`")
    return run_events(config, [prov.rsplit("/", 1)[0] for _, prov in sources.runs])
