"""A raw manifest without a label trail through the real CLI: the gate and verify refuse it
(``raw-labels-untracked``), ``raw adopt`` begins the trail of a lake made before trails,
and ``raw add`` / ``raw relabel`` never begin one silently.

The attack: someone who may write the lake deletes ``labels.trail.jsonl`` and lowers a
label in ``manifest.yml``. Before, that was only a note, and the gate promoted.
"""

from __future__ import annotations

import hashlib
import json

from kfm_prov.lake import Lake
from kfm_prov.store.labels import TRAIL
from tests.conftest import Chain, CliInvoker, make_chain, one_error_line, snapshot, write

SRC = "data/raw/glo/patents.csv"
MANIFEST = "data/raw/glo/manifest.yml"
TRAIL_REL = f"data/raw/glo/{TRAIL}"
REASON = ("--reason", "labels checked against the 2019 sharing agreement", "--by", "Ann")


def trail(lake: Lake) -> list[dict]:
    return [json.loads(line) for line in (lake.root / TRAIL_REL).read_text().splitlines()]


def check(run_cli: CliInvoker, run_id: str, expect: int) -> list[dict]:
    report = json.loads(run_cli("check", run_id, "--json", expect=expect).stdout)
    return [f for c in report["checks"] for f in c.get("findings", [])]


def verify_findings(run_cli: CliInvoker, expect: int) -> list[dict]:
    return json.loads(run_cli("verify", "--json", expect=expect).stdout)["findings"]


def delete_trail(lake: Lake) -> None:
    """As an older kfm-prov left the lake, or as an attacker leaves it."""
    (lake.root / TRAIL_REL).unlink()


def lower_sensitivity(lake: Lake) -> None:
    path = lake.root / MANIFEST
    text = path.read_text()
    assert "sensitivity: sensitive-location" in text
    path.write_text(text.replace("sensitivity: sensitive-location", "sensitivity: public"))


def test_a_deleted_trail_and_a_lowered_sensitivity_are_refused(
        lake: Lake, run_cli: CliInvoker) -> None:
    """Before: check exit 0 and promote published sensitive-location data as public."""
    chain = make_chain(lake, sensitivity="sensitive-location")
    assert "sensitivity-downgrade" in {f["code"] for f in check(run_cli, chain.b.run_id, 1)}
    delete_trail(lake)
    lower_sensitivity(lake)
    [finding] = check(run_cli, chain.b.run_id, 1)
    assert (finding["code"], finding["file"]) == ("raw-labels-untracked", MANIFEST)
    assert TRAIL_REL in finding["message"] and SRC in finding["message"]
    assert f"kfm-prov raw adopt {SRC} --reason" in finding["hint"]
    before = snapshot(lake.root / "data")
    run_cli("promote", chain.b.run_id, expect=1)
    assert not (lake.root / "data/processed").exists() or not any(
        (lake.root / "data/processed").rglob("*.geojson"))
    assert snapshot(lake.root / "data/raw") == {k[len("raw/"):]: v for k, v in before.items()
                                                if k.startswith("raw/")}
    [found] = verify_findings(run_cli, 1)
    assert (found["code"], found["file"]) == ("raw-labels-untracked", MANIFEST)
    text = run_cli("check", chain.b.run_id, expect=1)
    assert "raw-labels-untracked" in text.stdout + text.stderr


def test_adopt_begins_the_trail_of_a_lake_made_before_trails(
        lake: Lake, chain: Chain, run_cli: CliInvoker) -> None:
    delete_trail(lake)
    assert [f["code"] for f in check(run_cli, chain.b.run_id, 1)] == ["raw-labels-untracked"]
    manifest_before = (lake.root / MANIFEST).read_bytes()
    out = run_cli("raw", "adopt", SRC, *REASON, "--json")
    [result] = json.loads(out.stdout)
    assert (result["path"], result["trail"], result["named"]) == (SRC, TRAIL_REL, True)
    assert result["labels"] == {"license": "CC-BY-4.0", "attribution": "Kansas GLO",
                                "sensitivity": "public"}
    [entry] = trail(lake)
    assert (entry["action"], entry["path"], entry["by"], entry["old"]) == ("adopt", SRC, "Ann",
                                                                           None)
    assert entry["reason"] == "labels checked against the 2019 sharing agreement"
    assert entry["new"] == result["labels"] and entry["digest"] == result["digest"]
    assert entry["manifest_sha256"] == "sha256:" + hashlib.sha256(manifest_before).hexdigest()
    assert (lake.root / MANIFEST).read_bytes() == manifest_before  # the manifest is untouched
    assert run_cli("validate", TRAIL_REL).stdout.endswith("valid\n")
    assert check(run_cli, chain.b.run_id, 0) == []
    assert verify_findings(run_cli, 0) == []
    run_cli("promote", chain.b.run_id)
    # from now on labels change by relabel, as anywhere else
    run_cli("raw", "relabel", SRC, "--sensitivity", "restricted", "--reason", "review")
    assert [e["action"] for e in trail(lake)] == ["adopt", "relabel"]


def test_adopt_covers_every_file_of_the_manifest(lake: Lake, run_cli: CliInvoker) -> None:
    """A trail covers its whole manifest: adopting one file vouches for its siblings, and
    the output says which were not named."""
    write(lake.root / "data/raw/glo/a.csv", "a")
    write(lake.root / "data/raw/glo/sub/b.csv", "b")
    run_cli("raw", "add", "data/raw/glo/a.csv", "data/raw/glo/sub/b.csv", "--license",
            "CC0-1.0", "--attribution", "GLO", "--sensitivity", "restricted")
    delete_trail(lake)
    out = run_cli("raw", "adopt", "data/raw/glo/sub/b.csv", *REASON)
    assert out.stdout.splitlines() == [
        "adopted    data/raw/glo/a.csv  (restricted, CC0-1.0)  [same manifest]",
        "adopted    data/raw/glo/sub/b.csv  (restricted, CC0-1.0)"]
    assert [(e["action"], e["path"]) for e in trail(lake)] == [
        ("adopt", "data/raw/glo/a.csv"), ("adopt", "data/raw/glo/sub/b.csv")]
    assert verify_findings(run_cli, 0) == []


def test_adopt_refusals_are_bad_input_and_write_nothing(lake: Lake, chain: Chain,
                                                        run_cli: CliInvoker) -> None:
    write(lake.root / "data/raw/khri/sites.csv", "id\n1\n")
    run_cli("raw", "add", "data/raw/khri/sites.csv", "--license", "CC0-1.0", "--attribution",
            "KHRI")
    (lake.root / "data/raw/khri" / TRAIL).unlink()  # khri is untracked, glo has its trail
    write(lake.root / "data/raw/glo/loose.csv", "not recorded")
    before = snapshot(lake.root)
    cases = [
        (("data/raw/khri/sites.csv", SRC, *REASON),
         f"{MANIFEST} already has a label trail: nothing to adopt ({SRC})"),
        (("data/raw/khri/sites.csv", "data/raw/glo/loose.csv", *REASON),
         "not recorded in a raw manifest: adopt vouches only for recorded files"
         " (data/raw/glo/loose.csv)"),
        (("data/raw/khri/sites.csv", "--reason", " "), "(--reason)"),
        (("data/work/x.csv", *REASON), "not under data/raw/"),
    ]
    for args, expected in cases:
        line = one_error_line(run_cli("raw", "adopt", *args, expect=2))
        assert expected in line, (args, line)
    assert "kfm-prov raw relabel" in run_cli("raw", "adopt", SRC, *REASON, expect=2).stderr
    assert snapshot(lake.root) == before  # all or nothing: khri's trail was not begun


def test_raw_add_and_relabel_never_begin_a_trail_silently(lake: Lake, chain: Chain,
                                                          run_cli: CliInvoker) -> None:
    """Before: both began the trail with the manifest's labels as found, so a trail deleted
    after a hand edit was laundered into the next steward's name."""
    delete_trail(lake)
    write(lake.root / "data/raw/glo/more.csv", "id\n2\n")
    before = snapshot(lake.root)
    line = one_error_line(run_cli("raw", "add", "data/raw/glo/more.csv", "--license",
                                  "CC0-1.0", "--attribution", "GLO", expect=1))
    assert f"{MANIFEST} records files but has no label trail" in line
    assert f"kfm-prov raw adopt {SRC} --reason" in line
    line = one_error_line(run_cli("raw", "relabel", SRC, "--sensitivity", "restricted",
                                  "--reason", "review", expect=1))
    assert "raw relabel will not begin one" in line
    assert snapshot(lake.root) == before
    # re-adding a recorded file writes nothing, so it still says 'unchanged'
    assert run_cli("raw", "add", SRC, "--license", "CC-BY-4.0", "--attribution",
                   "Kansas GLO").stdout.startswith("unchanged")
    run_cli("raw", "adopt", SRC, *REASON)
    run_cli("raw", "add", "data/raw/glo/more.csv", "--license", "CC0-1.0", "--attribution",
            "GLO")
    assert [(e["action"], e["path"]) for e in trail(lake)] == [
        ("adopt", SRC), ("add", "data/raw/glo/more.csv")]
    assert verify_findings(run_cli, 0) == []
