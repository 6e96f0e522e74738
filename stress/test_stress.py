"""Stress: kills by timing, more processes, bigger files. Run by ``make stress``.

Bounded: every loop has a fixed count (``KFM_PROV_STRESS`` scales them) and every
subprocess a timeout; ``make stress`` also runs the hostile-input properties of
``tests/test_hostile.py`` with hundreds of examples each.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kfm_prov.core.crashpoints import ENV
from kfm_prov.core.jsonio import read_json
from kfm_prov.errors import InputError
from kfm_prov.lake import Lake
from kfm_prov.store.raw import read_checksums
from kfm_prov.store.receipts import check_run_dir
from tests.conftest import COMMIT, add_raw
from tests.test_concurrency import assert_published, finish, rerun, spawn
from tests.test_crash import assert_whole, template  # noqa: F401 (a module fixture)

PY = sys.executable
SCALE = float(os.environ.get("KFM_PROV_STRESS", "1"))
SEED = int(os.environ.get("KFM_PROV_SEED", str(int(time.time()))))


def scaled(count: int) -> int:
    return max(1, int(count * SCALE))


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in (ENV, "KFM_PROV_ROOT")}


def kill_after(command: list[str], cwd: Path, delay: float) -> int:
    """Start ``command``, SIGKILL its process group after ``delay`` s; its return code."""
    process = subprocess.Popen(command, cwd=cwd, env=env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait(timeout=60)


def test_promote_killed_at_random_moments(template: dict, tmp_path: Path) -> None:  # noqa: F811
    rng = random.Random(SEED)
    probe = tmp_path / "probe"
    shutil.copytree(template["root"], probe, symlinks=True)
    began = time.monotonic()
    subprocess.run([PY, "-m", "kfm_prov.cli", "--root", str(probe), "promote", template["run"]],
                   cwd=probe, env=env(), capture_output=True, check=True, timeout=120)
    duration = time.monotonic() - began  # kill anywhere in a whole promotion
    roots, delays = [], []
    for number in range(scaled(40)):
        roots.append(tmp_path / f"k{number}")
        shutil.copytree(template["root"], roots[-1], symlinks=True)
        delays.append(rng.uniform(0.3, 1.1) * duration)

    def one(number: int) -> int:
        return kill_after([PY, "-m", "kfm_prov.cli", "--root", str(roots[number]), "promote",
                           template["run"]], roots[number], delays[number])

    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(pool.map(one, range(len(roots))))
    states = [assert_whole(root, template) for root in roots]
    print(f"seed {SEED}: {codes.count(-9)} killed, outcomes {sorted(set(states))}")
    assert -9 in codes


def test_runs_killed_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    lake = Lake.init(tmp_path / "lake")
    add_raw(lake, "data/raw/glo/in.csv", "id\n1\n", sensitivity="public")
    script = ("import os, time; time.sleep(float(os.environ.get('NAP', '0.2')));"
              " open(os.path.join(os.environ['KFM_ARTIFACTS_DIR'], 'o.csv'), 'w').write('x')")
    for _ in range(scaled(25)):
        kill_after([PY, "-m", "kfm_prov.cli", "--root", str(lake.root), "run", "-f", "glo",
                    "-p", "p", "--commit", COMMIT, "-i", "data/raw/glo/in.csv", "-o",
                    "o.csv:product", "--", PY, "-c", script], lake.root, rng.uniform(0.05, 1.2))
    lake = Lake.open(lake.root)  # sweeps what the kills left
    lake.rebuild_index()
    run_dirs = sorted((lake.root / "data/work/runs/glo").iterdir())
    indexed = {r.run_id: r.status for r in lake.runs()}
    for run_dir in run_dirs:
        if not (run_dir / "run_record.json").exists():
            continue  # killed before its first receipt: nothing to record
        datas, findings = check_run_dir(run_dir, display=run_dir.name)
        assert findings == [], findings
        status = datas["run_record"]["status"]
        assert status in ("success", "interrupted"), status
        assert indexed[run_dir.name] == status
        if status == "success":
            assert (run_dir / "artifacts/o.csv").is_file()
    print(f"seed {SEED}: {len(run_dirs)} runs, {sorted(set(indexed.values()))}")


def test_many_runs_and_promotions_at_once(lake: Lake) -> None:
    families = [f"fam{n}" for n in range(4)]
    for family in families:
        add_raw(lake, f"data/raw/{family}/in.csv", f"id\n{family}\n", sensitivity="public")
    runs = [spawn(lake.root, "run", "-f", family, "-p", "p", "--commit", COMMIT, "-i",
                  f"data/raw/{family}/in.csv", "-o", "o.csv:product", "--json", "--", PY, "-c",
                  "import os; open(os.path.join(os.environ['KFM_ARTIFACTS_DIR'], 'o.csv'),"
                  " 'w').write(os.environ['KFM_RUN_ID'])")
            for family in families for _ in range(scaled(8))]
    rebuilds = [spawn(lake.root, "index", "rebuild") for _ in range(3)]
    results = finish(runs + rebuilds, timeout=600)
    assert [code for code, _, _ in results] == [0] * len(results)
    ids = {json.loads(out)["run_id"] for _, out, _ in results[:len(runs)]}
    assert ids == {r.run_id for r in lake.runs()}
    products = [rerun(lake, "glo", n) for n in range(scaled(6))]
    promotions = finish([spawn(lake.root, "promote", run_id, "--json") for run_id in products],
                        timeout=600)
    assert [code for code, _, _ in promotions] == [0] * len(products)
    versions = sorted(json.loads(out)["version"] for _, out, _ in promotions)
    assert versions == sorted(f"v{n + 1}" for n in range(len(products)))
    assert_published(lake, {"glo": versions})


def test_gc_while_runs_and_promotions_happen(lake: Lake) -> None:
    old = [rerun(lake, "glo", n) for n in range(6)]
    lake.promote(old[0])
    busy = [spawn(lake.root, "promote", old[1])] + [
        spawn(lake.root, "run", "-f", "glo", "-p", "p", "--commit", COMMIT, "--", PY, "-c",
              "pass") for _ in range(4)]
    collect = [spawn(lake.root, "gc", "--keep", "0", "--min-age-hours", "0", "--apply")
               for _ in range(2)]
    results = finish(busy + collect, timeout=600)
    (code, _, err), rest = results[0], results[1:]
    if code != 0:  # gc took the run first: a clear refusal, nothing half-published
        assert code in (1, 2) and err.count("\n") == 1 and "Traceback" not in err, err
    for code, _, err in rest:
        assert code == 0, err
    with Lake.open(lake.root).index() as index:
        versions = sorted({p.version for p in index.promotions("glo")})
    assert "v1" in versions
    assert_published(lake, {"glo": versions})  # every promoted closure is whole


def test_a_million_entry_checksums_file_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "checksums.sha256"
    with open(path, "w") as handle:
        for start in range(0, 1_000_000, 100_000):
            handle.write("".join(f"{i:064x}  f/{i}.csv\n" for i in range(start, start + 100_000)))
    tracemalloc.start()
    found = read_checksums(path, display="c", only={"f/999999.csv"})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert found == {"f/999999.csv": f"sha256:{999999:064x}"}
    assert peak < 20 * 1024 * 1024, peak  # a pass over 72 MB, not a million entries


def test_a_million_entry_manifest_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "run_manifest.json"
    entry = '{"path": "data/work/runs/f/R/artifacts/%d", "digest": "sha256:%s", "role": "x"}'
    with open(path, "w") as handle:
        handle.write('{"run_id": "R", "spec_hash": "sha256:' + "0" * 64 + '", "params": {},'
                     ' "inputs": [], "outputs": [')
        for start in range(0, 1_000_000, 100_000):
            handle.write(",".join(entry % (i, "0" * 64) for i in range(start, start + 100_000))
                         + ("," if start < 900_000 else ""))
        handle.write("]}")
    start = time.monotonic()
    with pytest.raises(InputError, match="limit"):
        read_json(path, display="run_manifest.json")
    assert time.monotonic() - start < 1
