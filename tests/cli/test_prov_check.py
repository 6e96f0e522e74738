"""``kfm-prov prov-check``: any PROV document, ours or a provider's, against PROV-CONSTRAINTS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kfm_prov.cli.main import cli
from kfm_prov.lake import Lake
from tests.conftest import Chain, one_error_line, write

DATA = Path(__file__).parent.parent / "data" / "prov"


def check(*args: str, expect: int):
    result = CliRunner().invoke(cli, ["prov-check", *args], catch_exceptions=False)
    assert result.exit_code == expect, (result.stdout, result.stderr)
    return result


def test_a_valid_document_needs_no_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not a lake
    monkeypatch.delenv("KFM_PROV_ROOT", raising=False)
    result = check(str(DATA / "clean_with_bundles.json"), expect=0)
    assert "valid PROV" in result.stdout and result.stderr == ""
    data = json.loads(check(str(DATA / "clean_with_bundles.json"), "--json", expect=0).stdout)
    assert data["ok"] is True and data["violations"] == [] and data["bundles"] >= 1


@pytest.mark.parametrize(("name", "constraint", "records"), [
    ("use_before_start.json", "C33", {"ex:a1", "ex:u1"}),
    ("start_after_end.json", "C30", {"ex:a1"}),
    ("derived_before_source.json", "C42", {"ex:result", "ex:source"}),
])
def test_each_violation_is_named_by_number_with_its_records(name: str, constraint: str,
                                                            records: set[str]) -> None:
    result = check(str(DATA / name), expect=1)
    assert result.stdout.startswith(constraint)
    assert f"is not valid PROV: 1 violation(s) ({constraint})" in one_error_line(result)
    data = json.loads(check(str(DATA / name), "--json", expect=1).stdout)
    assert data["ok"] is False
    assert [v["constraint"] for v in data["violations"]] == [constraint]
    assert records <= set(data["violations"][0]["records"])


def test_prov_json_is_also_checked_against_its_schema(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", json.dumps({
        "prefix": {"ex": "http://example.org/"},
        "entity": {"ex:e": {}}, "used": {"_:u": {"prov:entity": "ex:e"}}}))
    data = json.loads(check(str(path), "--json", expect=1).stdout)
    assert "schema" in {v["constraint"] for v in data["violations"]}


@pytest.mark.parametrize(("name", "content"), [
    ("empty.json", ""), ("broken.json", "{"), ("dupe.json", '{"prefix": {}, "prefix": {}}'),
    ("what.bin", "\x00\x01 not prov"),
])
def test_an_unreadable_document_is_exit_2(tmp_path: Path, name: str, content: str) -> None:
    path = write(tmp_path / name, content)
    assert str(path) in one_error_line(check(str(path), expect=2))


def test_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    one_error_line(check(str(tmp_path / "nope.json"), expect=2))


def test_every_document_kfm_prov_writes_passes(run_cli, lake: Lake, chain: Chain) -> None:
    promoted = lake.promote(chain.b.run_id)
    written = [f"{chain.a.rel_dir}/prov.json", f"{chain.b.rel_dir}/prov.json",
               promoted.prov_bundle]
    for rel in written:
        assert run_cli("prov-check", rel).stdout.startswith(f"{rel}: valid PROV")
    closure = lake.root.parent / "closure.json"
    closure.write_text(run_cli("trace", promoted.stac_item, "--format", "prov-json").stdout)
    assert "valid PROV" in run_cli("prov-check", str(closure)).stdout
    for fmt, suffix in (("provx", ".provx"), ("provn", ".provn"), ("jsonld", ".jsonld"),
                        ("trig", ".trig"), ("turtle", ".ttl"), ("prov-json", ".json")):
        target = lake.root.parent / f"lake{suffix}"
        run_cli("export", "--format", fmt, "-o", str(target))
        assert "valid PROV" in run_cli("prov-check", str(target)).stdout, fmt


def test_prov_xml_bundle_entity_declarations_are_not_bundle_content(tmp_path: Path) -> None:
    """prov writes a prov:Bundle entity as <prov:bundle prov:id=...> holding attributes; it
    is a declaration (PROV-XML's own example 27), not ProvToolbox's bundle content."""
    from prov.model import PROV, ProvDocument

    doc = ProvDocument()
    ex = doc.add_namespace("ex", "http://example.org/")
    doc.entity(ex["b1"], {PROV["type"]: PROV["Bundle"], ex["version"]: "1"})
    doc.bundle(ex["b1"]).entity(ex["report"])
    path = tmp_path / "bundled.provx"
    path.write_text(doc.serialize(format="xml"))
    assert "<prov:bundle " in path.read_text()
    data = json.loads(check(str(path), "--json", expect=0).stdout)
    assert (data["records"], data["bundles"]) == (2, 1)
