"""``jsonio.loads``'s fast path returns what the precise path returns, or defers to it.

The fast path (C ``dict`` per object, one walk for numbers and depth) must give data equal
to the precise path's (a hook per object and per number, then ``check_depth``), and the
same error, word for word, for everything the precise path refuses.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kfm_prov.core import jsonio
from kfm_prov.errors import InputError


def _outcome(call: Any, text: str | bytes) -> tuple[str, Any]:
    try:
        return "data", call(text, file="f.json")
    except InputError as exc:
        return "error", (exc.message, exc.field)


def _same(text: str | bytes) -> None:
    fast = _outcome(jsonio.loads, text)
    precise = _outcome(jsonio._loads_precise, text)
    assert fast == precise
    if fast[0] == "data":  # equal and of the same types (1 == 1.0 == True in Python)
        assert json.dumps(fast[1]) == json.dumps(precise[1])


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                     st.floats(allow_nan=False, allow_infinity=False))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_valid_documents_parse_the_same(value: Any) -> None:
    _same(json.dumps(value))
    _same(json.dumps(value, ensure_ascii=False).encode("utf-8"))


_tokens = st.sampled_from(['{', '}', '[', ']', ',', ':', '"a"', '"b"', '1', '-0', '1.5',
                           '1e400', '-1e400', 'NaN', 'Infinity', 'true', 'null', ' ',
                           '"\\ud800"', '"\\ud83d\\ude00"', '9' * 4300, '-' + '9' * 4299,
                           '-' + '9' * 4300, '1' + '0' * 400 + '.0'])


@settings(max_examples=500, deadline=None)
@given(st.lists(_tokens, max_size=12))
def test_any_token_soup_gets_the_same_answer(tokens: list[str]) -> None:
    _same("".join(tokens))


@pytest.mark.parametrize("text", [
    '{"a": 1, "a": 2}', '{"x": {"b": [], "b": 1}}', '[NaN]', '{"v": -Infinity}', '1e400',
    '[1e400]', '{"v": -1e999}', "[" + "9" * 4301 + "]", "[-" + "9" * 4300 + "]",
    "[-" + "9" * 4299 + "]", "[" + "9" * 4300 + "]", "[" * 100 + "]" * 100,
    "[" * 101 + "]" * 101, "[" * 5000 + "]" * 5000, '{"a": "\\ud800"}', "1.0", "-0", '"x"',
    b'\xff{}', '{"a":1,}', "", "\ufeff{}", b"\xef\xbb\xbf{}", '{"a": 1}'.encode("utf-16"),
    '["\\uD800x"]', b'["\\udfff"]', b'{"\\u00e9": 1}',
])
def test_edge_cases_get_the_same_answer(text: str | bytes) -> None:
    _same(text)


def test_the_fast_path_still_refuses() -> None:
    with pytest.raises(InputError, match="duplicate key 'b'"):
        jsonio.loads('{"a": 1, "b": 2, "b": 3}', file="f.json")
    with pytest.raises(InputError, match="nested more than 100 levels"):
        jsonio.loads("[" * 101 + "]" * 101, file="f.json")
    with pytest.raises(InputError, match="1e400 is not a JSON number"):
        jsonio.loads('{"size": 1e400}', file="f.json")
    assert jsonio.loads("[" * 100 + "]" * 100, file="f.json") is not None
    assert math.isfinite(jsonio.loads('{"v": 1e308}', file="f.json")["v"])
