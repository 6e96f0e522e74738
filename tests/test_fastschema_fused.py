"""The fused object and string checks say True exactly where one check per keyword does.

``fastschema`` fuses ``type``/``required``/``properties``/``patternProperties``/
``additionalProperties`` (and ``type``/``pattern``/``minLength``/``maxLength``) into one
check each; the unfused compilation (``fuse=False``) is the plain reading of the schema,
itself tested against ``jsonschema`` in ``test_fastschema.py``. False and None both send
the data to ``jsonschema``, so only the True answers must match.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kfm_prov.core.fastschema import compile_schema, decide
from kfm_prov.core.validation import KINDS, SCHEMA_BASE, _schema_resources, load_schema
from tests.test_fastschema import ODD_VALUES, VALID, _mutate, _paths

_DOCUMENTS = {SCHEMA_BASE + name: schema for name, schema in _schema_resources().items()}


def _both(schema: dict[str, Any], documents: dict[str, Any]) -> tuple[Any, Any]:
    return (compile_schema(schema, documents, fuse=True),
            compile_schema(schema, documents, fuse=False))


_CHECKS = {kind: _both(load_schema(KINDS[kind][0]), _DOCUMENTS) for kind in KINDS}


def _same_truth(fused: Any, plain: Any, data: Any) -> None:
    assert (decide(fused, data) is True) == (decide(plain, data) is True), data


def test_valid_receipts_pass_both() -> None:
    for kind, document in VALID.items():
        fused, plain = _CHECKS[kind]
        assert decide(fused, document) is True
        assert decide(plain, document) is True


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(VALID)), data=st.data())
def test_fused_agrees_with_plain_on_mutated_receipts(kind: str, data: st.DataObject) -> None:
    document = copy.deepcopy(VALID[kind])
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(document)))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        document = _mutate(document, path, action, data.draw(ODD_VALUES))
    _same_truth(*_CHECKS[kind], document)


_SUB = st.sampled_from([True, False, {"type": "string"}, {"type": "integer"},
                        {"type": "string", "pattern": "^a", "maxLength": 2}, {"enum": ["x"]}])
_NAMES = st.sampled_from(["a", "b", "ab", "x", "1"])
_OBJECT_SCHEMAS = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["object", "string", ["object", "null"]]),
    "required": st.lists(_NAMES, max_size=2, unique=True),
    "properties": st.dictionaries(_NAMES, _SUB, max_size=3),
    "patternProperties": st.dictionaries(st.sampled_from(["^a", "b$", "[0-9]"]), _SUB,
                                         max_size=2),
    "additionalProperties": _SUB,
    "pattern": st.sampled_from(["^a", "b$"]),
    "minLength": st.integers(0, 2),
    "maxLength": st.integers(0, 3),
})
_INSTANCES = st.one_of(st.none(), st.integers(-1, 2), st.text("abx1", max_size=3),
                       st.lists(st.text("ab", max_size=2), max_size=2),
                       st.dictionaries(_NAMES, st.one_of(st.none(), st.integers(0, 2),
                                                         st.text("abx", max_size=3)),
                                       max_size=4))


@settings(max_examples=1500, deadline=None)
@given(schema=_OBJECT_SCHEMAS, instance=_INSTANCES)
def test_fused_keywords_agree_with_plain_and_jsonschema(schema: dict[str, Any],
                                                        instance: Any) -> None:
    from jsonschema import Draft202012Validator

    fused, plain = _both(schema, {})
    _same_truth(fused, plain, instance)
    if decide(fused, instance) is True:
        assert Draft202012Validator(schema).is_valid(instance)
