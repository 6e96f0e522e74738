# Two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench stress docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kfm-prov demo demo-lake

# pytest-xdist workers: `auto` is one per CPU; `make test PYTEST_WORKERS=0` runs in-process.
PYTEST_WORKERS ?= auto

test: $(STAMP)
	@$(BIN)/python -m tests.plan $(PYTEST_WORKERS)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/python docs/gen.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# Kills by timing, more processes, bigger files, hundreds of hostile examples per
# property; bounded (about 5 minutes here, never more than STRESS_TIMEOUT seconds).
# KFM_PROV_STRESS scales the loops; KFM_PROV_SEED replays a run's random kills.
STRESS_TIMEOUT ?= 1500
stress: $(STAMP)
	KFM_PROV_EXAMPLES=$${KFM_PROV_EXAMPLES:-300} timeout --signal=INT --kill-after=30 \
	    $(STRESS_TIMEOUT) $(BIN)/python -m pytest -p no:cacheprovider -q stress \
	    tests/test_hostile.py tests/test_crash.py tests/test_concurrency.py tests/cli/test_gc.py

clean:
	rm -rf $(VENV) demo-lake bench-out
