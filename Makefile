# The README's two commands are scripts/demo.sh and scripts/test.sh; these are shortcuts.
VENV := .venv

.PHONY: setup demo test pure process unit lab package lint typecheck manuals deb clean

setup:
	./scripts/setup.sh

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

# the core, the parsers, the renderers: seconds, no socket and no process
pure: setup
	$(VENV)/bin/python -m pytest -q tests/pure

# the plugin, the probes and the pipes against real sockets, processes and ExaBGP
process: setup
	$(VENV)/bin/python -m pytest -q tests/process

unit: pure process

lab: setup
	$(VENV)/bin/python -m pytest -q -m lab tests/lab

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# the Debian package, dist/exabgp-announcer_VERSION-1_ARCH.deb (scripts/build-deb.sh)
deb: setup
	./scripts/build-deb.sh

# the package installed, checked, removed and purged in a bare Debian root (root, debootstrap)
package: setup
	$(VENV)/bin/python -m pytest -q tests/package

# the man page and the bash and zsh completions, from the CLI's parser, into dist/
manuals: setup
	$(VENV)/bin/python -m announcer.manuals dist

clean:
	-$(VENV)/bin/announcer lab down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
