from __future__ import annotations

from pathlib import Path

import pytest

from kfm_prov.config import CONFIG_NAME, find_root, load_config
from kfm_prov.errors import InputError, NotFoundError
from kfm_prov.lake import Lake
from tests.conftest import one_error_line, write


def test_init_lays_out_the_lake_and_a_commented_config(run_cli, lake: Lake) -> None:
    result = run_cli("init", ".", "--json")
    assert '"processed": "data/processed"' in result.stdout
    for rel in ("data/raw", "data/work/runs", "data/work/cache/kfm-prov", "data/processed",
                "data/stac", "data/prov", "data/catalog/dcat"):
        assert (lake.root / rel).is_dir(), rel
    text = (lake.root / CONFIG_NAME).read_text()
    assert text.count("#") > 5 and "namespace" in text


def test_init_twice_keeps_an_edited_config(tmp_path: Path) -> None:
    Lake.init(tmp_path)
    write(tmp_path / CONFIG_NAME, '[paths]\nprocessed = "published"\n')
    lake = Lake.init(tmp_path)
    assert lake.config.dir("processed") == tmp_path.resolve() / "published"
    assert (tmp_path / "published").is_dir()


def test_every_path_and_the_namespace_are_configurable(tmp_path: Path) -> None:
    write(tmp_path / CONFIG_NAME, '[paths]\nraw = "lake/raw"\nstac = "catalog/stac"\n'
          '[prov]\nnamespace = "https://data.example.org/prov"\n')
    config = load_config(tmp_path)
    assert config.rel("raw") == "lake/raw"
    assert config.rel("stac") == "catalog/stac"
    assert config.rel("runs") == "data/work/runs"
    assert config.namespace == "https://data.example.org/prov/"


@pytest.mark.parametrize(("toml", "field"), [
    ("[paths\n", None),
    ('[paths]\nraw = "/abs/raw"\n', "paths.raw"),
    ('[paths]\nraw = "../outside"\n', "paths.raw"),
    ('[paths]\nunknown = "x"\n', "paths.unknown"),
    ('[prov]\nnamespace = "kfm"\n', "prov.namespace"),
    ('[elsewhere]\n', "elsewhere"),
])
def test_bad_config_names_the_field(tmp_path: Path, toml: str, field: str | None) -> None:
    write(tmp_path / CONFIG_NAME, toml)
    with pytest.raises(InputError) as info:
        load_config(tmp_path)
    assert info.value.file == CONFIG_NAME
    assert info.value.field == field


def test_root_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake_a = Lake.init(tmp_path / "a").root
    lake_b = Lake.init(tmp_path / "b").root
    nested = lake_a / "data" / "raw"
    monkeypatch.delenv("KFM_PROV_ROOT", raising=False)
    assert find_root(cwd=nested) == lake_a
    monkeypatch.setenv("KFM_PROV_ROOT", str(lake_b))
    assert find_root(cwd=nested) == lake_b
    assert find_root(lake_a, cwd=nested) == lake_a


def test_no_lake_and_nonexistent_root_exit_2(run_cli, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        find_root(cwd=Path("/"))
    result = run_cli("--root", str(tmp_path / "nope"), "raw", "add", "x.csv", "--license",
                     "MIT", "--attribution", "me", expect=2)
    line = one_error_line(result)
    assert "lake root does not exist" in line and "nope" in line


def test_debug_shows_the_traceback(run_cli, tmp_path: Path) -> None:
    result = run_cli("--debug", "--root", str(tmp_path / "nope"), "raw", "add", "x.csv",
                     "--license", "MIT", "--attribution", "me", expect=2)
    assert "Traceback" in result.stderr


def test_usage_error_is_one_line_exit_2(run_cli) -> None:
    result = run_cli("raw", "add", "x.csv", expect=2)
    assert "--license" in one_error_line(result)
