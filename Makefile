# The two commands from the README are `make demo` and `make test`; both install what they need.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test unit lab lint typecheck check clean

setup:
	./scripts/setup.sh

demo: setup
	$(VENV)/bin/announcer lab demo

test: setup
	./scripts/test.sh

unit: setup
	$(PY) -m pytest -q tests/unit

lab: setup
	$(PY) -m pytest -q -m lab tests/lab

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy

check: lint typecheck

clean:
	-$(VENV)/bin/announcer lab down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
