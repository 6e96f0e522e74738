"""OpenLineage intake: events accepted per second (1 and 8 client processes) and the time
from a COMPLETE to "run indexed" for a run with 100 output files, against a real
`kfm-prov serve` on a free localhost port. The COMPLETE's 201 is sent after the run is
recorded and indexed, so its round trip is that time (checked with GET /api/v1/runs).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from benchmarks.harness import Row, log

TOKEN = "bench-token-" + "b" * 24
CLIENT = r"""
import json, sys, time, uuid, requests
url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
session = requests.Session()
session.headers.update({"Authorization": "Bearer " + token,
                        "Content-Type": "application/json"})
for _ in range(n):
    body = {"eventType": "START", "eventTime": "2026-01-01T00:00:00Z",
            "producer": "https://example.org/bench",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": "bench", "name": "flood"}}
    r = session.post(url + "/api/v1/lineage", data=json.dumps(body))
    assert r.status_code == 201, r.text
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    import requests

    port = _free_port()
    log_file = open(root.parent / "serve.log", "wb")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "kfm-prov"), "--root", str(root), "serve",
         "--port", str(port)], env={**os.environ, "KFM_PROV_SERVE_TOKENS": TOKEN},
        stderr=log_file)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("kfm-prov serve did not start")


def _flood(url: str, processes: int, total: int) -> float:
    each = total // processes
    started = time.perf_counter()
    children = [subprocess.Popen([sys.executable, "-c", CLIENT, url, TOKEN, str(each)])
                for _ in range(processes)]
    for child in children:
        if child.wait() != 0:
            raise RuntimeError("a client process failed")
    return each * processes / (time.perf_counter() - started)


def _complete_to_indexed(root: Path, url: str, files: int) -> float:
    import requests

    headers = {"Authorization": f"Bearer {TOKEN}"}
    run_id = str(uuid.uuid4())
    folder = root / "data/work/bench" / run_id
    folder.mkdir(parents=True)
    for i in range(files):
        (folder / f"part-{i:05d}.bin").write_bytes(os.urandom(4096))
    base = {"producer": "https://example.org/bench",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": run_id}, "job": {"namespace": "bench", "name": "hundred"}}
    start = {**base, "eventType": "START", "eventTime": "2026-01-01T00:00:00Z"}
    assert requests.post(url + "/api/v1/lineage", json=start, headers=headers).status_code == 201
    complete = {**base, "eventType": "COMPLETE", "eventTime": "2026-01-01T00:01:00Z",
                "outputs": [{"namespace": "file", "name": str(folder)}]}
    began = time.perf_counter()
    response = requests.post(url + "/api/v1/lineage", json=complete, headers=headers)
    elapsed = time.perf_counter() - began
    assert response.status_code == 201, response.text
    shown = requests.get(f"{url}/api/v1/runs/{run_id}", headers=headers).json()
    assert len(shown["outputs"]) == files, shown
    return elapsed


def run(out: Path, *, quick: bool = False) -> list[Row]:
    root = out / "openlineage" / "lake"
    if root.parent.exists():
        shutil.rmtree(root.parent)
    root.parent.mkdir(parents=True)
    subprocess.run([str(Path(sys.executable).parent / "kfm-prov"), "init", str(root)],
                   check=True, capture_output=True)
    process, url = _start(root)
    try:
        total = 200 if quick else 1000
        log(f"openlineage: {total} START events from 1 client process")
        one = _flood(url, 1, total)
        log(f"openlineage: {total} START events from 8 client processes")
        eight = _flood(url, 8, total)
        log("openlineage: COMPLETE → indexed, 100 output files")
        times = [_complete_to_indexed(root, url, 100) for _ in range(2 if quick else 5)]
    finally:
        process.terminate()
        process.wait(timeout=30)
    return [
        Row("OpenLineage events accepted/s, 1 client process", f"{one:.0f} /s", "—", "info",
            "each journaled durably (fsync) before its 201"),
        Row("OpenLineage events accepted/s, 8 client processes", f"{eight:.0f} /s", "—",
            "info", "one serve process"),
        Row("OpenLineage COMPLETE → run indexed, 100 files", f"{statistics.median(times):.2f} s",
            "—", "info", "median; copies, hashes, receipts, re-hash, PROV, index"),
    ]
