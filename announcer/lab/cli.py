"""`announcer lab up|down|status|demo`."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from .topology import DEFAULT_WORKDIR, VIP_V4, VIP_V6

if TYPE_CHECKING:
    from .lab import Lab

__all__ = ["add_lab_parser", "run_lab_command"]


def add_lab_parser(sub: Any) -> None:
    p = sub.add_parser("lab", help="the namespace lab (root; FRR, nginx, HAProxy, ExaBGP)")
    p.add_argument("action", choices=("up", "down", "status", "demo"))
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p.add_argument("--hosts", type=int, default=3, help="LB hosts (the last runs HAProxy)")
    p.add_argument(
        "--stable",
        action="store_true",
        help="stable next hops: slots 198.51.100.41... moved by keepalived on every host",
    )
    p.set_defaults(func=run_lab_command)


def _sigterm_to_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def print_status(lab: Lab) -> None:
    if not lab.running():
        print("no lab running")
        return
    print(f"BGP sessions established on r1: {lab.frr.sessions_up()}")
    for prefix in (VIP_V4, VIP_V6):
        hops = lab.fib.next_hops(prefix)
        names = [h.name for h in lab.hosts if h.v4 in hops or h.v6 in hops]
        hosts = {h.v4 for h in lab.hosts} | {h.v6 for h in lab.hosts}
        slots = sorted(hop for hop in hops if hop not in hosts)  # stable next hops
        print(f"r1 FIB {prefix}: {', '.join(names + slots) or 'no route'}")


def run_lab_command(args: argparse.Namespace) -> int:
    # imported here: every command's parser is built with this one's (`announcer check`)
    from .lab import Lab, LabError

    signal.signal(signal.SIGTERM, _sigterm_to_exit)
    # the lab people run (up, demo) has its Prometheus; tests ask for it where they need it
    lab = Lab(
        args.workdir,
        hosts=args.hosts,
        prometheus=args.action in ("up", "demo"),
        stable=getattr(args, "stable", False),
    )
    try:
        if args.action == "up":
            lab.up()
            print(
                f"lab up: r1, r2, {', '.join(h.name for h in lab.hosts)}, client, client2 "
                f"(work folder {args.workdir}); `announcer lab down` removes it"
            )
            if lab.prometheus is not None:
                url = lab.prometheus.url
                print(f"Prometheus (every host scraped, deploy/prometheus rules): {url}")
            if lab.slots:
                print(f"slots held: {lab.slot_holders()}")
            else:
                lab.fib.wait([h.name for h in lab.hosts])
            print_status(lab)
        elif args.action == "down":
            lab.down()
            print("lab down")
        elif args.action == "status":
            print_status(lab)
        else:
            from .demo import run_demo

            return run_demo(lab)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0
