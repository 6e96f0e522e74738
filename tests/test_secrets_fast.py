"""The secrets scan's fast path finds what the precise path finds.

The gate re-scans every receipt and log of a closure. ``json_may_hold_secrets`` and
``find_secrets_in_lines`` judge a whole file with one compiled search and scan only the
strings or lines it stops in; these tests hold them to the precise walk
(``find_secrets``, ``scrub_env``, one ``LineScrubber`` per log) on random documents and
logs full of anchors, planted secrets, escapes and look-alike Unicode.
"""

from __future__ import annotations

import io
import json
import string
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kfm_prov.core.secrets import (
    LineScrubber,
    find_secrets,
    find_secrets_in_lines,
    json_may_hold_secrets,
    scrub_env,
)
from kfm_prov.lake import Lake
from kfm_prov.store.evidence import scan_evidence
from tests.test_secrets import FRAGMENTS, MIXED_TEXT, PLANTED, PROPERTY_SETTINGS

# Keys that are secret names, near misses, anchors that are harmless, and escapes.
KEYS = st.one_of(
    st.sampled_from(["password", "db_token", "apiKey", "auth", "private_key", "type",
                     "status", "pass", "passes", "key", "sort_key", "token_count", "-u",
                     "--password", "environment", "api_\u212aey", "\u0130d_pwd", "pässword",
                     "x/y", "tab\tkey", "quote\"token", "Authorization"]),
    st.text(alphabet=string.ascii_letters + "_-", max_size=10),
    MIXED_TEXT.map(lambda t: t[:16]),
)
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), MIXED_TEXT, PLANTED.map(lambda p: p[1]),
    st.sampled_from(["pass", "fail", "-u", "--user", "--db-password", "alice:s3cret",
                     "sha256:" + "ab" * 32, "service_account", "K\u212ay", "caf\u00e9",
                     "data/work/runs/f/01M8TRAPASSKEYPWD/artifacts/monkey.csv"]),
    FRAGMENTS,
)
DOCUMENTS = st.recursive(
    VALUES,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=24)
DUMPS = st.sampled_from([
    lambda d: json.dumps(d, indent=2, ensure_ascii=False),  # how kfm-prov writes receipts
    lambda d: json.dumps(d, ensure_ascii=True),  # \u escapes, one line
    lambda d: json.dumps(d, separators=(",", ":")).replace("/", "\\/"),  # \/ escapes
])


def _parts(data: Any) -> list[Any]:
    """``data`` and everything nested in it: the precise path may scan any of them."""
    parts, stack = [], [data]
    while stack:
        value = stack.pop()
        parts.append(value)
        if isinstance(value, dict):
            stack += value.values()
        elif isinstance(value, list):
            stack += value
    return parts


def _precise_finds(data: Any) -> bool:
    for part in _parts(data):
        if find_secrets(part):
            return True
        if isinstance(part, dict) and scrub_env(
                {k: v for k, v in part.items() if isinstance(v, str)})[1]:
            return True
    return False


@PROPERTY_SETTINGS
@given(data=DOCUMENTS, dump=DUMPS)
def test_a_document_cleared_by_the_fast_path_has_nothing_to_find(data: Any, dump: Any) -> None:
    text = dump(data)
    assert json.loads(text) == data
    if not json_may_hold_secrets(text):
        assert not _precise_finds(data), text


@PROPERTY_SETTINGS
@given(data=DOCUMENTS)
def test_the_fast_path_clears_what_holds_no_anchor(data: Any) -> None:
    """Not a proof of speed, but of usefulness: anchor-free documents are cleared."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if not any(a in text.lower() for a in ("pass", "key", "token", "secret", "auth", "pwd",
                                           "credential", "-u", "://", "eyj", "sk-", "bearer",
                                           "basic", "sig", "hf_", "xox", "gh", "gl", "akia",
                                           "asia", "aiza", "npm_", "pypi", "sg.", "dapi",
                                           "gsk_", "do", "shp", "whsec", "-----", "hooks",
                                           "xapp", "rk_", "accountkey")):
        assert not json_may_hold_secrets(text)


def test_harmless_anchors_are_cleared_and_secrets_are_not() -> None:
    report = {"overall_status": "pass", "gates": [{"name": "outputs", "status": "pass"}],
              "run_id": "01M8TRAPASSKEYPWDSECRET000", "path": "data/raw/monkey/keys.csv"}
    assert not json_may_hold_secrets(json.dumps(report, indent=2))
    for bad in ({"password": "x"}, {"params": {"db_token": 12}}, {"cmd": ["--password", "x"]},
                {"cmd": ["-u", "alice:s3cret"]}, {"url": "https://a:b@host/x"},
                {"api_\u212aey": "x"}, {"k": "-u"}):
        for dump in (lambda d: json.dumps(d, indent=2, ensure_ascii=False), json.dumps):
            assert json_may_hold_secrets(dump(bad)), bad
    assert json_may_hold_secrets('{"\\u0070assword": "x"}')
    assert json_may_hold_secrets('{"u": "https:\\/\\/a:b@host"}')


LOG_LINES = st.lists(st.one_of(MIXED_TEXT, PLANTED.map(lambda p: p[1]), FRAGMENTS,
                               st.sampled_from(["caf\u00e9 \u2026", "\u0130", "K\u212ay=x"])),
                     max_size=12)
NEWLINES = st.sampled_from(["\n", "\r\n", "\r"])


def _precise_log(path: Path) -> list[Any]:
    scrubber = LineScrubber()
    with open(path, encoding="utf-8", errors="replace") as handle:
        return [found for number, line in enumerate(handle, start=1)
                for found in scrubber.scrub(line, f"line {number}")[1]]


@PROPERTY_SETTINGS
@given(lines=LOG_LINES, newline=NEWLINES, junk=st.binary(max_size=3))
def test_a_log_scanned_fast_gives_the_findings_of_the_precise_scan(
        tmp_path_factory: Any, lines: list[str], newline: str, junk: bytes) -> None:
    blob = newline.join(lines).encode("utf-8") + junk  # junk: invalid UTF-8 at the end
    path = tmp_path_factory.mktemp("log") / "run.log"
    path.write_bytes(blob)
    with io.TextIOWrapper(io.BytesIO(blob), encoding="utf-8", errors="replace") as text:
        assert find_secrets_in_lines(text.read()) == _precise_log(path)


RECEIPTS = st.fixed_dictionaries({
    "run_record": st.dictionaries(KEYS, DOCUMENTS, max_size=4).map(
        lambda d: {**d, "environment": {"STRIPE_KEY": "x", "LANG": "C"}}),
    "run_manifest": st.fixed_dictionaries({
        "inputs": st.lists(st.fixed_dictionaries({"path": VALUES, "digest": VALUES}), max_size=3),
        "outputs": st.lists(st.fixed_dictionaries(
            {"path": st.sampled_from(["data/work/runs/f/R/artifacts/token.csv",
                                      "data/work/runs/f/R/artifacts/a?sig=abc",
                                      "data/other/password=x"]),
             "role": st.sampled_from(["product", "pass"]),
             "digest": st.sampled_from(["sha256:" + "0" * 64, "password"])}), max_size=3),
        "params": DOCUMENTS}),
    "validation_report": st.dictionaries(KEYS, DOCUMENTS, max_size=4),
})


@PROPERTY_SETTINGS
@given(receipts=RECEIPTS, log=LOG_LINES)
def test_scan_evidence_from_bytes_agrees_with_the_precise_scan(
        tmp_path_factory: Any, receipts: dict[str, Any], log: list[str]) -> None:
    root = tmp_path_factory.mktemp("lake")
    config = Lake.init(root).config
    run_dir = "data/work/runs/f/R"
    names = {"run_record": "run_record.json", "run_manifest": "run_manifest.json",
             "validation_report": "validation_report.json"}
    (root / run_dir / "logs").mkdir(parents=True)
    blobs = {}
    for kind, data in receipts.items():
        blob = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
        (root / run_dir / names[kind]).write_bytes(blob)
        blobs[f"{run_dir}/{names[kind]}"] = blob
    log_rel = f"{run_dir}/logs/run.log"
    (root / log_rel).write_text("\n".join(log), encoding="utf-8")
    evidence = [f"{run_dir}/{name}" for name in names.values()] + [log_rel]
    precise = scan_evidence(config, run_dir, receipts, evidence)
    blobs[log_rel] = (root / log_rel).read_bytes()
    fast = scan_evidence(config, run_dir, receipts, evidence, blobs=blobs)
    assert [f.to_dict() for f in fast] == [f.to_dict() for f in precise]


def test_a_key_block_in_a_log_is_judged_across_lines(tmp_path: Path) -> None:
    """Inside a PEM block a base64 line is part of the key, not a token of its own."""
    text = ("start\n-----BEGIN PRIVATE KEY-----\nAKIAABCDEFGHIJKLMNOP\n"
            "-----END PRIVATE KEY-----\nthen AKIAABCDEFGHIJKLMNOP\n")
    path = tmp_path / "run.log"
    path.write_text(text, encoding="utf-8")
    found = find_secrets_in_lines(text)
    assert found == _precise_log(path)
    assert [(f.location, f.kind) for f in found] == [("line 2", "private-key"),
                                                     ("line 5", "aws-access-key")]
