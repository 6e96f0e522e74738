"""Crashes and hostile names never lose a label or brick the lake (issue 12 §7).

A ``raw add`` killed between its two files, artifact names no receipt can hold, one
broken run directory among good ones, absurd numbers in a receipt, a corrupt index, an
empty PROV bundle, a deeply nested collection and a 5,000-character path: each ends in
a finding or a clean refusal naming the file, and every other command keeps working.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kfm_prov.cli.main import cli
from kfm_prov.core.crashpoints import ENV, TRACE_ENV
from kfm_prov.lake import Lake
from kfm_prov.store import raw
from kfm_prov.store.digests import hash_files
from tests.conftest import CODE_ARGS, COMMIT, make_chain, write

PY = sys.executable


def kfm(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--root", str(root), *args], catch_exceptions=False)


def kfm_process(root: Path, *args: str, crash: str | None = None,
                ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV, TRACE_ENV, "KFM_PROV_ROOT")}
    if crash:
        env[ENV] = crash
    return subprocess.run([PY, "-m", "kfm_prov.cli", "--root", str(root), *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def assert_clean(result: Result | subprocess.CompletedProcess[str],
                 codes: tuple[int, ...] = (1, 2)) -> str:
    """Exit as expected, never a traceback or an internal error; returns all it said."""
    code = result.exit_code if isinstance(result, Result) else result.returncode
    text = result.stdout + result.stderr
    assert code in codes, (code, text[-2000:])
    assert "Traceback" not in text and "internal error" not in text, text[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("kfm-prov: error")]
    assert len(errors) <= 1, result.stderr
    return text


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    lake = Lake.init(tmp_path_factory.mktemp("hostile-lake") / "lake")
    chain = make_chain(lake)
    lake.promote(chain.b.run_id)
    return {"root": lake.root, "chain": chain}


@pytest.fixture
def root(template: dict[str, Any], tmp_path: Path) -> Path:
    copy = tmp_path / "lake"
    shutil.copytree(template["root"], copy, symlinks=True)
    return copy


def still_works(root: Path, *, runs: int | None = None) -> None:
    """The commands about the other runs all work."""
    listed = kfm(root, "runs", "--json")
    assert_clean(listed, (0,))
    if runs is not None:
        assert len(json.loads(listed.stdout)) == runs
    assert_clean(kfm(root, "index", "rebuild"), (0,))
    assert_clean(kfm(root, "verify"), (0,))
    assert_clean(kfm(root, "run", "-f", "glo", "-p", "p", *CODE_ARGS,
                     "-i", "data/raw/glo/patents.csv", "--", PY, "-c", "pass"), (0,))


# --- raw add killed between checksums.sha256 and manifest.yml --------------------------------

@pytest.mark.parametrize("family", ["glo", "newfamily"])
@pytest.mark.parametrize("point", ["write:manifest.yml", "write:checksums.sha256"])
def test_raw_add_killed_between_its_files_never_loses_the_label(root: Path, family: str,
                                                                point: str) -> None:
    rel = f"data/raw/{family}/sites.csv"
    write(root / rel, "site,lat,lon\nA,38.51,-97.61\n")
    args = ("raw", "add", rel, "--license", "CC0-1.0", "--attribution", "KSHS",
            "--sensitivity", "sensitive-location")
    killed = kfm_process(root, *args, crash=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    config = Lake.open(root).config
    info = raw.lookup(config, rel)
    assert info is None or info.sensitivity == "sensitive-location", info  # never public
    again = kfm_process(root, *args, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)[0]["status"] in ("added", "unchanged")
    info = raw.lookup(config, rel)
    assert info is not None and info.sensitivity == "sensitive-location"


def test_a_checksums_file_left_without_its_manifest_is_completed_by_a_retry(
        root: Path) -> None:
    """The state an older kfm-prov left when killed: bytes listed, no label anywhere."""
    rel = "data/raw/newfamily/sites.csv"
    write(root / rel, "site\nA\n")
    digest = hash_files([root / rel])[0]
    write(root / "data/raw/newfamily/checksums.sha256", f"{digest[7:]}  sites.csv\n")
    result = kfm(root, "raw", "add", str(root / rel), "--license", "CC0-1.0",
                 "--attribution", "KSHS",
                 "--sensitivity", "sensitive-location")
    assert result.exit_code == 0 and result.stdout.startswith("added"), result.stderr
    info = raw.lookup(Lake.open(root).config, rel)
    assert info is not None and info.sensitivity == "sensitive-location"


# --- file names no receipt can hold -------------------------------------------------------

UNSAFE_NAMES = [b"a\nb.csv", b"a\\b.csv", b"tab\there.csv", b"esc\x1b[31m.csv",
                b"not-utf8-\xff.csv"]


@pytest.mark.parametrize("name", UNSAFE_NAMES, ids=["newline", "backslash", "tab", "escape",
                                                    "non-utf8"])
def test_an_unsafe_artifact_name_is_refused_at_capture_and_bricks_nothing(
        root: Path, name: bytes) -> None:
    script = ("import os; d = os.environb[b'KFM_ARTIFACTS_DIR'];"
              f" open(os.path.join(d, {name!r}), 'wb').write(b'x')")
    result = kfm_process(root, "run", "-f", "glo", "-p", "p", *CODE_ARGS,
                         "-i", "data/raw/glo/patents.csv", "--", PY, "-c", script)
    text = assert_clean(result, (1,))
    shown = repr(os.fsdecode(name))[1:-1]
    assert shown in text, text  # the error names the file
    (run_dir,) = [p for p in (root / "data/work/runs/glo").iterdir()
                  if json.loads((p / "run_record.json").read_text())["status"] == "failed"]
    assert kfm(root, "validate", str(run_dir)).exit_code == 0  # its receipts are valid
    still_works(root, runs=3)


def test_a_capture_killed_with_an_unsafe_name_in_artifacts_is_swept_cleanly(
        root: Path) -> None:
    script = (f"import os\nfrom kfm_prov.lake import Lake\nlake = Lake.open({str(root)!r})\n"
              f"with lake.capture('glo', 'pipelines/api', commit={COMMIT!r}) as run:\n"
              "    run.use('data/raw/glo/patents.csv')\n"
              "    (run.artifacts / 'a\\nb.csv').write_text('x')\n"
              "    (run.artifacts / 'good.csv').write_text('y')\n"
              "    os.kill(os.getpid(), 9)\n")
    killed = subprocess.run([PY, "-c", script], cwd=root, capture_output=True, text=True,
                            check=False, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    still_works(root, runs=3)
    shown = kfm(root, "runs", "--json")
    (dead,) = [r for r in json.loads(shown.stdout) if r["status"] == "interrupted"]
    manifest = json.loads((root / dead["run_dir"] / "run_manifest.json").read_text())
    assert [o["path"].rsplit("/", 1)[-1] for o in manifest["outputs"]] == ["good.csv"]


# --- one broken run directory among good ones ----------------------------------------------

def _broken_run(root: Path, chain: Any, how: str) -> Path:
    from ulid import ULID

    run_id = str(ULID())
    target = root / "data/work/runs/glo" / run_id
    shutil.copytree(root / chain.a.rel_dir, target)
    for name in ("run_record.json", "run_manifest.json", "validation_report.json",
                 "prov.json"):
        path = target / name
        path.write_text(path.read_text().replace(chain.a.run_id, run_id))
    manifest = target / "run_manifest.json"
    if how == "newline-path":
        manifest.write_text(manifest.read_text().replace("normalised.csv", "normal\\nised.csv"))
    elif how == "record-is-a-directory":
        (target / "run_record.json").unlink()
        (target / "run_record.json").mkdir()
    elif how == "garbage":
        (target / "validation_report.json").write_bytes(b"\x00\xff garbage")
    else:
        value = {"bigint": "9" * 5001, "1e30": "1e30", "huge": str(10 ** 30)}[how]
        manifest.write_text(manifest.read_text().replace('"size": ', f'"size": {value}, "x": ',
                                                         1))
    return target


@pytest.mark.parametrize("how", ["newline-path", "record-is-a-directory", "garbage",
                                 "bigint", "1e30", "huge"])
def test_one_broken_run_directory_is_a_finding_about_that_run(template: dict[str, Any],
                                                              root: Path, how: str) -> None:
    target = _broken_run(root, template["chain"], how)
    rebuilt = kfm(root, "index", "rebuild", "--json")
    assert_clean(rebuilt, (0,))
    skipped = json.loads(rebuilt.stdout)["skipped"]
    assert any(target.name in (s.get("file") or "") for s in skipped), skipped
    listed = kfm(root, "runs", "--json")
    assert_clean(listed, (0,))
    assert len(json.loads(listed.stdout)) == 2
    assert_clean(kfm(root, "verify"), (0, 1))
    assert_clean(kfm(root, "check", template["chain"].b.run_id), (0,))
    assert_clean(kfm(root, "show", template["chain"].b.run_id), (0,))
    if how != "record-is-a-directory":
        assert_clean(kfm(root, "validate", str(target)), (1, 2))
    assert_clean(kfm(root, "record", str(target)), (1, 2))


@pytest.mark.parametrize("how", ["bigint", "1e30", "huge"])
def test_absurd_numbers_in_a_recorded_receipt_are_findings(template: dict[str, Any],
                                                           root: Path, how: str) -> None:
    chain = template["chain"]
    manifest = root / chain.a.rel_dir / "run_manifest.json"
    value = {"bigint": "9" * 5001, "1e30": "1e30", "huge": str(10 ** 30)}[how]
    manifest.write_text(manifest.read_text().replace('"size": ', f'"size": {value}, "x": ', 1))
    for args in (("check", chain.b.run_id), ("show", chain.a.run_id), ("verify",),
                 ("trace", chain.product, "--verify"), ("validate", str(manifest))):
        assert_clean(kfm(root, *args), (1, 2) if args[0] in ("check", "validate", "verify")
                     else (0, 1, 2))
    rebuilt = kfm(root, "index", "rebuild", "--json")
    assert_clean(rebuilt, (0,))
    assert json.loads(rebuilt.stdout)["skipped"]


# --- the index, publications and paths ----------------------------------------------------

@pytest.mark.parametrize("garbage", [b"garbage" * 1000, b"",
                                     b"SQLite format 3\x00" + b"\x01" * 5000])
def test_a_corrupt_index_is_rebuilt(template: dict[str, Any], root: Path,
                                    garbage: bytes) -> None:
    index = root / "data/work/cache/kfm-prov/lineage.sqlite"
    for stale in index.parent.glob("lineage.sqlite-*"):
        stale.unlink()
    index.write_bytes(garbage)
    listed = kfm(root, "runs", "--json")
    assert_clean(listed, (0,))
    assert len(json.loads(listed.stdout)) == 2
    assert_clean(kfm(root, "check", template["chain"].b.run_id), (0,))


@pytest.mark.parametrize("content", [b"", b"{}", b"[]", b"null"])
def test_an_empty_prov_bundle_is_a_finding_or_a_clean_refusal(template: dict[str, Any],
                                                              root: Path, content: bytes) -> None:
    (root / "data/prov/glo/v1.json").write_bytes(content)
    chain = template["chain"]
    for args in (("verify",), ("trace", chain.product), ("trace", "glo-v1"),
                 ("export", "--family", "glo"), ("export", "--artifact", "glo-v1"),
                 ("index", "rebuild")):
        assert_clean(kfm(root, *args), (0, 1, 2))
    assert_clean(kfm(root, "promote", chain.b.run_id), (0, 1, 2))


def test_a_deeply_nested_collection_is_a_clean_refusal(template: dict[str, Any],
                                                      root: Path) -> None:
    collection = root / "data/stac/glo/collection.json"
    collection.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    text = assert_clean(kfm(root, "verify"), (1,))
    assert "data/stac/glo/collection.json" in text
    # new bytes (the template's own products are already published: that is a no-op)
    fresh = make_chain(Lake.open(root), product='{"type": "FeatureCollection", "features": []}')
    text = assert_clean(kfm(root, "promote", fresh.b.run_id), (1, 2))
    assert "data/stac/glo/collection.json" in text


def test_a_5000_character_path_is_a_clean_refusal(template: dict[str, Any],
                                                  root: Path) -> None:
    long = "data/raw/glo/" + "a" * 5000
    text = assert_clean(kfm(root, "raw", "add", str(root / long), "--license", "CC0-1.0",
                            "--attribution", "x"), (2,))
    assert "too long" in text
    checksums = root / "data/raw/glo/checksums.sha256"
    checksums.write_text(checksums.read_text() + "a" * 64 + "  " + "b" * 5000 + "\n")
    for args in (("verify",), ("check", template["chain"].b.run_id, "--json"), ("index", "rebuild"),
                 ("trace", template["chain"].product, "--verify")):
        text = assert_clean(kfm(root, *args), (0,) if args[0] == "index" else (1, 2))
        if args[0] != "trace":  # trace says which raw file is no longer recorded
            assert "data/raw/glo/checksums.sha256" in text, (args, text[-500:])


@pytest.mark.parametrize("name", ["a\tb.csv", "a\\b.csv", "esc\x1b[2J.csv", "x\x85y.csv"])
def test_unsafe_names_are_refused_where_they_are_declared(template: dict[str, Any], root: Path,
                                                          name: str) -> None:
    shown = repr(name)[1:-1]
    declared = kfm(root, "run", "-f", "glo", "-p", "p", *CODE_ARGS,
                   "-i", "data/raw/glo/patents.csv", "-o", f"{name}:product", "--", PY, "-c",
                   "pass")
    assert shown in assert_clean(declared, (2,))
    write(root / "data/raw/glo" / name.replace("\\", "_"), "x")
    used = kfm(root, "run", "-f", "glo", "-p", "p", *CODE_ARGS,
               "-i", f"data/raw/glo/{name}", "--", PY, "-c", "pass")
    assert shown in assert_clean(used, (2,))
    # a pipeline that writes its own receipts naming such a file is refused by record
    chain = template["chain"]
    target = _broken_run(root, chain, "garbage")
    (target / "validation_report.json").write_text(
        (root / chain.a.rel_dir / "validation_report.json").read_text().replace(
            chain.a.run_id, target.name))
    manifest = target / "run_manifest.json"
    data = json.loads(manifest.read_text())
    data["outputs"][0]["path"] = f"{target.relative_to(root).as_posix()}/artifacts/{name}"
    manifest.write_text(json.dumps(data))
    text = assert_clean(kfm(root, "record", str(target)), (2,))
    assert "run_manifest.json" in text
    with Lake.open(root).index() as index:
        assert index.run(target.name) is None  # nothing was recorded
    still_works(root)
