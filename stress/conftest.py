"""The stress suite reuses the fast suite's fixtures (real lakes in tmp_path)."""

from tests.conftest import chain, lake, promoted, run_cli  # noqa: F401
