"""The two rtnetlink messages the address guard reads, RTM_NEWADDR and RTM_DELADDR, and the dump
that lists the host's addresses, read straight from the kernel's fixed layout.

Why not pyroute2 here: importing any part of it loads the whole package, a tenth of a second of
CPU, and the first address dump is on start-up's critical path (a guarded VIP waits for it).
What is read is small and stable kernel ABI (linux/netlink.h, linux/if_addr.h). Assigning and
removing addresses (`address: manage`) still goes through pyroute2, off that path. The tests
check this reader against pyroute2's own dump of the same host.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

__all__ = [
    "RECV_BYTES",
    "RTMGRP_IPV4_IFADDR",
    "RTMGRP_IPV6_IFADDR",
    "AddressMessage",
    "NetlinkError",
    "dump_addresses",
    "parse",
]

# rtnetlink multicast groups (linux/rtnetlink.h)
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100

# linux/netlink.h
_NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
# linux/rtnetlink.h, linux/if_addr.h
_RTM_NEWADDR, _RTM_DELADDR, _RTM_GETADDR = 20, 21, 22
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, interface index
_RTATTR = struct.Struct("=HH")  # length, type
_IFA_ADDRESS, _IFA_LOCAL, _IFA_FLAGS = 1, 2, 8
_ERRNO = struct.Struct("=i")
_FLAGS = struct.Struct("=I")

RECV_BYTES = 1 << 20


class NetlinkError(OSError):
    """The kernel answered a request with an error."""


@dataclass(frozen=True, slots=True)
class AddressMessage:
    """One address as the kernel reports it: added (or listed), or deleted."""

    deleted: bool
    family: int
    index: int  # the interface's index
    address: str
    flags: int  # IFA_F_* (the 32-bit attribute where the kernel sends it)


def _align(length: int) -> int:
    return (length + 3) & ~3


def _address(
    family: int, index: int, flags: int, body: memoryview, deleted: bool
) -> AddressMessage | None:
    attributes: dict[int, bytes] = {}
    offset = _IFADDRMSG.size
    while offset + _RTATTR.size <= len(body):
        length, kind = _RTATTR.unpack_from(body, offset)
        if length < _RTATTR.size or offset + length > len(body):
            break  # a truncated attribute: what came before it stands
        attributes[kind] = bytes(body[offset + _RTATTR.size : offset + length])
        offset += _align(length)
    # IPv4: IFA_LOCAL is ours (IFA_ADDRESS is the peer on point-to-point links); IPv6: IFA_ADDRESS
    raw = attributes.get(_IFA_LOCAL) or attributes.get(_IFA_ADDRESS)
    if raw is None or family not in (socket.AF_INET, socket.AF_INET6):
        return None
    if len(raw) != (4 if family == socket.AF_INET else 16):
        return None
    if len(attributes.get(_IFA_FLAGS, b"")) == _FLAGS.size:
        (flags,) = _FLAGS.unpack(attributes[_IFA_FLAGS])
    return AddressMessage(deleted, family, index, str(ipaddress.ip_address(raw)), flags)


def parse(data: bytes) -> tuple[list[AddressMessage], bool]:
    """The address messages in one datagram, and whether it ends a dump (NLMSG_DONE). Other
    message types are skipped; an error message raises NetlinkError."""
    view = memoryview(data)
    found: list[AddressMessage] = []
    done = False
    offset = 0
    while offset + _NLMSG.size <= len(view):
        length, kind, _, _, _ = _NLMSG.unpack_from(view, offset)
        if length < _NLMSG.size or offset + length > len(view):
            break
        body = view[offset + _NLMSG.size : offset + length]
        if kind == _NLMSG_DONE:
            done = True
        elif kind == _NLMSG_ERROR:
            (code,) = _ERRNO.unpack_from(body) if len(body) >= _ERRNO.size else (-errno.EIO,)
            if code != 0:  # 0 is an acknowledgement
                raise NetlinkError(-code, os.strerror(-code))
        elif kind in (_RTM_NEWADDR, _RTM_DELADDR) and len(body) >= _IFADDRMSG.size:
            family, _, flags, _, index = _IFADDRMSG.unpack_from(body)
            message = _address(family, index, flags, body, kind == _RTM_DELADDR)
            if message is not None:
                found.append(message)
        offset += _align(length)
    return found, done


def dump_addresses() -> list[AddressMessage]:
    """Every address on every interface of this network namespace (blocking: run it in a
    thread)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        request = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        header = _NLMSG.pack(
            _NLMSG.size + len(request), _RTM_GETADDR, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
        )
        sock.sendall(header + request)
        found: list[AddressMessage] = []
        while True:
            messages, done = parse(sock.recv(RECV_BYTES))
            found.extend(messages)
            if done:
                return found
