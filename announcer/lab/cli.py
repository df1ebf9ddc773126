"""`announcer lab up|down|status|demo`."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_lab_parser", "run_lab_command"]


def _run(args: argparse.Namespace) -> int:
    return run_lab_command(args)


def add_lab_parser(sub: Any) -> None:
    p = sub.add_parser("lab", help="the namespace lab (needs root, FRR, nginx, HAProxy)")
    p.add_argument("action", choices=("up", "down", "status", "demo"))
    p.add_argument("--workdir", default="/tmp/announcer-lab")
    p.set_defaults(func=_run)


def run_lab_command(args: argparse.Namespace) -> int:
    raise SystemExit("the lab is not built yet")
