#!/usr/bin/env bash
# The whole test suite: lint, types, unit tests and the lab tests (root needed for the lab).
# Installs what it needs first (scripts/setup.sh). pytest's "no tests collected" (exit 5) is a failure here, never a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit 1
.venv/bin/ruff check . || exit 1
.venv/bin/ruff format --check . || exit 1
.venv/bin/mypy || exit 1
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
if [[ $status == 5 ]]; then
    echo "test.sh: pytest collected no tests; failing" >&2
    exit 1
fi
exit $status
