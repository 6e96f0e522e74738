"""The SQLite lineage index (``kfm_prov.store.index``): joins by digest, never by name;
idempotent, transactional writes; a disposable file of one schema version."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pytest

from kfm_prov.lake import Lake
from kfm_prov.store.index import (
    SCHEMA_VERSION,
    IndexedRun,
    IndexEntry,
    IoRow,
    LineageIndex,
    PromotionRow,
    RawRow,
    RedactionRow,
    RunRow,
    Snapshot,
)
from tests.multi import Multi

X, Y, Z = (f"sha256:{c * 64}" for c in "abc")


def run(run_id: str, started: str = "2026-01-01T00:00:00Z", family: str = "glo") -> RunRow:
    return RunRow(run_id, family, "pipelines/p", "success", "pass", started,
                  started.replace("00:00Z", "00:59Z"), "0" * 40, f"sha256:{'9' * 64}",
                  f"data/work/runs/{family}/{run_id}", f"sha256:{'8' * 64}", 0)


def io(run_id: str, direction: str, path: str, digest: str) -> IoRow:
    zone = "raw" if path.startswith("data/raw/") else "work"
    return IoRow(run_id, direction, path, digest, "primary" if direction == "in" else "product",
                 zone, 10, "text/csv")


def entry(run_id: str, ins: list[tuple[str, str]], outs: list[tuple[str, str]],
          started: str = "2026-01-01T00:00:00Z") -> IndexEntry:
    files = [io(run_id, "in", p, d) for p, d in ins] + [io(run_id, "out", p, d) for p, d in outs]
    return IndexEntry(run(run_id, started), files)


@pytest.fixture
def index(tmp_path: Path) -> LineageIndex:
    with LineageIndex(tmp_path / "lineage.sqlite") as opened:
        yield opened


def test_a_new_file_is_stale_until_rebuilt_and_another_schema_is_dropped(
        tmp_path: Path) -> None:
    path = tmp_path / "lineage.sqlite"
    with LineageIndex(path) as index:
        index.conn  # noqa: B018 - opening creates the tables
        assert index.stale  # new: the caller must rebuild it from the files
        index.put_run(entry("A", [], [("out.csv", X)]))
    with LineageIndex(path) as index:
        assert index.conn.execute("SELECT value FROM meta").fetchone() == (SCHEMA_VERSION,)
        assert not index.stale and index.run("A") is not None
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = 'old' WHERE key = 'schema_version'")
    conn.close()
    with LineageIndex(path) as index:
        assert index.runs() == []  # another version: dropped, not trusted
        assert index.stale


def test_runs_join_by_digest_whatever_the_paths(index: LineageIndex) -> None:
    index.put_run(entry("A", [("data/raw/glo/a.csv", X)], [("data/work/runs/glo/A/o.csv", Y)]))
    index.put_run(entry("B", [("data/work/copies/renamed.csv", Y)], [("b.csv", Z)],
                        started="2026-01-02T00:00:00Z"))
    index.put_run(entry("C", [("data/work/runs/glo/A/o.csv", Z.replace("c", "d"))], [],
                        started="2026-01-03T00:00:00Z"))  # A's path, other bytes
    assert index.upstream_runs("B") == ["A"]
    assert index.upstream_runs("C") == []  # same name as A's output is no link
    assert [(r.run_id, r.path) for r in index.producers([Y])] == [
        ("A", "data/work/runs/glo/A/o.csv")]
    assert [r.run_id for r in index.consumers([Y])] == ["B"]
    assert index.closure_runs(runs=["B"]) is not None
    assert sorted(index.closure_runs(runs=["B"]) or []) == ["A", "B"]
    assert sorted(index.closure_runs(runs=["A"], upstream=False) or []) == ["A", "B"]
    assert index.closure_runs(digests=[Z]) == ["B", "A"]  # from a file: its producer first
    assert [r.run_id for r in index.runs()] == ["A", "B", "C"]  # oldest first


def test_orphans_are_inputs_nothing_accounts_for(index: LineageIndex) -> None:
    index.put_run(entry("A", [("data/raw/glo/a.csv", X), ("data/work/x.csv", Y)], []))
    assert [r.path for r in index.orphans()] == ["data/raw/glo/a.csv", "data/work/x.csv"]
    index.put_raw([RawRow("data/raw/glo/a.csv", X, "CC0-1.0", "KGS", "public",
                          "data/raw/glo/manifest.yml")])
    assert [r.path for r in index.orphans()] == ["data/work/x.csv"]
    index.put_promotions([PromotionRow("glo", "v1", "P", "data/processed/glo/v1/x.csv", Y,
                                       "data/work/x.csv", "2026-01-01T00:00:00Z", None, None,
                                       None)])
    assert index.orphans() == []
    assert [p.version for p in index.promotions_by_digest([Y])] == ["v1"]


def test_writing_a_run_again_replaces_what_it_had(index: LineageIndex) -> None:
    first = entry("A", [("data/raw/glo/a.csv", X)], [("one.csv", Y), ("two.csv", Z)])
    index.put_run(IndexEntry(first.run, first.files,
                             [RedactionRow("A", "data/raw/glo/a.csv", "one.csv", "public",
                                           "{}")]))
    index.put_run(first)  # the same run, now without its redaction
    assert index.redactions(["A"]) == []
    index.put_run(entry("A", [("data/raw/glo/a.csv", X)], [("one.csv", Y)]))
    assert [f.path for f in index.files(["A"], "out")] == ["one.csv"]
    dump = index.dump()
    index.put_run(entry("A", [("data/raw/glo/a.csv", X)], [("one.csv", Y)]))
    assert index.dump() == dump  # idempotent
    index.delete_run("A")
    assert index.dump()["runs"] == [] and index.dump()["io"] == []


def test_a_failed_write_leaves_nothing_behind(index: LineageIndex) -> None:
    index.put_run(entry("A", [], [("one.csv", X)]))
    dump = index.dump()
    bad = IndexEntry(run("B"), [io("B", "sideways", "x.csv", Y)])  # violates a CHECK
    with pytest.raises(sqlite3.IntegrityError):
        index.put_run(bad)
    with pytest.raises(RuntimeError), index.transaction() as conn:
        LineageIndex.put_entries(conn, [entry("C", [], [("c.csv", Z)])])
        raise RuntimeError("the caller failed half way")
    assert index.dump() == dump


def test_lookups_of_many_keys_are_batched_under_sqlites_limit(index: LineageIndex) -> None:
    entries = [entry(f"R{i:05d}", [], [(f"o{i}.csv", f"sha256:{i:064x}")]) for i in range(2500)]
    index.replace_all(lambda _: (entries, [], []))
    wanted = [f"R{i:05d}" for i in range(2500)] + ["R00001"]  # a duplicate counts once
    assert len(index.runs_by_id(wanted)) == 2500
    assert len(index.files(wanted)) == 2500
    assert len(index.producers([f"sha256:{i:064x}" for i in range(0, 2500, 2)])) == 1250


def test_replacing_all_gives_what_writing_one_by_one_gave(tmp_path: Path) -> None:
    entries = [entry("A", [("data/raw/glo/a.csv", X)], [("o.csv", Y)]),
               entry("B", [("o.csv", Y)], [("p.csv", Z)], started="2026-01-02T00:00:00Z")]
    raw = [RawRow("data/raw/glo/a.csv", X, "CC0-1.0", "KGS", "public", "m.yml")]
    with LineageIndex(tmp_path / "one.sqlite") as one, \
            LineageIndex(tmp_path / "all.sqlite") as whole:
        for item in entries:
            one.put_run(item, raw)
        whole.put_run(entry("stale", [], [("gone.csv", X)]))
        seen: list[str] = []

        def read(indexed: Mapping[str, IndexedRun]) -> Snapshot:
            seen.extend(indexed)  # what is indexed now, for the caller to reconcile
            return list(reversed(entries)), raw, []

        whole.replace_all(read)
        assert seen == ["stale"]
        assert one.dump() == whole.dump()


@pytest.mark.multi_lake
def test_a_real_lake_index_is_what_a_rebuild_makes(lake: Lake, multi: Multi) -> None:
    with lake.index() as index:
        dump = index.dump()
        assert [p.version for p in index.promotions("fam2")] == ["v1", "v2"]
        assert {p.family for p in index.promotions_by_digest([multi.glo_digest])} == {"glo"}
        assert index.upstream_runs(multi.glo_b) == [multi.glo_a]
        assert index.orphans() == []
    (lake.root / "data/work/cache/kfm-prov/lineage.sqlite").unlink()
    lake.rebuild_index()
    with lake.index() as index:
        assert index.dump() == dump
