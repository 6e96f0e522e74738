"""The PROV bundle of a promoted version: the promotion and its whole ancestry, in one file.

One named bundle holds every run of the closure (as in their own ``prov.json``), the
links between zones where the same bytes sit in two (a work copy of a raw file, a
processed file used again), and the promotion activity that generated the processed
files from the work products. An external catalog needs nothing else to tell the story.
The bundle is checked against the PROV-JSON schema and PROV-CONSTRAINTS before it is
published.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from kfm_prov import __version__
from kfm_prov.config import LakeConfig
from kfm_prov.core.timeutil import parse_time
from kfm_prov.errors import CheckFailed
from kfm_prov.prov.document import (
    FileState,
    ProvBuilder,
    output_id,
    report_state,
    run_states,
    version_file_id,
)
from kfm_prov.store.digests import sha256_bytes
from kfm_prov.store.evidence import REPORT_FILE
from kfm_prov.store.rebuild import index_for
from kfm_prov.store.receipts import load_run_receipts

if TYPE_CHECKING:
    from kfm_prov.gate import GateReport
    from kfm_prov.store.release import Release



def promotion_bundle(config: LakeConfig, report: GateReport, release: Release,
                     files: list[dict[str, Any]], previous: str | None,
                     requested_by: str | None) -> bytes:
    """PROV-JSON bytes of the bundle; raises ``CheckFailed`` if it would be invalid PROV."""
    builder = ProvBuilder(config.namespace)
    tool = builder.software_agent("kfm-prov", __version__)
    builder.open_bundle(f"bundle-{release.family}-{release.version}", tool)
    report_states: dict[str, FileState] = {}
    for run in sorted(report.runs.values(), key=lambda r: (r.started_at, r.run_id)):
        receipts = load_run_receipts(config.root / run.run_dir, display=run.run_dir)
        inputs, outputs, _ = run_states(config, receipts)
        digest = sha256_bytes((config.root / run.run_dir / REPORT_FILE).read_bytes())
        report_states[run.run_id] = report_state(run.run_dir, digest)
        builder.run(receipts, inputs, outputs, report=report_states[run.run_id],
                    publish_user=config.publish_user, public_params=config.public_params)
    builder.link_copies()
    _promotion(builder, config, report, release, files, previous, requested_by,
               report_states[report.run.run_id])
    data = builder.serialize()
    _check(data, builder)
    return data


def _promotion(builder: ProvBuilder, config: LakeConfig, report: GateReport, release: Release,
               files: list[dict[str, Any]], previous: str | None, requested_by: str | None,
               validation: FileState) -> None:
    prov = builder.prov
    when = parse_time(release.promoted_at)
    activity = builder.target.activity(builder.q(release.promotion_id), when, when, {
        prov["type"]: builder.q("Promotion"),
        builder.q("family"): release.family,
        builder.q("version"): release.version,
        builder.q("runId"): release.run_id,
        builder.q("certificate"): release.certificate_path,
    })
    builder.target.used(activity, builder.file(validation), when,
                        other_attributes={prov["role"]: builder.q("validation")})
    if report.waiver is not None:
        waiver = builder.q(f"waiver-{report.run.run_id}")
        builder.target.entity(waiver, {
            prov["type"]: builder.q("Waiver"),
            builder.q("approvedBy"): report.waiver["approved_by"],
            builder.q("reason"): report.waiver["reason"],
            builder.q("gates"): json.dumps(sorted(report.waiver["gates"])),
            builder.q("expiresAt"): report.waiver["expires_at"],
        })
        builder.target.used(activity, waiver, when,
                            other_attributes={prov["role"]: builder.q("waiver")})
    earlier = _previous_files(config, release.family, previous)
    for promoted in files:
        if promoted.get("carried_from"):
            _carried(builder, release, activity, promoted, when)
            continue
        source = FileState(path=promoted["source_path"], digest=promoted["digest"],
                           zone=config.zone_of(promoted["source_path"]),
                           specific=output_id(release.run_id, promoted["source_path"]))
        work = builder.file(source)
        builder.target.used(activity, work, when,
                            other_attributes={prov["role"]: builder.q("product")})
        product = _published(builder, release, activity, promoted, when, work)
        name = promoted["path"].rsplit(f"/{release.version}/", 1)[-1]
        before = earlier.get(name)
        if before is not None and before[1] != promoted["digest"]:
            old = builder.file(FileState(path=before[0], digest=before[1], zone="processed",
                                         specific=version_file_id(release.family, previous
                                                                  or "", before[0])))
            builder.target.wasRevisionOf(product, old)
    builder.target.wasAssociatedWith(activity, builder.software_agent("kfm-prov", __version__),
                                     other_attributes={prov["role"]: builder.q("promoter")})
    if requested_by:
        person = hashlib.sha256(requested_by.encode("utf-8")).hexdigest()[:16]
        attrs: dict[Any, Any] = {prov["type"]: prov["Person"]}
        if config.publish_user:
            attrs[builder.q("name")] = requested_by
        builder.target.wasAssociatedWith(activity, builder.agent(f"person-{person}", attrs),
                                         other_attributes={prov["role"]: builder.q("requester")})


def _carried(builder: ProvBuilder, release: Release, activity: Any,
             promoted: dict[str, Any], when: Any) -> None:
    """A product carried forward unchanged: copied by this promotion from the version
    that first published it, so derived from that file, not from this run's work."""
    prov = builder.prov
    origin = promoted["carried_from"]
    first = builder.file(FileState(
        path=origin["path"], digest=promoted["digest"], zone="processed",
        specific=version_file_id(release.family, origin["version"], origin["path"])))
    builder.target.used(activity, first, when,
                        other_attributes={prov["role"]: builder.q("carried")})
    _published(builder, release, activity, promoted, when, first)


def _published(builder: ProvBuilder, release: Release, activity: Any,
               promoted: dict[str, Any], when: Any, source: Any) -> Any:
    """The version's file: generated by the promotion, derived from ``source``."""
    product = builder.file(FileState(
        path=promoted["path"], digest=promoted["digest"], zone="processed",
        size=promoted["size"], media_type=promoted["media_type"], license=release.license,
        attribution=release.attribution, sensitivity=promoted["sensitivity"],
        specific=version_file_id(release.family, release.version, promoted["path"])))
    builder.target.wasGeneratedBy(product, activity, when)
    builder.derive(product, source, activity)
    return product


def _previous_files(config: LakeConfig, family: str,
                    previous: str | None) -> dict[str, tuple[str, str]]:
    """File name → (path, digest) of the previous version, for ``wasRevisionOf``."""
    if previous is None:
        return {}
    with index_for(config) as index:
        rows = [r for r in index.promotions(family) if r.version == previous]
    return {r.path.rsplit(f"/{previous}/", 1)[-1]: (r.path, r.digest) for r in rows}


def _check(data: bytes, builder: ProvBuilder) -> None:
    from kfm_prov.prov.constraints import check_constraints, validate_prov_json

    problems = validate_prov_json(json.loads(data)) + check_constraints(builder.doc)
    if problems:
        first = problems[0]
        raise CheckFailed(f"the PROV bundle would not be valid PROV ({len(problems)} problem(s));"
                          f" first: {first.constraint} {first.message}",
                          hint="report this with `kfm-prov check --json` output")


