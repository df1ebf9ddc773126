"""The address guard's netlink reader: against pyroute2's reading of the same host, against
messages built byte by byte, and live in a namespace of its own while addresses come and go."""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
import uuid

import pytest

from announcer.host.rtnetlink import AddressMessage, NetlinkError, dump_addresses, parse

ROOT = os.geteuid() == 0


def _rtattr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _message(kind: int, body: bytes, flags: int = 0) -> bytes:
    header = struct.pack("=IHHII", 16 + len(body), kind, flags, 0, 0)
    return header + body + b"\0" * (-len(body) % 4)


def _address(kind: int, family: int, index: int, attrs: bytes, flags: int = 0) -> bytes:
    return _message(kind, struct.pack("=BBBBI", family, 32, flags, 0, index) + attrs)


V4 = socket.inet_pton(socket.AF_INET, "192.0.2.10")
PEER = socket.inet_pton(socket.AF_INET, "192.0.2.99")
V6 = socket.inet_pton(socket.AF_INET6, "2001:db8::10")


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


def test_ipv4_takes_the_local_address_not_a_point_to_point_peer():
    data = _address(20, socket.AF_INET, 3, _rtattr(1, PEER) + _rtattr(2, V4))
    assert parse(data) == ([AddressMessage(False, socket.AF_INET, 3, "192.0.2.10", 0)], False)


def test_ipv6_deleted_and_the_32_bit_flags_win_over_the_header_byte():
    data = _address(21, socket.AF_INET6, 7, _rtattr(1, V6) + _rtattr(8, struct.pack("=I", 0x240)))
    assert parse(data) == ([AddressMessage(True, socket.AF_INET6, 7, "2001:db8::10", 0x240)], False)


def test_several_messages_in_one_datagram_and_the_end_of_a_dump():
    data = (
        _address(20, socket.AF_INET, 1, _rtattr(2, V4), flags=0x80)
        + _message(16, b"\0" * 20)  # RTM_NEWLINK: not ours, skipped
        + _address(20, socket.AF_INET6, 1, _rtattr(1, V6))
        + _message(3, struct.pack("=i", 0))
    )
    messages, done = parse(data)
    assert [(m.address, m.flags) for m in messages] == [("192.0.2.10", 0x80), ("2001:db8::10", 0)]
    assert done


def test_attributes_and_messages_are_read_at_their_aligned_offsets():
    """A 3-byte label (IFA_LABEL "lo") is padded to 4: the address after it is still found."""
    labelled = _address(20, socket.AF_INET, 1, _rtattr(3, b"lo\0") + _rtattr(2, V4))
    cacheinfo = _address(20, socket.AF_INET6, 1, _rtattr(1, V6) + _rtattr(6, b"\0" * 13))
    messages, _ = parse(labelled + cacheinfo + labelled)
    assert [m.address for m in messages] == ["192.0.2.10", "2001:db8::10", "192.0.2.10"]


def test_nonsense_is_skipped_not_misread():
    wrong_length = _address(20, socket.AF_INET, 1, _rtattr(2, V6))  # 16 bytes for IPv4
    no_address = _address(20, socket.AF_INET, 1, _rtattr(3, b"lo\0\0"))  # IFA_LABEL only
    truncated = _address(20, socket.AF_INET, 1, _rtattr(2, V4))[:-2]
    assert parse(wrong_length + no_address) == ([], False)
    assert parse(truncated) == ([], False)


def test_an_error_answer_is_raised_and_an_acknowledgement_is_not():
    with pytest.raises(NetlinkError) as raised:
        parse(_message(2, struct.pack("=i", -1) + b"\0" * 16))
    assert raised.value.errno == 1
    assert parse(_message(2, struct.pack("=i", 0) + b"\0" * 16)) == ([], False)


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
