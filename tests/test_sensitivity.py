"""Sensitivity is a property of bytes, and "reconstructible from raw" is never vacuous.

Through the real CLI: a run that copies sensitive-location bytes without declaring them,
a second raw capture of the same bytes labelled public, a run with no inputs and a run
whose only input is an orphan are each refused; an honest redaction is still promoted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kfm_prov.lake import Lake
from kfm_prov.store import raw
from tests.conftest import (
    CODE,
    CODE_ARGS,
    CliInvoker,
    add_raw,
    one_error_line,
    snapshot,
    write,
)

PY = sys.executable
SITES = "data/raw/glo/sites.csv"
PATENTS = "data/raw/glo/patents.csv"
SITES_BYTES = "site,lat,lon\nA,38.51234,-97.61234\n"


@pytest.fixture
def sensitive(lake: Lake) -> Lake:
    """A lake with a sensitive-location capture and an unrelated public one."""
    add_raw(lake, SITES, SITES_BYTES, sensitivity="sensitive-location")
    add_raw(lake, PATENTS, "id,name\n1,Smith\n", sensitivity="public")
    return lake


def copy_script(source: str, name: str, *, upper: bool = False) -> str:
    """A command that writes ``source``'s bytes (optionally upper-cased) to artifacts/name."""
    change = ".upper()" if upper else ""
    return (f"import os; data = open({source!r}).read(){change};"
            f" open(os.path.join(os.environ['KFM_ARTIFACTS_DIR'], {name!r}), 'w').write(data)")


def run(run_cli: CliInvoker, *args: str, script: str) -> str:
    """``kfm-prov run`` with a Python one-liner; returns the run id."""
    result = run_cli("run", "-f", "glo", "-p", "pipelines/glo", *CODE_ARGS, *args,
                     "--json", "--", PY, "-c", script)
    return str(json.loads(result.stdout)["run_id"])


def check(run_cli: CliInvoker, run_id: str, expect: int = 1) -> dict:
    return dict(json.loads(run_cli("check", run_id, "--json", expect=expect).stdout))


def codes(report: dict, check_id: str) -> set[str]:
    (found,) = [c for c in report["checks"] if c["id"] == check_id]
    return set(found.get("reasons", []))


def test_undeclared_copy_of_sensitive_bytes_is_refused(sensitive: Lake,
                                                       run_cli: CliInvoker) -> None:
    run_id = run(run_cli, "-i", PATENTS, "-o", "sites.csv:product:public",
                 script=copy_script(SITES, "sites.csv"))
    report = check(run_cli, run_id)
    assert "sensitivity-downgrade" in codes(report, "sensitivity")
    finding = next(f for c in report["checks"] for f in c.get("findings", [])
                   if f["code"] == "sensitivity-downgrade")
    assert f"has the bytes of {SITES}, recorded sensitive-location" in finding["message"]
    assert report["products"][0]["sensitivity"] == "sensitive-location"
    before = snapshot(sensitive.root / "data/processed")
    refused = run_cli("promote", run_id, expect=1)
    assert "sensitiv" in refused.stderr + refused.stdout
    assert snapshot(sensitive.root / "data/processed") == before


def test_an_ancestor_holding_sensitive_bytes_taints_its_descendants(
        sensitive: Lake, run_cli: CliInvoker) -> None:
    first = run(run_cli, "-i", PATENTS, "-o", "copy.csv",
                script=copy_script(SITES, "copy.csv"))
    copy = f"data/work/runs/glo/{first}/artifacts/copy.csv"
    second = run(run_cli, "-i", copy, "-o", "out.csv:product:public",
                 script=copy_script(copy, "out.csv", upper=True))
    report = check(run_cli, second)
    assert "sensitivity-downgrade" in codes(report, "sensitivity")
    finding = next(f for c in report["checks"] for f in c.get("findings", [])
                   if f["code"] == "sensitivity-downgrade")
    sites = raw.lookup(sensitive.config, SITES)
    assert sites is not None and finding["nodes"][0] == f"file:{sites.digest}"
    assert SITES in finding["message"]


def test_raw_add_refuses_known_sensitive_bytes_under_a_lower_label(
        sensitive: Lake, run_cli: CliInvoker) -> None:
    write(sensitive.root / "data/raw/other/public-copy.csv", SITES_BYTES)
    before = snapshot(sensitive.root / "data/raw")
    result = run_cli("raw", "add", "data/raw/other/public-copy.csv", "--license", "CC0-1.0",
                     "--attribution", "Someone", "--sensitivity", "public", expect=1)
    line = one_error_line(result)
    assert SITES in line and "sensitive-location" in line
    assert snapshot(sensitive.root / "data/raw") == before  # nothing half-written
    # without a label the new manifest says nothing, which means restricted: still lower
    run_cli("raw", "add", "data/raw/other/public-copy.csv", "--license", "CC0-1.0",
            "--attribution", "Someone", expect=1)
    # at the same label it is a second capture of the same bytes, and fine
    run_cli("raw", "add", "data/raw/other/public-copy.csv", "--license", "CC0-1.0",
            "--attribution", "Someone", "--sensitivity", "sensitive-location")


def test_a_hand_recorded_public_copy_of_sensitive_bytes_is_refused_at_the_gate(
        sensitive: Lake, run_cli: CliInvoker) -> None:
    """Bypassing ``raw add`` (editing the manifest and checksums) does not launder either."""
    family = sensitive.root / "data/raw/other"
    write(family / "public-copy.csv", SITES_BYTES)
    digest = raw.lookup(sensitive.config, SITES).digest  # type: ignore[union-attr]
    write(family / "checksums.sha256", f"{digest.split(':')[1]}  public-copy.csv\n")
    write(family / "manifest.yml", "schema_version: kfm.raw_manifest.v1\nlicense: CC0-1.0\n"
          "attribution: Someone\nsensitivity: public\n")
    run_cli("index", "rebuild")
    run_id = run(run_cli, "-i", "data/raw/other/public-copy.csv",
                 "-o", "out.csv:product:public",
                 script=copy_script("data/raw/other/public-copy.csv", "out.csv", upper=True))
    report = check(run_cli, run_id)
    assert "sensitivity-downgrade" in codes(report, "sensitivity")
    # nothing vouches for the hand-written labels either: the manifest has no trail
    assert "raw-labels-untracked" in codes(report, "raw-sources")
    # and the index need not know the sensitive capture: the gate reads the manifests
    with sensitive.index() as index, index.transaction() as conn:
        conn.execute("DELETE FROM raw WHERE path = ?", (SITES,))
    report = check(run_cli, run_id)
    assert "sensitivity-downgrade" in codes(report, "sensitivity")


def test_a_run_with_no_inputs_has_no_raw_ancestry(sensitive: Lake,
                                                  run_cli: CliInvoker) -> None:
    script = ("import os; open(os.path.join(os.environ['KFM_ARTIFACTS_DIR'], 'made.csv'),"
              " 'w').write('x\\n1\\n')")
    run_id = run(run_cli, "-o", "made.csv:product:public", script=script)
    report = check(run_cli, run_id)
    assert codes(report, "raw-sources") == {"no-raw-ancestry"}
    assert all(c["status"] == "pass" for c in report["checks"] if c["id"] != "raw-sources")
    run_cli("promote", run_id, expect=1)


def test_a_run_whose_only_input_is_an_orphan_has_no_raw_ancestry(
        sensitive: Lake, run_cli: CliInvoker) -> None:
    write(sensitive.root / "data/work/scratch/found.csv", "x\n1\n")
    run_id = run(run_cli, "-i", "data/work/scratch/found.csv", "-o", "out.csv:product:public",
                 script=copy_script("data/work/scratch/found.csv", "out.csv", upper=True))
    report = check(run_cli, run_id)
    assert "no-raw-ancestry" in codes(report, "raw-sources")
    assert "orphan-input" in codes(report, "inputs")


def test_a_recorded_redaction_still_allows_promotion(sensitive: Lake,
                                                     run_cli: CliInvoker) -> None:
    with sensitive.capture("glo", "pipelines/glo/snap", **CODE) as snap:
        snap.use(SITES)
        snap.output("copy.csv").write_text(Path(sensitive.root / SITES).read_text())
        snap.redact(snap.artifacts / "copy.csv", "snapped.csv",
                    profile={"coordinates": "snapped to a 1 km grid"}).write_text(
            "site,lat,lon\nA,38.5,-97.6\n")
    report = check(run_cli, snap.run_id, expect=0)
    assert report["ok"] and report["products"][0]["sensitivity"] == "public"
    run_cli("promote", snap.run_id)
