# Two commands set up a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test console migrate migration clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

console: $(STAMP)
	$(PY) main.py console

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

migrate: $(STAMP)
	$(PY) main.py migrate

# Regenerates the schema migration from storage/models.py (pre-release: one initial revision).
migration: $(STAMP)
	$(PY) -m storage.migrate regenerate

clean:
	rm -rf $(VENV) .pytest_cache
