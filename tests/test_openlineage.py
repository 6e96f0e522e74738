"""OpenLineage in and out, for real: a `kfm-prov serve` subprocess on a free port, the real
openlineage-python client, hostile requests, schemathesis, and exported events read back
through the client's own classes."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from kfm_prov.lake import Lake
from tests.conftest import COMMIT, PIPELINES, CliInvoker, add_raw, snapshot, write

TOKEN = "t0ken-for-tests-" + "x" * 16
HERE = Path(__file__).parent
KFM = [str(Path(sys.executable).parent / "kfm-prov")]
PRODUCER = "https://example.org/test-producer"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, root: Path, port: int, process: subprocess.Popen[bytes],
                 log: Path) -> None:
        self.root = root
        self.url = f"http://127.0.0.1:{port}"
        self.process = process
        self.log = log

    def stop(self) -> str:
        """Stop the service; its log (stderr), which a pipe would have let fill up."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def post(self, path: str, body: Any = None, *, data: bytes | None = None,
             token: str | None = TOKEN, headers: dict[str, str] | None = None,
             ) -> requests.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if data is None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        return requests.post(self.url + path, data=data, headers=sent, timeout=60)

    def get(self, path: str, token: str | None = TOKEN, **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(self.url + path, params=params, headers=headers, timeout=60)

    def alive(self) -> bool:
        return self.process.poll() is None and self.get("/api/v1/health").status_code == 200


def start_server(root: Path, *, crash_at: str | None = None) -> Server:
    port = free_port()
    env = {**os.environ, "KFM_PROV_SERVE_TOKENS": TOKEN}
    if crash_at:
        env["KFM_PROV_CRASH_AT"] = crash_at
    log = root.parent / f"serve-{port}.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen([*KFM, "--root", str(root), "serve", "--port", str(port)],
                                   env=env, stderr=stderr)
    server = Server(root, port, process, log)
    for _ in range(300):
        try:
            if requests.get(server.url + "/api/v1/health", timeout=1).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {log.read_text()}")
        time.sleep(0.1)
    process.kill()
    raise AssertionError("serve did not come up")


@pytest.fixture
def server(lake: Lake) -> Iterator[Server]:
    config = lake.root / "kfm-prov.toml"  # where the gate finds the jobs' commit (issue 12 §4)
    mapping = f'{{"https://github.com/example/pipelines" = "{PIPELINES}"}}'
    config.write_text(config.read_text().replace("checkouts = {}", f"checkouts = {mapping}"))
    running = start_server(lake.root)
    yield running
    err = running.stop()
    assert TOKEN not in err, "a token reached the log"
    assert "Traceback" not in err, err[err.find("Traceback"):][-3000:]


def event(run_id: str, kind: str = "START", *, inputs: list[dict[str, Any]] | None = None,
          outputs: list[dict[str, Any]] | None = None, time_: str = "2026-01-01T00:00:00Z",
          job: str = "normalise", run_facets: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"eventType": kind, "eventTime": time_, "producer": PRODUCER,
            "schemaURL": SCHEMA_URL, "run": {"runId": run_id, "facets": run_facets or {}},
            "job": {"namespace": "glo", "name": job, "facets": {}},
            "inputs": inputs or [], "outputs": outputs or []}


def client_env(server: Server) -> dict[str, str]:
    """Only what a producer is told: the URL and an API key (plus what Python needs)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, "OPENLINEAGE_URL": server.url, "OPENLINEAGE_API_KEY": TOKEN,
            "PYTHONPATH": str(HERE.parent)}


def journal_files(root: Path) -> list[str]:
    journal = root / "data/work/openlineage/journal"
    return sorted(p.name for p in journal.rglob("event-*.json")) if journal.is_dir() else []


# --- the real client --------------------------------------------------------------------------

def test_real_client_run_is_recorded_traced_checked_and_promoted(
        lake: Lake, server: Server, run_cli: CliInvoker) -> None:
    raw = add_raw(lake, "data/raw/glo/patents.csv", "id,name\n1,smith\n")
    target = lake.root / "data/work/glo/normalised.csv"
    run_id = str(uuid.uuid4())
    subprocess.run([sys.executable, str(HERE / "ol_client_job.py"), run_id,
                    str(lake.root / raw), str(target), COMMIT, "complete"],
                   env=client_env(server), check=True, timeout=120)

    runs = server.get("/api/v1/runs").json()
    assert [r["run_id"] for r in runs] == [run_id]
    assert runs[0]["status"] == "success" and runs[0]["family"] == "glo-airflow"
    assert runs[0]["git_commit"] == COMMIT
    shown = json.loads(run_cli("show", run_id, "--json").stdout)
    product = shown["outputs"][0]
    assert product["path"] == f"{shown['run_dir']}/artifacts/normalised.csv"
    assert shown["gates"] and all(g["status"] == "pass" for g in shown["gates"])

    lineage = server.get("/api/v1/lineage", artifact=product["path"]).json()
    assert lineage["schema_version"] == "kfm.lineage.v1"
    raw_paths = [c["path"] for n in lineage["nodes"] if n["kind"] == "file"
                 for c in n["copies"] if c["zone"] == "raw"]
    assert raw_paths == [raw]
    check = server.get(f"/api/v1/check/{run_id}").json()
    assert check["ok"], [f for c in check["checks"] for f in c.get("findings", [])]
    run_cli("promote", run_id, "--version", "v1")
    assert (lake.root / "data/processed/glo-airflow/v1/normalised.csv").read_bytes() == (
        b"ID,NAME\n1,SMITH\n")


def test_real_client_fail_event_gives_a_failed_run(lake: Lake, server: Server,
                                                   run_cli: CliInvoker) -> None:
    raw = add_raw(lake, "data/raw/glo/patents.csv", "id,name\n")
    run_id = str(uuid.uuid4())
    subprocess.run([sys.executable, str(HERE / "ol_client_job.py"), run_id, str(lake.root / raw),
                    str(lake.root / "data/work/glo/x.csv"), COMMIT, "fail"],
                   env=client_env(server), check=True, timeout=120)
    shown = json.loads(run_cli("show", run_id, "--json").stdout)
    assert shown["status"] == "failed"
    record = json.loads((lake.root / shown["run_dir"] / "run_record.json").read_text())
    assert record["openlineage"]["error"]["message"] == "boom: the source had no rows"
    assert "boom" in (lake.root / shown["run_dir"] / "logs/run.log").read_text()
    assert "no product outputs" in run_cli("check", run_id, expect=2).stderr


# --- what each dataset kind becomes -----------------------------------------------------------

def test_external_input_blocks_promotion_downstream_and_digest_claim_is_checked(
        lake: Lake, server: Server, run_cli: CliInvoker) -> None:
    raw = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n")
    out = write(lake.root / "data/work/glo/joined.csv", "id,x\n1,2\n")
    a = str(uuid.uuid4())
    warehouse = {"namespace": "postgres://etl:hunter2secret@db:5432", "name": "public.owners"}
    for kind in ("START", "COMPLETE"):
        assert server.post("/api/v1/lineage", event(
            a, kind, inputs=[{"namespace": "file", "name": str(lake.root / raw)}, warehouse],
            outputs=[{"namespace": "file", "name": str(out)}])).status_code == 201
    run_a = json.loads(run_cli("show", a, "--json").stdout)
    assert run_a["status"] == "success" and run_a["overall_status"] == "fail"
    run_dir = lake.root / run_a["run_dir"]
    text = "".join(p.read_text() for p in run_dir.rglob("*") if p.is_file()
                   and p.suffix in (".json", ".jsonl", ".log"))
    text += "".join(p.read_text() for p in
                    (lake.root / "data/work/openlineage").rglob("*.json"))
    assert "hunter2secret" not in text
    # a second run reads A's file output by its bytes: joined by digest, blocked by A
    b = str(uuid.uuid4())
    claim = {"kfm_digest": {"_producer": PRODUCER, "_schemaURL": PRODUCER,
                            "sha256": "0" * 64}}
    final = write(lake.root / "data/work/glo/final.csv", "done\n")
    server.post("/api/v1/lineage/batch", [
        event(b, "START", job="publish", time_="2026-01-01T00:01:00Z"),
        event(b, "COMPLETE", job="publish", time_="2026-01-01T00:02:00Z",
              inputs=[{"namespace": "file", "name": str(out)}],
              outputs=[{"namespace": "file", "name": str(final), "facets": claim}])])
    report = json.loads(run_cli("check", b, "--json", expect=1).stdout)
    reasons = {r for c in report["checks"] for r in c.get("reasons", [])}
    assert "external-input" in reasons
    gates = {g["name"]: g for g in json.loads(run_cli("show", b, "--json").stdout)["gates"]}
    assert gates["kfm_digest"]["status"] == "fail"
    assert a in report["closure"]["runs"]


def test_path_traversal_is_never_read(lake: Lake, server: Server, run_cli: CliInvoker,
                                      tmp_path: Path) -> None:
    secret = write(tmp_path / "outside.txt", "not yours")
    run_id = str(uuid.uuid4())
    hostile = [{"namespace": "file", "name": str(lake.root / "data/../../outside.txt")},
               {"namespace": "file", "name": "../outside.txt"},
               {"namespace": "file", "name": str(secret)}]
    response = server.post("/api/v1/lineage", event(run_id, "COMPLETE", inputs=hostile,
                                                     outputs=hostile))
    assert response.status_code == 201
    shown = json.loads(run_cli("show", run_id, "--json").stdout)
    assert shown["inputs"] == [] and shown["outputs"] == []
    assert not [p for p in (lake.root / shown["run_dir"]).rglob("outside.txt")]
    manifest = json.loads((lake.root / shown["run_dir"] / "run_manifest.json").read_text())
    assert {d["reason"] for d in manifest["external_inputs"]} == {
        "not a path inside the lake root"}


# --- hostile input ----------------------------------------------------------------------------

def _lake_state(root: Path) -> dict[str, str]:
    """Every file of the lake but the disposable cache (a read creates the index there)."""
    return {k: v for k, v in snapshot(root / "data").items()
            if not k.startswith("work/cache")}


def test_hostile_requests_get_the_right_status_and_write_nothing(lake: Lake,
                                                                 server: Server) -> None:
    before = _lake_state(lake.root)
    run_id = str(uuid.uuid4())
    cases = [
        (server.post("/api/v1/lineage", data=b"{not json"), 400, None),
        (server.post("/api/v1/lineage", data=b'{"a": 1, "a": 2}'), 400, None),
        (server.post("/api/v1/lineage", {**event(run_id), "eventTime": 5}), 400, "/eventTime"),
        (server.post("/api/v1/lineage", {**event(run_id), "run": {"runId": "../../x"}}), 400,
         "/run/runId"),
        (server.post("/api/v1/lineage", event(run_id, time_="2026-01-01T00:00:00")), 400,
         "/eventTime"),
        (server.post("/api/v1/lineage", {**event(run_id), "inputs": [{"name": 3}]}), 400,
         "/inputs/0"),
        (server.post("/api/v1/lineage", event(run_id, run_facets={"errorMessage": {
            "_producer": PRODUCER, "_schemaURL": PRODUCER, "message": 7}})), 400,
         "/run/facets/errorMessage"),
        (server.post("/api/v1/lineage/batch", [event(run_id), {"eventTime": "x"}]), 400, "/1"),
        (server.post("/api/v1/lineage", data=b"x" * (10 * 1024 * 1024)), 413, None),
        (server.post("/api/v1/lineage", data=gzip.compress(b" " * (50 * 1024 * 1024)),
                     headers={"Content-Encoding": "gzip"}), 413, None),
        (server.post("/api/v1/lineage", data=b"abc", headers={"Content-Encoding": "br"}),
         415, None),
        (server.post("/api/v1/lineage", event(run_id), token=None), 401, None),
        (server.post("/api/v1/lineage", event(run_id), token="wrong" * 8), 401, None),
        (server.get("/api/v1/runs", token=None), 401, None),
        (server.get("/api/v1/runs/nope-not-a-run"), 404, None),
        (server.get("/api/v1/runs/nope"), 400, None),
        (server.get("/api/v1/lineage", artifact="x", direction="sideways"), 400, None),
    ]
    for response, status, pointer in cases:
        assert response.status_code == status, (response.status_code, response.text)
        if pointer is not None:
            assert response.json()["pointer"].startswith(pointer), response.json()
    assert _lake_state(lake.root) == before
    assert server.alive()


def test_unknown_facets_duplicates_and_gzip(lake: Lake, server: Server) -> None:
    run_id = str(uuid.uuid4())
    body = event(run_id, run_facets={"acme_custom": {"_producer": PRODUCER,
                                                     "_schemaURL": PRODUCER, "x": [1, 2]}})
    assert server.post("/api/v1/lineage", body).status_code == 201
    again = server.post("/api/v1/lineage", data=gzip.compress(json.dumps(body).encode()),
                        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(journal_files(lake.root)) == 1
    done = event(run_id, "COMPLETE", time_="2026-01-01T00:00:01Z")
    assert server.post("/api/v1/lineage", done).status_code == 201
    assert server.post("/api/v1/lineage", done).status_code == 200
    other_end = event(run_id, "FAIL", time_="2026-01-01T00:00:02Z")
    assert server.post("/api/v1/lineage", other_end).status_code == 409
    mixed = server.post("/api/v1/lineage/batch", [event(str(uuid.uuid4())), other_end])
    assert mixed.status_code == 409 and mixed.json()["pointer"] == "/1/eventType"
    assert len(server.get("/api/v1/runs").json()) == 1
    assert len(journal_files(lake.root)) == 2
    dataset_event = {"eventTime": "2026-01-01T00:00:00Z", "producer": PRODUCER,
                     "schemaURL": SCHEMA_URL, "dataset": {"namespace": "file", "name": "x"}}
    assert server.post("/api/v1/lineage", dataset_event).status_code == 201
    assert len(journal_files(lake.root)) == 3


def test_a_flood_of_events_is_all_journaled_and_the_service_stays_up(
        lake: Lake, server: Server) -> None:
    bodies = [event(str(uuid.uuid4()), "START") for _ in range(1000)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda b: server.post("/api/v1/lineage", b).status_code,
                                 bodies))
    assert statuses == [201] * 1000
    assert len(journal_files(lake.root)) == 1000
    assert server.alive()


def test_schemathesis_finds_no_server_error(server: Server) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run",
         f"{server.url}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", os.environ.get("KFM_PROV_EXAMPLES", "12"),
         "-H", f"Authorization: Bearer {TOKEN}", "--no-color"],
        capture_output=True, text=True, timeout=300, cwd=server.root.parent)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert server.alive()


# --- the file transport and the journal --------------------------------------------------------

def test_record_openlineage_file_checks_every_line_first(lake: Lake,
                                                         run_cli: CliInvoker) -> None:
    run_id = str(uuid.uuid4())
    good = [event(run_id), event(run_id, "COMPLETE", time_="2026-01-01T00:00:09Z")]
    write(lake.root / "bad.jsonl", json.dumps(good[0]) + "\n" + '{"eventTime": 1}\n')
    before = snapshot(lake.root / "data")
    result = run_cli("record", "--openlineage", "bad.jsonl", expect=2)
    assert "bad.jsonl line 2" in result.stderr
    assert snapshot(lake.root / "data") == before
    parent = str(uuid.uuid4())
    base = {"_producer": PRODUCER, "_schemaURL": PRODUCER}
    good[1]["run"]["facets"] = {
        "parent": {**base, "run": {"runId": parent},
                   "job": {"namespace": "airflow", "name": "parcels_dag"}},
        "nominalTime": {**base, "nominalStartTime": "2026-01-01T00:00:00Z"},
        "processing_engine": {**base, "version": "2.9.1", "name": "Airflow"},
        "environmentVariables": {**base, "environmentVariables": [
            {"name": "DB_PASSWORD", "value": "swordfish-very-secret"}]}}
    good[1]["job"]["facets"] = {"jobType": {**base, "processingType": "BATCH",
                                            "integration": "DBT", "jobType": "MODEL"}}
    good[1]["inputs"] = [{"namespace": "snowflake://acct", "name": "db.sch.orders",
                          "inputFacets": {"dataQualityAssertions": {**base, "assertions": [
                              {"assertion": "not_null", "success": False, "column": "id"},
                              {"assertion": "unique", "success": True}]}}}]
    write(lake.root / "events.jsonl", "".join(json.dumps(e) + "\n" for e in good))
    assert f"recorded run {run_id} (success" in run_cli("record", "--openlineage",
                                                        "events.jsonl").stdout
    run_cli("record", "--openlineage", "events.jsonl")  # again: duplicates, recorded once
    assert [r["run_id"] for r in json.loads(run_cli("runs", "--json").stdout)] == [run_id]
    shown = json.loads(run_cli("show", run_id, "--json").stdout)
    record = json.loads((lake.root / shown["run_dir"] / "run_record.json").read_text())
    kept = record["openlineage"]
    assert kept["parent"]["run"]["runId"] == parent
    assert kept["nominal_time"] == {"nominalStartTime": "2026-01-01T00:00:00Z"}
    assert kept["job_type"]["jobType"] == "MODEL"
    assert record["software"]["Airflow"] == "2.9.1"
    assert record["environment"] == {"DB_PASSWORD": "[REDACTED]"}
    gates = {g["name"]: g["status"] for g in shown["gates"]}
    assert gates["dq:db.sch.orders:not_null:id"] == "fail"
    assert gates["dq:db.sch.orders:unique"] == "pass"
    assert gates["external_inputs"] == "fail" and gates["secrets"] == "warn"


def test_a_crash_after_the_journal_is_recovered_at_start(lake: Lake) -> None:
    from kfm_prov.openlineage.events import parse_event
    from kfm_prov.openlineage.journal import Journal

    run_id = str(uuid.uuid4())
    journal = Journal(lake.config)
    for body in (event(run_id), event(run_id, "COMPLETE", time_="2026-01-01T00:00:05Z")):
        with journal.lock(run_id):  # accepted, then the process died before recording
            journal.append(parse_event(body, file="t"))
    assert lake.runs() == []
    server = start_server(lake.root)
    try:
        assert [r["run_id"] for r in server.get("/api/v1/runs").json()] == [run_id]
    finally:
        server.stop()


def test_job_mapping_from_the_config(lake: Lake, run_cli: CliInvoker) -> None:
    toml = lake.root / "kfm-prov.toml"
    toml.write_text(toml.read_text() + '\n[[openlineage.jobs]]\nnamespace = "gl*"\n'
                    'family = "parcels"\npipeline = "airflow/{name}"\n')
    run_id = str(uuid.uuid4())
    write(lake.root / "e.jsonl", json.dumps(event(run_id, "COMPLETE")) + "\n")
    run_cli("record", "--openlineage", "e.jsonl")
    row = json.loads(run_cli("runs", "--json").stdout)[0]
    assert (row["family"], row["pipeline_id"]) == ("parcels", "airflow/normalise")


# --- export ------------------------------------------------------------------------------------

def _pruned(value: Any) -> Any:
    """Serde leaves out empty collections; compare what is there."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _vendored_validator() -> Any:
    """The OpenLineage schemas as shipped, read with plain jsonschema (not our loader)."""
    from importlib import resources

    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    folder = Path(str(resources.files("kfm_prov") / "schemas" / "openlineage"))
    schemas = [json.loads(p.read_text()) for p in folder.rglob("*.json")]
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s))
                                         for s in schemas)
    event_schema = next(s for s in schemas if s["$id"].endswith("2-0-2/OpenLineage.json"))
    facets = {key: Draft202012Validator(s, registry=registry) for s in schemas
              for key in s.get("properties", {})}
    return Draft202012Validator(event_schema, registry=registry), facets


def test_exported_events_validate_and_read_back_through_the_client(
        lake: Lake, run_cli: CliInvoker) -> None:
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.serde import Serde

    from tests.conftest import make_chain

    chain = make_chain(lake)
    lake.promote(chain.b.run_id)
    lines = run_cli("export", "--family", "glo", "--format", "openlineage").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"] * 2
    validator, facets = _vendored_validator()
    for item in events:
        assert not list(validator.iter_errors(item))
        for part in (item["run"], item["job"], *item["inputs"], *item["outputs"]):
            for key, facet in {**part.get("facets", {}), **part.get("inputFacets", {}),
                               **part.get("outputFacets", {})}.items():
                assert not list(facets[key].iter_errors({key: facet})), key
        rebuilt = RunEvent(
            eventType=RunState(item["eventType"]), eventTime=item["eventTime"],
            producer=item["producer"],
            run=Run(runId=item["run"]["runId"], facets=item["run"]["facets"]),
            job=Job(namespace=item["job"]["namespace"], name=item["job"]["name"],
                    facets=item["job"]["facets"]),
            inputs=[InputDataset(namespace=d["namespace"], name=d["name"],
                                 facets=d.get("facets", {}),
                                 inputFacets=d.get("inputFacets", {}))
                    for d in item["inputs"]],
            outputs=[OutputDataset(namespace=d["namespace"], name=d["name"],
                                   facets=d.get("facets", {}),
                                   outputFacets=d.get("outputFacets", {}))
                     for d in item["outputs"]])
        assert _pruned(json.loads(Serde.to_json(rebuilt))) == _pruned(item)
    product = events[3]["outputs"][0]
    assert product["outputFacets"]["kfm_promotion"]["version"] == "v1"
    assert product["facets"]["kfm_sensitivity"]["sensitivity"] == "public"
    assert events[1]["job"]["facets"]["sourceCodeLocation"]["version"] == COMMIT
    # the digests join: A's output is B's input
    assert (events[1]["outputs"][0]["facets"]["kfm_digest"]
            == events[2]["inputs"][0]["facets"]["kfm_digest"])


def test_emit_posts_to_another_kfm_prov(lake: Lake, tmp_path: Path,
                                        run_cli: CliInvoker,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import make_chain

    make_chain(lake)
    other = Lake.init(tmp_path / "other")
    receiver = start_server(other.root)
    try:
        monkeypatch.setenv("OPENLINEAGE_API_KEY", TOKEN)
        result = run_cli("export", "--format", "openlineage", "--emit", receiver.url)
        assert "posted 4 OpenLineage event(s)" in result.stderr
        assert len(receiver.get("/api/v1/runs").json()) == 2
        monkeypatch.setenv("OPENLINEAGE_API_KEY", "wrong-key-wrong-key")
        failed = run_cli("export", "--format", "openlineage", "--emit", receiver.url, expect=1)
        assert "HTTP 401" in failed.stderr
    finally:
        receiver.stop()


def test_a_crash_while_recording_loses_nothing(lake: Lake) -> None:
    out = write(lake.root / "data/work/glo/out.csv", "x\n")
    run_id = str(uuid.uuid4())
    dying = start_server(lake.root, crash_at="write:prov.json")
    assert dying.post("/api/v1/lineage", event(run_id)).status_code == 201
    with pytest.raises(requests.ConnectionError):  # killed half-way through recording
        dying.post("/api/v1/lineage", event(run_id, "COMPLETE", time_="2026-01-01T00:00:03Z",
                                            outputs=[{"namespace": "file", "name": str(out)}]))
    dying.process.wait(timeout=20)
    assert lake.runs() == []
    server = start_server(lake.root)
    try:
        runs = server.get("/api/v1/runs").json()
        assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "success")]
        assert (lake.root / runs[0]["run_dir"] / "prov.json").is_file()
        again = server.post("/api/v1/lineage", event(
            run_id, "COMPLETE", time_="2026-01-01T00:00:03Z",
            outputs=[{"namespace": "file", "name": str(out)}]))
        assert again.status_code == 200  # the producer's retry: the same event, kept once
    finally:
        server.stop()


@pytest.mark.parametrize(("toml", "field"), [
    ('[[openlineage.jobs]]\nfamily = "../x"\n', "openlineage.jobs[0].family"),
    ('[[openlineage.jobs]]\nfamily = "a"\ncolour = "b"\n', "openlineage.jobs[0].colour"),
    ('[openlineage]\njobs = "x"\n', "openlineage.jobs"),
])
def test_bad_openlineage_config_is_named(lake: Lake, run_cli: CliInvoker, toml: str,
                                         field: str) -> None:
    (lake.root / "kfm-prov.toml").write_text(toml)
    result = run_cli("runs", expect=2)
    assert field in result.stderr
