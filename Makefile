# The README's two commands are scripts/demo.sh and scripts/test.sh; these are shortcuts.
VENV := .venv

.PHONY: setup demo test unit lab lint typecheck clean

setup:
	./scripts/setup.sh

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

unit: setup
	$(VENV)/bin/python -m pytest -q tests/unit

lab: setup
	$(VENV)/bin/python -m pytest -q -m lab tests/lab

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	-$(VENV)/bin/announcer lab down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
