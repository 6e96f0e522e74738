"""Separate processes at once: runs of several families, rebuilds, racing promotions.

Every run must end up in the index, the index must equal a rebuild from the files
(``index rebuild`` changes nothing), and of two promotions racing for a version exactly
one takes it; the other takes the next version or fails with a clear error. Nothing is
lost from the shared STAC catalog, the family's collection or its DCAT file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kfm_prov.core.crashpoints import ENV
from kfm_prov.lake import Lake
from kfm_prov.store.certificate import certificates, verify_certificate
from kfm_prov.store.rebuild import rebuild_index
from tests.conftest import CODE_ARGS, GEOJSON, add_raw, make_chain

PY = sys.executable
FAMILIES = ("glo", "nhgis", "khri")
RUNS_PER_FAMILY = 4  # 12 concurrent `kfm-prov run` processes, plus 2 `index rebuild`


def spawn(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "KFM_PROV_ROOT")}
    return subprocess.Popen([PY, "-m", "kfm_prov.cli", "--root", str(root), *args], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(processes: list[subprocess.Popen[str]], timeout: float = 180) -> list[tuple]:
    results = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        results.append((process.returncode, out, err))
    return results


def forget_index(lake: Lake) -> None:
    """Remove the lake's index (the SQLite file, or its PostgreSQL schema)."""
    if lake.config.index.url is None:
        (lake.config.dir("cache") / "lineage.sqlite").unlink()
        return
    from kfm_prov.store.rebuild import backend_for

    index = backend_for(lake.config)
    index.needs_rebuild()
    index.drop()  # type: ignore[attr-defined]


def index_dump(lake: Lake) -> dict:
    with lake.index() as index:
        return index.dump()


def assert_index_matches_files(lake: Lake) -> dict:
    before = index_dump(lake)
    rebuild_index(lake.config)
    assert index_dump(lake) == before, "index rebuild changed the index"
    return before


def test_many_runs_of_several_families_at_once(lake: Lake) -> None:
    for family in FAMILIES:
        add_raw(lake, f"data/raw/{family}/source.csv", f"id\n{family}\n")
    go, ready = lake.root.parent / "go", lake.root.parent / "ready"
    ready.mkdir()
    script = ("import os, sys, time\n"
              "open(os.path.join(sys.argv[2], os.environ['KFM_RUN_ID']), 'w').close()\n"
              "while not os.path.exists(sys.argv[1]): time.sleep(0.01)\n"
              "open(os.path.join(os.environ['KFM_ARTIFACTS_DIR'], 'out.csv'), 'w')"
              ".write(os.environ['KFM_RUN_ID'])\n")
    # The index is new to every process: one of them creates it and rebuilds it from
    # the files while the others index their own runs.
    forget_index(lake)
    runs = [spawn(lake.root, "run", "-f", family, "-p", f"pipelines/{family}", *CODE_ARGS,
                  "-i", f"data/raw/{family}/source.csv", "-o", "out.csv:product",
                  "--json", "--", PY, "-c", script, str(go), str(ready))
            for family in FAMILIES for _ in range(RUNS_PER_FAMILY)]
    deadline = time.monotonic() + 120
    while len(list(ready.iterdir())) < len(runs):  # all started, none finished
        assert time.monotonic() < deadline and all(p.poll() is None for p in runs)
        time.sleep(0.02)
    rebuilds = [spawn(lake.root, "index", "rebuild") for _ in range(2)]
    go.touch()
    results = finish(runs + rebuilds)
    for code, _, err in results:
        assert code == 0, err
        assert "Traceback" not in err and "error" not in err
    recorded = {json.loads(out)["run_id"] for _, out, _ in results[:len(runs)]}
    assert len(recorded) == len(runs)
    indexed = {r.run_id: r for r in lake.runs()}
    assert set(indexed) == recorded
    assert {r.status for r in indexed.values()} == {"success"}
    assert {f: sum(r.family == f for r in indexed.values()) for f in FAMILIES} == {
        f: RUNS_PER_FAMILY for f in FAMILIES}
    assert not list((lake.config.dir("cache") / "live").glob("*.json"))
    dump = assert_index_matches_files(lake)
    assert len(dump["io"]) == 2 * len(runs)


def rerun(lake: Lake, family: str, n: int) -> str:
    add_raw(lake, f"data/raw/{family}/patents-{n}.csv", f"id,name\n{n},Smith\n",
            sensitivity="public")
    chain = make_chain(lake, family, raw_name=f"patents-{n}.csv",
                       product=GEOJSON.replace('"properties": {}', f'"properties": {{"n": {n}}}'))
    return chain.b.run_id


def assert_published(lake: Lake, expected: dict[str, list[str]]) -> None:
    """Every version has its certificate, item, collection link, DCAT entry; nothing lost."""
    catalog = json.loads((lake.root / "data/stac/catalog.json").read_text())
    children = {link["href"] for link in catalog["links"] if link["rel"] == "child"}
    for family, versions in expected.items():
        assert any(f"/{family}/collection.json" in href or href.startswith(f"./{family}/")
                   for href in children), (family, children)
        collection = json.loads((lake.root / f"data/stac/{family}/collection.json").read_text())
        items = {link["href"] for link in collection["links"] if link["rel"] == "item"}
        dcat = (lake.root / f"data/catalog/dcat/{family}.ttl").read_text()
        for version in versions:
            assert any(f"{family}-{version}" in href for href in items), (family, version)
            assert f"/{family}/{version}/" in dcat, (family, version)
            cert = f"data/prov/{family}/{version}.certificate.json"
            assert verify_certificate(lake.config, cert) == []
        on_disk = sorted(p.name for p in (lake.root / f"data/processed/{family}").iterdir())
        assert on_disk == sorted(versions)
    assert len(certificates(lake.config)) == sum(len(v) for v in expected.values())
    assert not list((lake.config.dir("cache") / "journal").glob("*"))
    staging = lake.config.dir("staging") / "kfm-prov"
    assert not staging.is_dir() or not list(staging.iterdir())
    assert_index_matches_files(lake)


@pytest.mark.parametrize("explicit", [False, True])
def test_two_promotions_of_one_family_race(lake: Lake, explicit: bool) -> None:
    first, second = rerun(lake, "glo", 1), rerun(lake, "glo", 2)
    extra = ("--version", "v1") if explicit else ()
    results = finish([spawn(lake.root, "promote", run_id, "--json", *extra)
                      for run_id in (first, second)])
    codes = sorted(code for code, _, _ in results)
    if explicit:  # exactly one gets v1, the other a clear one-line error
        assert codes == [0, 1]
        (err,) = [e for c, _, e in results if c == 1]
        assert err.startswith("kfm-prov: error: glo v1 exists already") and \
            err.count("\n") == 1
        assert_published(lake, {"glo": ["v1"]})
    else:  # exactly one v1, the other v2
        assert codes == [0, 0]
        versions = sorted(json.loads(out)["version"] for _, out, _ in results)
        assert versions == ["v1", "v2"]
        assert_published(lake, {"glo": ["v1", "v2"]})


def test_promotions_of_several_families_race_for_the_catalog(lake: Lake) -> None:
    runs = [(family, rerun(lake, family, n)) for n, family in enumerate(FAMILIES * 2)]
    results = finish([spawn(lake.root, "promote", run_id, "--json") for _, run_id in runs])
    for code, _, err in results:
        assert code == 0, err
    assert_published(lake, {family: ["v1", "v2"] for family in FAMILIES})


def test_concurrent_raw_adds_of_one_family(lake: Lake) -> None:
    for n in range(6):
        (lake.root / f"data/raw/glo/part-{n}.csv").parent.mkdir(parents=True, exist_ok=True)
        (lake.root / f"data/raw/glo/part-{n}.csv").write_text(f"id\n{n}\n")
    results = finish([spawn(lake.root, "raw", "add", f"data/raw/glo/part-{n}.csv", "--license",
                            "CC0-1.0", "--attribution", "x") for n in range(6)])
    assert [code for code, _, _ in results] == [0] * 6
    sums = (lake.root / "data/raw/glo/checksums.sha256").read_text().splitlines()
    assert len(sums) == 6
    assert_index_matches_files(lake)


# --- the same races, interleaved deterministically ----------------------------------------

def test_a_run_indexed_while_a_rebuild_reads_is_not_lost(lake: Lake,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from kfm_prov.store import rebuild as record

    first = rerun(lake, "glo", 1)
    listing = record.iter_run_dirs
    late: list[str] = []

    def scan_then_another_process_finishes_a_run(config):  # type: ignore[no-untyped-def]
        dirs = listing(config)
        if not late:
            late.append(rerun(lake, "glo", 2))  # indexed by "another process" mid-rebuild
        return dirs

    monkeypatch.setattr(record, "iter_run_dirs", scan_then_another_process_finishes_a_run)
    rebuild_index(lake.config)
    assert {first, *late} <= {r.run_id for r in lake.runs()}
    monkeypatch.undo()
    assert_index_matches_files(lake)


def test_a_run_removed_while_a_rebuild_reads_is_not_resurrected(
        lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    from kfm_prov.store import evidence as record  # the rebuild imports it when it reads

    keep, drop = rerun(lake, "glo", 1), rerun(lake, "glo", 2)
    original = record.index_entry  # called once a run's files were read
    dropped: list[str] = []

    def read_then_gc_removes(*args, **kwargs):  # type: ignore[no-untyped-def]
        entry = original(*args, **kwargs)
        if entry.run.run_id == drop and not dropped:
            dropped.append(drop)
            lake.gc(0, family="glo", apply=True, min_age_hours=0)  # gc in "another process"
        return entry

    monkeypatch.setattr(record, "index_entry", read_then_gc_removes)
    rebuild_index(lake.config)
    monkeypatch.undo()
    gone = {r for r in (keep, drop) if not (lake.root / "data/work/runs/glo" / r).exists()}
    assert drop in gone
    assert not gone & {r.run_id for r in lake.runs()}
    assert_index_matches_files(lake)
