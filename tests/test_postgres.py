"""The lineage index on the real PostgreSQL server: the same answers as SQLite, many
writers and many lakes in one database, migrate and status, failures that lose nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from kfm_prov.core.crashpoints import ENV
from kfm_prov.lake import Lake
from kfm_prov.store.index import PromotionRow
from kfm_prov.store.postgres import SCHEMA_PREFIX, SCHEMA_VERSION, PgLineageIndex
from kfm_prov.store.rebuild import backend_for, rebuild_index
from tests.conftest import CODE, CODE_ARGS, COMMIT, CliInvoker, add_raw, make_chain, one_error_line
from tests.multi import Multi

PY = sys.executable
URL_ENV = "KFM_PROV_INDEX_URL"


def cli(root: Path, *args: str, url: str | None, expect: int | None = 0,
        extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``kfm-prov`` in its own process, on the SQLite index (url None) or ``url``."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "KFM_PROV_ROOT", URL_ENV)}
    if url is not None:
        env[URL_ENV] = url
    env.update(extra_env or {})
    done = subprocess.run([PY, "-m", "kfm_prov.cli", "--root", str(root), *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)
    if expect is not None:
        assert done.returncode == expect, (args, done.stdout, done.stderr)
    return done


def outputs(root: Path, url: str | None, run_id: str, product: str) -> dict[str, str]:
    """What a user compares: ``check --json``, ``trace --format json``, ``runs --json``
    (byte for byte but for the moment ``check`` ran, its ``checked_at``)."""
    check = cli(root, "check", run_id, "--json", url=url, expect=None).stdout
    check = re.sub(r'^  "checked_at": "[^"]+",$', '  "checked_at": "-",', check, count=1,
                   flags=re.MULTILINE)
    return {"check": check,
            "trace": cli(root, "trace", product, "--format", "json", url=url,
                         expect=None).stdout,
            "runs": cli(root, "runs", "--json", url=url).stdout}


def schema_of(root: Path, url: str) -> str:
    old = os.environ.get(URL_ENV)
    os.environ[URL_ENV] = url
    try:
        return SCHEMA_PREFIX + Lake.open(root).config.lake_name()
    finally:
        if old is None:
            del os.environ[URL_ENV]
        else:
            os.environ[URL_ENV] = old


@pytest.mark.multi_lake
def test_sqlite_lake_answers_the_same_on_postgresql(lake: Lake, multi: Multi,
                                                    pg_database: str) -> None:
    """The shared lake, indexed run by run into SQLite, against PostgreSQL rebuilt from it."""
    sqlite = outputs(lake.root, None, multi.joined, multi.joined_product)
    assert json.loads(sqlite["runs"]) and json.loads(sqlite["trace"])["ok"] is True
    postgres = outputs(lake.root, pg_database, multi.joined, multi.joined_product)
    assert postgres == sqlite
    with psycopg.connect(pg_database) as conn:
        count = conn.execute(f'SELECT count(*) FROM "{schema_of(lake.root, pg_database)}".runs'
                             ).fetchone()
    assert count is not None and count[0] == len(json.loads(sqlite["runs"]))


def test_postgresql_lake_answers_the_same_on_sqlite(tmp_path: Path, pg_database: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A lake captured and promoted on PostgreSQL, against SQLite rebuilt from its files."""
    monkeypatch.setenv(URL_ENV, pg_database)
    lake = Lake.init(tmp_path / "lake")
    chain = make_chain(lake)
    lake.promote(chain.b.run_id)
    src = add_raw(lake, "data/raw/khri/a.csv", "a")
    with pytest.raises(RuntimeError), lake.capture("khri", "a", **CODE) as a:
        a.use(src)
        a.output("half.csv").write_text("half")
        raise RuntimeError("crashed after writing")
    with lake.capture("khri", "b", **CODE) as b:  # refused: its upstream failed
        b.use(a.artifacts / "half.csv")
        b.output("p.csv", role="product").write_text("p")
    assert not (lake.config.dir("cache") / "lineage.sqlite").exists()
    monkeypatch.delenv(URL_ENV)
    for run_id, product in ((chain.b.run_id, chain.product),
                            (b.run_id, f"{b.rel_dir}/artifacts/p.csv")):
        postgres = outputs(lake.root, pg_database, run_id, product)
        assert postgres == outputs(lake.root, None, run_id, product)
    assert json.loads(postgres["check"])["ok"] is False  # the refused one, on both
    with backend_for(Lake.open(lake.root).config) as sqlite:
        sqlite_dump = sqlite.dump()
    monkeypatch.setenv(URL_ENV, pg_database)
    with Lake.open(lake.root).index() as index:
        assert index.dump() == sqlite_dump


def test_sixteen_captures_from_separate_processes(tmp_path: Path, pg_database: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, pg_database)
    lake = Lake.init(tmp_path / "lake")
    chain = make_chain(lake)
    upstream = f"{chain.a.rel_dir}/artifacts/normalised.csv"
    go = tmp_path / "go"
    script = (
        "import os, sys, time\n"
        "from kfm_prov.lake import Lake\n"
        "lake = Lake.open(sys.argv[1])\n"
        "while not os.path.exists(sys.argv[2]): time.sleep(0.005)\n"
        "with lake.capture('glo', 'pipelines/glo/fan', commit=sys.argv[4]) as run:\n"
        "    run.use(sys.argv[3])\n"
        "    run.use('data/raw/glo/patents.csv', role='auxiliary')\n"
        "    run.output('part.csv').write_text('part ' + sys.argv[5])\n"
        "    run.gate('rows', 'pass')\n"
        "print(run.run_id)\n")
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "KFM_PROV_ROOT")}
    processes = [subprocess.Popen([PY, "-c", script, str(lake.root), str(go), upstream, COMMIT,
                                   str(n)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for n in range(16)]
    time.sleep(1.0)  # let them all import and wait at the gate
    go.touch()
    run_ids = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        run_ids.append(out.strip())
    assert len(set(run_ids)) == 16
    with Lake.open(lake.root).index() as index:
        for run_id in run_ids:
            assert index.upstream_runs(run_id) == [chain.a.run_id]
            outputs_ = index.files([run_id], "out")
            assert len(outputs_) == 1 and outputs_[0].path.endswith("/artifacts/part.csv")
        normalised = index.files([chain.a.run_id], "out")[0].digest
        assert {r.run_id for r in index.consumers([normalised])} == {chain.b.run_id, *run_ids}
        assert len(index.raw_by_path(["data/raw/glo/patents.csv"])) == 1
        postgres_dump = index.dump()
    # the index is what a rebuild from the files gives
    status = json.loads(cli(lake.root, "index", "status", "--json", url=pg_database).stdout)
    assert status["in_step"] is True and status["rows"]["runs"] == 18
    monkeypatch.delenv(URL_ENV)
    with Lake.open(lake.root).index() as sqlite:
        assert sqlite.dump() == postgres_dump


def test_lakes_in_one_database_stay_apart(tmp_path: Path, pg_database: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, pg_database)
    first, second = Lake.init(tmp_path / "one"), Lake.init(tmp_path / "two")
    a = make_chain(first)
    b = make_chain(second, "nhgis")
    one = json.loads(cli(first.root, "runs", "--json", url=pg_database).stdout)
    two = json.loads(cli(second.root, "runs", "--json", url=pg_database).stdout)
    assert {r["run_id"] for r in one} == {a.a.run_id, a.b.run_id}
    assert {r["run_id"] for r in two} == {b.a.run_id, b.b.run_id}
    assert first.config.lake_name() != second.config.lake_name()
    # a named lake is found by its name, whatever path it is seen at
    (first.root / "kfm-prov.toml").write_text('[index]\nlake = "shared_one"\n')
    moved = tmp_path / "moved"
    shutil.copytree(first.root, moved, symlinks=True)
    assert Lake.open(moved).config.lake_name() == "shared_one"
    cli(first.root, "index", "rebuild", url=pg_database)
    seen = json.loads(cli(moved, "runs", "--json", url=pg_database).stdout)
    assert {r["run_id"] for r in seen} == {a.a.run_id, a.b.run_id}
    with psycopg.connect(pg_database) as conn:
        schemas = {r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'kfm\\_lake\\_%'")}
    assert {SCHEMA_PREFIX + "shared_one", SCHEMA_PREFIX + second.config.lake_name()} <= schemas


def test_migrate_and_status(lake: Lake, pg_database: str, run_cli: CliInvoker) -> None:
    chain = make_chain(lake)
    lake.promote(chain.b.run_id)
    before = json.loads(run_cli("index", "status", "--json").stdout)
    assert before["backend"] == "sqlite" and before["in_step"] is True
    url = pg_database.replace("postgresql://", "postgresql://root:hunter2-secret@", 1) \
        if "@" not in pg_database else pg_database
    moved = json.loads(cli(lake.root, "index", "migrate", "--to", url, "--json",
                           url=None).stdout)
    assert moved["to"]["rows"] == before["rows"] and "hunter2" not in json.dumps(moved)
    after = json.loads(cli(lake.root, "index", "status", "--json", url=pg_database).stdout)
    assert after["backend"] == "postgresql" and after["in_step"] is True
    assert after["rows"] == before["rows"] and after["schema_version"] == str(SCHEMA_VERSION)
    # a run the index lost is named, and rebuild brings it back
    with psycopg.connect(pg_database) as conn:
        conn.execute(f'DELETE FROM "{schema_of(lake.root, pg_database)}".runs WHERE run_id = %s',
                     (chain.a.run_id,))
    lost = cli(lake.root, "index", "status", "--json", url=pg_database, expect=1)
    assert json.loads(lost.stdout)["not_indexed"] == [chain.a.rel_dir]
    cli(lake.root, "index", "rebuild", url=pg_database)
    cli(lake.root, "index", "status", url=pg_database)


def test_a_newer_index_is_refused(lake: Lake, pg_database: str) -> None:
    make_chain(lake)
    cli(lake.root, "runs", url=pg_database)
    schema = schema_of(lake.root, pg_database)
    with psycopg.connect(pg_database) as conn:
        conn.execute(f"UPDATE \"{schema}\".meta SET value = '99' WHERE key = 'schema_version'")
    done = cli(lake.root, "runs", url=pg_database, expect=1)
    assert "schema version 99, newer than this kfm-prov understands" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_unreachable_index_loses_no_run_and_shows_no_password(lake: Lake,
                                                               pg_database: str) -> None:
    add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n")
    bad = "postgresql://kfm:hunter2-secret@127.0.0.1:1/lineage?sslmode=disable"
    done = cli(lake.root, "run", "-f", "glo", "-p", "pipelines/glo/copy", *CODE_ARGS,
               "-i", "data/raw/glo/patents.csv", "-o", "out.csv:product", "--",
               PY, "-c", "import os; open(os.environ['KFM_ARTIFACTS_DIR'] + '/out.csv', 'w')"
               ".write('x')", url=bad, expect=1)
    assert "hunter2" not in done.stderr + done.stdout and "kfm:" not in done.stderr
    assert "postgresql://127.0.0.1:1/lineage" in done.stderr
    records = list(lake.config.dir("runs").glob("glo/*/run_record.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["status"] == "success"
    assert "hunter2" not in "".join(p.read_text(errors="replace")
                                    for p in records[0].parent.rglob("*") if p.is_file())
    # the next command on a reachable index picks the run up
    runs = json.loads(cli(lake.root, "runs", "--json", url=pg_database).stdout)
    assert [r["run_id"] for r in runs] == [records[0].parent.name]


def test_index_settings_are_checked(lake: Lake, run_cli: CliInvoker,
                                    monkeypatch: pytest.MonkeyPatch, pg_database: str) -> None:
    toml = lake.root / "kfm-prov.toml"
    toml.write_text('[index]\nurl = "mysql://u:pw@h/db"\n')
    line = one_error_line(run_cli("runs", expect=2))
    assert "index.url" in line and "pw" not in line
    toml.write_text('[index]\nlake = "Bad-Name"\n')
    assert "index.lake" in one_error_line(run_cli("runs", expect=2))
    toml.write_text(f'[index]\nurl = "{pg_database}"\npassword_file = "nowhere/pw"\n')
    line = one_error_line(run_cli("runs", expect=2))
    assert "password" in line and "nowhere/pw" in line
    (lake.root / "nowhere").mkdir()
    (lake.root / "nowhere/pw").write_text("anything\n")  # trust auth: any password passes
    run_cli("runs")
    toml.write_text("")
    monkeypatch.setenv(URL_ENV, "not a url")
    assert URL_ENV in one_error_line(run_cli("runs", expect=2))


def _index(lake: Lake, url: str) -> PgLineageIndex:
    return PgLineageIndex(url, lake.config.lake_name())


def test_a_lost_connection_is_retried(lake: Lake, pg_database: str) -> None:
    chain = make_chain(lake)
    index = _index(lake, pg_database)
    index.needs_rebuild()
    rebuild_index(lake.config, index)
    assert index.run(chain.a.run_id) is not None  # the pool holds a connection now
    with psycopg.connect(pg_database, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'kfm-prov'"
            " AND pid != pg_backend_pid()").fetchone()
    assert killed is not None and killed[0] >= 1
    assert index.upstream_runs(chain.b.run_id) == [chain.a.run_id]  # a read, retried
    with psycopg.connect(pg_database, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND application_name = 'kfm-prov'"
                      " AND pid != pg_backend_pid()")
    index.delete_run(chain.b.run_id)  # a write, retried
    assert index.run(chain.b.run_id) is None and index.run(chain.a.run_id) is not None


def test_promotions_of_one_family_queue_and_others_do_not(lake: Lake,
                                                          pg_database: str) -> None:
    index = _index(lake, pg_database)
    index.needs_rebuild()

    def rows(family: str) -> list[PromotionRow]:
        return [PromotionRow(family, "v1", "R1", f"data/processed/{family}/v1/p.csv",
                             "sha256:" + "a" * 64, "data/work/p.csv", "2026-01-01T00:00:00Z",
                             None, None, None)]

    holder = psycopg.connect(pg_database)  # another promoter of glo, mid-transaction
    holder.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                   (index.family_lock_key("glo"),))
    waiting = threading.Thread(target=index.put_promotions, args=(rows("glo"),))
    waiting.start()
    with psycopg.connect(pg_database, autocommit=True) as watcher:
        for _ in range(600):  # until the glo writer is seen waiting on the advisory lock
            found = watcher.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                    " AND NOT granted").fetchone()
            if found and found[0]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the second glo promotion never waited for the first")
    index.put_promotions(rows("nhgis"))  # another family goes on meanwhile
    assert [p.family for p in index.promotions()] == ["nhgis"]
    assert waiting.is_alive()
    holder.commit()
    holder.close()
    waiting.join(timeout=120)
    assert not waiting.is_alive()
    assert [p.family for p in index.promotions()] == ["glo", "nhgis"]


def test_a_forked_child_does_not_share_the_parents_connections(lake: Lake,
                                                                pg_database: str) -> None:
    chain = make_chain(lake)
    index = _index(lake, pg_database)
    index.needs_rebuild()
    rebuild_index(lake.config, index)
    assert index.run(chain.a.run_id) is not None  # this process's pool is open
    pid = os.fork()
    if pid == 0:  # the child: its own pool, and its exit ends none of the parent's sessions
        ok = all(index.run(chain.a.run_id) is not None for _ in range(50))
        os._exit(0 if ok else 3)
    for _ in range(1200):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on its parent's connection")
    assert os.waitstatus_to_exitcode(status) == 0
    assert all(index.run(chain.b.run_id) is not None for _ in range(50))
