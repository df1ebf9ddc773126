"""TCP MD5 secrets, read from the files `bgp.neighbors[].password_file` names.

The secret is never in the YAML, in a log line or in the status; it is read only to render
exabgp.conf (base64-encoded there, so no character of it can break ExaBGP's syntax).
"""

from __future__ import annotations

import base64
from pathlib import Path

__all__ = ["MAX_SECRET_BYTES", "SecretError", "read_secret", "secret_base64"]

MAX_SECRET_BYTES = 80  # RFC 2385 / the kernel's TCP_MD5SIG_MAXKEYLEN


class SecretError(ValueError):
    pass


def read_secret(path: str, where: str) -> bytes:
    """The secret (one trailing newline dropped), or SecretError naming `where`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SecretError(f"{where}: cannot read {path}: {exc.strerror}") from None
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


def secret_base64(path: str, where: str) -> str:
    return base64.b64encode(read_secret(path, where)).decode("ascii")
