"""The example lake, end to end: ``kfm-prov demo`` runs every example pipeline, twice.

One module-scoped demo lake serves every test here; each test reads it only. Its first run
is the session's ``kfm-prov demo demo-lake`` (``conftest.demo_build``, shared with the
guides), copied; the second runs here in the same directory, so a rerun replacing the
previous demo lake is exercised too.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import prov.model
import pytest
from click.testing import CliRunner

from kfm_prov.cli.main import cli
from kfm_prov.core.validation import validate_data
from kfm_prov.demo import MARKER, prepare
from kfm_prov.errors import InputError
from kfm_prov.examples import FAMILIES, pipeline_files
from kfm_prov.examples.data import CAPTURES, LATER_CAPTURES
from kfm_prov.lake import Lake
from kfm_prov.prov.constraints import check_constraints, validate_prov_json
from kfm_prov.store.certificate import verify_certificate
from tests.conftest import copy_demo

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.xdist_group("examples")  # one worker builds the module's demo


@dataclass
class Demo:
    root: Path
    first_output: str  # the walkthrough of the first run
    first_products: dict[str, str]  # processed file → sha256, after the first run
    result: dict[str, Any]  # `kfm-prov demo --json` of the second run
    second_output: str  # its walkthrough (on stderr with --json)

    @property
    def lake(self) -> Lake:
        return Lake.open(self.root)

    def promotion(self, family: str, version: str) -> dict[str, Any]:
        return next(p for p in self.result["promotions"]
                    if p["family"] == family and p["version"] == version)


def _processed(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "data/processed").rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_build: Path) -> Demo:
    root = copy_demo(demo_build, tmp_path_factory.mktemp("demo"))
    first_output = (demo_build / "demo.txt").read_text(encoding="utf-8")
    products = _processed(root)
    second = CliRunner().invoke(cli, ["demo", str(root), "--json"], catch_exceptions=False)
    assert second.exit_code == 0, second.stderr
    return Demo(root, first_output, products, json.loads(second.stdout), second.stderr)


# --- the walkthrough ----------------------------------------------------------------------------

def test_the_walkthrough_names_every_step_and_where_to_look(demo: Demo) -> None:
    text = demo.first_output
    for family in FAMILIES:
        assert family in text
    for phrase in ("lake.capture", "run.redact", "kfm-prov run -- sh join.sh",
                   "kfm-prov record", "[sensitivity-downgrade]", "refusal receipt",
                   "revision of v1", "Where to look", "Next, try"):
        assert phrase in text, phrase
    section = text.split("Where to look", 1)[1].split("Next, try", 1)[0]
    shown = [line.split()[-1] for line in section.splitlines()[1:] if line.strip()]
    assert len(shown) == 7
    assert any(rel.endswith(".intoto.jsonl") for rel in shown)
    assert "a DEMO key, outside the lake" in text
    assert "kfm-prov verify-artifact data/processed/glo_land_patents/v2/parcels.geojson" \
        in text
    for rel in shown:
        assert (demo.root / rel).is_file(), rel
    assert "previous demo lake was replaced" in demo.second_output


def test_a_rerun_rebuilds_byte_identical_products(demo: Demo) -> None:
    """Same raw bytes and same committed pipelines: the second demo made the same files."""
    assert _processed(demo.root) == demo.first_products
    assert len(demo.first_products) == 2 * 5  # five versions, each a product and checksums


def test_the_demo_writes_only_inside_its_directory(demo: Demo, demo_build: Path) -> None:
    assert sorted(p.name for p in demo_build.iterdir() if p.name != ".built") == [
        "demo-lake", "demo-lake-demo-key", "demo.txt", "home"]
    key = demo_build / "demo-lake-demo-key"
    assert sorted(p.name for p in key.iterdir()) == ["kfm-prov-signing.key",
                                                     "kfm-prov-signing.pub"]
    assert (demo.root / MARKER).is_file()


# --- promotions and the refusal -----------------------------------------------------------------

def test_every_family_is_promoted_with_all_its_records(demo: Demo) -> None:
    lake = demo.lake
    versions = sorted((p["family"], p["version"]) for p in demo.result["promotions"])
    assert versions == [("glo_land_patents", "v1"), ("glo_land_patents", "v2"),
                        ("kansas_memory", "v1"), ("khri_sites", "v1"), ("nhgis_tracts", "v1")]
    for promotion in demo.result["promotions"]:
        for rel in (*promotion["files"], promotion["stac_item"], promotion["prov_bundle"],
                    promotion["certificate"], promotion["dcat"]):
            assert (demo.root / rel).is_file(), rel
        assert verify_certificate(lake.config, promotion["certificate"]) == []
        bundle_path = demo.root / promotion["prov_bundle"]
        assert validate_prov_json(json.loads(bundle_path.read_text())) == []
        assert check_constraints(prov.model.ProvDocument.deserialize(bundle_path,
                                                                     format="json")) == []


def test_precise_sites_labelled_public_are_refused_and_nothing_is_published(demo: Demo) -> None:
    [refusal] = demo.result["refusals"]
    assert refusal["codes"] == ["sensitivity-downgrade"]
    assert refusal["exit_code"] == 1
    receipt = json.loads((demo.root / refusal["receipt"]).read_text())
    assert validate_data("refusal", receipt, file=refusal["receipt"]) == []
    assert receipt["run_id"] == refusal["run_id"]
    assert [p.name for p in (demo.root / "data/processed/khri_sites").iterdir()] == ["v1"]
    report = demo.lake.check(refusal["run_id"])
    assert not report.ok
    assert {f.code for f in report.findings} == {"sensitivity-downgrade"}


def test_the_public_khri_product_is_a_recorded_redaction_without_precise_points(
        demo: Demo) -> None:
    promotion = demo.promotion("khri_sites", "v1")
    [product] = promotion["files"]
    assert product.endswith("sites_generalised.geojson")
    public = (demo.root / product).read_text()
    with open(demo.root / "data/raw/khri_sites/sites.csv", encoding="utf-8") as handle:
        sites = list(csv.DictReader(handle))
    for site in sites:
        assert site["longitude"] not in public and site["site_number"] not in public
    features = json.loads(public)["features"]
    assert sum(f["properties"]["site_count"] for f in features) == len(sites)
    item = json.loads((demo.root / promotion["stac_item"]).read_text())
    assert item["properties"]["kfm:sensitivity"] == "public"
    run_dir = demo.lake.resolve_run(promotion["run_id"]).run_dir
    manifest = json.loads((demo.root / run_dir / "run_manifest.json").read_text())
    [redaction] = manifest["redactions"]
    assert redaction["profile"]["method"] == "snap-to-grid"
    assert redaction["sensitivity"] == "public"


def test_glo_v2_is_a_revision_built_by_a_three_run_chain(demo: Demo) -> None:
    v2 = demo.promotion("glo_land_patents", "v2")
    certificate = json.loads((demo.root / v2["certificate"]).read_text())
    text = json.dumps(certificate)
    assert len(demo.result["runs"]["glo_land_patents"]) == 6  # v1's chain and v2's
    for run_id in demo.result["runs"]["glo_land_patents"][3:]:
        assert run_id in text
    for run_id in demo.result["runs"]["glo_land_patents"][:3]:
        assert run_id not in text
    for rel in ("patents_batch1.csv", "patents_batch2.csv", "plss_townships.csv"):
        assert f"data/raw/glo_land_patents/{rel}" in text
    bundle = (demo.root / v2["prov_bundle"]).read_text()
    assert "prov:Revision" in bundle
    item = json.loads((demo.root / v2["stac_item"]).read_text())
    assert "predecessor-version" in {link["rel"] for link in item["links"]}
    parcels = json.loads((demo.root / v2["files"][0]).read_text())["features"]
    assert len(parcels) == 24 + 8
    assert all(f["properties"]["issue_date"][:2] == "18" for f in parcels)


# --- the other ways of capturing a run --------------------------------------------------------

def test_nhgis_was_run_by_a_shell_command_and_joined_every_tract(demo: Demo) -> None:
    [run_id] = demo.result["runs"]["nhgis_tracts"]
    shown = demo.lake.show(run_id)
    record = json.loads((demo.root / shown["run_dir"] / "run_record.json").read_text())
    assert record["command"][:2] == ["sh", "pipelines/nhgis_tracts/join.sh"]
    assert record["exit_code"] == 0
    assert shown["params"] == {"join_key": "GISJOIN", "year": 2020}
    [product] = demo.promotion("nhgis_tracts", "v1")["files"]
    features = json.loads((demo.root / product).read_text())["features"]
    assert len(features) == 12
    assert all(f["properties"]["total_population"] > 0 for f in features)
    assert "joined 12 tracts" in (demo.root / shown["run_dir"] / "logs/stderr.log").read_text()


def test_kansas_memory_wrote_its_own_receipts_and_was_recorded(demo: Demo) -> None:
    [run_id] = demo.result["runs"]["kansas_memory"]
    assert run_id.startswith("km-")
    row = demo.lake.resolve_run(run_id)
    assert row.status == "success" and row.overall_status == "pass"
    assert (demo.root / row.run_dir / "prov.json").is_file()
    [product] = demo.promotion("kansas_memory", "v1")["files"]
    with open(demo.root / product, encoding="utf-8") as handle:
        assert sum(int(r["items"]) for r in csv.DictReader(handle)) == 40


def test_every_run_ran_committed_code_from_the_demo_repository(demo: Demo) -> None:
    runs = demo.lake.runs()
    assert len(runs) == 6 + 2 + 1 + 1 + 1  # glo twice, khri, refused khri, nhgis, memory
    assert {r.git_commit for r in runs} == {demo.result["commit"]}
    assert all(r.status == "success" for r in runs)


def test_the_trace_of_the_product_reaches_raw(demo: Demo) -> None:
    assert demo.result["traced"] == "data/processed/glo_land_patents/v2/parcels.geojson"
    trace = demo.result["trace"]
    assert "patents_batch2.csv" in trace and "plss_townships.csv" in trace


# --- the example sources ------------------------------------------------------------------------

def test_example_data_is_deterministic() -> None:
    for capture in (*CAPTURES, *LATER_CAPTURES):
        assert capture.make() == capture.make(), capture.path


def test_examples_at_the_top_of_the_repository_are_the_packaged_ones() -> None:
    examples = REPO / "examples"
    assert examples.resolve() == (REPO / "kfm_prov/examples").resolve()
    for family in FAMILIES:
        files = pipeline_files(family)
        assert files, family
        assert "__init__.py" not in files


def test_prepare_refuses_what_is_not_a_demo_lake(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes/keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not a lake made by kfm-prov demo"):
        prepare(tmp_path / "notes")
    assert (tmp_path / "notes/keep.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        prepare(tmp_path / "file")
    root, replaced = prepare(tmp_path / "lake")
    assert not replaced and (root / MARKER).is_file()
    (root / "data").mkdir()
    monkeypatch.chdir(root / "data")
    with pytest.raises(InputError, match="directory you are in"):
        prepare(root)
    monkeypatch.chdir(tmp_path)
    assert prepare(root) == (root, True)
    assert [p.name for p in root.iterdir()] == [MARKER]


def test_a_non_demo_directory_is_refused_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["demo", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("kfm-prov: error: not empty, and not a lake made by")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


# --- the docs' examples come from this demo ------------------------------------------------------

def test_the_docs_examples_match_a_fresh_demo_lake(demo: Demo) -> None:
    """The PROV, STAC, certificate and Mermaid examples in docs/ are what the demo makes now,
    up to run ids, times and digests of receipts (``gen.mask``); `make docs` refreshes them."""
    from tests.test_docs import DOCS, load_gen

    gen = load_gen()
    fresh = gen.demo_examples(demo.root)
    in_docs: dict[str, str] = {}
    for name in gen.DEMO_FILES:
        in_docs.update(gen.regions_in((DOCS / name).read_text(encoding="utf-8")))
    assert "demo-lineage-mermaid" in fresh
    assert set(fresh) <= set(in_docs)
    for name, text in fresh.items():
        assert gen.mask(in_docs[name]) == gen.mask(text), f"{name}: run `make docs`"


def test_every_promotion_and_run_of_the_demo_is_signed_with_the_demo_key(demo: Demo) -> None:
    for promotion in demo.result["promotions"]:
        assert promotion["attestation"], promotion
        assert (demo.root / promotion["attestation"]).is_file()
    runs = [p for p in (demo.root / "data/work/runs").glob("*/*") if p.is_dir()]
    assert runs and all((p / "run.intoto.jsonl").is_file() for p in runs)
    audit = CliRunner().invoke(cli, ["--root", str(demo.root), "verify",
                                     "--require-signatures", "--json"])
    assert audit.exit_code == 0, audit.stdout
    assert json.loads(audit.stdout)["checked"]["attestations"] == 5
    latest = demo.result["promotions"][-1]
    product = next(f for f in latest["files"] if f.endswith("parcels.geojson"))
    checked = CliRunner().invoke(cli, ["verify-artifact", str(demo.root / product),
                                       "--attestation", str(demo.root / latest["attestation"]),
                                       "--key", demo.result["key"]["public_key"]])
    assert checked.exit_code == 0, checked.stderr
    assert "license CC0-1.0" in checked.stdout
