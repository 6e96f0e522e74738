"""Regenerate the parts of the docs that are derived from the code, so they cannot drift.

    python docs/gen.py            rewrite them (``make docs``)
    python docs/gen.py --check    exit 1 and name the files that are out of date

What is generated:

- ``docs/cli.md``, all of it, from the CLI's own ``--help``;
- ``docs/api.md``, all of it, from the docstrings of what ``kfm_prov.__all__`` exports;
- in ``docs/reason-codes.md``, the table of reason codes, collected from the ``fail(...)``
  calls of ``kfm_prov/gate.py`` (and the secret scan it delegates to);
- in ``docs/receipts.md``, a field table per receipt, from the shipped JSON Schemas;
- in ``docs/prov-profile.md``, ``docs/stac-profile.md`` and ``docs/guide-auditing.md``,
  examples taken from a fresh ``kfm-prov demo`` lake (a PROV run document, a promotion's
  PROV, a STAC item, a certificate, and the Mermaid lineage from ``kfm-prov trace``).

Generated regions sit between ``<!-- BEGIN GENERATED name -->`` and
``<!-- END GENERATED name -->``; everything else in those files is written by hand.
The demo examples change with every run (run ids, times, digests of receipts), so
``--check`` compares them after masking those values (``mask``); ``tests/test_examples.py``
does the same against its own demo lake.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(REPO))

HELP_WIDTH = 88
_REGION = re.compile(r"(<!-- BEGIN GENERATED (?P<name>[\w-]+) -->\n)(?P<body>.*?)"
                     r"(<!-- END GENERATED (?P=name) -->)", re.S)


# --- the CLI reference ------------------------------------------------------------------------

def iter_commands() -> Iterator[tuple[str, Any, Any]]:
    """(full name, command, its click context) for the group and every command, in order."""
    import click

    from kfm_prov.cli.main import cli

    def walk(command: click.Command, name: str, parent: click.Context | None
             ) -> Iterator[tuple[str, Any, Any]]:
        # make_context applies the group's context_settings (``-h``), as a real call does
        ctx = command.make_context(name.split()[-1], [], parent=parent,
                                   resilient_parsing=True, terminal_width=HELP_WIDTH,
                                   max_content_width=HELP_WIDTH)
        yield name, command, ctx
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                sub_command = command.get_command(ctx, sub)  # the group loads lazily
                assert sub_command is not None, sub
                yield from walk(sub_command, f"{name} {sub}", ctx)

    yield from walk(cli, "kfm-prov", None)


def anchor(name: str) -> str:
    return name.replace(" ", "-")


def cli_reference() -> str:
    """docs/cli.md: every command's ``--help``, as the installed CLI prints it."""
    commands = list(iter_commands())
    out = ["# CLI reference", "",
           "Every command's `--help`, generated from the CLI itself by `docs/gen.py` (run"
           " `make docs`", "after changing a command; a test fails while this file is out of"
           " date). Exit codes: 0 ok,", "1 a check failed or an action was refused, 2 bad"
           " usage or input. Errors are one line on", "stderr: `kfm-prov: error: <what>"
           " (<file>[: <field>])`; `--debug` adds the traceback.", ""]
    for name, command, _ in commands:
        summary = command.get_short_help_str(limit=80)
        out.append(f"- [`{name}`](#{anchor(name)}): {summary}")
    for name, command, ctx in commands:
        out += ["", f'<a id="{anchor(name)}"></a>', "", f"## `{name}`", "", "```text",
                command.get_help(ctx).rstrip(), "```"]
    return "\n".join(out) + "\n"


# --- the Python API reference -------------------------------------------------------------

def api_reference() -> str:
    """docs/api.md: every name in ``kfm_prov.__all__``, from its docstrings and signatures.

    pdoc reads the objects (signatures, annotations, attribute docstrings); this renders
    them as one Markdown page beside the CLI reference, so it is small, diffable and
    readable where the other docs are. Only public members (no leading ``_``) appear.
    """
    import importlib

    import pdoc.doc

    import kfm_prov

    names = list(kfm_prov._PUBLIC)  # reading order: Lake and Run first, errors last
    modules: dict[str, Any] = {}
    classes = []
    for name in names:
        module_name = kfm_prov._PUBLIC[name]
        if module_name not in modules:
            modules[module_name] = pdoc.doc.Module(importlib.import_module(module_name))
        classes.append(modules[module_name].get(name))
    out = ["# Python API reference", "",
           "Generated from the docstrings by `docs/gen.py` (run `make docs` after changing a"
           " public", "signature or docstring; a test fails while this file is out of date)."
           " It lists what", "`kfm_prov.__all__` exports, e.g. `from kfm_prov import Lake`;"
           " everything else is private", "and may change. Errors: every error kfm-prov"
           " raises on purpose is a `KfmProvError`;", "`exit_code` is what the CLI exits"
           " with (2 bad input, 1 a check failed or a refusal).", ""]
    for cls in classes:
        out.append(f"- [`{cls.name}`](#{cls.name}): {_first_line(cls.docstring)}")
    for cls in classes:
        out += ["", f'<a id="{cls.name}"></a>', "", f"## `{cls.name}`", "", "```python",
                _class_line(cls), "```"]
        if cls.docstring:
            out += ["", cls.docstring.strip()]
        members = [m for m in cls.own_members if not m.name.startswith("_")]
        fields = [m for m in members if isinstance(m, pdoc.doc.Variable)]
        if fields:
            out += ["", "Attributes:", ""]
            for var in fields:
                kind = f": {_api_text(var.annotation_str.lstrip(': '))}" \
                    if var.annotation_str else ""
                doc = f" — {_first_line(var.docstring)}" if var.docstring else ""
                out.append(f"- `{var.name}{kind}`{doc}")
        for function in (m for m in members if isinstance(m, pdoc.doc.Function)):
            qualname = f"{cls.name}.{function.name}"
            decorator = ("@classmethod\n" if function.is_classmethod else
                         "@staticmethod\n" if function.is_staticmethod else "")
            out += ["", f'<a id="{qualname}"></a>', "", f"### `{qualname}`", "", "```python",
                    f"{decorator}def {function.name}"
                    f"{_api_text(str(function.signature_without_self))}", "```"]
            if function.docstring:
                out += ["", function.docstring.strip()]
    return "\n".join(out) + "\n"


def _class_line(cls: Any) -> str:
    bases = [b for _, _, b in cls.bases]
    init = cls.members.get("__init__")
    if bases and not any(b.startswith("kfm_prov") for b in bases):
        return f"class {cls.name}({', '.join(bases)})"
    if bases:
        return f"class {cls.name}({', '.join(b.rsplit('.', 1)[-1] for b in bases)})"
    if init is None:
        return f"class {cls.name}()"
    signature = init.signature_without_self  # without private fields (``_inputs``...)
    public = [p for p in signature.parameters.values() if not p.name.startswith("_")]
    return f"class {cls.name}{_api_text(str(signature.replace(parameters=public)))}"


def _api_text(text: str) -> str:
    """Annotations as a reader writes them: ``Lake``, not ``kfm_prov.lake.Lake``."""
    text = re.sub(r"\bkfm_prov(?:\.\w+)*\.(\w+)", r"\1", text)
    return re.sub(r"\b(?:typing|pathlib|datetime|networkx(?:\.\w+)*)\.(\w+)", r"\1", text)


def _first_line(text: str) -> str:
    return text.strip().split("\n\n", 1)[0].replace("\n", " ") if text else ""


# --- reason codes -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ReasonCode:
    code: str
    check: str
    title: str


def reason_codes() -> list[ReasonCode]:
    """Every reason code the gate can give, with its check, read from the source."""
    from kfm_prov import gate

    tree = ast.parse(Path(gate.__file__).read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    dynamic_checks: list[str] = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        choices = _string_choices(function)
        for call in ast.walk(function):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "fail" and len(call.args) >= 2):
                continue
            check, code = call.args[0], call.args[1]
            checks = _values(check, choices)
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                for value in checks:
                    found.setdefault(code.value, value)
            elif isinstance(code, ast.IfExp):
                taken, other = _split_on(code.test, checks)
                for branch, values in ((code.body, taken), (code.orelse, other)):
                    if isinstance(branch, ast.Constant):
                        found.setdefault(branch.value, values[0] if values else "?")
            else:
                dynamic_checks += checks
    for code in _scan_evidence_codes():  # `walk.fail("secrets", finding.code, ...)`
        found.setdefault(code, "secrets")
    titles = gate.CHECKS
    order = list(titles)
    return sorted((ReasonCode(code, check, titles.get(check, "")) for code, check in
                   found.items()), key=lambda r: (order.index(r.check) if r.check in order
                                                  else len(order), r.code))


def _string_choices(function: ast.FunctionDef) -> dict[str, list[str]]:
    """Local names assigned a string, or one of two strings (``a if cond else b``)."""
    choices: dict[str, list[str]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name):
            values = _constants(node.value)
            if values:
                choices.setdefault(node.targets[0].id, []).extend(values)
    return choices


def _constants(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _constants(node.body) + _constants(node.orelse)
    return []


def _values(node: ast.expr, choices: dict[str, list[str]]) -> list[str]:
    if isinstance(node, ast.Name):
        return choices.get(node.id, ["?"])
    return _constants(node) or ["?"]


def _split_on(test: ast.expr, checks: list[str]) -> tuple[list[str], list[str]]:
    """For ``code_a if check == "x" else code_b``: the checks of each branch."""
    if (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and isinstance(test.comparators[0], ast.Constant)):
        value = test.comparators[0].value
        return [c for c in checks if c == value], [c for c in checks if c != value]
    return checks, checks


def _scan_evidence_codes() -> list[str]:
    from kfm_prov.store import evidence

    tree = ast.parse(Path(evidence.__file__).read_text(encoding="utf-8"))
    codes: list[str] = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef) and function.name == "scan_evidence":
            for call in ast.walk(function):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                        and call.func.id == "Finding" and isinstance(call.args[0], ast.Constant)):
                    codes.append(call.args[0].value)
    return codes


def reason_code_table() -> str:
    rows = ["| reason code | check | the check asks |", "|---|---|---|"]
    rows += [f"| [`{r.code}`](#{r.code}) | `{r.check}` | {r.title} |" for r in reason_codes()]
    return "\n".join(rows) + "\n"


# --- receipt schemas --------------------------------------------------------------------------

SCHEMA_TABLES = {"schema-run-record": "run_record.v2.json",
                 "schema-run-manifest": "run_manifest.v1.json",
                 "schema-validation-report": "validation_report.v1.json",
                 "schema-waiver": "waiver.v1.json",
                 "schema-raw-manifest": "raw_manifest.v1.json",
                 "schema-raw-labels": "raw_labels.v1.json"}


def schema_table(name: str) -> str:
    """A field table of one shipped schema: field, required, what it holds."""
    from kfm_prov.core.validation import load_schema

    schema = load_schema(name)
    common = load_schema("common.v1.json")["$defs"]
    required = set(schema.get("required", []))
    rows = [f"Schema: [`schemas/{name}`](../schemas/{name}) — {schema.get('title', '')}", "",
            "| field | required | type and values |", "|---|---|---|"]
    for field, spec in schema.get("properties", {}).items():
        rows.append(f"| `{field}` | {'yes' if field in required else ''} |"
                    f" {_describe(spec, common)} |")
    return "\n".join(rows) + "\n"


def _describe(spec: dict[str, Any], common: dict[str, Any]) -> str:
    if "$ref" in spec:
        ref = spec["$ref"]
        key = ref.rsplit("/", 1)[-1]
        target = common.get(key, {}) if ref.startswith("common") else {}
        text = _describe(target, common) if target else f"see `{key}`"
        return text
    if "const" in spec:
        return f"`{spec['const']}`"
    if "enum" in spec:
        return " \\| ".join(f"`{v}`" for v in spec["enum"])
    if "oneOf" in spec:
        return " or ".join(_describe(s, common) for s in spec["oneOf"])
    kind = spec.get("type", "")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and "items" in spec:
        item = spec["items"]
        inner = ("objects: " + ", ".join(f"`{k}`" for k in item.get("properties", {}))
                 if item.get("type") == "object" else _describe(item, common))
        text = f"array of {inner}"
    elif kind == "object" and "properties" in spec:
        text = "object: " + ", ".join(f"`{k}`" for k in spec["properties"])
    else:
        text = kind or "any"
    description = spec.get("description")
    if description:
        text += f" — {description.rstrip('.')}"
    elif spec.get("pattern") and kind == "string":
        text += f" matching `{spec['pattern']}`".replace("|", "\\|")
    return text


# --- examples from a demo lake ----------------------------------------------------------------

def demo_examples(root: Path) -> dict[str, str]:
    """Generated regions taken from the demo lake at ``root`` (a finished demo)."""
    from kfm_prov.lake import Lake

    lake = Lake.open(root)
    nhgis = lake.runs("nhgis_tracts")[-1]
    run_prov = (root / nhgis.run_dir / "prov.json").read_text(encoding="utf-8")
    khri_bundle = json.loads((root / "data/prov/khri_sites/v1.json").read_text())
    glo_bundle = json.loads((root / "data/prov/glo_land_patents/v2.json").read_text())
    item = (root / "data/stac/glo_land_patents/glo_land_patents-v2/glo_land_patents-v2.json"
            ).read_text(encoding="utf-8")
    certificate = json.loads((root / "data/prov/glo_land_patents/v2.certificate.json"
                              ).read_text())
    regions = {
        "example-run-prov": _fenced("json", run_prov),
        "example-promotion-prov": _fenced("json", json.dumps(
            _promotion_excerpt(glo_bundle, "glo_land_patents", "v2"), indent=2,
            ensure_ascii=False)),
        "example-redaction-prov": _fenced("json", json.dumps(
            _redaction_excerpt(khri_bundle), indent=2, ensure_ascii=False)),
        "example-stac-item": _fenced("json", item),
        "example-certificate": _fenced("json", json.dumps(_certificate_excerpt(certificate),
                                                          indent=2, ensure_ascii=False)),
    }
    regions["demo-lineage-mermaid"] = _fenced("mermaid", _mermaid(root))
    return regions


def _fenced(language: str, text: str) -> str:
    return f"```{language}\n{text.rstrip()}\n```\n"


def _bundle_body(document: dict[str, Any]) -> dict[str, Any]:
    return next(iter(document["bundle"].values()))


def _promotion_excerpt(document: dict[str, Any], family: str, version: str) -> dict[str, Any]:
    """The promotion activity and every record that names it, plus the revision."""
    body = _bundle_body(document)
    activity = f"kfm:promotion-{family}-{version}"
    excerpt: dict[str, Any] = {}
    touched: set[str] = {activity}
    for kind, records in body.items():
        if kind == "prefix":
            continue
        for rid, record in records.items():
            values = {v for v in record.values() if isinstance(v, str)}
            is_revision = (isinstance(record.get("prov:type"), dict)
                           and record["prov:type"].get("$") == "prov:Revision")
            if rid == activity or activity in values or is_revision:
                excerpt.setdefault(kind, {})[rid] = record
                touched |= values
    for kind in ("entity", "agent"):
        for rid, record in body.get(kind, {}).items():
            if rid in touched:
                excerpt.setdefault(kind, {})[rid] = record
    return {"prefix": body["prefix"], **dict(sorted(excerpt.items()))}


def _redaction_excerpt(document: dict[str, Any]) -> dict[str, Any]:
    """The redaction activity of the khri_sites bundle and the records that name it."""
    body = _bundle_body(document)
    activities = [rid for rid, record in body.get("activity", {}).items()
                  if "redaction" in rid]
    excerpt: dict[str, Any] = {}
    touched: set[str] = set(activities)
    for kind, records in body.items():
        if kind == "prefix":
            continue
        for rid, record in records.items():
            values = {v for v in record.values() if isinstance(v, str)}
            if rid in activities or values & set(activities):
                excerpt.setdefault(kind, {})[rid] = record
                touched |= values
    for rid, record in body.get("entity", {}).items():
        if rid in touched:
            excerpt.setdefault("entity", {})[rid] = record
    return {"prefix": body["prefix"], **dict(sorted(excerpt.items()))}


def _certificate_excerpt(certificate: dict[str, Any]) -> dict[str, Any]:
    """The certificate with its long lists cut to their first two entries."""
    out: dict[str, Any] = {}
    for key, value in certificate.items():
        if isinstance(value, dict):
            value = {k: ([*v[:2], "…"] if isinstance(v, list) and len(v) > 2 else v)
                     for k, v in value.items()}
        elif isinstance(value, list) and len(value) > 2 and key != "checks":
            value = [*value[:2], "…"]
        out[key] = value
    return out


def _mermaid(root: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "kfm_prov.cli", "--root", str(root), "trace",
                           "data/processed/glo_land_patents/v2/parcels.geojson", "--format",
                           "mermaid"], capture_output=True, text=True, check=True,
                          env=_env())
    return done.stdout


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


_MASKS = [
    (re.compile(r"km-\d{8}T\d{6}Z-\d+"), "<run id>"),
    (re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b"), "<run id>"),
    (re.compile(r"\b[0-9a-hjkmnp-tv-z]{26}\b"), "<run id>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}(:\d{2}){2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?"), "<time>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{6}"), "<time>"),
    (re.compile(r"\b(1220)?[0-9a-f]{64}\b"), "<sha256>"),
    (re.compile(r"\b[0-9a-f]{40}\b"), "<commit>"),
    (re.compile(r"(@ )[0-9a-f]{12}\b"), r"\1<commit>"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "<hash16>"),
    (re.compile(r'("kfm:host": )"[^"]*"'), r'\1"<host>"'),
    # The runner kind is detected (CI sets CI=true), like the host it is the machine's.
    (re.compile(r'("kfm:runnerType": )"(ci|local|cluster)"'), r'\1"<runner kind>"'),
    (re.compile(r"\brunner-(ci|local|cluster)-"), "runner-<kind>-"),
    (re.compile(r'("runner": \{\s*"type": )"(ci|local|cluster)"'), r'\1"<runner kind>"'),
    (re.compile(r'("kfm:size": \{\s*"\$": )"\d+"'), r'\1"<size>"'),
    (re.compile(r'("(file:size|size)": )\d+'), r"\1<size>"),
]


def mask(text: str) -> str:
    """The text with what changes from one demo run to the next replaced by placeholders.

    Run ids and times differ on every run; receipts hold times, so digests of receipts and
    of PROV documents do too, and sizes of files that hold ids. Host and runner kind
    differ from machine to machine.
    """
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


# --- regions and files ------------------------------------------------------------------------

def replace_regions(text: str, regions: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in regions:
            return match.group(0)
        return match.group(1) + regions[name] + match.group(4)

    return _REGION.sub(fill, text)


def regions_in(text: str) -> dict[str, str]:
    return {m.group("name"): m.group("body") for m in _REGION.finditer(text)}


def static_outputs() -> dict[Path, Callable[[str], str]]:
    """File → how to regenerate it from its current text (deterministic parts only)."""
    schema_regions = {region: schema_table(name) for region, name in SCHEMA_TABLES.items()}
    return {
        DOCS / "cli.md": lambda _: cli_reference(),
        DOCS / "api.md": lambda _: api_reference(),
        DOCS / "reason-codes.md": lambda text: replace_regions(
            text, {"reason-code-table": reason_code_table()}),
        DOCS / "receipts.md": lambda text: replace_regions(text, schema_regions),
    }


DEMO_FILES = ("prov-profile.md", "stac-profile.md", "guide-auditing.md")


def build_demo(directory: Path) -> Path:
    """A fresh demo lake in ``directory`` (quietly); returns its root."""
    from kfm_prov.demo import run_demo

    return run_demo(directory / "demo-lake", echo=lambda _: None).root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a generated part is out of date")
    args = parser.parse_args(argv)
    stale: list[str] = []
    for path, regenerate in static_outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        fresh = regenerate(current)
        if fresh != current:
            stale.append(path.name)
            if not args.check:
                path.write_text(fresh, encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        examples = demo_examples(build_demo(Path(tmp)))
        for name in DEMO_FILES:
            path = DOCS / name
            current = path.read_text(encoding="utf-8")
            fresh = replace_regions(current, examples)
            if mask(fresh) != mask(current):  # only real changes, not new run ids
                stale.append(name)
                if not args.check:
                    path.write_text(fresh, encoding="utf-8")
    if args.check:
        for name in stale:
            print(f"docs/{name} is out of date; run `make docs`", file=sys.stderr)
        return 1 if stale else 0
    print("regenerated: " + (", ".join(f"docs/{n}" for n in stale) or "nothing changed"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
