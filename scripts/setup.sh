#!/usr/bin/env bash
# Installs everything the announcer, its tests and its lab need on a Debian 12 machine:
# FRR, nginx, HAProxy and keepalived (stable next hops) from Debian (and curl for the
# benchmark's ExaBGP healthcheck, and prometheus for promtool, which checks the alert rules,
# and systemd for systemd-analyze, which checks the unit; debootstrap, podman and runc for the package's tests: a bare Debian
# root, and the containerised lab); ExaBGP 5.0 and the Python dependencies in .venv.
# Safe to run again. Run as root (apt-get); set SKIP_APT=1 to install only the Python side.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(frr nginx-light haproxy keepalived iproute2 procps psmisc python3-venv curl prometheus systemd debootstrap podman runc containernetworking-plugins uidmap slirp4netns)

if [[ "${SKIP_APT:-0}" != 1 ]]; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        echo "setup: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
log=$(mktemp)
if ! { .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip &&
       .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "setup: installing the Python dependencies failed" >&2
    exit 1
fi
rm -f "$log"
# an editable install leaves our own modules uncompiled, and with PYTHONDONTWRITEBYTECODE set
# (as on CI machines) every start would compile them again: a fifth of a plugin's start-up
.venv/bin/python -m compileall -q announcer healthchecks >/dev/null
.venv/bin/python - <<'PY'
from importlib.metadata import version
print(f"setup: ready (exabgp {version('exabgp')}, announcer {version('exabgp-announcer')})")
PY
