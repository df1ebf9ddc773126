#!/usr/bin/env bash
# The lab demo: installs what it needs, then runs `announcer lab demo` (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/announcer lab demo "$@"
