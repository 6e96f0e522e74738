"""The package's face: ``from kfm_prov import Lake`` works, lazily, and lists its API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kfm_prov
from kfm_prov.errors import KfmProvError

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("rdflib", "pystac", "prov", "jsonschema", "networkx", "lxml", "click", "rich",
         "starlette", "cryptography", "psycopg")


def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -c code`` as a user runs it: outside the repository, no KFM_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFM_")}
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_users_first_guess_works_in_a_fresh_interpreter(tmp_path: Path) -> None:
    done = python("from kfm_prov import Lake, Run, KfmProvError\n"
                  f"lake = Lake.init({str(tmp_path / 'lake')!r})\n"
                  "print(Lake.__module__, Run.__module__, KfmProvError.__module__,"
                  " lake.root.name)", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["kfm_prov.lake", "kfm_prov.capture", "kfm_prov.errors",
                                   "lake"]


def test_import_kfm_prov_loads_no_heavy_library(tmp_path: Path) -> None:
    """What makes ``import kfm_prov`` and ``kfm-prov --help`` instant: nothing heavy yet."""
    done = python("import sys, kfm_prov\n"
                  "print(kfm_prov.__version__)\n"
                  "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
                  "print(' '.join(sorted(m for m in sys.modules"
                  " if m.startswith('kfm_prov'))))", tmp_path)
    assert done.returncode == 0, done.stderr
    version, top, ours = done.stdout.splitlines()
    assert version == kfm_prov.__version__
    assert sorted(set(top.split()) & set(HEAVY)) == []
    assert ours.split() == ["kfm_prov"]  # not even our own modules


def test_from_kfm_prov_import_lake_stays_light(tmp_path: Path) -> None:
    """The facade imports its operations when they are called, not when it is imported."""
    done = python("import sys\nfrom kfm_prov import Lake\n"
                  "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))", tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(set(done.stdout.split()) & {"rdflib", "pystac", "prov", "jsonschema",
                                              "networkx"}) == []


def test_every_name_in_all_resolves_to_a_documented_public_object() -> None:
    assert sorted(kfm_prov.__all__) == sorted(set(kfm_prov._PUBLIC)), "__all__ and _PUBLIC differ"
    assert {"Lake", "Run", "KfmProvError", "InputError", "UsageError", "NotFoundError",
            "CheckFailed", "RefusedError"} <= set(kfm_prov.__all__)
    for name in kfm_prov.__all__:
        value = getattr(kfm_prov, name)
        assert value.__name__ == name, name
        assert value.__module__.startswith("kfm_prov."), name
        doc = (value.__doc__ or "").strip()  # a dataclass without one gets "Name(field...)"
        assert doc and not doc.startswith(f"{name}("), f"{name} has no docstring"
    assert set(kfm_prov.__all__) <= set(dir(kfm_prov))


def test_every_error_class_of_the_package_is_public() -> None:
    from kfm_prov import errors

    family = {name for name, value in vars(errors).items()
              if isinstance(value, type) and issubclass(value, KfmProvError)}
    assert family <= set(kfm_prov.__all__)
    assert kfm_prov.InputError.exit_code == 2 and kfm_prov.CheckFailed.exit_code == 1
    assert issubclass(kfm_prov.RefusedError, kfm_prov.CheckFailed)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'Lak'"):
        kfm_prov.Lak  # noqa: B018
    with pytest.raises(ImportError):
        exec("from kfm_prov import Lak", {})


def test_the_wheel_would_hold_every_subpackage() -> None:
    """``packages.find`` in pyproject.toml includes every folder with an ``__init__.py``, so a
    module moved into a new subpackage is in the installed wheel too."""
    import tomllib

    from setuptools import find_packages

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_packages(str(REPO), include=include))
    on_disk = {p.parent.relative_to(REPO).as_posix().replace("/", ".")
               for p in (REPO / "kfm_prov").rglob("__init__.py")}
    assert on_disk <= found
    assert {"kfm_prov.core", "kfm_prov.store", "kfm_prov.prov", "kfm_prov.publish",
            "kfm_prov.cli.commands"} <= found


def test_the_cli_help_does_not_load_the_heavy_libraries(tmp_path: Path) -> None:
    done = python("import sys\nfrom kfm_prov.cli.main import main\n"
                  "try:\n    main(['--help'])\nexcept SystemExit as exit:\n"
                  "    assert exit.code == 0, exit.code\n"
                  "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "kfm-prov" in done.stdout  # the help was printed
    loaded = set(done.stdout.splitlines()[-1].split())
    assert sorted(loaded & {"rdflib", "pystac", "prov", "jsonschema", "networkx"}) == []
