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
                     "product", "a\nb", "-dirty", "0" * 40 + "-dirty"]),
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
