"""Secrets read from files: TCP MD5 passwords (`bgp.neighbors[].password_file`) and the API
token (`api.token_file`).

A secret is never in the YAML, in a log line or in the status. Its file must be private: not
readable or writable by other users, and owned by root or by the user reading it (anyone else
could change it). The MD5 secret is read only to render exabgp.conf (base64-encoded there, so
no character of it can break ExaBGP's syntax).
"""

from __future__ import annotations

import base64
import os
import stat

from .core.errors import AnnouncerError

__all__ = [
    "MAX_SECRET_BYTES",
    "MIN_TOKEN_BYTES",
    "SecretError",
    "read_secret",
    "read_token",
    "secret_base64",
]

MAX_SECRET_BYTES = 80  # RFC 2385 / the kernel's TCP_MD5SIG_MAXKEYLEN
MIN_TOKEN_BYTES = 16  # 128 bits: a token an API client cannot guess
MAX_TOKEN_BYTES = 4096


class SecretError(AnnouncerError, ValueError):
    """A secret file that cannot be used; the message names the file and what is wrong."""


def _read_private(path: str, where: str, limit: int) -> bytes:
    """The file's bytes, if it is a private regular file (see the module's docstring)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise SecretError(f"{where}: cannot read {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"{where}: {path} is not a regular file")
        if info.st_mode & 0o007:
            raise SecretError(
                f"{where}: {path} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"chmod o-rwx {path}"
            )
        if info.st_uid not in (0, os.geteuid()):
            raise SecretError(
                f"{where}: {path} belongs to uid {info.st_uid}, who could change it; "
                "it must belong to root or to the user that reads it"
            )
        data = os.read(fd, limit + 2)
    except OSError as exc:
        raise SecretError(f"{where}: cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return data


def read_secret(path: str, where: str) -> bytes:
    """The secret (one trailing newline dropped), or SecretError naming `where`."""
    data = _read_private(path, where, MAX_SECRET_BYTES)
    if data.endswith(b"\n"):
        data = data[:-1]
    if data.endswith(b"\r"):
        data = data[:-1]
    if not data:
        raise SecretError(f"{where}: {path} is empty")
    if len(data) > MAX_SECRET_BYTES:
        raise SecretError(f"{where}: the secret in {path} is longer than {MAX_SECRET_BYTES} bytes")
    if b"\x00" in data:
        raise SecretError(f"{where}: the secret in {path} contains a NUL byte")
    return data


def read_token(path: str, where: str = "api.token_file") -> str:
    """The API's bearer token: printable ASCII, at least MIN_TOKEN_BYTES long."""
    data = _read_private(path, where, MAX_TOKEN_BYTES).strip()
    if len(data) > MAX_TOKEN_BYTES:
        raise SecretError(f"{where}: the token in {path} is longer than {MAX_TOKEN_BYTES} bytes")
    if not all(0x21 <= byte <= 0x7E for byte in data):
        raise SecretError(f"{where}: the token in {path} must be printable ASCII, no spaces")
    if len(data) < MIN_TOKEN_BYTES:
        raise SecretError(
            f"{where}: the token in {path} is {len(data)} bytes; at least {MIN_TOKEN_BYTES} "
            "are needed (for example: head -c 24 /dev/urandom | base64)"
        )
    return data.decode("ascii")


def secret_base64(path: str, where: str) -> str:
    return base64.b64encode(read_secret(path, where)).decode("ascii")
