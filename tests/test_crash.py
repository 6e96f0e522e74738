"""SIGKILL at every crash point: the next command finds the lake whole.

``kfm-prov promote`` runs in a process of its own with ``KFM_PROV_CRASH_AT`` naming a point
(see ``kfm_prov.core.crashpoints``): for the kill points a child forked from a warm
interpreter (``Zygote``), elsewhere a new interpreter; the points are discovered by tracing
one clean promotion,
so a new write in the promotion gets its own kill test. After each kill the next command
(opening the lake) must leave the new version either fully published, with a certificate
that holds, or not visible at all, with ``data/raw/`` unchanged and the index equal to a
rebuild. The same for ``kfm-prov run`` and ``lake.capture``: a killed run is recorded as
``interrupted`` with valid receipts, never as ``success``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from kfm_prov.cli.main import cli
from kfm_prov.core.crashpoints import ENV, TRACE_ENV
from kfm_prov.errors import InputError
from kfm_prov.lake import Lake
from kfm_prov.prov.constraints import check_constraints, load_prov_document
from kfm_prov.store.certificate import verify_certificate
from kfm_prov.store.rebuild import rebuild_index
from kfm_prov.store.receipts import check_run_dir
from tests.conftest import (
    CODE,
    CODE_ARGS,
    COMMIT,
    GEOJSON,
    PIPELINES,
    add_raw,
    make_chain,
    snapshot,
)

PY = sys.executable
# The tests of the module-scoped ``template`` go to one xdist worker, which builds it once.
ON_TEMPLATE = pytest.mark.xdist_group("crash-template")
FAMILY = "glo"


def kfm(root: Path, *args: str, crash: str | None = None, trace: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (ENV, TRACE_ENV, "KFM_PROV_ROOT")}
    if crash:
        env[ENV] = crash
    if trace:
        env[TRACE_ENV] = str(trace)
    return subprocess.run([PY, "-m", "kfm_prov.cli", "--root", str(root), *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


# A zygote: one interpreter that imports what ``kfm-prov promote`` needs once, then forks a
# fresh child per request that runs the real CLI entry point with the crash point set. Each
# kill point then costs the promotion itself, not a new interpreter importing everything.
# The zygote is single-threaded, so forking it is safe; the children share nothing with
# the test process.
ZYGOTE = """
import json, os, sys
import jsonschema, networkx, prov.model, pystac, rdflib
import kfm_prov.cli.main, kfm_prov.gate, kfm_prov.prov.bundle, kfm_prov.publish.dcat
import kfm_prov.publish.promote, kfm_prov.publish.stac
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        os.chdir(request["root"])
        os.environ[request["env"]] = request["crash"]
        code = 0
        try:
            kfm_prov.cli.main.main(request["argv"])
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class Zygote:
    """``kfm-prov`` commands with a crash point, forked from a warm interpreter."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in (ENV, TRACE_ENV, "KFM_PROV_ROOT")}
        self.process = subprocess.Popen([PY, "-c", ZYGOTE], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env, text=True)

    def run(self, root: Path, *args: str, crash: str) -> tuple[int, str]:
        """(exit code, negative for the signal that ended it; stderr) of one command."""
        assert self.process.stdin is not None and self.process.stdout is not None
        stderr = root.parent / f"{root.name}.stderr"
        self.process.stdin.write(json.dumps({
            "root": str(root), "argv": ["--root", str(root), *args], "env": ENV,
            "crash": crash, "stderr": str(stderr)}) + "\n")
        self.process.stdin.flush()
        code = int(self.process.stdout.readline())
        return code, stderr.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self.process.wait(timeout=60)


def pattern(point: str) -> str:
    """The crash point to set for a traced point (the journal file's name has an id)."""
    return "write:promote-*.json" if point.startswith("write:promote-") else point


def published(root: Path) -> dict[str, str]:
    out = {}
    for zone, rel in (("processed", "data/processed"), ("stac", "data/stac"),
                      ("prov", "data/prov"), ("dcat", "data/catalog/dcat")):
        out |= {f"{zone}/{k}": v for k, v in snapshot(root / rel).items()}
    return out


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """glo v1 promoted; a second run with two products, ready to become glo v2."""
    return build_template(tmp_path_factory, signed=False)


@pytest.fixture(scope="module")
def signed_template(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same, in a lake that signs (key outside the lake, in kfm-prov.toml) and trusts."""
    return build_template(tmp_path_factory, signed=True)


def build_template(tmp_path_factory: pytest.TempPathFactory, *, signed: bool) -> dict:
    lake = Lake.init(tmp_path_factory.mktemp("crash") / "lake")
    if signed:
        from kfm_prov.core.keys import generate

        made = generate(tmp_path_factory.mktemp("keys"))
        toml = lake.root / "kfm-prov.toml"
        toml.write_text(toml.read_text() + f'\n[signing]\nkey = "{made.private_path}"\n'
                        f'\n[trust]\nkeys = ["{made.public_path}"]\n')
        lake = Lake.open(lake.root)
    first = make_chain(lake)
    lake.promote(first.b.run_id)
    src = add_raw(lake, "data/raw/glo/patents-2.csv", "id,name\n7,Doe\n8,Roe\n")
    with lake.capture(FAMILY, "pipelines/glo/normalise", **CODE) as a:
        a.use(src)
        a.output("normalised.csv").write_text("ID,NAME\n7,DOE\n8,ROE\n")
    with lake.capture(FAMILY, "pipelines/glo/parcels", **CODE) as b:
        b.use(a.artifacts / "normalised.csv")
        b.output("parcels.geojson", role="product", sensitivity="public").write_text(
            GEOJSON.replace('"properties": {}', '"properties": {"n": 2}'))
        b.output("summary/count.csv", role="product", sensitivity="public").write_text("n\n2\n")
    trace = lake.root.parent / "trace.txt"
    probe = lake.root.parent / "probe"
    shutil.copytree(lake.root, probe, symlinks=True)
    done = kfm(probe, "promote", b.run_id, trace=trace)
    assert done.returncode == 0, done.stderr
    points = trace.read_text().split()
    return {"root": lake.root, "run": b.run_id, "points": points,
            "raw": snapshot(lake.root / "data/raw"), "published": published(lake.root),
            "v1": "data/prov/glo/v1.certificate.json", "signed": signed}


def fresh(template: dict, tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    shutil.copytree(template["root"], root, symlinks=True)
    return root


def assert_whole(root: Path, template: dict, *, expect: str | None = None) -> str:
    """The lake after recovery: v2 all there or none of it; returns which."""
    lake = Lake.open(root)  # what every next command does first
    config = lake.config
    assert snapshot(root / "data/raw") == template["raw"]
    assert not list((root / "data/work/cache/kfm-prov/journal").glob("*")), "journal left"
    staging = root / "data/work/staging/kfm-prov"
    assert not staging.is_dir() or not list(staging.iterdir()), "staging left"
    assert verify_certificate(config, template["v1"]) == []
    with lake.index() as index:
        versions = sorted({p.version for p in index.promotions(FAMILY)})
        dump = index.dump()
    rebuild_index(config)
    with lake.index() as index:
        assert index.dump() == dump, "index disagrees with the files"
    v2_files = [root / "data/processed/glo/v2", root / "data/prov/glo/v2.json",
                root / "data/prov/glo/v2.certificate.json",
                root / "data/stac/glo/glo-v2/glo-v2.json"]
    if template.get("signed"):  # no version without its envelope, nor an envelope alone
        v2_files.append(root / "data/prov/glo/v2.intoto.jsonl")
    dcat = (root / "data/catalog/dcat/glo.ttl").read_text()
    collection = (root / "data/stac/glo/collection.json").read_text()
    if not any(p.exists() for p in v2_files):
        state = "none"
        assert published(root) == template["published"]  # byte for byte as before
        assert versions == ["v1"]
    else:
        state = "all"
        assert all(p.exists() for p in v2_files), [p for p in v2_files if not p.exists()]
        assert versions == ["v1", "v2"]
        sums = (root / "data/processed/glo/v2/checksums.sha256").read_text().splitlines()
        assert sorted(line.split("  ", 1)[1] for line in sums) == [
            "parcels.geojson", "summary/count.csv"]
        assert verify_certificate(config, "data/prov/glo/v2.certificate.json") == []
        assert "glo-v2" in collection and "/glo/v2/" in dcat
        item = json.loads((root / "data/stac/glo/glo-v2/glo-v2.json").read_text())
        assert item["properties"].get("version") == "v2"
    assert "glo-v1" in collection and "/glo/v1/" in dcat
    audit = CliRunner().invoke(cli, ["--root", str(root), "verify"]
                               + (["--require-signatures"] if template.get("signed") else []))
    assert audit.exit_code == 0, audit.stdout + audit.stderr  # the lake-wide audit agrees
    if expect is not None:
        assert state == expect
    return state


@ON_TEMPLATE
def test_every_promotion_crash_point_leaves_all_or_nothing(template: dict,
                                                           tmp_path: Path) -> None:
    points = template["points"]
    expected = {"before-stage", "staged-product-0", "staged-product-1", "staged-checksums",
                "before-journal", "after-journal", "move-0", "moved-0", "before-index",
                "before-unjournal", "before-unstage"}
    assert expected <= set(points), points
    assert len(points) >= 28
    print(f"{len(points)} kill points: {' '.join(points)}")
    journaled = points.index("after-journal")
    roots = []
    for number in range(len(points)):
        roots.append(tmp_path / f"p{number}")
        shutil.copytree(template["root"], roots[-1], symlinks=True)

    def kill_every_other(lane: int) -> dict[int, tuple[int, str]]:
        zygote = Zygote()  # one per lane; two lanes at a time (the lakes are independent)
        try:
            return {number: zygote.run(roots[number], "promote", template["run"],
                                       crash=pattern(points[number]))
                    for number in range(lane, len(points), 2)}
        finally:
            zygote.close()

    results: dict[int, tuple[int, str]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for lane in pool.map(kill_every_other, (0, 1)):
            results |= lane
    killed = [results[number] for number in range(len(points))]
    for number, (point, root) in enumerate(zip(points, roots, strict=True)):
        code, stderr = killed[number]
        assert code == -signal.SIGKILL, (point, code, stderr)
        assert "Traceback" not in stderr
        state = assert_whole(root, template,
                             expect="none" if number < journaled else "all")
        if number in (0, journaled, len(points) - 1):  # the lake is usable afterwards
            again = kfm(root, "promote", template["run"], "--json")
            assert again.returncode == 0, again.stderr
            result = json.loads(again.stdout)  # after a completed promotion: already there
            assert (result["version"], result["already_published"]) == ("v2", state != "none")


@ON_TEMPLATE
def test_every_signed_promotion_crash_point_leaves_version_and_envelope_together(
        signed_template: dict, template: dict, tmp_path: Path) -> None:
    """With a signing key, the envelope is one more staged file of the same transaction."""
    unsigned = [p for p in template["points"] if p.startswith("staged-f")]
    template = signed_template
    points = template["points"]
    journaled = points.index("after-journal")
    staged = [p for p in points if p.startswith("staged-f")]
    assert len(staged) == len(unsigned) + 1, staged  # the envelope, in the same transaction
    roots = []
    for number in range(len(points)):
        roots.append(tmp_path / f"p{number}")
        shutil.copytree(template["root"], roots[-1], symlinks=True)

    def kill(number: int) -> subprocess.CompletedProcess[str]:
        point = points[number]
        pattern = "write:promote-*.json" if point.startswith("write:promote-") else point
        return kfm(roots[number], "promote", template["run"], crash=pattern)

    with ThreadPoolExecutor(max_workers=2) as pool:
        killed = list(pool.map(kill, range(len(points))))
    for number, (point, root) in enumerate(zip(points, roots, strict=True)):
        assert killed[number].returncode == -signal.SIGKILL, (point, killed[number].stderr)
        assert_whole(root, template, expect="none" if number < journaled else "all")


@ON_TEMPLATE
@pytest.mark.parametrize(("first", "second"), [("move-3", "moved-4"),
                                               ("after-journal", "before-index"),
                                               ("moved-0", "move-0")])
def test_a_crash_during_recovery_is_recovered_too(template: dict, tmp_path: Path,
                                                  first: str, second: str) -> None:
    root = fresh(template, tmp_path)
    assert kfm(root, "promote", template["run"], crash=first).returncode == -signal.SIGKILL
    again = kfm(root, "runs", crash=second)  # the recovery itself is killed
    assert again.returncode in (0, -signal.SIGKILL)
    assert_whole(root, template, expect="all")


@ON_TEMPLATE
def test_a_version_taken_meanwhile_rolls_the_journal_back(template: dict,
                                                          tmp_path: Path) -> None:
    root = fresh(template, tmp_path)
    assert kfm(root, "promote", template["run"],
               crash="after-journal").returncode == -signal.SIGKILL
    assert not (root / "data/processed/glo/v2").exists()  # still staged
    staged = next((root / "data/work/staging/kfm-prov").iterdir()) / "version"
    assert staged.is_dir()
    (root / "data/processed/glo/v2").mkdir()  # someone else's v2 appears
    Lake.open(root)
    assert (root / "data/processed/glo/v2").is_dir() and not list(
        (root / "data/processed/glo/v2").iterdir())
    assert not (root / "data/prov/glo/v2.certificate.json").exists()
    assert not list((root / "data/work/cache/kfm-prov/journal").glob("*.json"))


# --- killed runs -----------------------------------------------------------------------------

RUN_POINTS = {  # crash point → how the run must be recorded
    "capture-started": "interrupted",
    "capture-before-receipts": "interrupted",
    "write:run_manifest.json": "interrupted",
    "write:validation_report.json": "interrupted",
    "write:prov.json": "interrupted",
    "capture-before-record": "interrupted",
    "capture-before-index": "success",  # the run had ended: its record said so durably
    "capture-before-unmark": "success",
}


def only_run(root: Path) -> Path:
    (run_dir,) = [p for p in (root / "data/work/runs/glo").iterdir()]
    return run_dir


def assert_recorded(root: Path, run_dir: Path, status: str) -> dict:
    record = json.loads((run_dir / "run_record.json").read_text())  # valid JSON even now
    before_sweep = record["status"]
    lake = Lake.open(root)  # sweeps runs whose process is gone
    rel = run_dir.relative_to(root).as_posix()
    datas, findings = check_run_dir(run_dir, display=rel)
    assert findings == [], findings
    record = datas["run_record"]
    assert record["status"] == status
    assert lake.resolve_run(record["run_id"]).status == status
    assert check_constraints(load_prov_document(run_dir / "prov.json")) == []
    assert not list((root / "data/work/cache/kfm-prov/live").glob("*.json"))
    if status == "interrupted":
        assert before_sweep == "running"
        report = datas["validation_report"]
        assert report["overall_status"] == "fail"
        try:  # never promotable
            assert not lake.check(record["run_id"]).ok
        except InputError as exc:  # killed before it declared any product
            assert "no product outputs" in exc.message
    with lake.index() as index:
        dump = index.dump()
    lake.rebuild_index()
    with lake.index() as index:
        assert index.dump() == dump
    return datas


@pytest.fixture
def run_lake(tmp_path: Path) -> Path:
    lake = Lake.init(tmp_path / "lake")
    add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n")
    return lake.root


@pytest.mark.parametrize("point", sorted(RUN_POINTS))
def test_a_run_killed_at_each_point_is_never_success_unless_it_ended(
        run_lake: Path, point: str) -> None:
    script = ("import os; d = os.environ['KFM_ARTIFACTS_DIR'];"
              " open(os.path.join(d, 'out.csv'), 'w').write('ID\\n1\\n')")
    killed = kfm(run_lake, "run", "-f", FAMILY, "-p", "pipelines/glo", *CODE_ARGS,
                 "-i", "data/raw/glo/patents.csv", "-o", "out.csv:product", "--",
                 PY, "-c", script, crash=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    datas = assert_recorded(run_lake, only_run(run_lake), RUN_POINTS[point])
    if point != "capture-started":  # the input was declared and logged before the kill
        inputs = datas["run_manifest"]["inputs"]
        assert [i["path"] for i in inputs] == ["data/raw/glo/patents.csv"]


def test_kfm_prov_run_killed_while_its_command_runs(run_lake: Path) -> None:
    started = run_lake.parent / "started"
    script = (f"import os, time; open(os.path.join(os.environ['KFM_ARTIFACTS_DIR'],"
              f" 'part.csv'), 'w').write('half'); open({str(started)!r}, 'w').close();"
              " time.sleep(60)")
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "KFM_PROV_ROOT")}
    process = subprocess.Popen(
        [PY, "-m", "kfm_prov.cli", "--root", str(run_lake), "run", "-f", FAMILY, "-p", "p",
         *CODE_ARGS, "-i", "data/raw/glo/patents.csv", "--", PY, "-c", script],
        cwd=run_lake, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.monotonic() + 60
    while not started.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    run_dir = only_run(run_lake)
    assert json.loads((run_dir / "run_record.json").read_text())["status"] == "running"
    datas = assert_recorded(run_lake, run_dir, "interrupted")
    outputs = datas["run_manifest"]["outputs"]
    assert [o["path"].rsplit("/", 1)[-1] for o in outputs] == ["part.csv"]
    assert "is gone" in (run_dir / "logs/run.log").read_text()


def test_a_capture_killed_inside_its_block(run_lake: Path) -> None:
    script = (f"import os\nfrom kfm_prov.lake import Lake\nlake = Lake.open({str(run_lake)!r})\n"
              f"with lake.capture('glo', 'pipelines/api', commit={COMMIT!r},"
              f" git_dir={str(PIPELINES)!r}, entry={str(PIPELINES / 'pipeline.py')!r},"
              " params={'year': 2020}) as run:\n"
              "    run.use('data/raw/glo/patents.csv')\n"
              "    run.output('out.csv', role='product').write_text('partial')\n"
              "    os.kill(os.getpid(), 9)\n")
    killed = subprocess.run([PY, "-c", script], cwd=run_lake, capture_output=True, text=True,
                            check=False, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    datas = assert_recorded(run_lake, only_run(run_lake), "interrupted")
    manifest = datas["run_manifest"]
    assert manifest["params"] == {"year": 2020}
    assert [o["role"] for o in manifest["outputs"]] == ["product"]
    assert manifest["inputs"][0]["digest"].startswith("sha256:")


def test_a_live_run_of_another_process_is_left_running(run_lake: Path) -> None:
    from kfm_prov.capture import Run

    lake = Lake.open(run_lake)
    run = Run.start(lake.config, FAMILY, "pipelines/live", **CODE)
    Lake.open(run_lake)  # a sweep from this (live) process
    assert kfm(run_lake, "index", "rebuild").returncode == 0  # and from another process
    assert json.loads((run.dir / "run_record.json").read_text())["status"] == "running"
    run.finish("success")
    assert lake.resolve_run(run.run_id).status == "success"
