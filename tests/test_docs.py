"""The docs cannot rot: generated parts are current, and documented commands run.

Shell blocks marked ``<!-- tested -->`` in the README, ``docs/*.md`` and
``examples/README.md`` run in order, per file, in a fresh directory, with the installed
``kfm-prov`` first on the PATH; ``<!-- tested: write FILE -->`` writes the next block to
``FILE`` first. A page whose blocks call a ``kfm-prov`` command that does not exist fails,
naming the command. The guides that begin with ``kfm-prov demo demo-lake > demo.txt`` share
one run of exactly that command per session (``conftest.demo_build``) and go on from a copy.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import click
import pytest

from kfm_prov.cli.main import cli
from tests.conftest import DEMO_COMMAND, copy_demo, user_env

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md")), REPO / "examples/README.md"]
_MARK = re.compile(r"^<!-- tested(?:: write (?P<file>\S+))? -->$")
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)$")
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def load_gen() -> ModuleType:
    """``docs/gen.py`` (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("docs_gen", DOCS / "gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# --- tested blocks -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    text: str
    write: str | None  # write the block to this file instead of running it


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        mark = _MARK.match(lines[i].strip())
        if mark is None:
            i += 1
            continue
        fence = _FENCE.match(lines[i + 1].strip()) if i + 1 < len(lines) else None
        assert fence is not None, f"{page.name}:{i + 1}: a tested marker must precede a fence"
        end = next(j for j in range(i + 2, len(lines)) if lines[j].strip() == "```")
        lang = fence.group("lang")
        if mark.group("file") is None:
            assert lang in ("sh", "bash"), f"{page.name}:{i + 1}: only shell blocks run"
        blocks.append(Block(page, i + 2, lang, "\n".join(lines[i + 2:end]) + "\n",
                            mark.group("file")))
        i = end + 1
    return blocks


def script_for(blocks: list[Block]) -> str:
    parts = ["set -euo pipefail"]
    for block in blocks:
        where = f"{block.page.relative_to(REPO)}:{block.line}"
        if block.write:
            parts.append(f'echo "--- {where}: writes {block.write}" >&2')
            parts.append(f'mkdir -p "$(dirname {block.write})"')
            parts.append(f"cat > {block.write} <<'KFM_DOC_BLOCK'\n{block.text}KFM_DOC_BLOCK")
        else:
            parts.append(f'echo "--- {where}" >&2')
            parts.append(block.text)
    return "\n".join(parts) + "\n"


def commands_used(blocks: list[Block]) -> set[str]:
    return {m.group(1) for b in blocks if not b.write
            for m in re.finditer(r"\bkfm-prov(?:\s+--\S+(?:\s+\S+)?)*\s+([a-z][a-z-]*)\b",
                                 b.text)}


def missing_commands(blocks: list[Block]) -> list[str]:
    names = set(cli.list_commands(click.Context(cli)))  # commands load lazily
    return sorted(commands_used(blocks) - names)


def test_a_documented_command_that_does_not_exist_fails_the_page(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- tested -->\n```sh\nkfm-prov --root lake frobnicate --all\n"
                    "kfm-prov runs\n```\n", encoding="utf-8")
    assert missing_commands(blocks_of(page)) == ["frobnicate"]


TESTED = [page for page in PAGES if page.exists() and blocks_of(page)]


@pytest.mark.parametrize("page", TESTED, ids=[p.relative_to(REPO).as_posix() for p in TESTED])
def test_documented_commands_run(page: Path, tmp_path: Path,
                                 request: pytest.FixtureRequest) -> None:
    blocks = blocks_of(page)
    assert missing_commands(blocks) == [], f"{page.name} documents commands kfm-prov lacks"
    env = user_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    first = blocks[0].text.strip()
    if not blocks[0].write and first.startswith(f"{DEMO_COMMAND} && "):
        # The demo, exactly this command, ran once for the session (conftest.demo_build);
        # the page goes on from a copy of what it made, with the rest of its first block.
        demo = request.getfixturevalue("demo_build")
        copy_demo(demo, work)
        shutil.copyfile(demo / "demo.txt", work / "demo.txt")
        rest = first.removeprefix(f"{DEMO_COMMAND} && ")
        blocks = [Block(blocks[0].page, blocks[0].line, blocks[0].lang, rest + "\n", None),
                  *blocks[1:]]
    script = tmp_path / "blocks.sh"
    script.write_text(script_for(blocks), encoding="utf-8")
    done = subprocess.run(["bash", str(script)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, (f"{page.name}: exit {done.returncode}\n--- stdout\n"
                                  f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")


def test_the_readme_quick_start_is_the_two_make_targets() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    setup = text.split("## Set up", 1)[1]
    block = setup.split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.splitlines()] == ["make demo",
                                                                           "make test"]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "demo: $(STAMP)\n\t$(BIN)/kfm-prov demo demo-lake\n" in makefile
    test = makefile.split("\ntest: $(STAMP)\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert test[0] == "\t@$(BIN)/python -m tests.plan $(PYTEST_WORKERS)"  # says what it runs
    assert test[1:] == ["\t$(BIN)/ruff check .",
                        "\t$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup"]


def test_links_between_pages_resolve() -> None:
    broken = []
    for page in PAGES:
        if not page.exists():
            continue
        for match in _LINK.finditer(page.read_text(encoding="utf-8")):
            target = match.group("target").split("#")[0]
            if not target or "://" in target or target.startswith("mailto:"):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert broken == []


# --- generated parts ---------------------------------------------------------------------------

def test_the_cli_reference_is_generated_from_the_current_cli() -> None:
    gen = load_gen()
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == gen.cli_reference(), (
        "docs/cli.md is out of date: run `make docs`")


def test_every_command_has_a_section_in_the_cli_reference() -> None:
    gen = load_gen()
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    names = [name for name, _, _ in gen.iter_commands()]
    assert {"kfm-prov demo", "kfm-prov raw add", "kfm-prov promote"} <= set(names)
    for name in names:
        assert f"## `{name}`" in text, name


def test_the_api_reference_is_generated_from_the_current_docstrings() -> None:
    gen = load_gen()
    assert (DOCS / "api.md").read_text(encoding="utf-8") == gen.api_reference(), (
        "docs/api.md is out of date: run `make docs`")


def test_a_user_finds_capture_and_its_errors_in_the_api_reference() -> None:
    import kfm_prov

    text = (DOCS / "api.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r'<a id="([\w.]+)"></a>\n\n#+ `[\w.]+`\n(.*?)(?=\n<a id=|\Z)',
                               text, re.S))
    assert set(kfm_prov.__all__) <= set(sections), "every public name has a section"
    for name in ("Lake.capture", "Run.use", "Run.output", "Run.gate", "Run.redact"):
        assert name in sections, name
        assert "Raises ``UsageError``" in sections[name], f"{name} does not name its errors"
        assert f"- [`{name.split('.')[0]}`](#{name.split('.')[0]})" in text
    assert "``CheckFailed``" in sections["Lake.capture"]
    for error in ("UsageError", "InputError", "CheckFailed", "KfmProvError"):
        assert "exit" in sections[error], error
    assert "_inputs" not in text and "_write_receipt" not in text  # private stays out


def test_every_reason_code_of_the_gate_is_explained() -> None:
    gen = load_gen()
    text = (DOCS / "reason-codes.md").read_text(encoding="utf-8")
    codes = {r.code for r in gen.reason_codes()}
    assert {"sensitivity-downgrade", "missing-git-commit", "dirty-commit", "raw-modified",
            "secret-in-log", "run-not-success", "upstream-failed"} <= codes
    explained = set(re.findall(r"^### `([a-z-]+)`$", text, re.M))
    assert sorted(codes - explained) == [], "codes the gate gives that the page does not explain"
    assert sorted(explained - codes) == [], "codes the page explains that the gate never gives"
    assert gen.regions_in(text)["reason-code-table"] == gen.reason_code_table(), (
        "the reason code table is out of date: run `make docs`")


def test_receipt_field_tables_match_the_schemas() -> None:
    gen = load_gen()
    regions = gen.regions_in((DOCS / "receipts.md").read_text(encoding="utf-8"))
    for region, name in gen.SCHEMA_TABLES.items():
        assert regions[region] == gen.schema_table(name), f"{region}: run `make docs`"


def test_mask_hides_what_changes_between_demo_runs() -> None:
    gen = load_gen()
    text = ('"kfm:run-01M8BJ7APVF41Q8C064413C9M7" "2026-11-26T09:15:43.199986+00:00" '
            '"sha256:10d7cc6e47db9a36ebc5b511e261843ef510991deaddca7db883984c705e57ef" '
            '"1b8e956d34edb9ff8fa0a1be73a4381a381d246c" "km-20261126T091503Z-19580"')
    assert gen.mask(text) == ('"kfm:run-<run id>" "<time>" "sha256:<sha256>" "<commit>"'
                              ' "<run id>"')


def test_make_test_says_what_it_is_about_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.plan import summary

    monkeypatch.setenv("CI", "true")
    assert summary("2") == ("make test: ruff + pytest (2 workers), PG tests: on (CI: required),"
                            " browser tests: on (CI: required)")
    monkeypatch.delenv("CI")
    monkeypatch.setenv("KFM_PROV_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")
    monkeypatch.setenv("PATH", "")
    assert summary("1") == ("make test: ruff + pytest (1 worker), PG tests: on"
                            " (KFM_PROV_TEST_PG_URL), browser tests: off (no chromium;"
                            " apt-get install chromium)")
