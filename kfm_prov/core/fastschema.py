"""A compiled fast path for the shipped receipt schemas; ``jsonschema`` stays the authority.

``jsonschema`` walks a schema anew for every instance and resolves each ``$ref`` through
``referencing`` (about 1 ms for a ten-file manifest, 100 ms per thousand files). Receipts
are almost always valid, so ``validate_data`` first asks :func:`is_valid`, which runs the
schema compiled once into nested closures. ``True`` means ``jsonschema`` would report
nothing; anything else (``False``, or ``None`` when a value is outside what this module
decides) sends the data to ``jsonschema``, which gives the findings. So a mistake here can
cost time, never a finding, as long as ``True`` is only said when ``jsonschema`` agrees
(``tests/test_fastschema.py`` checks that on mutated receipts).

The compiler knows the keywords our schemas use, with ``jsonschema``'s semantics for
draft 2020-12: ``type``, ``enum`` and ``const`` of strings, ``pattern`` (``re.search``),
``minLength``/``maxLength``, ``minimum``/``maximum``, ``minItems``/``maxItems``,
``uniqueItems`` of strings, ``required``, ``properties``, ``patternProperties``,
``additionalProperties``, ``items``, ``allOf``/``anyOf``/``oneOf``/``not``,
``if``/``then``/``else``, ``format`` and ``$ref``. A schema with any other keyword is not
compiled and always goes to ``jsonschema``.

``format`` is decided here, without importing ``jsonschema`` (a CLI process that only
reads valid receipts then never loads it): ``date-time`` says True for the strict RFC 3339
form that ``jsonschema``'s checker (``rfc3339-validator``) accepts, and leaves anything else
undecided, so ``jsonschema`` tells whether it is valid whichever checkers it has installed.
Any other format is undecided for strings. A ``format_checker`` given to
:func:`compile_schema` is used instead (the tests compare the two).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urldefrag, urljoin

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "definitions", "$comment", "title",
                          "description", "examples", "default", "deprecated", "readOnly",
                          "writeOnly", "$anchor"})


_OBJECT_KEYWORDS = frozenset({"required", "properties", "patternProperties",
                              "additionalProperties"})

_STRING_KEYWORDS = frozenset({"pattern", "minLength", "maxLength"})


class Unsupported(Exception):
    """The schema uses something this compiler does not decide."""


class _Undecided(Exception):
    """This instance holds a value the compiled check does not decide."""


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_DATE_TIME = re.compile(r"(\d{4})-(0[1-9]|1[0-2])-(\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
                        r"(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)", re.ASCII)
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _date_time(value: Any) -> bool:
    """True for an RFC 3339 date-time every checker accepts; undecided for any other string."""
    if not isinstance(value, str):
        return True
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise _Undecided
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if year == 0 or not 1 <= day <= _MONTH_DAYS[month - 1] + (month == 2 and leap):
        raise _Undecided
    return True


def _undecided_format(value: Any) -> bool:
    if isinstance(value, str):
        raise _Undecided
    return True


_FORMATS: dict[str, Check] = {"date-time": _date_time}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


class _Compiler:
    def __init__(self, documents: dict[str, Any], format_checker: Any, *,
                 fuse: bool = True) -> None:
        self.documents = documents  # absolute URI (no fragment) → schema document
        self.format_checker = format_checker
        self.fuse = fuse  # False: one check per keyword, the reference the tests compare to
        self.compiled: dict[tuple[str, str], Check] = {}

    def ref(self, base: str, reference: str) -> Check:
        uri, fragment = urldefrag(urljoin(base, reference))
        key = (uri, fragment)
        if key not in self.compiled:
            if uri not in self.documents:
                raise Unsupported(f"unknown $ref {reference!r}")
            target: Any = self.documents[uri]
            if fragment:
                if not fragment.startswith("/"):
                    raise Unsupported(f"anchor $ref {reference!r}")
                for part in fragment[1:].split("/"):
                    part = part.replace("~1", "/").replace("~0", "~")
                    target = target[int(part)] if isinstance(target, list) else target[part]
            slot: list[Check] = []
            self.compiled[key] = lambda value: slot[0](value)  # recursion-safe
            slot.append(self.schema(target, uri))
            self.compiled[key] = slot[0]
        return self.compiled[key]

    def schema(self, schema: Any, base: str) -> Check:
        if schema is True:
            return lambda value: True
        if schema is False:
            return lambda value: False
        if not isinstance(schema, dict):
            raise Unsupported("a schema must be an object or a boolean")
        if isinstance(schema.get("$id"), str):
            base = urljoin(base, schema["$id"])
        checks: list[Check] = []
        fused, taken = self._fused(schema, base) if self.fuse else (None, frozenset())
        if fused is not None:
            checks.append(fused)
        for keyword, argument in schema.items():
            if keyword in _ANNOTATIONS or keyword in ("then", "else") or keyword in taken:
                continue
            method = getattr(self, "k_" + keyword.lstrip("$"), None)
            if method is None:
                raise Unsupported(f"keyword {keyword!r}")
            checks.append(method(argument, schema, base))
        return _all_of(checks)

    def _fused(self, schema: dict[str, Any], base: str) -> tuple[Check | None, frozenset[str]]:
        """One check for the object keywords, or for the string ones, and which it took."""
        check = self._object(schema, base)
        if check is not None:
            return check, _OBJECT_KEYWORDS | {"type"}
        check = self._string(schema)
        if check is not None:
            return check, _STRING_KEYWORDS | {"type"}
        return None, frozenset()

    def _string(self, schema: dict[str, Any]) -> Check | None:
        """``type: string`` (or no type) with ``pattern``, ``minLength`` and ``maxLength``
        as one check: one ``isinstance`` where one check per keyword makes four."""
        if not any(keyword in schema for keyword in _STRING_KEYWORDS):
            return None
        kind = schema.get("type")
        if kind not in (None, "string"):
            return None
        must_be_string = kind == "string"
        search = re.compile(schema["pattern"]).search if "pattern" in schema else None
        low, high = schema.get("minLength"), schema.get("maxLength")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (low or 0, high or 0)):
            return None

        def check(value: Any) -> bool:
            if not isinstance(value, str):
                return not must_be_string
            if low is not None and len(value) < low:
                return False
            if high is not None and len(value) > high:
                return False
            return search is None or search(value) is not None

        return check

    def _object(self, schema: dict[str, Any], base: str) -> Check | None:
        """``type: object`` (or no type) with ``required``, ``properties``,
        ``patternProperties`` and ``additionalProperties`` as one check: one ``isinstance``
        and one pass over the instance's keys, where one check per keyword tests the type
        four times and looks up every property the schema names. Same truth as those
        checks together (``tests/test_fastschema_fused.py``). None: nothing to fuse."""
        if not any(keyword in schema for keyword in _OBJECT_KEYWORDS):
            return None
        kind = schema.get("type")
        if kind not in (None, "object"):
            return None
        must_be_object = kind == "object"
        if not all(isinstance(n, str) for n in schema.get("required", ())):
            return None
        wanted = frozenset(schema.get("required", ()))
        properties = {name: self.schema(sub, base)
                      for name, sub in schema.get("properties", {}).items()}
        patterns = [(re.compile(p).search, self.schema(sub, base))
                    for p, sub in schema.get("patternProperties", {}).items()]
        extra = (self.schema(schema["additionalProperties"], base)
                 if "additionalProperties" in schema else None)
        find = properties.get

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return not must_be_object
            if wanted and not wanted <= value.keys():
                return False
            for key, item in value.items():
                sub = find(key)
                if sub is not None and not sub(item):
                    return False
                if patterns:
                    matched = sub is not None
                    for search, pattern_sub in patterns:
                        if search(key):
                            matched = True
                            if not pattern_sub(item):
                                return False
                    if not matched and extra is not None and not extra(item):
                        return False
                elif sub is None and extra is not None and not extra(item):
                    return False
            return True

        return check

    # -- keywords: each returns a check of the instance ---------------------------------------

    def k_ref(self, reference: str, schema: dict[str, Any], base: str) -> Check:
        return self.ref(base, reference)

    def k_type(self, types: Any, schema: dict[str, Any], base: str) -> Check:
        names = [types] if isinstance(types, str) else list(types)
        try:
            tests = [_TYPES[name] for name in names]
        except KeyError as exc:
            raise Unsupported(f"type {exc}") from None
        if len(tests) == 1:
            return tests[0]
        return lambda value: any(test(value) for test in tests)

    def k_enum(self, values: list[Any], schema: dict[str, Any], base: str) -> Check:
        if not all(isinstance(v, str) for v in values):
            raise Unsupported("enum of non-strings")
        allowed = frozenset(values)
        return lambda value: isinstance(value, str) and value in allowed

    def k_const(self, constant: Any, schema: dict[str, Any], base: str) -> Check:
        if not isinstance(constant, str):
            raise Unsupported("const of a non-string")
        return lambda value: isinstance(value, str) and value == constant

    def k_pattern(self, pattern: str, schema: dict[str, Any], base: str) -> Check:
        search = re.compile(pattern).search
        return lambda value: not isinstance(value, str) or search(value) is not None

    def k_minLength(self, limit: int, schema: dict[str, Any], base: str) -> Check:
        return lambda value: not isinstance(value, str) or len(value) >= limit

    def k_maxLength(self, limit: int, schema: dict[str, Any], base: str) -> Check:
        return lambda value: not isinstance(value, str) or len(value) <= limit

    def k_minimum(self, limit: Any, schema: dict[str, Any], base: str) -> Check:
        return lambda value: not _is_number(value) or value >= limit

    def k_maximum(self, limit: Any, schema: dict[str, Any], base: str) -> Check:
        return lambda value: not _is_number(value) or value <= limit

    def k_minItems(self, limit: int, schema: dict[str, Any], base: str) -> Check:
        return lambda value: not isinstance(value, list) or len(value) >= limit

    def k_maxItems(self, limit: int, schema: dict[str, Any], base: str) -> Check:
        return lambda value: not isinstance(value, list) or len(value) <= limit

    def k_uniqueItems(self, unique: bool, schema: dict[str, Any], base: str) -> Check:
        if not unique:
            return lambda value: True

        def check(value: Any) -> bool:
            if not isinstance(value, list):
                return True
            if not all(isinstance(item, str) for item in value):
                raise _Undecided  # jsonschema's equality of mixed values is its own
            return len(set(value)) == len(value)

        return check

    def k_required(self, names: list[str], schema: dict[str, Any], base: str) -> Check:
        wanted = tuple(names)
        return lambda value: not isinstance(value, dict) or all(n in value for n in wanted)

    def k_properties(self, properties: dict[str, Any], schema: dict[str, Any],
                     base: str) -> Check:
        subs = [(name, self.schema(sub, base)) for name, sub in properties.items()]

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for name, sub in subs:  # noqa: SIM110 - a loop is faster than all() here
                if name in value and not sub(value[name]):
                    return False
            return True

        return check

    def k_patternProperties(self, patterns: dict[str, Any], schema: dict[str, Any],
                            base: str) -> Check:
        subs = [(re.compile(p).search, self.schema(sub, base)) for p, sub in patterns.items()]

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for key, item in value.items():
                for search, sub in subs:
                    if search(key) and not sub(item):
                        return False
            return True

        return check

    def k_additionalProperties(self, extra: Any, schema: dict[str, Any], base: str) -> Check:
        known = frozenset(schema.get("properties", {}))
        patterns = [re.compile(p).search for p in schema.get("patternProperties", {})]
        sub = self.schema(extra, base)

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for key, item in value.items():
                if key in known or any(search(key) for search in patterns):
                    continue
                if not sub(item):
                    return False
            return True

        return check

    def k_items(self, items: Any, schema: dict[str, Any], base: str) -> Check:
        if "prefixItems" in schema:
            raise Unsupported("prefixItems")
        sub = self.schema(items, base)

        def check(value: Any) -> bool:
            if not isinstance(value, list):
                return True
            for item in value:  # noqa: SIM110 - a loop is faster than all() here
                if not sub(item):
                    return False
            return True

        return check

    def k_allOf(self, schemas: list[Any], schema: dict[str, Any], base: str) -> Check:
        return _all_of([self.schema(s, base) for s in schemas])

    def k_anyOf(self, schemas: list[Any], schema: dict[str, Any], base: str) -> Check:
        subs = [self.schema(s, base) for s in schemas]
        return lambda value: any(sub(value) for sub in subs)

    def k_oneOf(self, schemas: list[Any], schema: dict[str, Any], base: str) -> Check:
        subs = [self.schema(s, base) for s in schemas]
        return lambda value: sum(1 for sub in subs if sub(value)) == 1

    def k_not(self, negated: Any, schema: dict[str, Any], base: str) -> Check:
        sub = self.schema(negated, base)
        return lambda value: not sub(value)

    def k_if(self, condition: Any, schema: dict[str, Any], base: str) -> Check:
        test = self.schema(condition, base)
        then = self.schema(schema.get("then", True), base)
        otherwise = self.schema(schema.get("else", True), base)
        return lambda value: then(value) if test(value) else otherwise(value)

    def k_format(self, name: str, schema: dict[str, Any], base: str) -> Check:
        checker = self.format_checker
        if checker is None:
            return _FORMATS.get(name, _undecided_format)
        return lambda value: checker.conforms(value, name)


def _all_of(checks: list[Check]) -> Check:
    """One check that passes when every one of ``checks`` does (loops beat ``all()``)."""
    if not checks:
        return lambda value: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)

    def check(value: Any) -> bool:
        for one in checks:  # noqa: SIM110 - a loop is faster than all() here
            if not one(value):
                return False
        return True

    return check


def compile_schema(schema: dict[str, Any], documents: dict[str, Any],
                   format_checker: Any = None, *, fuse: bool = True) -> Check:
    """The schema as one check; ``documents`` maps each ``$id`` a ``$ref`` may reach.

    Without ``format_checker``, ``format`` is decided by this module (see above).
    ``fuse=False`` compiles one check per keyword, the plain reading the fused object
    checks are tested against.

    Raises :class:`Unsupported` when the schema uses a keyword this module does not know.
    """
    compiler = _Compiler(documents, format_checker, fuse=fuse)
    return compiler.schema(schema, schema.get("$id", ""))


def decide(check: Check, data: Any) -> bool | None:
    """True when ``data`` passes; False or None when ``jsonschema`` must tell."""
    try:
        return check(data)
    except _Undecided:
        return None
    except (TypeError, RecursionError):
        return None
