"""PROV-CONSTRAINTS checks: the W3C/ProvToolbox corpus that ships in prov, then cases by hand.

The corpus files say in their names whether they are valid (``-PASS-``, ``-successN``) or
not (``-FAIL-cNN``, ``-failN``). Six names disagree with PROV-CONSTRAINTS and with
ProvToolbox's own tests for them, and one file tests a rule from outside the
Recommendation. Both lists below say why.
"""

from __future__ import annotations

import datetime
import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prov.model import PROV, PROV_REC_CLS, ProvDocument

from kfm_prov.errors import InputError, NotFoundError
from kfm_prov.prov.constraints import (
    ConstraintViolation,
    check_constraints,
    load_prov_document,
    validate_prov_json,
)

CORPUS = Path(str(files("prov") / "tests" / "unification"))
DATA = Path(__file__).parent / "data" / "prov"

# Named "-failN" but valid under PROV-CONSTRAINTS. ProvToolbox's ValidateTest.java, which
# the files come from, expects each to validate too.
VALID_DESPITE_NAME = {
    **dict.fromkeys(
        ("usage-fail1.xml", "usage-fail5.xml", "usage-fail6.xml", "usage-fail7.xml"),
        "the Recommendation has no uniqueness constraint for usage: an activity may use an "
        "entity twice (ValidateTest: '// SUCCESS: no uniqueness')",
    ),
    **dict.fromkeys(
        ("delegation-fail4.xml", "delegation-fail5.xml"),
        "a delegation's activity is an expandable placeholder (Table 3; ProvToolbox's "
        "Expansion expands it), so '-' unifies with ex:a2 (ValidateTest: '//SUCCESS')",
    ),
}
OUT_OF_SCOPE = {
    "mention-fail4.xml": "expects an entity to be a mention of only one entity, a PROV-Links "
    "(W3C Note) rule; PROV-CONSTRAINTS puts no constraint on mentionOf",
}
# Constraints a ProvToolbox "<category>-failN" file may be reported under.
FAIL_CONSTRAINTS = {
    "activity-end": {"C29"}, "activity-start": {"C28"}, "association": {"C23", "schema"},
    "attribution": {"schema"}, "bundle": {"C55", "C56"}, "communication": {"schema"},
    "delegation": {"C23", "schema"}, "derivation": {"C23"}, "end": {"C23", "C27"},
    "generation": {"C23", "C24"}, "influence": {"schema"}, "invalidation": {"C23", "C25"},
    "membership": {"schema"}, "mention": {"schema"}, "specialization": {"schema", "C52"},
    "start": {"C23", "C26"}, "usage": {"C23"},
}


def corpus_files() -> list[Path]:
    constraints = CORPUS / "constraints"
    return sorted(CORPUS.glob("*.json")) + sorted(constraints.glob("*.xml")) + sorted(
        constraints.glob("*.provx")
    )


def corpus_params() -> list[Any]:
    marks = {name: pytest.mark.xfail(strict=True, reason=why) for name, why in OUT_OF_SCOPE.items()}
    return [
        pytest.param(path, id=path.name, marks=[marks[path.name]] if path.name in marks else [])
        for path in corpus_files()
    ]


def constraints_of(violations: list[ConstraintViolation]) -> set[str]:
    return {v.constraint for v in violations}


def test_the_corpus_is_there() -> None:
    """An empty corpus would parametrize to nothing and pass silently."""
    assert len(corpus_files()) >= 170


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_case(path: Path) -> None:
    violations = check_constraints(load_prov_document(path))
    labelled_invalid = re.search(r"-FAIL-|-fail\d+\.", path.name) is not None
    if not labelled_invalid or path.name in VALID_DESPITE_NAME:
        why = VALID_DESPITE_NAME.get(path.name, "labelled valid")
        assert violations == [], f"{why}: {[v.message for v in violations]}"
        return
    found = constraints_of(violations)
    named = {f"C{n}" for n in re.findall(r"-c(\d+)", path.name)}
    allowed = named or FAIL_CONSTRAINTS[path.name.rsplit("-fail", 1)[0]]
    assert found, "an invalid document passed"
    assert found <= allowed, [v.message for v in violations]


# -- by hand: the fixture files --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected", "records"),
    [
        ("use_before_start.json", {"C33"}, {"ex:a1", "ex:u1"}),
        ("generation_after_invalidation.json", {"C36"}, {"ex:e1"}),
        ("derived_before_source.json", {"C42"}, {"ex:result", "ex:source"}),
        ("start_after_end.json", {"C30"}, {"ex:a1"}),
        ("entity_activity_same_id.json", {"C55"}, {"ex:thing"}),
        ("clean_with_bundles.json", set(), set()),
    ],
)
def test_fixture(name: str, expected: set[str], records: set[str]) -> None:
    violations = check_constraints(load_prov_document(DATA / name))
    assert constraints_of(violations) == expected, [v.message for v in violations]
    assert {r for v in violations for r in v.records} == records
    assert all(v.kind == ("typing" if v.constraint == "C55" else "ordering") for v in violations)


def test_a_time_conflict_names_both_events_and_their_times() -> None:
    [violation] = check_constraints(load_prov_document(DATA / "use_before_start.json"))
    assert violation.message == (
        "C33 usage-within-activity: start of ex:a1 [2020-01-01T11:00:00Z] must precede "
        "usage ex:u1 [2020-01-01T10:00:00Z]"
    )


def test_fixtures_are_valid_prov_json() -> None:
    for path in sorted(DATA.glob("*.json")):
        assert validate_prov_json(json.loads(path.read_text())) == [], path.name


# -- by hand: documents built in code --------------------------------------------------

T0 = datetime.datetime(2020, 1, 1, 10, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


def new_doc() -> ProvDocument:
    doc = ProvDocument()
    doc.add_namespace("ex", "http://example.org/")
    return doc


def usage_after_generation_by_derivation() -> ProvDocument:
    """Inference 11 and C41: the source is used strictly before the result is generated."""
    doc = new_doc()
    doc.wasDerivedFrom("ex:e2", "ex:e1", "ex:a", "ex:g", "ex:u")
    doc.used("ex:a", "ex:e1", T0 + HOUR, identifier="ex:u")
    doc.wasGeneratedBy("ex:e2", "ex:a", T0, identifier="ex:g")
    return doc


def derivation_cycle() -> ProvDocument:
    doc = new_doc()
    doc.wasDerivedFrom("ex:e2", "ex:e1")
    doc.wasDerivedFrom("ex:e1", "ex:e2")
    return doc


def self_derivation() -> ProvDocument:
    doc = new_doc()
    doc.wasDerivedFrom("ex:e1", "ex:e1")
    return doc


def generations_at_two_times() -> ProvDocument:
    """C39: an entity's generations are one instant, even by different activities."""
    doc = new_doc()
    doc.wasGeneratedBy("ex:e1", "ex:a1", T0)
    doc.wasGeneratedBy("ex:e1", "ex:a2", T0 + HOUR)
    return doc


def starts_at_two_times() -> ProvDocument:
    doc = new_doc()
    doc.wasStartedBy("ex:a", starter="ex:s1", time=T0)
    doc.wasStartedBy("ex:a", starter="ex:s2", time=T0 + HOUR)
    return doc


def agent_made_after_the_activity_it_ran() -> ProvDocument:
    """C47: an agent (here also an entity) exists before the activity it is associated
    with ends."""
    doc = new_doc()
    doc.activity("ex:run", T0, T0 + HOUR)
    doc.wasAssociatedWith("ex:run", "ex:bot")
    doc.wasGeneratedBy("ex:bot", "ex:build", T0 + 2 * HOUR)
    return doc


def informed_by_a_later_activity() -> ProvDocument:
    doc = new_doc()
    doc.activity("ex:early", T0, T0 + HOUR)
    doc.activity("ex:late", T0 + 2 * HOUR, T0 + 3 * HOUR)
    doc.wasInformedBy("ex:early", "ex:late")
    return doc


def cycle_through_an_untimed_event() -> ProvDocument:
    """The generation of ex:e is untimed, yet it falls after a 12:00 start (C34) and
    before an 11:00 use (C37)."""
    doc = new_doc()
    doc.activity("ex:make", T0 + 2 * HOUR)
    doc.wasGeneratedBy("ex:e", "ex:make")
    doc.used("ex:consume", "ex:e", T0 + HOUR)
    return doc


def derivation_with_generation_but_no_activity() -> ProvDocument:
    doc = new_doc()
    doc.wasDerivedFrom("ex:e2", "ex:e1", generation="ex:g")
    return doc


def influence_and_derivation_disagree() -> ProvDocument:
    """Inference 15: a derivation is the influence with the same identifier."""
    doc = new_doc()
    doc.wasDerivedFrom("ex:e2", "ex:e1", identifier="ex:x")
    doc.wasInfluencedBy("ex:e2", "ex:e9", identifier="ex:x")
    return doc


def inferred_generation_named_like_an_entity() -> ProvDocument:
    """Inference 11 makes ex:g a wasGeneratedBy, and ex:g also names an entity."""
    doc = new_doc()
    doc.entity("ex:g")
    doc.wasDerivedFrom("ex:e2", "ex:e1", "ex:a", "ex:g")
    return doc


def specialization_cycle() -> ProvDocument:
    doc = new_doc()
    doc.specializationOf("ex:e1", "ex:e2")
    doc.specializationOf("ex:e2", "ex:e3")
    doc.specializationOf("ex:e3", "ex:e1")
    return doc


def empty_collection_with_a_member() -> ProvDocument:
    doc = new_doc()
    doc.entity("ex:c", {"prov:type": PROV["EmptyCollection"]})
    doc.hadMember("ex:c", "ex:e1")
    return doc


def typed_by_use() -> ProvDocument:
    """C50: ex:x is an activity because it generates, and an entity because it is used."""
    doc = new_doc()
    doc.wasGeneratedBy("ex:e", "ex:x")
    doc.used("ex:a", "ex:x")
    return doc


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (usage_after_generation_by_derivation, {"C41"}),
        (derivation_cycle, {"C42"}),
        (self_derivation, {"C42"}),
        (generations_at_two_times, {"C39"}),
        (starts_at_two_times, {"C31"}),
        (agent_made_after_the_activity_it_ran, {"C47"}),
        (informed_by_a_later_activity, {"C35"}),
        (cycle_through_an_untimed_event, {"C34"}),
        (derivation_with_generation_but_no_activity, {"C51"}),
        (influence_and_derivation_disagree, {"C23"}),
        (inferred_generation_named_like_an_entity, {"C54"}),
        (specialization_cycle, {"C52"}),
        (empty_collection_with_a_member, {"C56"}),
        (typed_by_use, {"C55"}),
    ],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_built_case(build: Any, expected: set[str]) -> None:
    violations = check_constraints(build())
    assert constraints_of(violations) == expected, [v.message for v in violations]


def test_a_cycle_without_a_direct_conflict_is_shown_step_by_step() -> None:
    [violation] = check_constraints(cycle_through_an_untimed_event())
    assert violation.message == (
        "C34 generation-within-activity: these events would each have to precede the next: "
        "start of ex:make [2020-01-01T12:00:00Z] ≤ generation of ex:e ≤ usage of ex:e by "
        "ex:consume [2020-01-01T11:00:00Z] < start of ex:make [2020-01-01T12:00:00Z] "
        "(by C34, C37 and recorded times)"
    )
    assert violation.records == ("ex:consume", "ex:e", "ex:make")


def test_equal_times_and_time_zones_do_not_conflict() -> None:
    """Clocks have a resolution: a usage and a generation in the same second can still be
    in the strict order C41 asks for. The same instant in two offsets is one time."""
    doc = new_doc()
    doc.wasDerivedFrom("ex:e2", "ex:e1", "ex:a", "ex:g", "ex:u")
    doc.used("ex:a", "ex:e1", T0, identifier="ex:u")
    doc.wasGeneratedBy("ex:e2", "ex:a", T0.astimezone(datetime.timezone(HOUR)), identifier="ex:g")
    doc.activity("ex:a", T0 - HOUR, "2020-01-01T11:00:00+01:00")
    assert check_constraints(doc) == []


def test_bundles_are_separate_scopes() -> None:
    doc = new_doc()
    doc.bundle("ex:b1").entity("ex:x")
    doc.bundle("ex:b2").activity("ex:x")
    assert check_constraints(doc) == []
    both = doc.bundle("ex:b3")
    both.entity("ex:y")
    both.activity("ex:y")
    [violation] = check_constraints(doc)
    assert violation.constraint == "C55"
    assert violation.message.endswith("(in bundle ex:b3)")


def test_every_violation_is_reported_in_a_stable_order() -> None:
    doc = load_prov_document(CORPUS / "constraints" / "bundle-fail1.xml")
    first, second = check_constraints(doc), check_constraints(doc)
    assert first == second
    assert [v.constraint for v in first] == ["C55", "C56"]
    assert all("\n" not in v.message for v in first)
    assert first[0].to_dict()["records"] == ["ex:e1"]


def chain_document(links: int) -> ProvDocument:
    """A valid chain of ``links`` activities, five records each (used, generated, derived)."""
    doc = new_doc()
    for i in range(1, links + 1):
        a, t = f"ex:a{i}", T0 + i * HOUR
        doc.activity(a, t, t + HOUR / 2)
        doc.used(a, f"ex:e{i - 1}", t, identifier=f"ex:u{i}")
        doc.wasGeneratedBy(f"ex:e{i}", a, t + HOUR / 4, identifier=f"ex:g{i}")
        doc.wasDerivedFrom(f"ex:e{i}", f"ex:e{i - 1}", a, f"ex:g{i}", f"ex:u{i}")
        doc.wasAssociatedWith(a, "ex:bot")
    return doc


def test_ten_thousand_records_check_clean() -> None:
    """Correct at scale; how fast is measured by ``python -m benchmarks.constraints_10k``
    (no timed assertions here: a loaded machine would make them fail at random)."""
    doc = chain_document(2000)
    assert len(doc.get_records()) == 10000
    assert check_constraints(doc) == []
    late = doc.wasGeneratedBy("ex:e5", "ex:a2000", T0, identifier="ex:g-late")
    assert late is not None and check_constraints(doc) != []  # one bad record is still seen


NAMES = st.sampled_from(["ex:a", "ex:b", "ex:c", None])
TIMES = st.sampled_from([None, T0, T0 + HOUR, T0 - HOUR, datetime.datetime(2020, 1, 1, 10)])
ELEMENTS = {PROV["Entity"], PROV["Activity"], PROV["Agent"]}


@st.composite
def documents(draw: Any) -> ProvDocument:
    """Small documents of any records, arguments missing or not, names shared or not."""
    doc = new_doc()
    bundle = doc.bundle("ex:b")
    for _ in range(draw(st.integers(0, 14))):
        scope = bundle if draw(st.booleans()) else doc
        kind = draw(st.sampled_from(sorted(PROV_REC_CLS, key=str)))
        names = st.sampled_from(["ex:a", "ex:b", "ex:c"]) if kind in ELEMENTS else NAMES
        args = {attr: draw(TIMES if attr.localpart.endswith(("ime", "Time")) else NAMES)
                for attr in PROV_REC_CLS[kind].FORMAL_ATTRIBUTES}
        extra = {"prov:type": PROV["EmptyCollection"]} if draw(st.booleans()) else None
        scope.new_record(kind, draw(names), args, extra)
    return doc


@settings(max_examples=200, deadline=None)
@given(documents())
def test_any_document_is_checked_and_reported_in_order(doc: ProvDocument) -> None:
    violations = check_constraints(doc)
    assert violations == check_constraints(doc)
    numbers = [int(v.constraint[1:]) if v.constraint != "schema" else 99 for v in violations]
    assert numbers == sorted(numbers)
    for v in violations:
        assert re.fullmatch(r"C(2[2-9]|[34]\d|5[0-6])|schema", v.constraint), v.constraint
        assert v.kind in {"uniqueness", "ordering", "typing", "impossibility", "schema"}
        assert "\n" not in v.message and v.message


# -- PROV-JSON schema ------------------------------------------------------------------


def test_a_valid_document_passes_the_schema() -> None:
    doc = load_prov_document(DATA / "clean_with_bundles.json")
    assert validate_prov_json(json.loads(doc.serialize(format="json"))) == []


def test_a_root_wasendedby_passes_the_patched_schema_only() -> None:
    from jsonschema import Draft4Validator

    data = {
        "prefix": {"ex": "http://example.org/"},
        "wasEndedBy": {"ex:end": {"prov:activity": "ex:a", "prov:time": "2020-01-01T10:00:00Z"}},
    }
    assert validate_prov_json(data) == []
    upstream = json.loads((CORPUS.parent / "schemas" / "prov-json.schema.json").read_text())
    assert not Draft4Validator(upstream).is_valid(data)


@pytest.mark.parametrize(
    ("data", "pointer", "records"),
    [
        ({"wasGeneratedBy": {"ex:g": {"prov:activity": "ex:a"}}}, "/wasGeneratedBy/ex:g",
         ("ex:g",)),
        ({"entity": "not an object"}, "/entity", ()),
        ({"entity": {"ex:a/b": {"ex:n": {"$": 1}}}}, "/entity/ex:a~1b/ex:n", ("ex:a/b",)),
        ({"bundle": {"ex:b": {"entity": {"ex:e": 5}}}}, "/bundle/ex:b/entity/ex:e",
         ("ex:b", "ex:e")),
        ({"wasEndedby": {}}, "document root", ()),
        ([1, 2], "document root", ()),
    ],
)
def test_a_malformed_document_fails_naming_the_pointer(
    data: Any, pointer: str, records: tuple[str, ...]
) -> None:
    [violation] = validate_prov_json(data)
    assert (violation.constraint, violation.kind) == ("schema", "schema")
    assert violation.message.startswith(f"{pointer}: ")
    assert violation.records == records


# -- reading ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("broken.json", '{"entity": ', "cannot read it as PROV-JSON"),
        ("empty.json", "", "file is empty"),
        ("blank.xml", "  \n", "file is empty"),
        ("foreign.json", '{"foo": 1}', "not a recognised PROV-N record-type"),
        ("list.json", "[1, 2]", "must be a JSON object"),
        ("twice.json", '{"entity": {}, "entity": {}}', "duplicate key 'entity'"),
        ("badtime.json", '{"prefix": {"ex": "http://example.org/"}, '
                         '"activity": {"ex:a": {"prov:startTime": "yesterday"}}}',
         "is not an xsd:dateTime"),
        ("broken.xml", "<prov:document", "cannot read it as PROV-XML"),
        ("html.xml", "<html><body>hi</body></html>", "the root element is <html>"),
        ("broken.provn", "document\n  entity(\nendDocument", "cannot read it as PROV-N"),
        ("foaf.ttl", "<http://example.org/me> a <http://xmlns.com/foaf/0.1/Person> .",
         "PROV-O"),
        ("mystery.dat", "hello", "cannot tell which PROV format"),
    ],
)
def test_a_bad_file_is_an_input_error_naming_it(
    tmp_path: Path, name: str, content: str, says: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_prov_document(path)
    assert caught.value.file == str(path)
    assert says in caught.value.message
    assert str(path) in caught.value.one_line()


def test_a_missing_file_or_a_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_prov_document(tmp_path / "nope.json")
    with pytest.raises(InputError, match="not a regular file"):
        load_prov_document(tmp_path)


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"entity": {f"ex:e{i}": {} for i in range(100)}}))
    with pytest.raises(InputError, match="over the 1024-byte limit"):
        load_prov_document(path, max_bytes=1024)


def test_xml_entities_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    path = tmp_path / "xxe.xml"
    path.write_text(
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY s SYSTEM "{secret.as_uri()}">]>'
        '<prov:document xmlns:prov="http://www.w3.org/ns/prov#" '
        'xmlns:ex="http://example.org/"><prov:entity prov:id="ex:e1">'
        "<prov:label>&s;</prov:label></prov:entity></prov:document>"
    )
    doc = load_prov_document(path)
    assert "TOPSECRET" not in doc.get_provn()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("doc.provn", "document\n  prefix ex <http://example.org/>\n  entity(ex:x)\n"
                      "  activity(ex:x, -, -)\nendDocument\n"),
        ("doc.ttl", "@prefix prov: <http://www.w3.org/ns/prov#> .\n"
                    "@prefix ex: <http://example.org/> .\n"
                    "ex:x a prov:Entity, prov:Activity .\n"),
        ("doc.prov", '{"prefix": {"ex": "http://example.org/"}, "entity": {"ex:x": {}}, '
                     '"activity": {"ex:x": {}}}'),
        ("doc.jsonld", json.dumps({
            "@context": [{"ex": "http://example.org/"},
                         "https://openprovenance.org/prov-jsonld/context.jsonld"],
            "@graph": [{"@type": "Entity", "@id": "ex:x"}, {"@type": "Activity", "@id": "ex:x"}],
        })),
    ],
)
def test_other_formats_are_read(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    violations = check_constraints(load_prov_document(path))
    assert [(v.constraint, v.records) for v in violations] == [("C55", ("ex:x",))]
