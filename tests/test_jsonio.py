"""``jsonio.dumps_text`` writes exactly what ``json.dumps(indent=2, ensure_ascii=False)`` does.

It is the fast path of every record we write and of ``trace --format json``; the json module
stays the reference, for plain values and for everything it leaves to json (tuples,
subclasses, keys that are not strings, cycles).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kfm_prov.core.jsonio import dumps, dumps_text

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e300, 5e-324, math.inf, -math.inf, 2**64, -(2**63)]),
)
KEYS = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.none(), st.floats())
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=8), inner, max_size=5),
        st.dictionaries(KEYS, inner, max_size=3),  # keys json converts: left to json
        st.lists(inner, max_size=3).map(tuple),  # tuples: left to json
        st.dictionaries(st.text(max_size=4), inner, max_size=3).map(OrderedDict),
    ),
    max_leaves=40,
)


@settings(max_examples=1000, deadline=None)
@given(value=VALUES)
def test_dumps_text_is_json_dumps(value: Any) -> None:
    assert dumps_text(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_text_that_needs_escaping_and_lone_surrogates() -> None:
    value = {"a\"b\\c\n\t\x00\x1f": ["é", "\u2028", "\ud800", "𝄞", "</script>"]}
    assert dumps_text(value) == json.dumps(value, indent=2, ensure_ascii=False)
    del value["a\"b\\c\n\t\x00\x1f"][2]  # a lone surrogate has no UTF-8 bytes
    assert dumps(value) == (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def test_errors_are_json_errors() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps_text(cycle)
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps_text({"a": [1, object()]})
