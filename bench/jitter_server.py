"""A health endpoint whose latency jitters: uniform between 0 and --max-delay seconds."""

from __future__ import annotations

import argparse
import asyncio
import random

from aiohttp import web


async def health(request: web.Request) -> web.Response:
    await asyncio.sleep(random.uniform(0, request.app["max_delay"]))
    return web.Response(text="ok\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-delay", type=float, required=True)
    args = parser.parse_args()
    app = web.Application()
    app["max_delay"] = args.max_delay
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
