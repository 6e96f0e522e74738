from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from kfm_prov.lake import Lake
from kfm_prov.store import raw
from tests.conftest import one_error_line, snapshot, write

ADD = ("raw", "add")
LICENSE = ("--license", "CC-BY-4.0", "--attribution", "Kansas GLO")


def test_add_records_manifest_and_checksums(run_cli, lake: Lake) -> None:
    write(lake.root / "data/raw/glo/patents.csv", "id,name\n1,Smith\n")
    write(lake.root / "data/raw/glo/sub/more.csv", "id\n2\n")
    result = run_cli(*ADD, "data/raw/glo/patents.csv", "data/raw/glo/sub/more.csv", *LICENSE,
                     "--source-uri", "https://glo.example.org/export", "--sensitivity",
                     "public", "--json")
    added = json.loads(result.stdout)
    assert [a["status"] for a in added] == ["added", "added"]
    manifest = yaml.safe_load((lake.root / "data/raw/glo/manifest.yml").read_text())
    assert manifest["license"] == "CC-BY-4.0"
    assert manifest["source"] == {"uri": "https://glo.example.org/export"}
    assert manifest["sensitivity"] == "public"
    lines = (lake.root / "data/raw/glo/checksums.sha256").read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == ["patents.csv", "sub/more.csv"]
    info = raw.lookup(lake.config, "data/raw/glo/sub/more.csv")
    assert info is not None and info.license == "CC-BY-4.0" and info.sensitivity == "public"
    assert info.digest == added[1]["digest"]


def test_checksums_file_rechecks_with_coreutils(run_cli, lake: Lake) -> None:
    write(lake.root / "data/raw/glo/a.csv", "a")
    run_cli(*ADD, "data/raw/glo/a.csv", *LICENSE)
    import subprocess
    out = subprocess.run(["sha256sum", "-c", "checksums.sha256"], cwd=lake.root / "data/raw/glo",
                         capture_output=True, text=True)
    assert out.returncode == 0 and "a.csv: OK" in out.stdout


def test_readding_unchanged_is_a_noop(run_cli, lake: Lake) -> None:
    write(lake.root / "data/raw/glo/a.csv", "a")
    run_cli(*ADD, "data/raw/glo/a.csv", *LICENSE)
    before = snapshot(lake.root / "data/raw")
    result = run_cli(*ADD, "data/raw/glo/a.csv", *LICENSE)
    assert result.stdout.startswith("unchanged")
    assert snapshot(lake.root / "data/raw") == before


def test_changed_bytes_are_refused_and_nothing_is_written(run_cli, lake: Lake) -> None:
    write(lake.root / "data/raw/glo/a.csv", "a")
    run_cli(*ADD, "data/raw/glo/a.csv", *LICENSE)
    write(lake.root / "data/raw/glo/a.csv", "tampered")
    write(lake.root / "data/raw/glo/b.csv", "new file in the same call")
    before = snapshot(lake.root)
    result = run_cli(*ADD, "data/raw/glo/b.csv", "data/raw/glo/a.csv", *LICENSE, expect=1)
    line = one_error_line(result)
    assert "write-once" in line and "data/raw/glo/a.csv" in line
    assert snapshot(lake.root) == before  # b.csv was not recorded either


def test_unknown_license_suggests_the_nearest(run_cli, lake: Lake) -> None:
    write(lake.root / "data/raw/glo/a.csv", "a")
    result = run_cli(*ADD, "data/raw/glo/a.csv", "--license", "CC-BY-4", "--attribution", "x",
                     expect=2)
    assert "did you mean 'CC-BY-4.0'" in one_error_line(result)
    assert not (lake.root / "data/raw/glo/manifest.yml").exists()


def test_refusals_for_files_in_the_wrong_place(run_cli, lake: Lake, tmp_path: Path) -> None:
    write(lake.root / "data/work/x.csv", "x")
    write(lake.root / "data/raw/loose.csv", "x")
    outside = write(tmp_path / "outside.csv", "x")
    os.symlink(outside, lake.root / "data/raw/glo-link.csv")
    (lake.root / "data/raw/glo").mkdir(parents=True)
    os.symlink(outside, lake.root / "data/raw/glo/link.csv")
    before = snapshot(lake.root)
    cases = {
        "data/work/x.csv": "not under data/raw/",
        "data/raw/loose.csv": "inside a family directory",
        str(outside): "outside the lake root",
        "data/raw/glo/link.csv": "leaves the lake root",
        "data/raw/glo/missing.csv": "no such file",
    }
    for path, message in cases.items():
        assert message in one_error_line(run_cli(*ADD, path, *LICENSE, expect=2)), path
    assert snapshot(lake.root) == before


def test_a_file_with_other_terms_gets_its_own_entry(run_cli, lake: Lake) -> None:
    write(lake.root / "data/raw/glo/a.csv", "a")
    write(lake.root / "data/raw/glo/b.csv", "b")
    run_cli(*ADD, "data/raw/glo/a.csv", *LICENSE)
    run_cli(*ADD, "data/raw/glo/b.csv", "--license", "CC0-1.0", "--attribution", "Kansas GLO",
            "--sensitivity", "restricted")
    assert raw.lookup(lake.config, "data/raw/glo/a.csv").license == "CC-BY-4.0"
    b = raw.lookup(lake.config, "data/raw/glo/b.csv")
    assert (b.license, b.sensitivity) == ("CC0-1.0", "restricted")
    assert raw.lookup(lake.config, "data/raw/glo/unrecorded.csv") is None


def test_malformed_manifest_and_checksums_are_named(lake: Lake) -> None:
    write(lake.root / "data/raw/glo/manifest.yml", "license: MIT\nlicense: MIT\n")
    write(lake.root / "data/raw/glo/a.csv", "a")
    import pytest

    from kfm_prov.errors import InputError
    with pytest.raises(InputError, match="duplicate key") as info:
        raw.lookup(lake.config, "data/raw/glo/a.csv")
    assert info.value.file == "data/raw/glo/manifest.yml"
    write(lake.root / "data/raw/glo/manifest.yml", "license: MIT\nattribution: me\n")
    write(lake.root / "data/raw/glo/checksums.sha256", "nothex  a.csv\n")
    with pytest.raises(InputError) as info:
        raw.lookup(lake.config, "data/raw/glo/a.csv")
    assert (info.value.file, info.value.field) == ("data/raw/glo/checksums.sha256", "line 1")
