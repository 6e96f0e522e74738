"""The run's PROV-JSON written directly is byte for byte what ``prov`` writes (issue 17).

``run_prov_json`` skips ``prov``'s model on the capture's hot path; ``run_prov_reference``
builds the same document with ``prov``. They are compared on receipts hypothesis makes up
(inputs from raw, work and processed zones, other runs' outputs, redactions, odd times,
sizes past 32 and 64 bits, repeated paths) and on every run of every example family.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kfm_prov.config import load_config
from kfm_prov.prov.document import (
    _LeftToProv,
    report_state,
    run_prov_json,
    run_prov_reference,
    run_states,
)
from kfm_prov.store.digests import sha256_bytes
from kfm_prov.store.evidence import REPORT_FILE
from kfm_prov.store.receipts import (
    FileEntry,
    RunManifest,
    Runner,
    RunReceipts,
    RunRecord,
    ValidationReport,
    load_run_receipts,
)

RUN = "01HK15B7C0X8C2V61ZN8VGMM21"
OTHER = "01HK15B7C0X8C2V61ZN8VGMM22"
HEX = st.sampled_from(["ab" * 32, "cd" * 32, "ef" * 32, "01" * 32])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
PATHS = st.sampled_from([
    "data/raw/glo/a.csv", "data/raw/glo/b.geojson", f"data/work/runs/glo/{OTHER}/artifacts/x.csv",
    f"data/work/runs/glo/{RUN}/artifacts/y.parquet", "data/processed/glo/v1/p.geojson",
    "elsewhere/z.tar.gz", "data/work/scratch/w"])
OWN = st.sampled_from([f"data/work/runs/glo/{RUN}/artifacts/{n}"
                       for n in ("a.csv", "b.geojson", "s/c.txt", "d")])
TIMES = st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000000Z",
                         "2024-06-30T23:59:59.123456Z", "2024-01-01T05:30:00+05:30",
                         "2024-01-01T00:00:00.5-00:00", "2024-01-01T00:00:00+00:00:30"])
SAFE_INT = st.integers(-(2**53) + 1, 2**53 - 1)  # what RFC 8785 (params) can write
SIZES = st.one_of(st.none(), st.integers(0, 10), st.just(2**31), st.just(2**63), st.just(-1))


def _entries(paths: st.SearchStrategy[str], roles: list[str]) -> st.SearchStrategy[Any]:
    return st.lists(st.builds(
        FileEntry, path=paths, digest=HEX.map(lambda h: "sha256:" + h),
        role=st.sampled_from(roles), size=SIZES,
        media_type=st.one_of(st.none(), st.sampled_from(["text/csv", "application/x"])),
        extra=st.one_of(st.just({}), st.sampled_from(["public", "restricted"]).map(
            lambda s: {"sensitivity": s}))), max_size=4)


@st.composite
def receipts(draw: st.DrawFn) -> RunReceipts:
    inputs = draw(_entries(PATHS, ["primary", "auxiliary", "config"]))
    outputs = draw(_entries(OWN, ["intermediate", "product"]))
    redactions = []
    for out in outputs:
        if draw(st.booleans()) and (inputs or outputs):
            source = draw(st.sampled_from([e.path for e in [*inputs, *outputs]] + ["gone"]))
            redactions.append({"source": source, "output": out.path,
                               "profile": draw(st.dictionaries(TEXT, SAFE_INT, max_size=2)),
                               "sensitivity": draw(st.sampled_from(["public", "restricted"]))})
    record = RunRecord(
        run_id=RUN, dataset_family=draw(st.sampled_from(["glo", "khri_sites"])),
        pipeline_id=draw(TEXT.filter(bool)), git_commit="0" * 40, started_at=draw(TIMES),
        ended_at=draw(st.one_of(st.none(), TIMES)),
        status=draw(st.sampled_from(["success", "failed", "interrupted"])),
        runner=Runner(draw(st.sampled_from(["local", "ci"])), draw(st.one_of(st.none(), TEXT)),
                      draw(st.one_of(st.none(), TEXT))))
    manifest = RunManifest(run_id=RUN, spec_hash="sha256:" + draw(HEX), inputs=inputs,
                           outputs=outputs, params=draw(st.dictionaries(
                               TEXT, st.one_of(SAFE_INT, TEXT, st.booleans()),
                               max_size=3)),
                           redactions=redactions or None)
    report = ValidationReport(run_id=RUN, overall_status=draw(st.sampled_from(["pass", "fail"])),
                              gates=[])
    return RunReceipts(record, manifest, report)


def _both(config: Any, data: RunReceipts, run_dir: str, digest: str, publish_user: bool,
          public_params: frozenset[str] = frozenset()) -> tuple[bytes | None, bytes]:
    inputs, outputs, _ = run_states(config, data, raw_infos={})
    report = report_state(run_dir, digest)
    reference = run_prov_reference(config.namespace, data, inputs, outputs, report=report,
                                   publish_user=publish_user, public_params=public_params)
    try:
        direct: bytes | None = run_prov_json(config.namespace, data, inputs, outputs,
                                             report=report, publish_user=publish_user,
                                             public_params=public_params)
    except _LeftToProv:
        direct = None
    return direct, reference


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=receipts(), publish_user=st.booleans(), public=st.data())
def test_direct_prov_json_is_byte_identical_to_prov(tmp_path: Path, data: RunReceipts,
                                                     publish_user: bool,
                                                     public: st.DataObject) -> None:
    from kfm_prov.lake import Lake

    root = tmp_path / "lake"
    config = Lake.init(root).config if not root.exists() else load_config(root)
    keys = sorted(data.manifest.params)
    public_params = frozenset(public.draw(st.lists(st.sampled_from(keys), max_size=3))
                              if keys else [])
    direct, reference = _both(config, data, f"data/work/runs/glo/{RUN}", "sha256:" + "ee" * 32,
                              publish_user, public_params)
    assert direct is not None  # every value made up here is one it writes itself
    assert direct.decode().splitlines() == reference.decode().splitlines()
    assert direct == reference


def test_every_example_run_is_byte_identical(demo_lake: Path) -> None:
    config = load_config(demo_lake)
    run_dirs = sorted(p.parent for p in demo_lake.glob("data/work/runs/*/*/run_record.json"))
    families = {d.parent.name for d in run_dirs}
    assert {"glo_land_patents", "khri_sites", "nhgis_tracts", "kansas_memory"} <= families
    for run_dir in run_dirs:
        rel = run_dir.relative_to(demo_lake).as_posix()
        data = load_run_receipts(run_dir, display=rel)
        digest = sha256_bytes((run_dir / REPORT_FILE).read_bytes())
        direct, reference = _both(config, data, rel, digest, config.publish_user,
                                  frozenset(config.public_params))
        assert direct == reference, rel
        on_disk = json.loads((run_dir / "prov.json").read_text())
        assert on_disk["activity"] == json.loads(reference)["activity"]
