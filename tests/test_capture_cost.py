"""Capture cost per output (issue 17): no scrubbed log line per call, one scan of what can hold
a secret. Counted, not timed: at most one scan per output (its name, when declared)."""

from __future__ import annotations

import cProfile
import json
import pstats
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kfm_prov.core.secrets import find_secrets
from kfm_prov.lake import Lake
from kfm_prov.store.evidence import _manifest_view, scan_evidence
from tests.conftest import COMMIT, add_raw

GITHUB = "ghp_" + "0123456789abcdefghij" + "ABCDEFGHIJ012345"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"
RUN_DIR = "data/work/runs/glo/01HK15B7C0X8C2V61ZN8VGMM21"
DIGEST = "sha256:" + "ab" * 32


def _scans_for(lake: Lake, outputs: int) -> int:
    """Calls of the secret detector's text scan made by one capture with ``outputs`` outputs."""
    profile = cProfile.Profile()
    profile.enable()
    with lake.capture("glo", "pipelines/many", commit=COMMIT) as run:
        run.use("data/raw/glo/a.csv")
        for number in range(outputs):
            run.output(f"part-{number}.csv", role="product",
                       sensitivity="public").write_text(f"{number}\n")
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return sum(calls for (file, _, name), (calls, *_rest) in stats.items()
               if file.endswith("secrets.py") and name == "scrub_text")


def test_one_scan_per_output_at_most(lake: Lake) -> None:
    """The output's name is checked once when declared (a name holding a secret is
    refused); no log line per output is scrubbed, and the manifest's own artifact paths,
    digests, roles and labels are not scanned again."""
    add_raw(lake, "data/raw/glo/a.csv", "id\n1\n")
    few, many = _scans_for(lake, 5), _scans_for(lake, 305)
    assert many - few <= 300, (few, many)


def test_one_log_line_for_all_outputs_and_the_salvage_list_goes(lake: Lake) -> None:
    add_raw(lake, "data/raw/glo/a.csv", "id\n1\n")
    with lake.capture("glo", "pipelines/many", commit=COMMIT) as run:
        run.use("data/raw/glo/a.csv")
        for number in range(50):
            run.output(f"sub/p{number}.csv", role="product").write_text("x\n")
        assert (run.dir / ".declared-outputs.jsonl").is_file()  # for a process that dies
    log = (run.dir / "logs/run.log").read_text()
    assert "50 output(s) declared" in log
    assert "sub/p7.csv" not in log
    events = [json.loads(line) for line in (run.dir / "logs/run.jsonl").read_text().splitlines()]
    assert [e["fields"]["path"] for e in events if e.get("fields", {}).get("event") == "use"] \
        == ["data/raw/glo/a.csv"]
    assert not (run.dir / ".declared-outputs.jsonl").exists()
    manifest = json.loads((run.dir / "run_manifest.json").read_text())
    assert {o["role"] for o in manifest["outputs"]} == {"product"}
    assert len(manifest["outputs"]) == 50


def test_a_secret_in_an_input_path_is_refused_before_any_log(lake: Lake) -> None:
    """The one scan of an input's path (which lets its log line go unscrubbed)."""
    import pytest

    from kfm_prov.errors import UsageError

    rel = add_raw(lake, f"data/raw/glo/{GITHUB}.csv", "id\n1\n")
    with pytest.raises(UsageError), lake.capture("glo", "pipelines/p", commit=COMMIT) as run:
        run.use(rel)
    for log in (run.dir / "logs").iterdir():
        assert GITHUB not in log.read_text()


# -- the manifest view keeps every finding --------------------------------------------------

SECRETS = st.sampled_from([GITHUB, AWS, f"password={GITHUB}", f"https://u:{AWS}@h/x"])
ANY = st.one_of(SECRETS, st.sampled_from(["text/csv", "product", "primary", "public", "x",
                                          DIGEST, "ab" * 32, "sha256:AB", "", "a/b"]),
                st.integers(0, 9), st.none(), st.booleans())
OWN_PATH = st.sampled_from([f"{RUN_DIR}/artifacts/a.csv", f"{RUN_DIR}/artifacts/s/b.geojson",
                            f"{RUN_DIR}/artifacts/c.tar.gz"])


def _entry(own: bool) -> st.SearchStrategy[dict[str, Any]]:
    path = st.one_of(OWN_PATH, ANY, st.sampled_from(["data/raw/glo/a.csv",
                                                     f"data/raw/{GITHUB}.csv"])) \
        if own else st.one_of(ANY, st.sampled_from([f"data/raw/{AWS}.csv", "data/raw/a.csv"]))
    return st.fixed_dictionaries(
        {"path": path},
        optional={"digest": st.one_of(st.just(DIGEST), ANY), "role": ANY, "size": ANY,
                  "sensitivity": ANY, "media_type": st.one_of(
                      st.sampled_from(["text/csv", "application/geo+json",
                                       "application/x-tar"]), ANY),
                  "note": ANY, GITHUB: ANY, "password": ANY})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=st.lists(_entry(False), max_size=4), outputs=st.lists(_entry(True), max_size=4),
       extra=st.dictionaries(st.sampled_from(["params", "token"]), ANY, max_size=2))
def test_the_view_finds_what_a_full_scan_finds(inputs: list[dict[str, Any]],
                                               outputs: list[dict[str, Any]],
                                               extra: dict[str, Any]) -> None:
    """Every finding of a full scan, at the same pointer; own artifact paths hold none."""
    manifest = {"run_id": "x", "inputs": inputs, "outputs": outputs, **extra}
    full = {(f.location, f.kind) for f in find_secrets(manifest)}
    fast = {(f.location, f.kind) for f in find_secrets(_manifest_view(RUN_DIR, manifest))}
    assert fast == full


def test_scan_evidence_names_a_secret_next_to_10000_plain_outputs(tmp_path: Path) -> None:
    lake = Lake.init(tmp_path / "lake")
    outputs: list[dict[str, Any]] = [
        {"path": f"{RUN_DIR}/artifacts/p{i}.csv", "digest": DIGEST, "role": "product",
         "size": 4, "media_type": "text/csv", "sensitivity": "public"} for i in range(10000)]
    outputs[4321]["note"] = f"token {GITHUB}"
    outputs[17]["media_type"] = AWS
    found = scan_evidence(lake.config, RUN_DIR, {"run_manifest": {"outputs": outputs}}, [])
    assert sorted(f.pointer for f in found) == ["/outputs/17/media_type", "/outputs/4321/note"]


def test_one_digest_cache_connection_per_run(lake: Lake) -> None:
    """``run.use`` asks the digest cache once per input: one SQLite connection serves them
    all (counted, not timed), however many inputs the run declares."""
    from kfm_prov.store import dbutil

    for number in range(20):
        add_raw(lake, f"data/raw/glo/in-{number}.csv", f"id\n{number}\n")
    profile = cProfile.Profile()
    profile.enable()
    with lake.capture("glo", "pipelines/many-inputs", commit=COMMIT) as run:
        for number in range(20):
            run.use(f"data/raw/glo/in-{number}.csv")
        run.output("out.csv").write_text("x\n")
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    connects = sum(calls for (file, _, name), (calls, *_rest) in stats.items()
                   if file == dbutil.__file__ and name == "connect")
    # One for the digest cache, one for the index; 21 before (one per use and one at the end).
    assert connects <= 2, connects
