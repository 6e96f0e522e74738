"""Hostile and broken input, generated: every outcome is a clean exit, never a write.

Random and mutated receipts, PROV documents, STAC items, certificates and checksums
files go to ``validate``, ``record``, ``check``, ``trace``, ``verify``, ``prov-check`` and
the PROV loader. Each example asserts the error contract (exit 1 or 2; an error is one
line on stderr starting ``kfm-prov: error:``; never a traceback or an "internal error")
and that the lake is byte-for-byte what it was. ``KFM_PROV_EXAMPLES`` raises the number
of examples (the stress suite runs these with hundreds).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kfm_prov.cli.main import cli
from kfm_prov.core.validation import validate_data
from kfm_prov.errors import InputError
from kfm_prov.lake import Lake
from kfm_prov.prov.constraints import check_constraints, load_prov_document
from tests.conftest import CODE, add_raw, make_chain, snapshot, write

EXAMPLES = int(os.environ.get("KFM_PROV_EXAMPLES", "25"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=20), database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
RECEIPTS = ("run_record.json", "run_manifest.json", "validation_report.json")
REQUIRED = {"run_record.json": ["run_id", "dataset_family", "pipeline_id", "git_commit",
                                "started_at", "status", "runner"],
            "run_manifest.json": ["run_id", "spec_hash", "inputs", "outputs", "params"],
            "validation_report.json": ["run_id", "overall_status", "gates"]}
OBJECTS, ARRAYS = {"runner", "params"}, {"inputs", "outputs", "gates"}
HOSTILE_PATHS = ["/etc/passwd", "../outside.csv", "data/raw/../../outside.csv",
                 "data/raw/glo/a\x00b.csv", "data/raw/glo/a\nb.csv", "data\\raw\\glo\\x.csv",
                 "", ".", "./", "~/x.csv", "data/raw/glo/" + "a" * 5000,
                 "data/work/staging/x.csv", "data/raw/glo/../glo/patents.csv"]
SECRETS = ["password=hunter2hunter2", "ghp_" + "a1B2" * 9, "AKIAIOSFODNN7EXAMPLE",
           "https://user:pa55word@example.org/x", "token: 9f8e7d6c5b4a39281706f5e4d3c2b1a0"]
LITERALS = ["NaN", "Infinity", "-Infinity", "1e999"]


# --- the lake every example starts from --------------------------------------------------------

@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    lake = Lake.init(tmp_path_factory.mktemp("hostile") / "lake")
    chain = make_chain(lake)
    promoted = lake.promote(chain.b.run_id)
    src = add_raw(lake, "data/raw/glo/waived.csv", "a", sensitivity="public")
    with lake.capture("glo", "p", **CODE) as waived:
        waived.use(src)
        waived.output("p.csv", role="product", sensitivity="public").write_text("p")
        waived.gate("geometry_validity", "waived", {"invalid": 1})
    write(waived.dir / "waiver.json", json.dumps({
        "run_id": waived.run_id, "approved_by": "Data Steward", "reason": "a sliver",
        "gates": ["geometry_validity"], "expires_at": "2099-01-01T00:00:00Z"}))
    assert lake.check(waived.run_id).ok and lake.check(chain.b.run_id).ok
    return {"lake": lake, "chain": chain, "promoted": promoted, "waived": waived}


def kfm(lake: Lake, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--root", str(lake.root), *args], catch_exceptions=False)


def assert_clean(result: Result, codes: tuple[int, ...] = (1, 2)) -> None:
    """The error contract of SPEC §6 for one invocation."""
    assert result.exit_code in codes, (result.exit_code, result.stdout[-500:], result.stderr)
    text = result.stdout + result.stderr
    assert "Traceback" not in text and "internal error" not in text, text[-2000:]
    lines = result.stderr.strip().splitlines()
    if result.exit_code == 2:
        assert len(lines) == 1, result.stderr
    assert len(lines) <= 1, result.stderr
    if lines:
        assert lines[0].startswith("kfm-prov: error: "), lines[0]
    if result.exit_code == 1 and not lines:  # a report command: the findings are its output
        assert result.stdout.strip(), "exit 1 with nothing said"


@contextmanager
def unchanged(root: Path, *, restore: list[Path] = ()) -> Iterator[None]:
    """The lake must be byte-for-byte the same afterwards; ``restore`` the files we broke."""
    saved = {p: p.read_bytes() for p in restore}
    before = snapshot(root)
    try:
        yield
    finally:
        for path, data in saved.items():
            if path.is_symlink() or path.exists():
                path.unlink()
            path.write_bytes(data)
        after = snapshot(root)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))[:6]


# --- mutations -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False,
                                                                       allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)


def wrong_type(key: str) -> st.SearchStrategy[Any]:
    if key in OBJECTS:
        return st.sampled_from([42, None, "x", [], True])
    if key in ARRAYS:
        return st.sampled_from([42, None, "x", {}, True])
    return st.sampled_from([42, None, True, [], {}, 1.5])


@st.composite
def breaking(draw: st.DrawFn, names: tuple[str, ...] = RECEIPTS) -> tuple[str, str, bytes]:
    """(kind, receipt file, new bytes) for an edit that no receipt reader may accept."""
    name = draw(st.sampled_from(names))
    kind = draw(st.sampled_from(["garbage", "truncate", "drop", "retype", "literal", "deep",
                                 "dupkey", "badutf8", "notobject"]))
    return (kind, name, draw(st.just(kind).flatmap(lambda k: _edit(k, name))))


def _edit(kind: str, name: str) -> st.SearchStrategy[Callable[[bytes], bytes]]:
    def structural(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
        def edit(data: bytes) -> bytes:
            doc = json.loads(data)
            change(doc)
            return json.dumps(doc).encode()
        return edit

    if kind == "garbage":
        return st.binary(min_size=1, max_size=300).filter(
            lambda b: not _parses_to_object(b)).map(lambda b: (lambda _: b))
    if kind == "truncate":
        return st.floats(0, 0.98).map(
            lambda f: (lambda data: data[:int(len(data.rstrip()) * f)]))
    if kind == "drop":
        return st.sampled_from(REQUIRED[name]).map(
            lambda key: structural(lambda doc: doc.pop(key)))
    if kind == "retype":
        return st.sampled_from(REQUIRED[name]).flatmap(
            lambda key: wrong_type(key).map(
                lambda value: structural(lambda doc: doc.__setitem__(key, value))))
    if kind == "literal":
        return st.sampled_from(LITERALS).map(
            lambda lit: (lambda data: data.replace(b"{", b'{"x_extra": ' + lit.encode() + b", ",
                                                   1)))
    if kind == "deep":
        return st.integers(101, 3000).map(
            lambda n: (lambda data: data.replace(b"{", b'{"x_deep": ' + b"[" * n + b"]" * n
                                                 + b", ", 1)))
    if kind == "dupkey":
        return st.sampled_from(REQUIRED[name]).map(
            lambda key: (lambda data: data.replace(
                b"{", b'{"' + key.encode() + b'": ' + json.dumps(
                    json.loads(data)[key]).encode() + b", ", 1)))
    if kind == "badutf8":
        return st.just(lambda data: data.replace(b'"', b'"\xff\xfe', 1))
    return json_values.filter(lambda v: not isinstance(v, dict)).map(
        lambda v: (lambda _: json.dumps(v).encode()))


def _parses_to_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


# --- a run whose receipts a pipeline wrote itself -------------------------------------------

def pipeline_run(lake: Lake, chain: Any) -> tuple[Path, dict[str, dict[str, Any]]]:
    """A fresh, valid, pipeline-written copy of the chain's product run, not yet recorded."""
    from ulid import ULID

    run_id = str(ULID())
    rel = f"data/work/runs/glo/{run_id}"
    target = lake.root / rel
    (target / "artifacts").mkdir(parents=True)
    (target / "logs").mkdir()
    shutil.copyfile(chain.b.artifacts / "parcels.geojson", target / "artifacts/parcels.geojson")
    (target / "logs/run.log").write_text("pipeline log line\n")
    receipts = {}
    for name in RECEIPTS:
        text = (chain.b.dir / name).read_text().replace(chain.b.run_id, run_id)
        receipts[name] = json.loads(text)
    receipts["run_record.json"].pop("process", None)
    return target, receipts


def write_receipts(target: Path, receipts: dict[str, dict[str, Any]]) -> None:
    for name, doc in receipts.items():
        (target / name).write_text(json.dumps(doc, indent=2))


def test_the_pipeline_run_template_records(hostile: dict[str, Any]) -> None:
    lake = hostile["lake"]
    target, receipts = pipeline_run(lake, hostile["chain"])
    write_receipts(target, receipts)
    result = kfm(lake, "record", str(target))
    assert result.exit_code == 0, result.stderr
    (target / "prov.json").unlink()  # leave nothing an example could trip over
    with lake.index() as index:
        index.delete_run(target.name)
    shutil.rmtree(target)


def attempt_record(lake: Lake, target: Path, codes: tuple[int, ...] = (1, 2)) -> Result:
    """``record`` must refuse, and refusing must write nothing at all."""
    try:
        with unchanged(lake.root):
            result = kfm(lake, "record", str(target))
            assert_clean(result, codes)
    finally:
        shutil.rmtree(target, ignore_errors=True)
    return result


# --- record ------------------------------------------------------------------------------------

@SETTINGS
@given(change=breaking())
def test_record_refuses_broken_receipts(hostile: dict[str, Any], change: Any) -> None:
    _, name, edit = change
    lake = hostile["lake"]
    target, receipts = pipeline_run(lake, hostile["chain"])
    write_receipts(target, receipts)
    (target / name).write_bytes(edit((target / name).read_bytes()))
    attempt_record(lake, target, (2,))


@SETTINGS
@given(direction=st.sampled_from(["inputs", "outputs"]), path=st.sampled_from(HOSTILE_PATHS))
def test_record_refuses_paths_that_leave_their_place(hostile: dict[str, Any], direction: str,
                                                     path: str) -> None:
    lake = hostile["lake"]
    target, receipts = pipeline_run(lake, hostile["chain"])
    receipts["run_manifest.json"][direction][0]["path"] = path
    write_receipts(target, receipts)
    attempt_record(lake, target)


@SETTINGS
@given(where=st.sampled_from(["params", "command", "environment", "gate", "log", "notes"]),
       secret=st.sampled_from(SECRETS))
def test_record_refuses_receipts_and_logs_holding_a_secret(hostile: dict[str, Any], where: str,
                                                           secret: str) -> None:
    lake = hostile["lake"]
    target, receipts = pipeline_run(lake, hostile["chain"])
    record, manifest = receipts["run_record.json"], receipts["run_manifest.json"]
    if where == "params":
        manifest["params"]["auth"] = secret
    elif where == "command":
        record["command"] = ["etl", "--config", secret]
    elif where == "environment":
        record["environment"] = {"DATABASE_URL": secret}
    elif where == "gate":
        receipts["validation_report.json"]["gates"][0]["details"] = {"note": secret}
    elif where == "notes":
        record["notes"] = f"ran with {secret}"
    else:
        (target / "logs/run.log").write_text(f"connecting with {secret}\n")
    write_receipts(target, receipts)
    result = attempt_record(lake, target, (1,))
    assert secret not in result.stdout + result.stderr  # the error never repeats it


@SETTINGS
@given(direction=st.sampled_from(["inputs", "outputs"]),
       digest=st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex()))
def test_record_refuses_digests_that_do_not_match(hostile: dict[str, Any], direction: str,
                                                  digest: str) -> None:
    lake = hostile["lake"]
    target, receipts = pipeline_run(lake, hostile["chain"])
    receipts["run_manifest.json"][direction][0]["digest"] = digest
    write_receipts(target, receipts)
    attempt_record(lake, target, (1,))


@pytest.mark.parametrize("trick", ["symlink-file-to-raw", "symlinked-dir", "other-run-output",
                                   "running", "run-id-mismatch", "missing-receipt",
                                   "artifacts-is-a-symlink"])
def test_record_refuses_each_trick(hostile: dict[str, Any], trick: str) -> None:
    lake, chain = hostile["lake"], hostile["chain"]
    target, receipts = pipeline_run(lake, chain)
    manifest = receipts["run_manifest.json"]
    run_rel = target.relative_to(lake.root).as_posix()
    raw_digest = json.loads((chain.a.dir / "run_manifest.json").read_text())["inputs"][0]
    if trick == "symlink-file-to-raw":  # a product that is a symlink to a raw file
        (target / "artifacts/parcels.geojson").unlink()
        os.symlink(lake.root / chain.raw, target / "artifacts/parcels.geojson")
        manifest["outputs"][0]["digest"] = raw_digest["digest"]
    elif trick in ("symlinked-dir", "artifacts-is-a-symlink"):
        if trick == "symlinked-dir":  # artifacts/up → another run's artifacts
            os.symlink(chain.a.artifacts, target / "artifacts/up")
        else:
            shutil.rmtree(target / "artifacts")
            os.symlink(chain.a.artifacts, target / "artifacts")
        manifest["outputs"][0].update(
            path=f"{run_rel}/artifacts/{'up/' if trick == 'symlinked-dir' else ''}"
                 "normalised.csv",
            digest=json.loads((chain.a.dir / "run_manifest.json").read_text())
            ["outputs"][0]["digest"])
    elif trick == "other-run-output":
        manifest["outputs"][0].update(json.loads((chain.a.dir / "run_manifest.json")
                                                 .read_text())["outputs"][0])
    elif trick == "running":
        receipts["run_record.json"]["status"] = "running"
    elif trick == "run-id-mismatch":
        receipts["validation_report.json"]["run_id"] = chain.a.run_id
    write_receipts(target, receipts)
    if trick == "missing-receipt":
        (target / "validation_report.json").unlink()
    attempt_record(lake, target)


# --- validate --------------------------------------------------------------------------------

@SETTINGS
@given(change=breaking(), as_dir=st.booleans())
def test_validate_reports_broken_receipts(hostile: dict[str, Any], change: Any,
                                          as_dir: bool) -> None:
    _, name, edit = change
    lake = hostile["lake"]
    target, receipts = pipeline_run(lake, hostile["chain"])
    try:
        write_receipts(target, receipts)
        (target / name).write_bytes(edit((target / name).read_bytes()))
        with unchanged(lake.root):
            result = kfm(lake, "validate", str(target if as_dir else target / name))
            assert_clean(result)
    finally:
        shutil.rmtree(target)


@SETTINGS
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".json", ".yml", ".yaml", ""]))
def test_validate_survives_any_bytes(hostile: dict[str, Any], tmp_path_factory: Any,
                                     data: bytes, suffix: str) -> None:
    lake = hostile["lake"]
    path = lake.root.parent / f"random{suffix}"
    path.write_bytes(data)
    try:
        with unchanged(lake.root):
            assert_clean(kfm(lake, "validate", str(path)), (0, 1, 2))
    finally:
        path.unlink()


# --- check and trace on a lake whose files were changed under them ---------------------------

def evidence(hostile: dict[str, Any]) -> list[Path]:
    chain, waived = hostile["chain"], hostile["waived"]
    files = [chain.b.dir / n for n in (*RECEIPTS, "prov.json")]
    files += [chain.a.dir / n for n in RECEIPTS] + [waived.dir / "waiver.json",
                                                    waived.dir / "validation_report.json",
                                                    chain.b.dir / "logs/run.log"]
    return files


def _valid_waiver(data: bytes) -> bool:
    try:
        waiver = json.loads(data)
    except ValueError:
        return False
    return validate_data("waiver", waiver, file="waiver.json") == []


@SETTINGS
@given(index=st.integers(0, 9), change=breaking(("run_record.json",)),
       command=st.sampled_from(["check", "trace-verify"]))
def test_check_and_trace_survive_edited_evidence(hostile: dict[str, Any], index: int,
                                                 change: Any, command: str) -> None:
    lake, chain, waived = hostile["lake"], hostile["chain"], hostile["waived"]
    path = evidence(hostile)[index]
    _, _, edit = change
    data = path.read_bytes()
    try:
        edited = edit(data) if path.suffix == ".json" else data + b"password=hunter2hunter2\n"
    except (ValueError, KeyError):
        edited = b"\x00garbage"
    run_id = waived.run_id if waived.dir in path.parents else chain.b.run_id
    with unchanged(lake.root, restore=[path]):
        path.write_bytes(edited)
        before = snapshot(lake.root)
        if command == "check":
            result = kfm(lake, "check", run_id)
        else:
            result = kfm(lake, "trace", chain.product, "--verify")
        assert snapshot(lake.root) == before
        # check must notice any edit of a run's evidence; a waiver is not evidence (a
        # steward writes it after the run), so only an edit that breaks it must fail;
        # trace --verify re-hashes files, not every receipt
        must_fail = command == "check" and edited != data and (
            path.name != "waiver.json" or not _valid_waiver(edited))
        assert_clean(result, (1, 2) if must_fail else (0, 1, 2))
        if result.exit_code == 1 and command == "check":
            assert "FAIL" in result.stdout


@SETTINGS
@given(artifact=st.one_of(
    st.text(max_size=80), st.sampled_from(HOSTILE_PATHS),
    st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex()),
    st.from_regex(r"[0-9A-Z]{6,26}", fullmatch=True)),
    command=st.sampled_from(["check", "trace", "show"]))
def test_unknown_names_are_a_clean_exit_2(hostile: dict[str, Any], artifact: str,
                                          command: str) -> None:
    lake = hostile["lake"]
    with unchanged(lake.root):
        result = kfm(lake, command, artifact)
    assert_clean(result, (0, 1, 2))
    if "\x00" in artifact or "\n" in artifact:
        assert result.exit_code == 2


# --- verify on tampered publications ------------------------------------------------------

@SETTINGS
@given(target=st.sampled_from(["certificate", "stac_item", "dcat",  # (bundles: not audited)
                               "data/stac/glo/collection.json", "data/stac/catalog.json",
                               "data/processed/glo/v1/checksums.sha256"]),
       change=breaking(("run_record.json",)))
def test_verify_reports_broken_publications(hostile: dict[str, Any], target: str,
                                            change: Any) -> None:
    lake, promoted = hostile["lake"], hostile["promoted"]
    rel = getattr(promoted, target, None) or target
    path = lake.root / rel
    data = path.read_bytes()
    kind, _, edit = change
    try:
        edited = edit(data)
    except (ValueError, KeyError):  # not JSON: the checksums file, the DCAT Turtle
        kind, edited = "garbage", data[: len(data) // 2] + b"\x00\xff"
    if edited == data:
        kind, edited = "notobject", b"{}"
    with unchanged(lake.root, restore=[path]):
        os.chmod(path, 0o644)
        path.write_bytes(edited)
        before = snapshot(lake.root)
        result = kfm(lake, "verify")
        assert snapshot(lake.root) == before
        # unreadable is always a finding; a field added to or dropped from a STAC document
        # may still be valid STAC
        assert_clean(result, (0, 1) if kind in ("drop", "retype") and "stac" in rel else (1,))
    os.chmod(path, os.stat(path).st_mode)


# --- PROV documents -------------------------------------------------------------------------

@st.composite
def prov_mutations(draw: st.DrawFn, source: bytes) -> bytes:
    doc = json.loads(source)
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(sorted(doc)))
        records = doc[section]
        if not isinstance(records, dict) or not records:
            doc[section] = draw(json_values)
            continue
        key = draw(st.sampled_from(sorted(records)))
        op = draw(st.sampled_from(["drop", "value", "attr", "time"]))
        if op == "drop":
            del records[key]
        elif op == "value":
            records[key] = draw(json_values)
        elif isinstance(records[key], dict):
            attr = draw(st.sampled_from(sorted(records[key]) or ["prov:time"]))
            records[key][attr] = (draw(st.sampled_from(["2099-01-01T00:00:00Z", "yesterday",
                                                         "1970-01-01T00:00:00+00:00", ""]))
                                   if op == "time" else draw(json_values))
    return json.dumps(doc).encode()


@SETTINGS
@given(data=st.data(), suffix=st.sampled_from([".json", ".xml", ".provn", ".ttl", ".jsonld",
                                                ".trig", ".rdf", ""]))
def test_prov_check_and_the_loader_survive_any_document(hostile: dict[str, Any], data: Any,
                                                        suffix: str) -> None:
    lake, chain = hostile["lake"], hostile["chain"]
    source = (chain.b.dir / "prov.json").read_bytes()
    if suffix == ".json" and data.draw(st.booleans()):
        document = data.draw(prov_mutations(source))
    else:
        document = data.draw(st.binary(max_size=300) | st.sampled_from([
            b"<prov:document xmlns:prov='http://www.w3.org/ns/prov#'><prov:entity/>",
            b"document\nentity(e1)\nendDocument", b"@prefix prov: <x> .\n<a> <b> <c> .",
            b'{"@context": "https://example.org/ctx.jsonld"}',
            b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>"]))
    path = lake.root.parent / f"doc{suffix}"
    path.write_bytes(document)
    try:
        with unchanged(lake.root):
            assert_clean(kfm(lake, "prov-check", str(path)), (0, 1, 2))
        try:
            doc = load_prov_document(path)
        except InputError:
            return
        assert isinstance(check_constraints(doc), list)
    finally:
        path.unlink()
