"""The lab client: HTTP requests to the VIP, a new connection each, one JSON line per request.

Run inside the client namespace (`ip netns exec client python -m announcer.lab.traffic`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from urllib.parse import urlsplit

__all__ = ["main", "one_request"]


def one_request(url: str, timeout_s: float) -> dict[str, object]:
    parts = urlsplit(url)
    started = time.time()
    connection = http.client.HTTPConnection(
        parts.hostname or "", parts.port or 80, timeout=timeout_s
    )
    try:
        connection.request("GET", parts.path or "/", headers={"Connection": "close"})
        response = connection.getresponse()
        body = response.read(256).decode(errors="replace").strip()
        return {
            "t": started,
            "ok": response.status == 200,
            "status": response.status,
            "server": body,
            "ms": round((time.time() - started) * 1000, 2),
        }
    except (OSError, http.client.HTTPException) as exc:
        return {
            "t": started,
            "ok": False,
            "error": type(exc).__name__,
            "ms": round((time.time() - started) * 1000, 2),
        }
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args(argv)
    for _ in range(min(args.count, 100_000)):  # bounded, whatever is asked
        print(json.dumps(one_request(args.url, args.timeout)), flush=True)
        if args.interval:
            time.sleep(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
