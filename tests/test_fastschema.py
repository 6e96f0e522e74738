"""The compiled schema fast path agrees with jsonschema wherever it gives an answer."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kfm_prov.core.fastschema import Unsupported, compile_schema
from kfm_prov.core.validation import KINDS, _validator, is_valid, validate_data

DIGEST = "sha256:" + "ab" * 32
TIME = "2024-01-01T00:00:00.000000Z"

VALID: dict[str, Any] = {
    "run_record": {
        "schema_version": "kfm.run_record.v2", "run_id": "01HK15B7C0X8C2V61ZN8VGMM21",
        "dataset_family": "glo", "pipeline_id": "pipelines/glo", "git_commit": "0" * 40,
        "code": {"repository": "https://example.org/o/p.git", "worktree": "/src/p",
                 "entry": "x.py", "entry_blob": "1" * 40, "problems": ["dirty-commit"]},
        "started_at": TIME, "ended_at": TIME, "status": "success",
        "runner": {"type": "ci", "host": "runner-1"}, "exit_code": 0,
        "command": ["python", "-m", "x"], "environment": {"TZ": "UTC"},
        "software": {"python": "3.11"}, "process": {"pid": 1}},
    "run_manifest": {
        "schema_version": "kfm.run_manifest.v1", "run_id": "01HK15B7C0X8C2V61ZN8VGMM21",
        "spec_hash": DIGEST, "params": {"a": 1},
        "inputs": [{"path": "data/raw/glo/a.csv", "digest": DIGEST, "role": "primary",
                    "size": 3, "media_type": "text/csv"}],
        "outputs": [{"path": "data/work/runs/glo/X/artifacts/b.csv", "digest": "ab" * 32,
                     "role": "product", "size": 0, "sensitivity": "public"}],
        "versions": {"kfm-prov": "0.1.0"},
        "redactions": [{"source": "data/raw/glo/a.csv", "output": "data/work/b.csv",
                        "profile": {"grid": 1}, "sensitivity": "public"}]},
    "validation_report": {
        "schema_version": "kfm.validation_report.v1", "run_id": "01HK15B7C0X8C2V61ZN8VGMM21",
        "overall_status": "pass", "gates": [{"name": "schema", "status": "pass",
                                             "details": {"rows": 2}}],
        "policy": {"labels_emitted": ["public"], "redactions_applied": False}},
    "waiver": {"schema_version": "kfm.waiver.v1", "run_id": "01HK15B7C0X8C2V61ZN8VGMM21",
               "approved_by": "steward", "reason": "known gap", "gates": ["schema"],
               "expires_at": TIME},
}

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False),
    st.sampled_from(["", "x", "..", "../x", "/abs", "a/../b", "sha256:" + "0" * 64,
                     "0" * 64, "A" * 64, "pass", "fail", "success", "running", TIME,
                     "2024-01-01", "kfm.run_record.v2", "public", "ci", "primary",
                     "product", "a\nb", "-dirty", "0" * 40 + "-dirty",
                     "2024-02-30T00:00:00Z", "2024-01-01t00:00:00z", "0000-01-01T00:00:00Z",
                     "2024-01-01T00:00:00Z\n", "2024-01-01T24:00:00Z",
                     "2024-02-29T23:59:59.5+05:30", "2023-02-29T00:00:00Z"]),
    st.lists(st.sampled_from(["a", "b", "a"]), max_size=3),
    st.dictionaries(st.sampled_from(["path", "digest", "type", "x"]),
                    st.sampled_from(["a", DIGEST, 1]), max_size=2),
)


def _paths(value: Any, here: tuple = ()) -> list[tuple]:
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*here, index))
    return found


def _mutate(document: Any, path: tuple, action: str, new: Any) -> Any:
    if not path:
        return new
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[f"extra_{last}"] = new
    else:
        parent[last] = new
    return document


def _agree(kind: str, data: Any) -> None:
    slow = not any(True for _ in _validator(kind).iter_errors(data))
    fast = is_valid(kind, data)
    assert fast is None or fast == slow, (kind, data, fast, slow)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_receipts_pass_the_fast_path(kind: str) -> None:
    assert is_valid(kind, VALID[kind]) is True
    assert validate_data(kind, VALID[kind], file=kind) == []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(VALID)), data=st.data())
def test_fast_path_agrees_with_jsonschema_on_mutations(kind: str, data: st.DataObject) -> None:
    document = copy.deepcopy(VALID[kind])
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(document)))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        document = _mutate(document, path, action, data.draw(ODD_VALUES))
    _agree(kind, document)


def test_invalid_receipt_still_gets_jsonschema_findings() -> None:
    bad = copy.deepcopy(VALID["run_manifest"])
    bad["inputs"][0]["role"] = "intermediate"
    assert is_valid("run_manifest", bad) is False
    [finding] = validate_data("run_manifest", bad, file="run_manifest.json")
    assert finding.pointer == "/inputs/0/role"


def test_every_shipped_kind_compiles() -> None:
    from kfm_prov.core.validation import _compiled

    assert all(_compiled(kind) is not None for kind in KINDS)


def test_unknown_keywords_are_not_guessed() -> None:
    with pytest.raises(Unsupported):
        compile_schema({"type": "object", "unevaluatedProperties": False}, {})
    with pytest.raises(Unsupported):
        compile_schema({"enum": [1, True]}, {})


def test_keyword_semantics_match_jsonschema() -> None:
    from jsonschema import Draft202012Validator

    schema = {"type": "object", "required": ["a"],
              "properties": {"a": {"type": "integer", "minimum": 0},
                             "b": {"type": ["string", "null"], "maxLength": 2},
                             "c": {"type": "array", "uniqueItems": True, "minItems": 1,
                                   "items": {"type": "string"}}},
              "patternProperties": {"^x": {"type": "boolean"}},
              "additionalProperties": False,
              "oneOf": [{"required": ["b"]}, {"required": ["c"]}],
              "not": {"required": ["z"]}}
    check = compile_schema(schema, {})
    for value in [{"a": 1, "b": "x"}, {"a": 1.0, "c": ["a"]}, {"a": True, "b": "x"},
                  {"a": -1, "b": None}, {"a": 1, "b": "xyz"}, {"a": 1, "b": "x", "c": ["a"]},
                  {"a": 1, "c": ["a", "a"]}, {"a": 1, "c": []}, {"a": 1, "b": "x", "xa": 1},
                  {"a": 1, "b": "x", "xa": False}, {"a": 1, "b": "x", "q": 1}, [], "s"]:
        assert check(value) == Draft202012Validator(schema).is_valid(value), value


# -- formats: decided without jsonschema, True only where every checker says so ---------------

def _rfc3339(text: str) -> bool:
    """rfc3339-validator's rule (what jsonschema's FormatChecker uses when installed)."""
    import calendar
    import re

    match = re.match(r"^(\d{4})-(0[1-9]|1[0-2])-(\d{2})T(?:[01]\d|2[0123]):(?:[0-5]\d):"
                     r"(?:[0-5]\d)(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0123]):[0-5]\d)$",
                     text.upper(), re.ASCII)
    if match is None:
        return False
    year, month, day = map(int, match.groups())
    return bool(year) and 1 <= day <= calendar.monthrange(year, month)[1]


DATE_TIMES = st.one_of(
    st.from_regex(r"\A[0-9]{4}-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9]"
                  r"(\.[0-9]{1,6})?([Zz]|[+-][0-2][0-9]:[0-6][0-9])?\n?\Z"),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.text(max_size=30),
)


@settings(max_examples=500, deadline=None)
@given(text=DATE_TIMES)
def test_date_time_says_true_only_where_jsonschema_does(text: str) -> None:
    from datetime import datetime

    from jsonschema import FormatChecker

    check = compile_schema({"type": "string", "format": "date-time"}, {})
    try:
        fast = check(text)
    except Exception as exc:  # the undecided signal: jsonschema will tell
        assert type(exc).__name__ == "_Undecided"
        return
    assert fast is True
    assert _rfc3339(text)
    assert FormatChecker().conforms(text, "date-time")
    datetime.fromisoformat(text.replace("Z", "+00:00"))  # a real instant


def test_known_date_times() -> None:
    from kfm_prov.core.fastschema import decide

    check = compile_schema({"format": "date-time"}, {})
    assert decide(check, TIME) is True
    assert decide(check, "2024-02-29T23:59:59+05:30") is True
    assert decide(check, 5) is True  # formats apply to strings only
    for odd in ["2023-02-29T00:00:00Z", "2024-01-01", "2024-01-01T00:00:00Z\n",
                "0000-01-01T00:00:00Z", "2024-01-01t00:00:00z"]:
        assert decide(check, odd) is None, odd  # undecided: jsonschema decides
    assert decide(compile_schema({"format": "email"}, {}), "a@b") is None


def test_receipt_validation_does_not_import_jsonschema() -> None:
    import subprocess
    import sys

    code = ("import json, sys; from kfm_prov.core.validation import validate_data;"
            f"data = json.loads({__import__('json').dumps(__import__('json').dumps(VALID))});"
            "assert all(validate_data(k, v, file=k) == [] for k, v in data.items());"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in"
            " ('jsonschema', 'referencing')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_older_run_records_take_the_fast_path_and_agree() -> None:
    from kfm_prov.core.validation import OLDER_VERSIONS, _compiled

    for kind, versions in OLDER_VERSIONS.items():
        for version, schema_file in versions.items():
            assert _compiled(kind, schema_file) is not None
            document = {k: v for k, v in VALID[kind].items() if k != "code"}
            document["schema_version"] = version
            slow = not any(True for _ in _validator(kind, schema_file).iter_errors(document))
            assert is_valid(kind, document, schema_file) is slow is True
            broken = dict(document, status="maybe")
            assert is_valid(kind, broken, schema_file) is not True
            assert validate_data(kind, broken, file=kind)
