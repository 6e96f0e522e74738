"""``export``: the lake's PROV for external catalogs, in six serializations.

What is exported are the PROV documents the lake holds, unchanged: each run's
``prov.json`` and each promoted version's bundle ``prov/<family>/<version>.json``, merged
as ``kfm_prov.prov.merge`` describes (every document a named bundle of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kfm_prov.config import LakeConfig
from kfm_prov.errors import NotFoundError, UsageError
from kfm_prov.prov.merge import (
    FORMATS,
    JSONLD_CONTEXTS,
    SUFFIXES,
    Sources,
    build_document,
    flat_document,
    prov_o,
    serialize,
)

__all__ = ["FORMATS", "JSONLD_CONTEXTS", "SUFFIXES", "Exported", "Scope", "Sources", "collect",
           "export"]


@dataclass(frozen=True)
class Scope:
    """What to export: one of a family, a run, an artifact's ancestry, or the whole lake."""

    family: str | None = None
    run: str | None = None
    artifact: str | None = None

    def __post_init__(self) -> None:
        given = [name for name, value in (("--family", self.family), ("--run", self.run),
                                          ("--artifact", self.artifact)) if value]
        if len(given) > 1:
            raise UsageError(f"{' and '.join(given)} do not go together: export one scope"
                             " at a time", field=given[1])

    def describe(self) -> str:
        if self.family:
            return f"family {self.family}"
        if self.run:
            return f"run {self.run}"
        if self.artifact:
            return f"artifact {self.artifact}"
        return "the whole lake"


def collect(config: LakeConfig, scope: Scope, *, base: Path | None = None) -> Sources:
    """The documents of ``scope``, from the index (``--artifact``: its upstream closure).

    ``--run`` is that run's own document; ``--family`` every run and version of the
    family; ``--artifact`` the runs and promoted versions of its lineage up to raw.
    """
    from kfm_prov.store.evidence import PROV_FILE
    from kfm_prov.store.rebuild import index_for

    if scope.artifact:
        from kfm_prov.trace import trace

        result = trace(config, scope.artifact, base=base)
        runs = sorted((n["started_at"], n["run_id"], n["run_dir"])
                       for n in result.nodes.values() if n["kind"] == "run" and "status" in n)
        items = sorted((n["promoted_at"], n["family"], n["version"], n["bundle"])
                       for n in result.nodes.values() if n["kind"] == "item" and n["bundle"])
        return Sources(tuple((r, f"{d}/{PROV_FILE}") for _, r, d in runs),
                       tuple(dict.fromkeys(b for *_, b in items)))
    if scope.run:
        with index_for(config) as index:
            row = index.resolve_run(scope.run)
        return Sources(((row.run_id, f"{row.run_dir}/{PROV_FILE}"),), ())
    with index_for(config) as index:
        if scope.family and not index.runs(scope.family) and not index.promotions(scope.family):
            raise NotFoundError(f"no run or version of family {scope.family!r} in the index",
                                hint="see `kfm-prov runs`")
        rows = index.runs(scope.family)
        promotions = index.promotions(scope.family)
    bundles = sorted({(p.promoted_at, p.family, p.version, p.bundle) for p in promotions
                      if p.bundle})
    return Sources(tuple((r.run_id, f"{r.run_dir}/{PROV_FILE}") for r in rows),
                   tuple(dict.fromkeys(b for *_, b in bundles)))


# --- the whole operation -----------------------------------------------------------------------

@dataclass(frozen=True)
class Exported:
    """An export: its bytes, what went into it, and notes for the user (stderr)."""

    data: bytes
    format: str
    sources: Sources
    notes: tuple[str, ...] = ()


def export(config: LakeConfig, scope: Scope, fmt: str, *, base: Path | None = None,
           jsonld_context: str = "url") -> Exported:
    """The PROV of ``scope`` serialized as ``fmt``. Reads only; the caller writes.

    ``jsonld_context`` is ``url`` (reference the PROV-JSONLD context) or ``embed``.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}",
                         field="--format")
    if jsonld_context not in JSONLD_CONTEXTS:
        raise UsageError(f"unknown JSON-LD context {jsonld_context!r}; one of"
                         f" {', '.join(JSONLD_CONTEXTS)}", field="--jsonld-context")
    sources = collect(config, scope, base=base)
    if not sources.runs and not sources.bundles:
        raise NotFoundError(f"{scope.describe()} has no PROV to export: no run and no"
                            " promoted version in its lineage",
                            hint="a raw file has no upstream; try `--family` or `trace --down`")
    doc = build_document(config, sources)
    notes: list[str] = []
    if fmt != "turtle":
        return Exported(serialize(doc, fmt, jsonld_context=jsonld_context), fmt, sources)
    flat, folded = flat_document(doc)
    if folded:
        notes.append(f"Turtle has no named graphs: the documents share one graph, where"
                     f" {len(folded)} entity(ies) made more than once (e.g. {folded[0]}) are"
                     " generated once, by the earliest of their producers; --format trig"
                     " keeps every document as recorded")
    return Exported(prov_o(flat, "turtle"), fmt, sources, tuple(notes))
