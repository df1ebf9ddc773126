"""The netlink address messages, parsed from the kernel's layout: synthetic datagrams, each
field where the kernel puts it (the same parser against the live kernel and pyroute2:
tests/process/test_rtnetlink.py)."""

from __future__ import annotations

import socket
import struct

import pytest

from announcer.host.rtnetlink import AddressMessage, NetlinkError, parse


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
