"""`announcer check` of a host with many VIPs, each with its own HTTP check, as an operator
runs it (a new process each time: the imports are part of what they wait for), and the
plugin's own parse of the same file (`load_config`, what start-up and each reload pay).

    python -m bench.config_check [--vips 1000 10000] [--rounds 11]

Needs nothing but this package: no lab, no root.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .many_vips import vip_prefixes


def many_vips_config(count: int) -> dict[str, Any]:
    """A host of the many-VIPs benchmark: one BGP session, `count` VIPs in 198.18.0.0/15, each
    with its own HTTP check at the defaults."""
    return {
        "bgp": {
            "local_as": 65001,
            "router_id": "198.51.100.11",
            "neighbors": [{"address": "198.51.100.1", "peer_as": 65000}],
        },
        "addresses": {"mode": "ignore"},
        "checks": {
            f"c{i}": {"http": {"url": f"http://127.0.0.1/health?v={i}"}} for i in range(count)
        },
        "vips": [{"prefix": vip, "checks": [f"c{i}"]} for i, vip in enumerate(vip_prefixes(count))],
    }


def _command() -> list[str]:
    """The console script an operator runs, or the module where it is not installed."""
    script = shutil.which("announcer") or str(Path(sys.executable).parent / "announcer")
    return [script] if Path(script).exists() else [sys.executable, "-m", "announcer"]


def _seconds(values: list[float]) -> dict[str, float]:
    return {
        "min_s": min(values),
        "median_s": statistics.median(values),
        "max_s": max(values),
    }


def bench_config_check(counts: tuple[int, ...] = (1000, 10000), rounds: int = 11) -> dict[str, Any]:
    from announcer.config import load_config

    rows = []
    with tempfile.TemporaryDirectory(prefix="announcer-bench-") as folder:
        for count in counts:
            path = Path(folder) / f"vips-{count}.yaml"
            path.write_text(yaml.safe_dump(many_vips_config(count)))
            check: list[float] = []
            for _ in range(rounds):
                start = time.perf_counter()
                done = subprocess.run(
                    [*_command(), "check", "-c", str(path)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                check.append(time.perf_counter() - start)
                if done.returncode != 0:
                    raise RuntimeError(f"announcer check failed: {done.stderr.strip()}")
            parse: list[float] = []
            for _ in range(rounds):
                start = time.perf_counter()
                load_config(path)
                parse.append(time.perf_counter() - start)
            rows.append(
                {
                    "vips": count,
                    "bytes": path.stat().st_size,
                    "check": _seconds(check),
                    "parse": _seconds(parse),
                }
            )
    return {"rounds": rounds, "command": "announcer check -c FILE", "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vips", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args(argv)
    print(json.dumps(bench_config_check(tuple(args.vips), args.rounds), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
