"""``kfm-prov site``: the audit site of the demo lake, read as files (the browser tests are
in ``test_site_browser.py``). The demo lake is built once per session (``demo_lake``);
tests that break a lake work on a copy."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from click.testing import CliRunner

from kfm_prov.cli.main import cli
from kfm_prov.lake import Lake
from kfm_prov.site import render_site
from kfm_prov.site.build import MARKER
from kfm_prov.site.model import collect
from tests.conftest import one_error_line, snapshot


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append(value)


def links_of(page: Path) -> list[str]:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.links


def site_cli(root: Path, *args: str, expect: int = 0):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, ["--root", str(root), "site", *args],
                                catch_exceptions=False)
    assert result.exit_code == expect, (result.stdout, result.stderr)
    return result


@pytest.fixture
def lake_copy(demo_lake: Path, tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    shutil.copytree(demo_lake, root, symlinks=True)
    shutil.rmtree(root / "site")
    return root


def certificates(root: Path) -> dict[tuple[str, str], dict]:
    return {(p.parent.name, p.name.removesuffix(".certificate.json")): json.loads(p.read_text())
            for p in sorted((root / "data/prov").glob("*/*.certificate.json"))}


# --- what the demo wrote ---------------------------------------------------------------------

def test_the_demo_ends_with_the_site_and_every_family_is_in_the_catalog(demo_lake: Path) -> None:
    site = demo_lake / "site"
    assert (site / MARKER).is_file()
    catalog = (site / "index.html").read_text(encoding="utf-8")
    families = sorted(r.family for r in Lake.open(demo_lake).runs())
    assert families
    for family in set(families):
        assert f'href="families/{family}/index.html"' in catalog, family
    assert catalog.count("<tr>") == len(set(families)) + 1  # header row + one per family


def test_every_version_page_lists_every_check_the_merkle_root_and_the_products(
        demo_lake: Path) -> None:
    site = demo_lake / "site"
    certs = certificates(demo_lake)
    assert len(certs) == 5
    for (family, version), cert in certs.items():
        page = (site / "families" / family / version / "index.html").read_text("utf-8")
        checks = re.findall(r'<li class="check" data-check="([^"]+)">', page)
        assert checks == [c["id"] for c in cert["checks"]]
        assert cert["merkle"]["root"] in page
        assert "✓ holds" in page
        for product in cert["products"]:
            assert product["digest"] in page
            copy = site / "files" / product["path"]
            assert copy.read_bytes() == (demo_lake / product["path"]).read_bytes()
            assert f'href="../../../files/{product["path"]}"' in page
        for entity in cert["closure"]["entities"]:
            if entity["kind"] == "raw":
                assert entity["path"] in page and entity["license"] in page
        assert "attestation present" in page  # the demo signs every promotion


def test_every_link_stays_in_the_site_and_nothing_comes_from_work(demo_lake: Path) -> None:
    site = demo_lake / "site"
    work = "data/work"
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        for link in links_of(page):
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc, (page, link)
            if not parts.path:
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.is_file(), (page.relative_to(site), link)
            assert site.resolve() in target.parents
            assert f"files/{work}" not in target.as_posix()
    assert not (site / "files" / work).exists()
    for path in site.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert b"http://" not in text or path.suffix in (".json", ".ttl", ".js", ".md") \
                or path.name.startswith("LICENSE"), path
    run_page = next((site / "runs").glob("*.html")).read_text("utf-8")
    assert "Logs are not part of this site" in run_page
    assert "Internal audit site" not in run_page


def test_run_pages_describe_work_files_without_linking_them(demo_lake: Path) -> None:
    lake = Lake.open(demo_lake)
    for row in lake.runs():
        page = demo_lake / "site" / "runs" / f"{row.run_id}.html"
        text = page.read_text("utf-8")
        shown = lake.show(row.run_id)
        assert row.pipeline_id in text and row.git_commit in text
        for entry in shown["outputs"]:
            assert entry["path"] in text and entry["role"] in text
        assert not any("data/work" in link for link in links_of(page))


def test_the_search_index_finds_a_product_by_digest_prefix(demo_lake: Path) -> None:
    text = (demo_lake / "site" / "search-index.js").read_text("utf-8")
    entries = json.loads(text.removeprefix("window.KFM_SEARCH=").rstrip().rstrip(";"))
    cert = certificates(demo_lake)[("glo_land_patents", "v2")]
    digest = cert["products"][0]["digest"]
    hits = [e for e in entries if e[0] == "product"
            and any(k.startswith(digest[:15]) for k in e[3])]
    assert [h[2] for h in hits] == ["families/glo_land_patents/v2/index.html#product-"
                                    "parcels.geojson"]
    assert any(e[0] == "run" and cert["run_id"].lower() in e[3] for e in entries)


def test_the_graph_data_marks_the_proved_path(demo_lake: Path) -> None:
    model = collect(Lake.open(demo_lake).config)
    version = next(v for v in model.versions if v.key == "glo_land_patents/v2")
    graph = version.graph
    cert = certificates(demo_lake)[("glo_land_patents", "v2")]
    trace = Lake.open(demo_lake).trace("glo_land_patents-v2")
    assert {k for k, n in graph["nodes"].items() if n["side"] != "down"} == set(trace.nodes)
    proved_runs = {k[4:] for k, n in graph["nodes"].items() if n["kind"] == "run" and n["proved"]}
    assert proved_runs == {r["run_id"] for r in cert["closure"]["runs"]}
    raw = [n for n in graph["nodes"].values() if n["zone"] == "raw"]
    assert raw and all(n["raw"][0]["license"] == "CC0-1.0" for n in raw)
    assert all(e["proved"] for e in graph["edges"])  # the demo's v2 closure is all proved


def test_sensitive_sources_and_redactions_are_badged(demo_lake: Path) -> None:
    model = collect(Lake.open(demo_lake).config)
    version = next(v for v in model.versions if v.family == "khri_sites")
    nodes = version.graph["nodes"].values()
    assert any(n.get("sensitivity") == "sensitive-location" for n in nodes)
    assert any(n.get("redacted") for n in nodes)
    page = (demo_lake / "site/families/khri_sites/v1/index.html").read_text("utf-8")
    assert "⚠ sensitive-location" in page and "✂ redacted" in page


# --- building --------------------------------------------------------------------------------

def test_the_same_lake_gives_the_same_bytes(lake_copy: Path, tmp_path: Path) -> None:
    site_cli(lake_copy, str(tmp_path / "a"))
    site_cli(lake_copy, str(tmp_path / "b"))
    first = snapshot(tmp_path / "a")
    assert first == snapshot(tmp_path / "b")
    site_cli(lake_copy, str(tmp_path / "a"))  # replacing itself
    assert snapshot(tmp_path / "a") == first


def test_a_rebuild_replaces_the_site_whole_and_a_failure_leaves_it(lake_copy: Path,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "site"
    site_cli(lake_copy, str(out))
    (out / "stale.html").write_text("left from before")
    site_cli(lake_copy, str(out), "--family", "khri_sites")
    assert not (out / "stale.html").exists()
    assert not (out / "families" / "glo_land_patents").exists()
    before = snapshot(out)
    result = site_cli(lake_copy, str(out), "--family", "nope", expect=2)
    assert "no family 'nope'" in one_error_line(result)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake", "site"]  # no temp left


def test_refuses_a_folder_it_did_not_make_and_the_lake_itself(lake_copy: Path,
                                                               tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("do not delete")
    result = site_cli(lake_copy, str(mine), expect=2)
    assert "not a site made by kfm-prov site" in one_error_line(result)
    assert (mine / "thesis.tex").read_text() == "do not delete"
    before = snapshot(lake_copy / "data")
    for inside in ("data/processed/site", "data/work/site", "data/stac"):
        result = site_cli(lake_copy, str(lake_copy / inside), expect=2)
        assert "inside the lake's" in one_error_line(result)
    result = site_cli(lake_copy, str(lake_copy), expect=2)
    one_error_line(result)
    assert snapshot(lake_copy / "data") == before


def test_a_changed_product_is_flagged_and_never_offered(lake_copy: Path, tmp_path: Path) -> None:
    product = lake_copy / "data/processed/glo_land_patents/v2/parcels.geojson"
    product.chmod(0o644)
    product.write_bytes(product.read_bytes().replace(b"Feature", b"Featur3", 1))
    out = tmp_path / "site"
    site_cli(lake_copy, str(out))
    page = (out / "families/glo_land_patents/v2/index.html").read_text("utf-8")
    assert "✗ does not hold" in page and "file-modified" in page
    assert "not offered" in page
    assert not (out / "files/data/processed/glo_land_patents/v2/parcels.geojson").exists()
    assert (out / "files/data/processed/glo_land_patents/v1/parcels.geojson").is_file()
    catalog = (out / "index.html").read_text("utf-8")
    assert "certificate does not hold" in catalog


def test_logs_only_with_include_logs_and_the_site_says_so(lake_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "internal"
    site_cli(lake_copy, str(out), "--include-logs")
    run = Lake.open(lake_copy).runs("nhgis_tracts")[0]
    page = (out / "runs" / f"{run.run_id}.html").read_text("utf-8")
    log = (lake_copy / run.run_dir / "logs/run.log").read_text("utf-8").splitlines()
    assert "Internal audit site" in page
    assert "started: nhgis_tracts" in log[0] and log[0].split("INFO")[1].strip() in page
    assert "Internal audit site" in (out / "index.html").read_text("utf-8")


def test_signature_present_with_its_key_id(lake_copy: Path, tmp_path: Path) -> None:
    envelope = {"payloadType": "application/vnd.in-toto+json", "payload": "e30=",
                "signatures": [{"keyid": "SHA256:steward-key-1", "sig": "AAAA"}]}
    attestation = lake_copy / "data/prov/nhgis_tracts/v1.intoto.jsonl"
    attestation.write_text(json.dumps(envelope) + "\n")
    (lake_copy / "data/prov/glo_land_patents/v1.intoto.jsonl").unlink()  # the demo signed it
    out = tmp_path / "site"
    site_cli(lake_copy, str(out))
    page = (out / "families/nhgis_tracts/v1/index.html").read_text("utf-8")
    assert "attestation present" in page and "SHA256:steward-key-1" in page
    assert (out / "files/data/prov/nhgis_tracts/v1.intoto.jsonl").read_bytes() == \
        attestation.read_bytes()
    assert "not signed" in (out / "families/glo_land_patents/v1/index.html").read_text("utf-8")


def test_family_titles_from_the_config_when_present(lake_copy: Path) -> None:
    toml = lake_copy / "kfm-prov.toml"
    text = toml.read_text(encoding="utf-8")
    old_title = 'title = "GLO land patents located on the PLSS (synthetic)"'
    assert old_title in text and 'title = "Kansas Memory items (synthetic)"\n' in text
    toml.write_text(text.replace(old_title, 'title = "GLO land patents <1860>"').replace(
        'title = "Kansas Memory items (synthetic)"\n', ""), encoding="utf-8")
    site = render_site(Lake.open(lake_copy).config)  # through the config's own loader
    catalog = site.pages["index.html"].decode()
    assert "GLO land patents &lt;1860&gt;" in catalog
    assert "Federal land patents in Kansas" in catalog
    assert ">kansas_memory</a>" in catalog  # no metadata: the family's name


def test_hostile_text_from_the_lake_is_escaped(multi_built: tuple[Path, object],
                                                tmp_path: Path) -> None:
    root = multi_built[0]
    site = render_site(Lake.open(root).config)
    pages = {k: v.decode() for k, v in site.pages.items() if k.endswith(".html")}
    version = pages["families/glo/v1/index.html"]
    assert "Kansas &quot;Land Office&quot; &lt;GLO&gt; #1 &amp; co" in version
    assert all("<GLO>" not in text for text in pages.values())
    # the cross-family join: glo v1's lineage shows what was derived from it
    assert site.model is not None
    graph = next(v.graph for v in site.model.versions if v.key == "glo/v1")
    assert any(n["side"] == "down" for n in graph["nodes"].values())


def test_json_names_the_page_to_open(lake_copy: Path, tmp_path: Path) -> None:
    result = site_cli(lake_copy, str(tmp_path / "s"), "--json", "--family", "nhgis_tracts")
    data = json.loads(result.stdout)
    assert Path(data["index"]) == tmp_path / "s" / "index.html"
    assert data["families"] == ["nhgis_tracts"] and data["versions"] == 1
    assert Path(data["index"]).is_file()


def test_run_pages_made_in_worker_processes_are_the_same_bytes(
        demo_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kfm_prov.site import model

    config = Lake.open(demo_lake).config
    alone = render_site(config).pages
    monkeypatch.setattr(model, "PARALLEL_FROM", 1)  # a pool even for the demo's 11 runs
    monkeypatch.setattr(model, "CHUNK", 2)
    assert render_site(config).pages == alone


def test_a_published_record_swapped_for_a_symlink_is_never_copied(lake_copy: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "site"
    site_cli(lake_copy, str(out))
    before = snapshot(out)
    secret = next((lake_copy / "data/work/runs").rglob("run.log"))
    dcat = lake_copy / "data/catalog/dcat/glo_land_patents.ttl"
    dcat.unlink()
    dcat.symlink_to(secret)
    result = site_cli(lake_copy, str(out), expect=1)
    assert "reached through a symlink" in one_error_line(result)
    assert snapshot(out) == before  # the previous site stays, whole


def test_a_log_swapped_for_a_symlink_is_not_excerpted(lake_copy: Path, tmp_path: Path) -> None:
    run = Lake.open(lake_copy).runs("nhgis_tracts")[0]
    secret = lake_copy / "secret.txt"
    secret.write_text("AWS_SECRET_ACCESS_KEY=do-not-show\n")
    log = lake_copy / run.run_dir / "logs/run.log"
    log.unlink()
    log.symlink_to(secret)
    out = tmp_path / "internal"
    site_cli(lake_copy, str(out), "--include-logs")
    page = (out / "runs" / f"{run.run_id}.html").read_text("utf-8")
    assert "do-not-show" not in page and "is a symlink: not shown" in page
