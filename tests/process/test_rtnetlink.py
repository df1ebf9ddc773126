"""The address guard's netlink reader against the live kernel: the same dump pyroute2 reads,
and live in a namespace of its own while addresses come and go (messages built byte by byte:
tests/pure/test_rtnetlink_parse.py)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import uuid

import pytest

from announcer.host.rtnetlink import dump_addresses

ROOT = os.geteuid() == 0


def test_the_dump_lists_what_pyroute2_lists():
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        expected = {
            (
                int(message["index"]),
                message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS"),
                message.get_attr("IFA_FLAGS") or message["flags"],
            )
            for message in ipr.addr("dump")
        }
    found = {(m.index, m.address, m.flags) for m in dump_addresses()}
    assert found == expected
    assert any(address == "127.0.0.1" for _, address, _ in found)


WATCH = """
import asyncio, json, sys
from announcer.host.addresses import AddressWatcher

async def main():
    def report(present):
        print(json.dumps(sorted(present)), flush=True)
    await AddressWatcher(report).run()

asyncio.run(main())
"""


@pytest.mark.skipif(not ROOT, reason="needs root for a network namespace")
def test_the_watcher_follows_addresses_coming_and_going_in_a_namespace():
    """What the guard reports as addresses are added and removed (IPv6 without DAD: usable at
    once), read live from the kernel of a namespace made for this test."""
    namespace = f"ann-rtnl-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    watcher = None
    try:

        def in_ns(*argv: str) -> None:
            subprocess.run(["ip", "-n", namespace, *argv], check=True)

        in_ns("link", "set", "lo", "up")
        watcher = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", WATCH],
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.getcwd(),
        )
        assert watcher.stdout is not None

        def next_report() -> set[str]:
            ready, _, _ = select.select([watcher.stdout], [], [], 10)  # type: ignore[union-attr]
            assert ready, "no report within 10 s"
            line = watcher.stdout.readline()  # type: ignore[union-attr]
            assert line, "the watcher ended"
            return set(json.loads(line))

        assert next_report() == {"127.0.0.1", "::1"}
        in_ns("address", "add", "192.0.2.77/32", "dev", "lo")
        assert next_report() == {"127.0.0.1", "::1", "192.0.2.77"}
        in_ns("address", "add", "2001:db8::77/128", "dev", "lo", "nodad")
        assert next_report() == {"127.0.0.1", "::1", "192.0.2.77", "2001:db8::77"}
        in_ns("address", "del", "192.0.2.77/32", "dev", "lo")
        assert next_report() == {"127.0.0.1", "::1", "2001:db8::77"}
    finally:
        if watcher is not None:
            watcher.kill()
            watcher.wait(timeout=5)
            watcher.stdout.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + 5
        while subprocess.run(["ip", "netns", "del", namespace], check=False).returncode:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
