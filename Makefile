VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck validate sync dev bench screenshots clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,sandbox]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check safetyamp_pipeline safetyamp_pipeline_tests benchmarks

# pyright, standard mode, over safetyamp_pipeline/ (pyrightconfig.json).
typecheck: $(STAMP)
	$(VENV)/bin/pyright

validate: $(STAMP)
	$(VENV)/bin/dagster definitions validate -w workspace.yaml
	$(VENV)/bin/dg check defs

# Two workers (the machine has two cores); a test file stays on one worker so that its
# module-scoped sandboxes are built once.
PYTEST_ARGS ?= -n 2 --dist loadfile

test: lint typecheck validate
	$(VENV)/bin/pytest $(PYTEST_ARGS)

sync: $(STAMP)
	$(PY) -m safetyamp_pipeline.devtools.make_sync

dev: $(STAMP)
	$(PY) -m safetyamp_pipeline.devtools.make_dev

bench: $(STAMP)
	$(PY) -m benchmarks.run

screenshots: $(STAMP)
	$(PY) -m docs.screenshots

clean:
	rm -rf $(VENV) .sandbox .dagster_home
