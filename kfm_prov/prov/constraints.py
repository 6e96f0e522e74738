"""Validity of PROV documents under W3C PROV-CONSTRAINTS, and PROV-JSON schema checks.

``prov`` merges records that share an identifier and checks nothing else
(trungdong/prov#62). A gate that trusts provenance needs the rest of the Recommendation
(https://www.w3.org/TR/prov-constraints/), so this module normalises a document as the
Recommendation does (key unification C22/C23, uniqueness C24–C29, the inferences that the
ordering and typing rules rely on, typing C50) and reports every violation of the
ordering (C30–C49) and impossibility (C51–C56) constraints instead of stopping at the
first. Constraint numbers are the Recommendation's. The document top level and each
bundle are checked separately, because that is how the Recommendation defines a valid
document.

The module goes beyond the Recommendation in two ways:

* A recorded time places an event on one time line, so an event timed earlier strictly
  precedes one timed later. The Recommendation orders events without reading their times;
  here a usage timed before its activity's start breaks C33.
* A relation without a mandatory argument (``wasAttributedTo(e, -)``) is reported with
  ``constraint="schema"``. PROV-DM forbids it, but PROV-CONSTRAINTS gives it no number.
"""

from __future__ import annotations

import datetime
import functools
import io
import itertools
import pathlib
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kfm_prov.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from prov.model import ProvBundle, ProvDocument

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "ConstraintViolation",
    "check_constraints",
    "load_prov_document",
    "validate_prov_json",
]

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
PROV_NS = "http://www.w3.org/ns/prov#"

RULE_NAMES = {
    22: "key-object", 23: "key-properties", 24: "unique-generation",
    25: "unique-invalidation", 26: "unique-wasStartedBy", 27: "unique-wasEndedBy",
    28: "unique-startTime", 29: "unique-endTime", 30: "start-precedes-end",
    31: "start-start-ordering", 32: "end-end-ordering", 33: "usage-within-activity",
    34: "generation-within-activity", 35: "wasInformedBy-ordering",
    36: "generation-precedes-invalidation", 37: "generation-precedes-usage",
    38: "usage-precedes-invalidation", 39: "generation-generation-ordering",
    40: "invalidation-invalidation-ordering", 41: "derivation-usage-generation-ordering",
    42: "derivation-generation-generation-ordering", 43: "wasStartedBy-ordering",
    44: "wasEndedBy-ordering", 45: "specialization-generation-ordering",
    46: "specialization-invalidation-ordering", 47: "wasAssociatedWith-ordering",
    48: "wasAttributedTo-ordering", 49: "actedOnBehalfOf-ordering", 50: "typing",
    51: "impossible-unspecified-derivation-generation-use",
    52: "impossible-specialization-reflexive", 53: "impossible-property-overlap",
    54: "impossible-object-property-overlap", 55: "entity-activity-disjoint",
    56: "membership-empty-collection",
}

# prov record type (local name in the PROV namespace) -> PROV-N keyword.
KEYWORDS = {
    "Entity": "entity", "Activity": "activity", "Agent": "agent",
    "Generation": "wasGeneratedBy", "Usage": "used", "Communication": "wasInformedBy",
    "Start": "wasStartedBy", "End": "wasEndedBy", "Invalidation": "wasInvalidatedBy",
    "Derivation": "wasDerivedFrom", "Attribution": "wasAttributedTo",
    "Association": "wasAssociatedWith", "Delegation": "actedOnBehalfOf",
    "Influence": "wasInfluencedBy", "Specialization": "specializationOf",
    "Alternate": "alternateOf", "Mention": "mentionOf", "Membership": "hadMember",
}
OBJECTS = ("entity", "activity", "agent")
# PROV-DM's mandatory arguments; "-" is allowed in every other position.
MANDATORY = {
    "wasGeneratedBy": ("entity",), "used": ("activity",),
    "wasInformedBy": ("informed", "informant"), "wasStartedBy": ("activity",),
    "wasEndedBy": ("activity",), "wasInvalidatedBy": ("entity",),
    "wasDerivedFrom": ("generatedEntity", "usedEntity"), "wasAttributedTo": ("entity", "agent"),
    "wasAssociatedWith": ("activity",), "actedOnBehalfOf": ("delegate", "responsible"),
    "wasInfluencedBy": ("influencee", "influencer"),
    "specializationOf": ("specificEntity", "generalEntity"),
    "alternateOf": ("alternate1", "alternate2"),
    "mentionOf": ("specificEntity", "generalEntity", "bundle"),
    "hadMember": ("collection", "entity"),
}
# Constraint 50: the type that each argument position gives to its identifier.
TYPING = {
    "wasGeneratedBy": {"entity": "entity", "activity": "activity"},
    "used": {"activity": "activity", "entity": "entity"},
    "wasInformedBy": {"informed": "activity", "informant": "activity"},
    "wasStartedBy": {"activity": "activity", "trigger": "entity", "starter": "activity"},
    "wasEndedBy": {"activity": "activity", "trigger": "entity", "ender": "activity"},
    "wasInvalidatedBy": {"entity": "entity", "activity": "activity"},
    "wasDerivedFrom": {"generatedEntity": "entity", "usedEntity": "entity", "activity": "activity"},
    "wasAttributedTo": {"entity": "entity", "agent": "agent"},
    "wasAssociatedWith": {"activity": "activity", "agent": "agent", "plan": "entity"},
    "actedOnBehalfOf": {"delegate": "agent", "responsible": "agent", "activity": "activity"},
    "specializationOf": {"specificEntity": "entity", "generalEntity": "entity"},
    "alternateOf": {"alternate1": "entity", "alternate2": "entity"},
    "mentionOf": {"specificEntity": "entity", "generalEntity": "entity", "bundle": "entity"},
    "hadMember": {"collection": "entity", "entity": "entity"},
}
# Inference 15: each identified relation is also wasInfluencedBy(id; influencee, influencer).
# The keys are Constraint 54's relations; Constraint 53 covers only the first nine.
INFLUENCE_VIEW = {
    "used": ("activity", "entity"), "wasGeneratedBy": ("entity", "activity"),
    "wasInvalidatedBy": ("entity", "activity"), "wasStartedBy": ("activity", "trigger"),
    "wasEndedBy": ("activity", "trigger"), "wasInformedBy": ("informed", "informant"),
    "wasAttributedTo": ("entity", "agent"), "wasAssociatedWith": ("activity", "agent"),
    "actedOnBehalfOf": ("delegate", "responsible"),
    "wasDerivedFrom": ("generatedEntity", "usedEntity"),
    "wasInfluencedBy": ("influencee", "influencer"),
}
PAIRWISE_DISJOINT = tuple(INFLUENCE_VIEW)[:9]
# Constraints 24–27: statements that agree on these positions are one event.
UNIQUE_EVENTS = {
    "wasGeneratedBy": (24, ("entity", "activity")),
    "wasInvalidatedBy": (25, ("entity", "activity")),
    "wasStartedBy": (26, ("activity", "starter")),
    "wasEndedBy": (27, ("activity", "ender")),
}
EMPTY_COLLECTION = frozenset({PROV_NS + "EmptyCollection", "prov:EmptyCollection"})
TIME = 0  # edge label for precedences that come from recorded times

Node = tuple[str, Any]  # ("start" | "end" | "gen" | "inv" | "use" | "time", key)


@dataclass(frozen=True)
class ConstraintViolation:
    """A broken rule, with the records involved named so that a user knows where to look."""

    constraint: str  # "C24" (PROV-CONSTRAINTS numbering), or "schema"
    kind: str  # "uniqueness" | "ordering" | "typing" | "impossibility" | "schema"
    records: tuple[str, ...]  # identifiers as written, e.g. ("ex:e1",)
    message: str  # one line

    def to_dict(self) -> dict[str, Any]:
        return {"constraint": self.constraint, "kind": self.kind,
                "records": list(self.records), "message": self.message}


@dataclass
class _Stmt:
    """A record with its references resolved to IRIs (``None`` for ``-``) and times to UTC."""

    kind: str  # PROV-N keyword
    ident: str | None  # IRI, or None for an anonymous record or a blank node
    args: dict[str, Any]
    types: frozenset[str]  # prov:type values, needed for C56
    origin: _Stmt | None  # for an inferred statement, the derivation it comes from
    key: str  # ident, or "#<n>" for an anonymous statement


# -- checking --------------------------------------------------------------------------


def check_constraints(doc: ProvDocument) -> list[ConstraintViolation]:
    """Return every PROV-CONSTRAINTS violation in ``doc``, sorted. ``doc`` is not changed."""
    found: set[ConstraintViolation] = set()
    scopes: list[tuple[ProvBundle, str]] = [(doc, "")]
    scopes += [(bundle, f" (in bundle {bundle.identifier})") for bundle in doc.bundles]
    for scope, where in scopes:
        found.update(_ScopeCheck(scope, where).run())
    return sorted(found, key=_violation_order)


def _violation_order(v: ConstraintViolation) -> tuple[Any, ...]:
    number = int(v.constraint[1:]) if v.constraint[1:].isdigit() else 999
    return (number, v.kind, v.records, v.message)


def _distinct(values: Iterable[Any]) -> list[Any]:
    """Return the non-null values in first-seen order, each only once."""
    return list(dict.fromkeys(v for v in values if v is not None))


def _fmt_time(t: datetime.datetime) -> str:
    return t.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


class _ScopeCheck:
    """Check one scope (the top level or one bundle), collecting violations as it goes."""

    def __init__(self, scope: ProvBundle, where: str) -> None:
        self.where = where
        self.names: dict[str, str] = {}  # IRI -> identifier as written
        self.out: list[ConstraintViolation] = []
        self.timeless: set[Node] = set()  # events whose time conflict is already reported
        self.c41: list[tuple[str, str]] = []  # (usage key, generated entity) per derivation
        self.serial = 0
        self.stmts = [s for r in scope.get_records() if (s := self._read(r)) is not None]

    def _read(self, record: Any) -> _Stmt | None:
        base = record.get_type()
        kind = KEYWORDS.get(base.localpart) if base.namespace.uri == PROV_NS else None
        if kind is None:
            return None
        formal = record.FORMAL_ATTRIBUTES
        args: dict[str, Any] = {name.localpart: None for name in formal}
        types = set()
        for name, value in record.attributes:  # one pass: prov's properties walk it twice
            if name in formal:
                args[name.localpart] = args[name.localpart] or self._value(value)
            elif name.uri == PROV_NS + "type":
                types.add(getattr(value, "uri", None) or str(value))
        return self._new(kind, self._value(record.identifier), args, frozenset(types))

    def _new(self, kind: str, ident: str | None, args: dict[str, Any],
             types: frozenset[str] = frozenset(),
             origin: _Stmt | None = None) -> _Stmt:
        self.serial += 1
        return _Stmt(kind, ident, args, types, origin, ident or f"#{self.serial}")

    def _value(self, value: Any) -> Any:
        if value is None or isinstance(value, datetime.datetime):
            return value if value is None or value.tzinfo else value.replace(tzinfo=datetime.UTC)
        uri = getattr(value, "uri", None)
        if isinstance(uri, str):
            self.names.setdefault(uri, str(value))
            return uri
        return str(value)

    def name(self, value: Any) -> str:
        if isinstance(value, datetime.datetime):
            return _fmt_time(value)
        return "-" if value is None else self.names.get(value, value)

    def show(self, s: _Stmt) -> str:
        """Return the statement in PROV-N, which names it even when it has no identifier."""
        args = [self.name(v) for v in s.args.values()]
        if s.kind in OBJECTS:
            return f"{s.kind}({', '.join([self.name(s.ident), *args])})"
        head = f"{self.name(s.ident)}; " if s.ident else ""
        return f"{s.kind}({head}{', '.join(args)})"

    def report(self, number: int | str, kind: str, records: Iterable[Any], text: str) -> None:
        constraint = f"C{number}" if isinstance(number, int) else number
        label = f"{constraint} {RULE_NAMES[number]}: " if isinstance(number, int) else ""
        ids = {self.name(r) for r in records if isinstance(r, str) and not r.startswith("#")}
        self.out.append(ConstraintViolation(constraint, kind, tuple(sorted(ids)),
                                            f"{label}{text}{self.where}"))

    def run(self) -> list[ConstraintViolation]:
        merged = self._unify(self.stmts)
        inferred = self._infer_derivation_events(merged)
        events = ("used", "wasGeneratedBy")
        merged = [s for s in merged if s.kind not in events] + self._unify(
            [s for s in merged if s.kind in events] + inferred
        )
        self._check_overlaps(merged)
        self._check_mandatory(merged)
        self._check_uniqueness(merged)
        types = self._check_typing(merged)
        self._check_specializations(merged)
        self._check_ordering(merged, types)
        return self.out

    # -- C22, C23: key unification -------------------------------------------------------

    def _unify(self, stmts: list[_Stmt]) -> list[_Stmt]:
        """Merge the statements of one kind that share an identifier (C22, C23)."""
        groups: dict[tuple[str, str], list[_Stmt]] = defaultdict(list)
        out = []
        for s in stmts:
            if s.ident is None:
                out.append(s)
            else:
                groups[(s.kind, s.ident)].append(s)
        out += [self._merge(group) if len(group) > 1 else group[0] for group in groups.values()]
        return out

    def _merge(self, group: list[_Stmt]) -> _Stmt:
        first = group[0]
        args: dict[str, Any] = {}
        clashes: dict[str, str] = {}
        for pos in first.args:
            values = [s.args.get(pos) for s in group]
            present = _distinct(values)
            args[pos] = present[0] if present else None
            if len(present) > 1:
                clashes[pos] = " vs ".join(self.name(v) for v in present)
            elif present and None in values and _non_expandable(first.kind, pos, args):
                clashes[pos] = f"{self.name(present[0])} vs - (a placeholder that stays empty)"
        origins = [s.origin for s in group]
        merged = _Stmt(first.kind, first.ident, args, frozenset().union(*(s.types for s in group)),
                       None if None in origins else origins[0], first.key)
        if clashes:
            source = next((o for o in origins if o is not None), None)
            note = f" (one inferred from {self.show(source)} by Inference 11)" if source else ""
            detail = "; ".join(f"{pos} {text}" for pos, text in clashes.items())
            self.report(22 if first.kind in OBJECTS else 23, "uniqueness", [first.ident],
                        f"{first.kind} {self.name(first.ident)} is stated {len(group)} times "
                        f"with conflicting {detail}{note}")
            nodes = self._event_nodes(merged)
            if first.kind == "activity":
                nodes = [n for n, pos in zip(nodes, ("startTime", "endTime"), strict=True)
                         if pos in clashes]
            if {"time", "startTime", "endTime"} & clashes.keys():
                self.timeless.update(nodes)
        return merged

    def _infer_derivation_events(self, merged: list[_Stmt]) -> list[_Stmt]:
        """Apply Inference 11: a derivation by activity ``a`` is a usage of the source and a
        generation of the result by ``a``, and both are checked like asserted ones."""
        out = []
        for d in merged:
            if d.kind != "wasDerivedFrom" or d.args["activity"] is None:
                continue
            a, e2, e1 = d.args["activity"], d.args["generatedEntity"], d.args["usedEntity"]
            use = self._new("used", d.args["usage"], {"activity": a, "entity": e1, "time": None},
                            origin=d)
            gen = self._new("wasGeneratedBy", d.args["generation"],
                            {"entity": e2, "activity": a, "time": None}, origin=d)
            out += [use, gen]
            self.c41.append((use.key, e2))
        return out

    def _check_overlaps(self, merged: list[_Stmt]) -> None:
        """Check which kinds of statement may share an identifier (C53, C54; C55 is typing)."""
        by_ident: dict[str, list[_Stmt]] = defaultdict(list)
        for s in merged:
            if s.ident is not None and (s.kind in OBJECTS or s.kind in INFLUENCE_VIEW):
                by_ident[s.ident].append(s)
        for ident, group in by_ident.items():
            kinds = _distinct(s.kind for s in group)
            objects = [k for k in kinds if k in OBJECTS]
            relations = [k for k in kinds if k in INFLUENCE_VIEW]
            disjoint = [k for k in kinds if k in PAIRWISE_DISJOINT]
            named = f"identifier {self.name(ident)} names both "
            if objects and relations:
                self.report(54, "impossibility", [ident],
                            f"{named}{' and '.join(objects)} and {' and '.join(relations)}")
            elif len(disjoint) > 1:
                self.report(53, "impossibility", [ident], named + " and ".join(disjoint))
            elif len(relations) > 1:
                self._check_influence_ends(ident, group)

    def _check_influence_ends(self, ident: str, group: list[_Stmt]) -> None:
        """Relations that share an identifier, such as a derivation and an influence, are one
        wasInfluencedBy (Inference 15), so they must agree on both of its ends (C23)."""
        for index, end in enumerate(("influencee", "influencer")):
            ends = _distinct(s.args[INFLUENCE_VIEW[s.kind][index]] for s in group)
            if len(ends) > 1:
                kinds = " and ".join(_distinct(s.kind for s in group))
                self.report(23, "uniqueness", [ident],
                            f"{kinds} {self.name(ident)} are one wasInfluencedBy (Inference 15) "
                            f"but disagree on its {end}: {' vs '.join(map(self.name, ends))}")

    # -- mandatory arguments, C51, C24–C29 -----------------------------------------------

    def _check_mandatory(self, merged: list[_Stmt]) -> None:
        """Report missing mandatory arguments (PROV-DM) and activity-less derivations (C51)."""
        for s in merged:
            missing = [p for p in MANDATORY.get(s.kind, ()) if s.args[p] is None]
            if missing and not s.origin:
                self.report("schema", "schema", [s.ident, *s.args.values()],
                            f"{self.show(s)} lacks its mandatory {' and '.join(missing)} "
                            "(PROV-DM)")
            if s.kind == "wasDerivedFrom" and s.args["activity"] is None:
                given = [p for p in ("generation", "usage") if s.args[p] is not None]
                if given:
                    self.report(51, "impossibility", [s.ident, s.args["generatedEntity"]],
                                f"{self.show(s)} names a {' and a '.join(given)} but no "
                                "activity")

    def _check_uniqueness(self, merged: list[_Stmt]) -> None:
        """Check C24–C27 (statements that agree on their key positions are one event) and
        C28/C29 (an activity's start and end times are those of its start and end)."""
        groups: dict[tuple[str, ...], list[_Stmt]] = defaultdict(list)
        for s in merged:
            if s.kind in UNIQUE_EVENTS:
                key = (s.kind, *(s.args[p] for p in UNIQUE_EVENTS[s.kind][1]))
                if None not in key:
                    groups[key].append(s)
        for (kind, *values), group in groups.items():
            if len(group) > 1:
                self._check_one_event(kind, values, group)
        activities = {s.ident: s for s in merged if s.kind == "activity"}
        for s in merged:
            if s.kind not in ("wasStartedBy", "wasEndedBy"):
                continue
            pos, number = ("startTime", 28) if s.kind == "wasStartedBy" else ("endTime", 29)
            a = activities.get(s.args["activity"])
            if a is None or None in (a.args[pos], s.args["time"]) or a.args[pos] == s.args["time"]:
                continue
            self.report(number, "uniqueness", [a.ident, s.ident],
                        f"activity {self.name(a.ident)} has {pos} {self.name(a.args[pos])} "
                        f"but {self.show(s)} differs")
            self.timeless.update(self._event_nodes(s))

    def _check_one_event(self, kind: str, values: list[str], group: list[_Stmt]) -> None:
        number, keys = UNIQUE_EVENTS[kind]
        pairs = " and ".join(f"{k} {self.name(v)}" for k, v in zip(keys, values, strict=True))
        what = f"{len(group)} {kind} with {pairs} are one event"
        ids = _distinct(s.ident for s in group)
        if len(ids) > 1:
            self.report(number, "uniqueness", [*ids, *values],
                        f"{what} but have identifiers {', '.join(map(self.name, ids))}")
            return
        for pos in group[0].args:
            present = _distinct(s.args[pos] for s in group)
            if pos not in keys and len(present) > 1:
                self.report(number, "uniqueness", [*ids, *values],
                            f"{what} but differ in {pos}: {', '.join(map(self.name, present))}")
                if pos == "time":
                    self.timeless.update(self._event_nodes(group[0]))

    # -- C50, C55, C56, C52 --------------------------------------------------------------

    def _check_typing(self, merged: list[_Stmt]) -> dict[str, dict[str, tuple[_Stmt, str]]]:
        """Give each identifier its types (C50) and check the two forbidden mixes (C55, C56)."""
        # IRI -> type -> (first statement giving it, position or "" for a declaration)
        types: dict[str, dict[str, tuple[_Stmt, str]]] = defaultdict(dict)
        for s in merged:
            if s.kind in OBJECTS and s.ident is not None:
                types[s.ident].setdefault(s.kind, (s, ""))
                # PROV-O's "ex:x a prov:Entity, prov:Activity" reaches us as an entity whose
                # prov:type is prov:Activity: a qualified name, never a string, declares.
                for typ in OBJECTS:
                    if PROV_NS + typ.capitalize() in s.types:
                        types[s.ident].setdefault(typ, (s, "prov:type"))
                if s.kind == "entity" and s.types & EMPTY_COLLECTION:
                    types[s.ident].setdefault("EmptyCollection", (s, ""))
            for pos, typ in TYPING.get(s.kind, {}).items():
                if s.args[pos] is not None:
                    types[s.args[pos]].setdefault(typ, (s, pos))
        for ident, has in types.items():
            if "entity" in has and "activity" in has:
                self.report(55, "typing", [ident],
                            f"{self.name(ident)} is an entity ({self._why(has['entity'])}) and "
                            f"an activity ({self._why(has['activity'])})")
        for s in merged:
            c = s.args["collection"] if s.kind == "hadMember" else None
            if c is not None and "EmptyCollection" in types[c]:
                self.report(56, "impossibility", [c, s.args["entity"]],
                            f"{self.name(c)} is a prov:EmptyCollection "
                            f"({self._why(types[c]['EmptyCollection'])}) yet {self.show(s)}")
        return types

    def _why(self, reason: tuple[_Stmt, str]) -> str:
        s, pos = reason
        return f"as the {pos} of {self.show(s)}" if pos else f"in {self.show(s)}"

    def _check_specializations(self, merged: list[_Stmt]) -> None:
        """Check that no entity is a specialization of itself, directly or through a cycle
        (C52 with Inference 19); mentionOf is a specializationOf."""
        edges = {(s.args["specificEntity"], s.args["generalEntity"]) for s in merged
                 if s.kind in ("specializationOf", "mentionOf")}
        edges = {(u, v) for u, v in edges if u is not None and v is not None}
        core = _cyclic_core(edges)
        if not core:
            return
        import networkx as nx

        graph = nx.DiGraph([(u, v) for u, v in edges if u in core and v in core])
        for component in sorted(nx.strongly_connected_components(graph), key=min):
            loop = sorted(component, key=self.name)
            if len(loop) > 1:
                chain = " → ".join(self.name(e) for e in [*loop, loop[0]])
                self.report(52, "impossibility", loop,
                            f"specializationOf cycle {chain} makes each entity on it a "
                            "specialization of itself (Inference 19)")
            elif graph.has_edge(loop[0], loop[0]):
                self.report(52, "impossibility", loop,
                            f"{self.name(loop[0])} is a specialization of itself")

    # -- C30–C49: ordering ---------------------------------------------------------------

    def _event_nodes(self, s: _Stmt) -> list[Node]:
        """Return the events that a statement's times belong to. All starts of an activity
        are one node, as are all its ends, and all generations or all invalidations of an
        entity: C31, C32, C39 and C40 make each of these groups simultaneous."""
        kind = s.kind
        if kind == "activity":
            return [("start", s.ident), ("end", s.ident)]
        if kind == "used":
            return [("use", s.key)]
        if kind in ("wasStartedBy", "wasEndedBy"):
            node: Node = ("start" if kind == "wasStartedBy" else "end", s.args["activity"])
        elif kind in ("wasGeneratedBy", "wasInvalidatedBy"):
            node = ("gen" if kind == "wasGeneratedBy" else "inv", s.args["entity"])
        else:
            return []
        return [node] if node[1] is not None else []

    def _check_ordering(self, merged: list[_Stmt], types: dict[str, Any]) -> None:
        """Check C30–C49 on a precedence graph over events.

        A rule edge whose two events are timed the wrong way round is reported on its own.
        Any other cycle through a strict edge (C41, C42, or a later recorded time) is an
        event that would have to happen before itself.
        """
        graph = _Precedence(self.name)
        for ident, has in types.items():
            if "activity" in has:
                graph.add(("start", ident), ("end", ident), 30)
            if "entity" in has:
                graph.add(("gen", ident), ("inv", ident), 36)
        for s in merged:
            self._order(graph, s)
        for use, generated in self.c41:
            graph.add(("use", use), ("gen", generated), 41, strict=True)
        self._place_times(graph, merged)
        for u, v, strict, rules in graph.pop_timed_conflicts():
            self.report(min(rules), "ordering", [*graph.refs(u), *graph.refs(v)],
                        f"{graph.timed(u)} must {'strictly ' if strict else ''}precede "
                        f"{graph.timed(v)}")
        for cycle in graph.strict_cycles():
            self._report_cycle(graph, cycle)

    def _order(self, g: _Precedence, s: _Stmt) -> None:
        """Add the precedences that one statement implies (the C30–C49 table)."""
        k, x = s.kind, s.args
        if k == "used":
            use: Node = ("use", s.key)
            g.add(("start", x["activity"]), use, 33)
            g.add(use, ("end", x["activity"]), 33)
            g.add(("gen", x["entity"]), use, 37)
            g.add(use, ("inv", x["entity"]), 38)
            named = f"usage {self.name(s.ident)}" if s.ident else (
                f"usage of {self.name(x['entity'])} by {self.name(x['activity'])}")
            g.describe(use, named, [s.ident] if s.ident else [x["activity"], x["entity"]])
        elif k == "wasGeneratedBy":
            g.add(("start", x["activity"]), ("gen", x["entity"]), 34)
            g.add(("gen", x["entity"]), ("end", x["activity"]), 34)
        elif k in ("wasStartedBy", "wasEndedBy"):
            self._order_trigger(g, s)
        elif k == "wasInformedBy":
            g.add(("start", x["informant"]), ("end", x["informed"]), 35)
        elif k == "wasDerivedFrom":
            g.add(("gen", x["usedEntity"]), ("gen", x["generatedEntity"]), 42, strict=True)
        elif k in ("specializationOf", "mentionOf"):
            g.add(("gen", x["generalEntity"]), ("gen", x["specificEntity"]), 45)
            g.add(("inv", x["specificEntity"]), ("inv", x["generalEntity"]), 46)
        elif k == "wasAssociatedWith":
            g.associate(x["activity"], x["agent"])
        elif k == "wasAttributedTo":
            g.add(("gen", x["agent"]), ("gen", x["entity"]), 48)
            g.add(("start", x["agent"]), ("gen", x["entity"]), 48)
        elif k == "actedOnBehalfOf":
            g.add(("gen", x["responsible"]), ("inv", x["delegate"]), 49)
            g.add(("start", x["responsible"]), ("end", x["delegate"]), 49)
            g.associate(x["activity"], x["delegate"])  # Inference 14
            g.associate(x["activity"], x["responsible"])

    def _order_trigger(self, g: _Precedence, s: _Stmt) -> None:
        """Order a start or end against its trigger (C43, C44). The activity that made the
        trigger generated it (Inferences 9, 10), so it was running then (C34), even when
        the trigger itself is not named."""
        starting = s.kind == "wasStartedBy"
        event: Node = ("start" if starting else "end", s.args["activity"])
        rule = 43 if starting else 44
        trigger, by = s.args["trigger"], s.args["starter" if starting else "ender"]
        made: Node | None = ("gen", trigger) if trigger is not None else None
        if made is None and by is not None:
            made = ("gen", f"#{s.key}")
            g.describe(made, f"generation of the unnamed trigger of {self.show(s)}", [by])
        if made is not None:
            g.add(made, event, rule)
            g.add(event, ("inv", trigger), rule)
            g.add(("start", by), made, 34)
            g.add(made, ("end", by), 34)

    def _place_times(self, g: _Precedence, merged: list[_Stmt]) -> None:
        """Give events their recorded times. An event with two different times is reported
        once, under the rule that made its statements one event, and is then left untimed."""
        times: dict[Node, list[datetime.datetime]] = defaultdict(list)
        for s in merged:
            nodes = self._event_nodes(s)
            if s.kind == "activity":
                times[nodes[0]].append(s.args["startTime"])
                times[nodes[1]].append(s.args["endTime"])
            elif nodes:
                times[nodes[0]].append(s.args["time"])
        rules = {"start": 31, "end": 32, "gen": 39, "inv": 40}
        for node, stamps in times.items():
            distinct = _distinct(stamps)
            if node in self.timeless or not distinct:
                continue
            if len(distinct) == 1:
                g.time(node, distinct[0])
            elif node[0] in rules:
                self.report(rules[node[0]], "ordering", [node[1]],
                            f"every {g.text(node)} is one instant, but they are timed "
                            f"{', '.join(map(self.name, distinct))}")

    def _report_cycle(self, g: _Precedence, cycle: list[Node]) -> None:
        edges = list(itertools.pairwise(cycle))
        labels = set().union(*(g.why(u, v) for u, v in edges))
        rules = sorted(labels - {TIME})
        # Every event has at most one time and the time line is acyclic, so a cycle always
        # has a rule edge. The rule of its strict edge (C41, C42) names the cycle best.
        number = min((g.why(*edges[0]) - {TIME}) or rules)
        via = ", ".join(f"C{r}" for r in rules) + (" and recorded times" if TIME in labels else "")
        self.report(number, "ordering", [ref for node in cycle for ref in g.refs(node)],
                    f"these events would each have to precede the next: {g.chain(cycle)} "
                    f"(by {via})")


def _non_expandable(kind: str, pos: str, merged: dict[str, Any]) -> bool:
    """Tell whether an absent value at ``pos`` means "none" rather than "unknown".

    PROV-CONSTRAINTS (Definition 4, Table 3) treats an association's plan and a
    derivation's activity that way, and also a derivation's generation and usage when it
    names no activity. Such a value cannot be unified with a concrete one.
    """
    if kind == "wasAssociatedWith":
        return pos == "plan"
    if kind == "wasDerivedFrom":
        no_activity = merged.get("activity") is None
        return pos == "activity" or (pos in ("generation", "usage") and no_activity)
    return False


class _Precedence:
    """Events linked by "precedes or is simultaneous with" edges, some of them strict.

    Events are numbered as they are added so that networkx hashes integers, not tuples.
    """

    CHAIN_LIMIT = 12  # events shown in a cycle before the middle is elided

    def __init__(self, name: Callable[[Any], str]) -> None:
        self.name = name
        self.nodes: list[Node] = []
        self.index: dict[Node, int] = {}
        self.edges: dict[tuple[int, int], tuple[bool, set[int]]] = {}
        self.texts: dict[Node, tuple[str, list[Any]]] = {}
        self.times: dict[int, datetime.datetime] = {}

    def _id(self, node: Node) -> int:
        number = self.index.get(node)
        if number is None:
            number = self.index[node] = len(self.nodes)
            self.nodes.append(node)
        return number

    def add(self, u: Node, v: Node, rule: int, strict: bool = False) -> None:
        if u[1] is None or v[1] is None:  # "-" names no event
            return
        key = (self._id(u), self._id(v))
        entry = self.edges.get(key)
        if entry is None:
            self.edges[key] = (strict, {rule})
        else:
            entry[1].add(rule)
            if strict and not entry[0]:
                self.edges[key] = (True, entry[1])

    def associate(self, a: str | None, ag: str | None) -> None:
        """Add C47 for wasAssociatedWith(a, ag). The agent can be an entity or an activity."""
        self.add(("start", a), ("inv", ag), 47)
        self.add(("gen", ag), ("end", a), 47)
        self.add(("start", a), ("end", ag), 47)
        self.add(("start", ag), ("end", a), 47)

    def describe(self, node: Node, text: str, refs: list[Any]) -> None:
        self.texts[node] = (text, refs)

    def time(self, node: Node, when: datetime.datetime) -> None:
        self.times[self._id(node)] = when

    def why(self, u: Node, v: Node) -> set[int]:
        return self.edges[(self.index[u], self.index[v])][1]

    def text(self, node: Node) -> str:
        if node in self.texts:
            return self.texts[node][0]
        what = {"start": "start", "end": "end", "gen": "generation", "inv": "invalidation"}
        return f"{what[node[0]]} of {self.name(node[1])}"

    def timed(self, node: Node) -> str:
        when = self.times.get(self.index[node])
        return self.text(node) + (f" [{_fmt_time(when)}]" if when else "")

    def refs(self, node: Node) -> list[Any]:
        if node[0] == "time":
            return []
        return self.texts[node][1] if node in self.texts else [node[1]]

    def pop_timed_conflicts(self) -> list[tuple[Node, Node, bool, set[int]]]:
        """Remove and return the rule edges whose first event is timed after the second.

        Each is a violation on its own, best reported with just its two events. Removing it
        leaves the cycle search to the violations that only a longer path reveals. Equal
        times never conflict: clocks have a resolution, and within it either order is
        possible, even for a strict edge.
        """
        conflicts = []
        for (u, v), (strict, rules) in list(self.edges.items()):
            tu, tv = self.times.get(u), self.times.get(v)
            if tu is not None and tv is not None and tu > tv:
                conflicts.append((self.nodes[u], self.nodes[v], strict, rules))
                del self.edges[(u, v)]
        return conflicts

    def strict_cycles(self) -> list[list[Node]]:
        """Return one cycle (first node repeated last) for each strongly connected component
        that holds a strict edge, preferring a rule's strict edge to a time's.

        Each distinct time gets two points on a line: events timed t precede "after t",
        which precedes every later point and strictly precedes "before t'" for the next
        time t', which precedes the events timed t'. The line adds no cycle of its own.
        Most documents are acyclic, so networkx only sees what peeling leaves over.
        """
        stamps = sorted(set(self.times.values()))
        rank = {when: k for k, when in enumerate(stamps)}
        for number, when in list(self.times.items()):
            k = rank[when]
            self.edges[(number, self._id(("time", ("after", k))))] = (False, {TIME})
            self.edges[(self._id(("time", ("before", k))), number)] = (False, {TIME})
        for k in range(len(stamps) - 1):
            self.add(("time", ("after", k)), ("time", ("after", k + 1)), TIME)
            self.add(("time", ("after", k)), ("time", ("before", k + 1)), TIME, strict=True)
        core = _cyclic_core(self.edges)
        if not core:
            return []
        import networkx as nx

        inner = {e: data for e, data in self.edges.items() if e[0] in core and e[1] in core}
        graph = nx.DiGraph(list(inner))
        component: dict[int, int] = {}
        members: list[set[int]] = []
        for index, nodes in enumerate(nx.strongly_connected_components(graph)):
            members.append(nodes)
            component.update(dict.fromkeys(nodes, index))
        chosen: dict[int, tuple[int, int]] = {}
        for (u, v), (strict, rules) in inner.items():
            index = component[u]
            if not strict or index != component[v]:
                continue
            if index not in chosen or (TIME in self.edges[chosen[index]][1] and TIME not in rules):
                chosen[index] = (u, v)
        cycles = []
        for index, (u, v) in chosen.items():
            path = [u] if u == v else nx.shortest_path(graph.subgraph(members[index]), v, u)
            cycles.append([self.nodes[n] for n in (u, *path)])
        return cycles

    def chain(self, cycle: list[Node]) -> str:
        """Render a cycle as ``A ≤ B < C ≤ A`` with times shown, time points left out and
        the middle of a long cycle elided."""
        ring = cycle[:-1]
        start = next(i for i, node in enumerate(ring) if node[0] != "time")
        ring = ring[start:] + ring[:start] + [ring[start]]
        steps: list[tuple[str, Node]] = []
        strict = False
        for u, v in itertools.pairwise(ring):
            strict = strict or self.edges[(self.index[u], self.index[v])][0]
            if v[0] != "time":
                steps.append(("<" if strict else "≤", v))
                strict = False
        half = self.CHAIN_LIMIT // 2
        if len(steps) > self.CHAIN_LIMIT:
            skipped = len(steps) - self.CHAIN_LIMIT
            steps = [*steps[:half], ("…", ("skip", skipped)), *steps[-half:]]
        parts = [self.timed(ring[0])]
        for mark, node in steps:
            shown = f"({node[1]} more events) …" if node[0] == "skip" else self.timed(node)
            parts += [mark, shown]
        return " ".join(parts)


def _cyclic_core(edges: Iterable[tuple[Any, Any]]) -> set[Any]:
    """Return the nodes left after repeatedly removing nodes with no incoming edge, then
    nodes with no outgoing edge. Every cycle lies within them, so they are all that
    strongly connected components need to look at. Costs linear time."""
    succ: dict[Any, list[Any]] = defaultdict(list)
    pred: dict[Any, list[Any]] = defaultdict(list)
    for u, v in edges:
        succ[u].append(v)
        pred[v].append(u)
    alive = set(succ) | set(pred)
    for into, out in ((pred, succ), (succ, pred)):
        count = {n: sum(m in alive for m in into[n]) for n in alive}
        queue = [n for n, c in count.items() if c == 0]
        while queue:
            n = queue.pop()
            alive.discard(n)
            for m in out[n]:
                if m in alive:
                    count[m] -= 1
                    if count[m] == 0:
                        queue.append(m)
    return alive


# -- reading -------------------------------------------------------------------------------

SUFFIX_FORMATS: dict[str, tuple[str, dict[str, str]]] = {
    ".json": ("json", {}), ".xml": ("xml", {}), ".provx": ("xml", {}),
    ".provn": ("provn", {}), ".jsonld": ("jsonld", {}),
    ".ttl": ("rdf", {"rdf_format": "turtle"}), ".trig": ("rdf", {"rdf_format": "trig"}),
    ".rdf": ("rdf", {"rdf_format": "xml"}), ".owl": ("rdf", {"rdf_format": "xml"}),
    ".nt": ("rdf", {"rdf_format": "nt"}), ".nq": ("rdf", {"rdf_format": "nquads"}),
}
FORMAT_NAMES = {"json": "PROV-JSON", "xml": "PROV-XML", "provn": "PROV-N",
                "jsonld": "PROV-JSONLD", "rdf": "PROV-O (RDF)"}


def load_prov_document(path: pathlib.Path, *, max_bytes: int = MAX_DOCUMENT_BYTES,
                       ) -> ProvDocument:
    """Read a PROV document, choosing the format by extension or else by its first bytes.

    Reads PROV-JSON, PROV-XML (including ProvToolbox's ``<prov:bundle>`` form), PROV-N,
    PROV-JSONLD and PROV-O in Turtle, TriG, RDF/XML or N-Triples. ``.jsonld`` is read as
    PROV-JSONLD rather than as generic JSON-LD, because rdflib would fetch a remote
    ``@context`` over the network. Anything wrong with the file (too big, empty,
    malformed, not PROV, or a JSON object with a duplicate key) raises
    :class:`~kfm_prov.errors.InputError` naming the file, never a parser's exception.
    """
    path = pathlib.Path(path)
    where = str(path)
    if not path.exists():
        raise NotFoundError("no such PROV document", file=where)
    if not path.is_file():
        raise InputError("not a regular file, so not a PROV document", file=where)
    limit = f"over the {max_bytes}-byte limit for a PROV document"
    if path.stat().st_size > max_bytes:
        raise InputError(f"file is {path.stat().st_size} bytes, {limit}", file=where)
    with path.open("rb") as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"file grew while being read and is now {limit}", file=where)
    if not data.strip():
        raise InputError("file is empty, not a PROV document", file=where)
    fmt, options = SUFFIX_FORMATS.get(path.suffix.lower()) or _sniff(data, where)
    try:
        doc = _deserialize(data, fmt, options, where)
    except InputError:
        raise
    except Exception as exc:  # any parser's failure is a fault of the input
        text = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise InputError(f"cannot read it as {FORMAT_NAMES[fmt]}: {text}", file=where) from exc
    if fmt == "rdf" and not doc.get_records() and not list(doc.bundles):
        raise InputError("no PROV statements found in this RDF", file=where)
    return doc


def _sniff(data: bytes, where: str) -> tuple[str, dict[str, str]]:
    head = data[:4096].decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if head.startswith(("{", "[")):
        return ("jsonld", {}) if '"@context"' in head or '"@graph"' in head else ("json", {})
    if head.startswith("<"):
        return ("rdf", {"rdf_format": "xml"}) if "<rdf:RDF" in head else ("xml", {})
    if head.startswith("document"):
        return ("provn", {})
    if head.startswith(("@prefix", "@base", "PREFIX", "BASE")):
        return ("rdf", {"rdf_format": "trig"})
    raise InputError("cannot tell which PROV format this file is in", file=where,
                     hint="name it .json, .xml, .provn, .jsonld, .ttl, .trig or .rdf")


def _deserialize(data: bytes, fmt: str, options: dict[str, Any], where: str) -> ProvDocument:
    from prov.model import ProvDocument, ProvFutureRejectionWarning

    with warnings.catch_warnings():
        # prov drops a value it cannot represent, and 3.3.0 will refuse it. A validator
        # that reads past it would pass a document it never saw, so treat it as malformed.
        warnings.simplefilter("error", ProvFutureRejectionWarning)
        # rdflib deprecations raised inside prov's RDF reader: no input can avoid them.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"rdflib\.")
        if fmt == "xml":
            return _read_prov_xml(data, where)
        if fmt == "json":
            options = {**options, "object_pairs_hook": _unique_keys}
        return ProvDocument.deserialize(io.BytesIO(data), format=fmt, **options)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Reject a duplicate JSON key, which json would otherwise let the later value hide."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


_XML_ATTRIBUTE_ELEMENTS = frozenset({"label", "location", "role", "type", "value"})


def _read_prov_xml(data: bytes, where: str) -> ProvDocument:
    """Read PROV-XML, rejecting a foreign root (prov reads ``<foo/>`` as an empty document)
    and accepting ProvToolbox's ``<prov:bundle>`` as the XSD's ``<prov:bundleContent>``."""
    from lxml import etree
    from prov.model import ProvDocument
    from prov.serializers.provxml import ProvXMLSerializer

    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                             remove_pis=True)
    root = etree.fromstring(data, parser)
    if root.tag != f"{{{PROV_NS}}}document":
        raise InputError(f"not PROV-XML: the root element is <{etree.QName(root).localname}>, "
                         "not <prov:document>", file=where)
    for child in root.iterchildren(f"{{{PROV_NS}}}bundle"):
        # The XSD's <prov:bundle> declares a bundle entity (its children are attributes,
        # as prov writes a prov:Bundle entity); only one holding records is content.
        holds_records = any(etree.QName(c).namespace == PROV_NS
                            and etree.QName(c).localname not in _XML_ATTRIBUTE_ELEMENTS
                            for c in child.iterchildren(tag=etree.Element))
        if f"{{{PROV_NS}}}id" in child.attrib and holds_records:
            child.tag = f"{{{PROV_NS}}}bundleContent"
    doc = ProvDocument()
    ProvXMLSerializer().deserialize_subtree(root, doc)
    return doc


# -- PROV-JSON schema ----------------------------------------------------------------------


@functools.cache
def _prov_json_validator() -> Any:
    from jsonschema.validators import validator_for

    from kfm_prov.core.validation import shipped_schema

    schema = shipped_schema("prov", "prov-json.schema.json")
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_prov_json(data: Any) -> list[ConstraintViolation]:
    """Check a PROV-JSON document against the member submission's schema, patched (see its
    ``$comment``) and shipped in the package, and return the problems sorted by pointer.

    Formats (``uri``, ``date-time``) are not checked, since whether jsonschema checks them
    depends on which optional packages are installed. :func:`check_constraints` reads the
    times.
    """
    found = set()
    for error in _prov_json_validator().iter_errors(data):
        path = [str(p) for p in error.absolute_path]
        pointer = "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)
        records = path[1:2] if path[:1] != ["prefix"] else []
        if path[:1] == ["bundle"] and len(path) >= 4 and path[2] != "prefix":
            records.append(path[3])
        text = " ".join(error.message.split())
        text = text if len(text) <= 240 else text[:239] + "…"
        found.add(ConstraintViolation("schema", "schema", tuple(records),
                                      f"{pointer or 'document root'}: {text}"))
    return sorted(found, key=lambda v: v.message)
