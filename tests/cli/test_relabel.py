"""``raw relabel`` and the label trail through the real CLI: the one way to change labels,
what the gate, trace, certificate and verify make of it, and hand edits as an attacker
with write access to the lake would make them."""

from __future__ import annotations

import json

import yaml

from kfm_prov.lake import Lake
from kfm_prov.store.labels import TRAIL
from tests.conftest import Chain, CliInvoker, make_chain, one_error_line, snapshot, write

SRC = "data/raw/glo/patents.csv"
MANIFEST = "data/raw/glo/manifest.yml"
TRAIL_REL = f"data/raw/glo/{TRAIL}"


def trail(lake: Lake) -> list[dict]:
    return [json.loads(line) for line in (lake.root / TRAIL_REL).read_text().splitlines()]


def relabel(run_cli: CliInvoker, *args: str, expect: int = 0):
    return run_cli("raw", "relabel", *args, expect=expect)


def verify(run_cli: CliInvoker, expect: int) -> dict:
    return json.loads(run_cli("verify", "--json", expect=expect).stdout)


def codes(found: list[dict]) -> set[str]:
    return {f["code"] for f in found}


def gate_codes(run_cli: CliInvoker, run_id: str, expect: int) -> set[str]:
    report = json.loads(run_cli("check", run_id, "--json", expect=expect).stdout)
    return {f["code"] for c in report["checks"] for f in c.get("findings", [])}


def hand_edit(lake: Lake, old: str, new: str) -> None:
    path = lake.root / MANIFEST
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


# --- raw add --------------------------------------------------------------------------------

def test_raw_add_starts_the_trail(lake: Lake, run_cli: CliInvoker) -> None:
    write(lake.root / SRC, "id\n1\n")
    run_cli("raw", "add", SRC, "--license", "CC-BY-4.0", "--attribution", "GLO",
            "--sensitivity", "restricted", "--by", "Ann")
    [entry] = trail(lake)
    assert (entry["action"], entry["path"], entry["by"], entry["old"]) == ("add", SRC, "Ann",
                                                                           None)
    assert entry["new"] == {"license": "CC-BY-4.0", "attribution": "GLO",
                            "sensitivity": "restricted"}
    import hashlib
    assert entry["manifest_sha256"] == "sha256:" + hashlib.sha256(
        (lake.root / MANIFEST).read_bytes()).hexdigest()
    assert verify(run_cli, 0)["notes"] == []
    assert run_cli("validate", TRAIL_REL).stdout.endswith("valid\n")
    line = one_error_line(run_cli("raw", "add", TRAIL_REL, "--license", "CC0-1.0",
                                  "--attribution", "x", expect=2))
    assert "label trail file is not a raw capture" in line
    with (lake.root / TRAIL_REL).open("a") as handle:
        handle.write('{"schema_version": "kfm.raw_labels.v1"}\n')
    assert "line 2" in run_cli("validate", TRAIL_REL, expect=1).stdout


def test_raw_add_of_an_unchanged_file_with_other_labels_points_at_relabel(
        lake: Lake, run_cli: CliInvoker) -> None:
    """Before: 'unchanged', exit 0, and the new flags silently dropped."""
    write(lake.root / SRC, "id\n1\n")
    run_cli("raw", "add", SRC, "--license", "CC-BY-4.0", "--attribution", "GLO")
    before = snapshot(lake.root / "data/raw")
    line = one_error_line(run_cli("raw", "add", SRC, "--license", "MIT", "--attribution",
                                  "GLO", "--sensitivity", "public", expect=2))
    assert f"({SRC}: license, sensitivity)" in line
    assert "'CC-BY-4.0' → 'MIT'" in line and "kfm-prov raw relabel" in line
    assert snapshot(lake.root / "data/raw") == before
    # the same labels again are still a no-op
    assert run_cli("raw", "add", SRC, "--license", "CC-BY-4.0", "--attribution",
                   "GLO").stdout.startswith("unchanged")


# --- raw relabel ----------------------------------------------------------------------------

def test_relabel_changes_labels_keeps_the_trail_and_the_index_follows(
        lake: Lake, chain: Chain, run_cli: CliInvoker) -> None:
    out = relabel(run_cli, SRC, "--license", "CC0-1.0", "--attribution", "Kansas GLO office",
                  "--reason", "the office re-released it", "--by", "J. Steward", "--json")
    [result] = json.loads(out.stdout)
    assert result["status"] == "relabelled" and result["trail"] == TRAIL_REL
    assert (result["old"]["license"], result["new"]["license"]) == ("CC-BY-4.0", "CC0-1.0")
    manifest = yaml.safe_load((lake.root / MANIFEST).read_text())
    assert manifest["files"]["patents.csv"]["license"] == "CC0-1.0"
    last = trail(lake)[-1]
    assert (last["action"], last["by"], last["reason"]) == (
        "relabel", "J. Steward", "the office re-released it")
    assert last["old"]["attribution"] == "Kansas GLO"
    assert last["new"]["attribution"] == "Kansas GLO office"
    # trace shows the new labels without an index rebuild
    traced = json.loads(run_cli("trace", chain.product, "--format", "json").stdout)
    [source] = traced["summary"]["raw_sources"]
    assert (source["license"], source["attribution"]) == ("CC0-1.0", "Kansas GLO office")
    assert verify(run_cli, 0)["findings"] == []


def test_relabel_refusals_name_the_file_and_field_and_write_nothing(
        lake: Lake, chain: Chain, run_cli: CliInvoker) -> None:
    write(lake.root / "data/raw/glo/loose.csv", "not recorded")
    before = snapshot(lake.root)
    cases = [
        ((SRC, "data/raw/glo/loose.csv", "--sensitivity", "restricted", "--reason", "r"),
         "not recorded in a raw manifest: relabel changes only recorded files"
         " (data/raw/glo/loose.csv)"),
        ((SRC, "--license", "CC-BY-4", "--reason", "r"), "did you mean 'CC-BY-4.0'"),
        ((SRC, "--reason", "r"), "nothing to change"),
        ((SRC, "--sensitivity", "secret", "--reason", "r"), "--sensitivity"),
        ((SRC, "--attribution", " ", "--reason", "r"), "(--attribution)"),
        ((SRC, "--sensitivity", "restricted", "--reason", " "), "(--reason)"),
        (("data/work/x.csv", "--sensitivity", "restricted", "--reason", "r"),
         "not under data/raw/"),
    ]
    for args, expected in cases:
        assert expected in one_error_line(relabel(run_cli, *args, expect=2)), args
    assert snapshot(lake.root) == before  # all or nothing: patents.csv was not relabelled


def test_a_relabel_to_the_same_labels_says_so(lake: Lake, chain: Chain,
                                              run_cli: CliInvoker) -> None:
    before = snapshot(lake.root / "data/raw")
    out = relabel(run_cli, SRC, "--sensitivity", "public", "--reason", "r")
    assert out.stdout.startswith("unchanged") and "nothing changed" in out.stderr
    assert snapshot(lake.root / "data/raw") == before


def test_relabel_of_several_files_is_one_decision(lake: Lake, run_cli: CliInvoker) -> None:
    write(lake.root / "data/raw/glo/a.csv", "a")
    write(lake.root / "data/raw/glo/sub/b.csv", "b")
    run_cli("raw", "add", "data/raw/glo/a.csv", "data/raw/glo/sub/b.csv", "--license",
            "CC-BY-4.0", "--attribution", "GLO", "--sensitivity", "sensitive-location")
    relabel(run_cli, "data/raw/glo/a.csv", "data/raw/glo/sub/b.csv", "--sensitivity",
            "restricted", "--reason", "points generalised to 1 km", "--by", "S")
    events = [e for e in trail(lake) if e["action"] == "relabel"]
    assert [e["path"] for e in events] == ["data/raw/glo/a.csv", "data/raw/glo/sub/b.csv"]
    assert len({e["at"] for e in events}) == 1
    with lake.index() as index:
        rows = index.raw_by_path(["data/raw/glo/a.csv", "data/raw/glo/sub/b.csv"])
    assert {r.sensitivity for r in rows} == {"restricted"}


def test_a_manifest_without_a_trail_fails_verify_until_adopted(
        lake: Lake, chain: Chain, run_cli: CliInvoker) -> None:
    """Before: a note. A deleted trail looks like one never begun, so it fails; raw adopt
    (tests/cli/test_raw_adopt.py) begins it, and a hand-written license is then the same
    as its SPDX id to raw add."""
    (lake.root / TRAIL_REL).unlink()  # as a lake recorded by an older kfm-prov
    report = verify(run_cli, 1)
    assert codes(report["findings"]) == {"raw-labels-untracked"} and report["notes"] == []
    hand_edit(lake, "license: CC-BY-4.0", "license: cc-by-4.0")
    run_cli("raw", "adopt", SRC, "--reason", "as recorded before trails", "--by", "S")
    run_cli("raw", "add", SRC, "--license", "CC-BY-4.0", "--attribution", "Kansas GLO")
    relabel(run_cli, SRC, "--sensitivity", "restricted", "--reason", "review", "--by", "S")
    assert [e["action"] for e in trail(lake)] == ["adopt", "relabel"]
    assert trail(lake)[0]["new"]["sensitivity"] == "public"
    assert verify(run_cli, 0)["notes"] == []


# --- the gate and the certificate -----------------------------------------------------------

def test_a_lowered_sensitivity_is_a_steward_decision_the_certificate_names(
        lake: Lake, run_cli: CliInvoker) -> None:
    chain = make_chain(lake, sensitivity="sensitive-location")
    assert "sensitivity-downgrade" in gate_codes(run_cli, chain.b.run_id, 1)
    relabel(run_cli, SRC, "--sensitivity", "public", "--reason", "sites removed upstream",
            "--by", "J. Steward")
    out = json.loads(run_cli("promote", chain.b.run_id, "--json").stdout)
    cert = json.loads((lake.root / out["certificate"]).read_text())
    [decision] = cert["steward_decisions"]
    assert (decision["path"], decision["by"], decision["reason"]) == (
        SRC, "J. Steward", "sites removed upstream")
    assert (decision["old"]["sensitivity"], decision["new"]["sensitivity"]) == (
        "sensitive-location", "public")
    assert decision["changed"] == ["sensitivity"] and decision["trail"] == TRAIL_REL
    raw_entity = next(e for e in cert["closure"]["entities"] if e["kind"] == "raw")
    assert raw_entity["sensitivity"] == "public"
    run_cli("validate", out["certificate"])
    assert verify(run_cli, 0)["findings"] == []
    # the decision must stay in the trail: erasing it (and making the trail agree with
    # the manifest) breaks the certificate
    lines = (lake.root / TRAIL_REL).read_text().splitlines()
    forged = "\n".join(lines[:-1]).replace('"sensitivity":"sensitive-location"',
                                           '"sensitivity":"public"')
    (lake.root / TRAIL_REL).write_text(forged + "\n")
    [finding] = verify(run_cli, 1)["findings"]
    assert finding["code"] == "certificate-broken"
    assert "[steward-decision-missing]" in finding["message"]


def test_a_hand_edited_manifest_is_refused_by_the_gate(lake: Lake, chain: Chain,
                                                       run_cli: CliInvoker) -> None:
    hand_edit(lake, "license: CC-BY-4.0", "license: MIT")
    assert "raw-labels-edited" in gate_codes(run_cli, chain.b.run_id, 1)
    # and relabel will not launder it
    line = one_error_line(relabel(run_cli, SRC, "--license", "CC0-1.0", "--reason", "r",
                                  expect=1))
    assert "changed outside relabel" in line and f"({MANIFEST}: license)" in line


# --- verify -----------------------------------------------------------------------------------

def test_verify_flags_labels_edited_outside_relabel(lake: Lake, chain: Chain,
                                                     run_cli: CliInvoker) -> None:
    hand_edit(lake, "sensitivity: public", "sensitivity: restricted")
    [finding] = verify(run_cli, 1)["findings"]
    assert (finding["code"], finding["file"], finding["pointer"]) == (
        "raw-labels-edited", MANIFEST, "sensitivity")
    assert "'public' → 'restricted'" in finding["message"]


def test_verify_after_publication_tells_relabel_from_hand_edit(
        lake: Lake, chain: Chain, run_cli: CliInvoker) -> None:
    """Before: a license edited in manifest.yml after publication was not told apart from
    a steward's decision, and trace kept the old license until an index rebuild."""
    run_cli("promote", chain.b.run_id)
    relabel(run_cli, SRC, "--license", "CC0-1.0", "--reason", "re-released", "--by", "S")
    report = verify(run_cli, 0)
    [note] = report["notes"]
    assert note["code"] == "raw-relabelled-since-promotion" and note["file"] == TRAIL_REL
    assert "'CC-BY-4.0' → 'CC0-1.0'" in note["message"] and "re-released" in note["message"]
    text = run_cli("verify")
    assert "note: [raw-relabelled-since-promotion]" in text.stderr
    # the same change made by hand is a failure, twice over
    hand_edit(lake, "license: CC0-1.0", "license: MIT")
    report = verify(run_cli, 1)
    assert codes(report["findings"]) == {"raw-labels-edited", "certificate-broken"}
    assert any("certificate-label-mismatch" in f["message"] for f in report["findings"])


def test_a_trail_rewritten_to_match_a_hand_edit(lake: Lake, chain: Chain,
                                                run_cli: CliInvoker) -> None:
    """What the trail can't catch: an attacker who rewrites it too. The certificate can,
    for what was published: its labels are under its Merkle root."""
    run_cli("promote", chain.b.run_id)
    hand_edit(lake, "license: CC-BY-4.0", "license: MIT")
    path = lake.root / TRAIL_REL
    path.write_text(path.read_text().replace('"license":"CC-BY-4.0"', '"license":"MIT"'))
    report = verify(run_cli, 1)
    assert "raw-labels-edited" not in codes(report["findings"])  # the trail agrees now
    [broken] = report["findings"]
    assert "certificate-label-mismatch" in broken["message"]
    # a forged relabel entry does not help either: it must start from the certified value
    # and the certificate then reports it only as a note if it does; a garbled one is named
    path.write_text(path.read_text() + "{not json\n")
    report = verify(run_cli, 1)
    assert "raw-labels-trail-invalid" in codes(report["findings"])


def test_an_interrupted_relabel_is_completed_by_running_it_again(
        lake: Lake, chain: Chain, run_cli: CliInvoker) -> None:
    """Killed after the trail and before the manifest (a real SIGKILL in a real process):
    verify says so, and the same relabel again completes it."""
    import os
    import signal
    import subprocess
    import sys

    from kfm_prov.core.crashpoints import ENV

    args = ("raw", "relabel", SRC, "--sensitivity", "restricted", "--reason", "review")
    env = {k: v for k, v in os.environ.items() if k != "KFM_PROV_ROOT"}
    killed = subprocess.run([sys.executable, "-m", "kfm_prov.cli", "--root", str(lake.root),
                             *args], env={**env, ENV: "write:manifest.yml"},
                            capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [finding] = verify(run_cli, 1)["findings"]
    assert finding["code"] == "raw-labels-edited" and "run it again" in finding["message"]
    run_cli(*args)
    assert verify(run_cli, 0)["findings"] == []
    assert [e["action"] for e in trail(lake)] == ["add", "relabel", "relabel"]


def test_a_refusal_for_an_unlabelled_capture_says_so_and_how_to_label_it(
        lake: Lake, run_cli: CliInvoker) -> None:
    """Before: "recorded restricted" (the manifest records nothing), a redaction hint, and
    the path printed as digests."""
    write(lake.root / SRC, "id,name\n1,Smith\n")
    run_cli("raw", "add", SRC, "--license", "CC0-1.0", "--attribution", "GLO")  # no label
    chain = make_chain(lake)
    text = run_cli("check", chain.b.run_id, expect=1).stdout
    assert f"{SRC}, which has no sensitivity label in {MANIFEST}" in text
    assert "treated as restricted" in text
    assert f"fix: if it is less sensitive, label it: kfm-prov raw relabel {SRC}" in text
    assert f"path: {SRC} -> run {chain.a.run_id} -> " in text
    assert "sha256:" not in text.split("[sensitivity-downgrade]")[1].split("fix:")[0]
    relabel(run_cli, SRC, "--sensitivity", "public", "--reason", "published register")
    run_cli("check", chain.b.run_id, expect=0)
