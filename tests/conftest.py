"""Real lakes in tmp_path, the real CLI, and a way to prove that nothing changed."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from kfm_prov.capture import Run
from kfm_prov.cli.main import cli
from kfm_prov.lake import Lake
from kfm_prov.publish.promote import PromotionResult

if TYPE_CHECKING:
    from tests.multi import Multi

CliInvoker = Callable[..., Result]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that collected no test did not pass: exit 1 saying so, never pytest's 5."""
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller decides
        return
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.config.get_terminal_writer().line(
            "no test was collected: check the test paths, -k/-m filters and PYTEST_ADDOPTS",
            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _pipeline_repository() -> tuple[Path, str]:
    """A git repository holding one committed ``pipeline.py``, made once per test process.

    The gate asks the repository whether the commit exists and holds the code that ran
    (issue 12 §4), so runs of the tests name a real one. Fixed dates and names make its
    commit the same everywhere.
    """
    import atexit
    import shutil
    import subprocess
    import tempfile

    repo = Path(tempfile.mkdtemp(prefix="kfm-prov-pipelines-"))
    atexit.register(shutil.rmtree, repo, ignore_errors=True)
    (repo / "pipeline.py").write_text("# the tests' pipeline code\n", encoding="utf-8")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
           "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z", "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (["init", "-q"], ["add", "pipeline.py"],
                 ["-c", "commit.gpgsign=false", "commit", "-q", "-m", "pipeline"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env,
                       capture_output=True)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    return repo, head


PIPELINES, COMMIT = _pipeline_repository()
# What a test's capture passes so that its code is committed: ``lake.capture(..., **CODE)``
# and ``kfm-prov run ... *CODE_ARGS -- python -c ...`` (inline code names no file).
CODE = {"commit": COMMIT, "git_dir": PIPELINES, "entry": PIPELINES / "pipeline.py"}
CODE_ARGS = ("--commit", COMMIT, "--git-dir", str(PIPELINES))
GEOJSON = ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},'
           ' "geometry": {"type": "Polygon", "coordinates": [[[-97.6, 38.4], [-97.4, 38.4],'
           ' [-97.4, 38.6], [-97.6, 38.6], [-97.6, 38.4]]]}}]}')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The URL of a database of its own on the real PostgreSQL server (see tests/pg.py)."""
    from tests import pg

    admin, reason = pg.admin_url()
    if admin is None:
        message = (f"PostgreSQL tests need a server: set {pg.URL_ENV} (unreachable:"
                   f" {reason})")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    name = pg.create_database(admin)
    try:
        yield pg.with_database(admin, name)
    finally:
        pg.drop_database(admin, name)


@pytest.fixture(scope="session", autouse=True)
def _suite_index_backend(request: pytest.FixtureRequest) -> Iterator[None]:
    """``KFM_PROV_TEST_INDEX=postgres``: every lake of the session indexes into PostgreSQL."""
    from tests import pg

    if os.environ.get(pg.SUITE_ENV, "sqlite") != "postgres":
        yield
        return
    url = request.getfixturevalue("pg_database")
    previous = os.environ.get("KFM_PROV_INDEX_URL")
    os.environ["KFM_PROV_INDEX_URL"] = url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("KFM_PROV_INDEX_URL", None)
        else:
            os.environ["KFM_PROV_INDEX_URL"] = previous
# --- expensive things built once per session, shared by the xdist workers ------------------

def shared_build(tmp_path_factory: pytest.TempPathFactory, name: str,
                 build: Callable[[Path], None]) -> Path:
    """A directory ``build`` fills once per test session, whichever worker asks first.

    Under pytest-xdist every worker has its own base temp beside the others; the build goes
    one level up, under a file lock, so the other workers wait for it and reuse it. Callers
    treat it as read-only and copy what they change.
    """
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    target = base / f"shared-{name}"
    with FileLock(str(target) + ".lock"):
        if not (target / ".built").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            build(target)
            (target / ".built").touch()
    return target


def user_env(home: Path) -> dict[str, str]:
    """The environment a user's shell has: the installed ``kfm-prov`` first on the PATH, no
    KFM_* settings, a git identity and an empty HOME."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "kfm-prov").exists(), "kfm-prov is not installed beside this python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KFM_", "GIT_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", HOME=str(home),
               GIT_AUTHOR_NAME="Doc Tester", GIT_AUTHOR_EMAIL="docs@example.org",
               GIT_COMMITTER_NAME="Doc Tester", GIT_COMMITTER_EMAIL="docs@example.org",
               GIT_CONFIG_NOSYSTEM="1")
    return env


DEMO_COMMAND = "kfm-prov demo demo-lake > demo.txt"


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``kfm-prov demo demo-lake > demo.txt``, run once per session by the installed CLI as a
    user types it; holds ``demo-lake/`` and ``demo.txt`` (the walkthrough). The guides that
    start with this command and tests/test_examples.py start from copies of it."""
    def build(target: Path) -> None:
        home = target / "home"
        home.mkdir()
        done = subprocess.run(["bash", "-c", f"set -euo pipefail\n{DEMO_COMMAND}\n"],
                              cwd=target, env=user_env(home), capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == 0, done.stderr
        # the demo wrote inside its own directory only (demo.txt is the shell's), and its
        # demo signing key beside the lake (a key inside the lake root is refused)
        assert sorted(p.name for p in target.iterdir()) == ["demo-lake", "demo-lake-demo-key",
                                                            "demo.txt", "home"]
        assert list(home.iterdir()) == []

    return shared_build(tmp_path_factory, "demo", build)


def copy_demo(demo_build: Path, directory: Path) -> Path:
    """A private copy of the session's demo lake at ``directory/demo-lake``."""
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(demo_build / "demo-lake", directory / "demo-lake",
                                symlinks=True))


@pytest.fixture
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """An empty lake; in a module marked ``multi_lake``, a copy of the shared multi lake."""
    if request.node.get_closest_marker("multi_lake") is None:
        return Lake.init(tmp_path / "lake")
    shutil.copytree(request.getfixturevalue("multi_built")[0], tmp_path / "lake",
                    symlinks=True)
    return Lake.open(tmp_path / "lake")


@pytest.fixture(scope="session")
def multi_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Multi]:
    """The multi lake, built once per session (all workers); tests get copies of it."""
    import dataclasses
    import json

    from tests.multi import Multi, build_multi

    def build(target: Path) -> None:
        made = build_multi(Lake.init(target / "lake"))
        (target / "multi.json").write_text(json.dumps(dataclasses.asdict(made)))

    target = shared_build(tmp_path_factory, "multi", build)
    return target / "lake", Multi(**json.loads((target / "multi.json").read_text()))


@pytest.fixture(scope="session")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's lake (``kfm-prov demo``), built once per session; it holds its audit site
    in ``site/``. Read it only: copy it (``shutil.copytree(..., symlinks=True)``) to break it."""
    from kfm_prov.demo import run_demo

    root = tmp_path_factory.mktemp("demo") / "demo-lake"
    run_demo(root, echo=lambda _line: None)
    return root


@pytest.fixture
def multi(multi_built: tuple[Path, Multi]) -> Multi:
    """What the multi lake holds (run ids and paths), for modules marked ``multi_lake``."""
    return multi_built[1]


@pytest.fixture
def run_cli(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> CliInvoker:
    """Invoke ``kfm-prov`` inside the lake: cwd is the root, as a user would stand."""
    monkeypatch.chdir(lake.root)
    monkeypatch.delenv("KFM_PROV_ROOT", raising=False)

    def invoke(*args: str, expect: int | None = 0, input: str | None = None) -> Result:
        result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, (
                f"exit {result.exit_code}, expected {expect}\nstdout: {result.stdout}\n"
                f"stderr: {result.stderr}")
        return result

    return invoke


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def snapshot(root: Path) -> dict[str, str]:
    """Every file and symlink under ``root`` with its digest: equal snapshots, same lake."""
    state: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                state[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                state[rel] = "dir"
    return state


def one_error_line(result: Result) -> str:
    """The error contract: exactly one line on stderr, starting with 'kfm-prov: error:'."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kfm-prov: error: "), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


def add_raw(lake: Lake, rel: str, content: str, **options: str) -> str:
    """Write a raw capture and record it (CC-BY-4.0, public unless told otherwise)."""
    write(lake.root / rel, content)
    options.setdefault("license", "CC-BY-4.0")
    options.setdefault("attribution", "Kansas GLO")
    lake.raw_add([lake.root / rel], **options)
    return rel


@dataclass
class Chain:
    """raw → A (normalise) → B (GeoJSON product): the smallest promotable lineage."""

    raw: str
    a: Run
    b: Run

    @property
    def product(self) -> str:
        return f"{self.b.rel_dir}/artifacts/parcels.geojson"


def make_chain(lake: Lake, family: str = "glo", *, raw_name: str = "patents.csv",
               sensitivity: str = "public", product: str = GEOJSON) -> Chain:
    src = f"data/raw/{family}/{raw_name}"
    if not (lake.root / src).exists():
        add_raw(lake, src, "id,name\n1,Smith\n2,Jones\n", sensitivity=sensitivity)
    with lake.capture(family, f"pipelines/{family}/normalise", **CODE) as a:
        a.use(src)
        a.output("normalised.csv").write_text((lake.root / src).read_text().upper())
        a.gate("schema", "pass", {"rows": 2})
    with lake.capture(family, f"pipelines/{family}/parcels", **CODE,
                      params={"crs": "EPSG:4326"}) as b:
        b.use(a.artifacts / "normalised.csv")
        b.output("parcels.geojson", role="product", sensitivity="public").write_text(product)
        b.gate("geometry_validity", "pass")
    return Chain(src, a, b)


@pytest.fixture
def chain(lake: Lake) -> Chain:
    return make_chain(lake)


@pytest.fixture
def promoted(lake: Lake, chain: Chain) -> PromotionResult:
    """A lake with one promoted version, glo v1."""
    return lake.promote(chain.b.run_id)
