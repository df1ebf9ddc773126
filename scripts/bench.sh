#!/usr/bin/env bash
# Benchmarks against ExaBGP's bundled healthcheck in the FRR lab (needs root).
#   ./scripts/bench.sh --quick        # a reduced run, under 5 minutes
#   ./scripts/bench.sh                # the full run; rewrites docs/benchmarks.md and its plots
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,bench]' >/dev/null 2>&1
if ! command -v curl >/dev/null; then apt-get install -y -qq curl >/dev/null; fi
out=()
if [[ " $* " != *" --quick "* ]]; then out=(--out docs/benchmarks.md); fi
exec .venv/bin/python -m bench.run "${out[@]}" "$@"
