"""BFD beside ExaBGP and session passwords, without a lab: what is rendered, what is refused,
and how the plugin reads bfdd. (The lab tests load this very output into real bfdd and FRR.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from announcer.config import parse_config
from announcer.host.bfd_status import BfdMonitor, parse_bfd_peers
from announcer.host.frr_vty import VtyError, vty_command

EXABGP = Path(sys.executable).parent / "exabgp"


def announcer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "announcer", *args], capture_output=True, text=True, check=False
    )


def config(tmp_path: Path, **neighbor: object) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "bgp": {
                    "local_as": 65011,
                    "router_id": "198.51.100.11",
                    "neighbors": [
                        {"address": "198.51.100.1", "peer_as": 65000, **neighbor},
                        {
                            "address": "2001:db8:ffff::1",
                            "peer_as": 65000,
                            "local_address": "2001:db8:ffff::11",
                            "bfd": {"interval": "300ms", "multiplier": 5},
                        },
                    ],
                },
                "checks": {"web": {"tcp": {"port": 80}}},
                "vips": [{"prefix": "192.0.2.10/32", "checks": ["web"]}],
            }
        )
    )
    return path


def test_bfd_config_has_one_peer_per_bfd_neighbor_with_its_local_address(tmp_path):
    out = announcer("bfd-config", "-c", str(config(tmp_path, bfd={"interval": "100ms"})))
    assert out.returncode == 0, out.stderr
    assert " peer 198.51.100.1 local-address 198.51.100.11\n  receive-interval 100\n" in out.stdout
    assert "  transmit-interval 100\n  detect-multiplier 3\n" in out.stdout
    assert " peer 2001:db8:ffff::1 local-address 2001:db8:ffff::11\n" in out.stdout
    assert "  receive-interval 300\n  transmit-interval 300\n  detect-multiplier 5\n" in out.stdout
    assert (
        announcer("check", "-c", str(config(tmp_path, bfd={"interval": "100ms"}))).returncode == 0
    )


@pytest.mark.parametrize(
    ("bfd", "error"),
    [
        ({"interval": "5ms"}, "bfd.interval: Input should be greater than or equal to 0.01"),
        ({"multiplier": 1}, "bfd.multiplier: Input should be greater than or equal to 2"),
        ({"interval": "100ms", "echo": True}, "bfd.echo: unknown key"),
    ],
)
def test_bfd_ranges_are_checked(tmp_path, bfd, error):
    out = announcer("check", "-c", str(config(tmp_path, bfd=bfd)))
    assert out.returncode == 2 and error in out.stderr, out.stderr


def test_the_secret_reaches_exabgp_conf_base64_and_nowhere_else(tmp_path):
    secret = tmp_path / "secret"
    secret.touch(mode=0o600)
    secret.write_text('s3cr"et; }\n')  # characters that would break ExaBGP's syntax
    path = config(tmp_path, password_file=str(secret))
    assert 's3cr"et' not in path.read_text()
    out = announcer("exabgp-config", "-c", str(path))
    assert out.returncode == 0, out.stderr
    assert '    md5-password "czNjciJldDsgfQ==";\n    md5-base64 true;\n' in out.stdout
    assert 's3cr"et' not in out.stdout
    conf = tmp_path / "exabgp.conf"
    conf.write_text(out.stdout)
    validate = subprocess.run(
        [str(EXABGP), "validate", str(conf)], capture_output=True, text=True, check=False
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "cannot read"),
        ("\n", "is empty"),
        ("x" * 81, "longer than 80 bytes"),
        ("secret\n", "open to other users (mode 0644)"),
    ],
)
def test_a_bad_password_file_is_refused_by_check_and_exabgp_config(tmp_path, content, error):
    secret = tmp_path / "secret"
    if content is not None:
        secret.touch(mode=0o644 if "other users" in error else 0o600)
        secret.write_text(content)
    path = str(config(tmp_path, password_file=str(secret)))
    for command in ("check", "exabgp-config"):
        out = announcer(command, "-c", path)
        assert out.returncode == 2, (command, out.stdout)
        assert "bgp.neighbors[0].password_file" in out.stderr and error in out.stderr
        assert out.stdout == ""


def test_a_relative_or_multiline_password_path_is_refused(tmp_path):
    out = announcer("check", "-c", str(config(tmp_path, password_file="secret\nx")))
    assert out.returncode == 2 and "bgp.neighbors[0].password_file" in out.stderr


def test_parse_bfd_peers():
    text = '[{"peer": "198.51.100.1", "status": "up"}, {"peer": "2001:db8::1", "status": "down"}]'
    assert parse_bfd_peers(text) == {"198.51.100.1": "up", "2001:db8::1": "down"}
    with pytest.raises(ValueError):
        parse_bfd_peers('{"not": "a list"}')


async def test_bfdd_missing_is_a_state_not_a_crash(tmp_path):
    parsed = parse_config(
        yaml.safe_load(config(tmp_path, bfd={}).read_text())
        | {"bfdd": {"vty_socket": str(tmp_path / "nowhere")}}
    )
    monitor = BfdMonitor(parsed)
    await monitor.poll_once()
    assert monitor.reachable is False
    assert dict(monitor.peers) == {"198.51.100.1": "unknown", "2001:db8:ffff::1": "unknown"}


class FakeVty:
    """A daemon's vty socket as FRR serves it: NUL-terminated commands in, the output then
    three NULs and a status byte out; like bfdd, `show bfd peers` only after `enable`."""

    def __init__(self, folder: Path, peers_json: str) -> None:
        self.path = str(folder / "bfdd.vty")
        self.peers_json = peers_json
        self.received: list[str] = []
        self.server: asyncio.AbstractServer | None = None
        self.mode = "answer"  # or "silent", "hang up"

    async def __aenter__(self) -> FakeVty:
        self.server = await asyncio.start_unix_server(self._serve, self.path)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        enabled = False
        try:
            while True:
                command = (await reader.readuntil(b"\0"))[:-1].decode()
                self.received.append(command)
                if command == "enable":
                    enabled, output, status = True, "", 0
                elif command == "show bfd peers json" and enabled:
                    output, status = self.peers_json, 0
                else:
                    output, status = f"% [BFD] Unknown command: {command}\n", 2
                if self.mode == "silent":
                    await asyncio.sleep(10)
                if self.mode == "hang up":
                    writer.write(output.encode()[:5])
                    break
                # the answer in two writes: the reader must not stop at the first
                writer.write(output.encode())
                await writer.drain()
                writer.write(b"\0\0\0" + bytes([status]))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


PEERS = (
    '[\n{"peer": "198.51.100.1", "status": "up"},\n'
    '{"peer": "2001:db8:ffff::1", "status": "down"}\n]\n'
)


async def test_the_vty_client_enables_then_asks_as_vtysh_does(tmp_path):
    async with FakeVty(tmp_path, PEERS) as vty:
        output = await vty_command(str(tmp_path), "bfdd", "show bfd peers json", 2.0)
    assert vty.received == ["enable", "show bfd peers json"]
    assert parse_bfd_peers(output) == {"198.51.100.1": "up", "2001:db8:ffff::1": "down"}


async def test_the_vty_client_reports_a_refused_command_a_hang_up_and_a_silence(tmp_path):
    async with FakeVty(tmp_path, PEERS) as vty:
        with pytest.raises(VtyError, match="status 2: % \\[BFD\\] Unknown command: show nothing"):
            await vty_command(str(tmp_path), "bfdd", "show nothing", 2.0)
        vty.mode = "hang up"
        with pytest.raises(VtyError, match="closed the connection"):
            await vty_command(str(tmp_path), "bfdd", "show bfd peers json", 2.0)
        vty.mode = "silent"
        with pytest.raises(TimeoutError):
            await vty_command(str(tmp_path), "bfdd", "show bfd peers json", 0.2)
    with pytest.raises(FileNotFoundError):
        await vty_command(str(tmp_path / "nowhere"), "bfdd", "show bfd peers json", 2.0)
    with pytest.raises(ValueError, match="control characters"):
        await vty_command(str(tmp_path), "bfdd", "show bfd peers json\0enable", 2.0)


async def test_the_monitor_reads_peers_from_bfdd_and_notices_it_go(tmp_path):
    parsed = parse_config(
        yaml.safe_load(config(tmp_path, bfd={}).read_text())
        | {"bfdd": {"vty_socket": str(tmp_path)}}
    )
    monitor = BfdMonitor(parsed)
    async with FakeVty(tmp_path, PEERS):
        await monitor.poll_once()
        assert monitor.reachable is True
        assert dict(monitor.peers) == {"198.51.100.1": "up", "2001:db8:ffff::1": "down"}
    await monitor.poll_once()  # bfdd gone: its socket is gone too
    assert monitor.reachable is False
    assert set(monitor.peers.values()) == {"unknown"}


@pytest.mark.parametrize(
    ("mode", "content", "error"),
    [
        (0o600, "short\n", "is 5 bytes; at least 16 are needed"),
        (0o604, "a-token-long-enough-to-pass\n", "open to other users (mode 0604)"),
        (0o600, "a token with spaces inside\n", "printable ASCII, no spaces"),
    ],
)
def test_an_unsafe_api_token_is_refused_by_check(tmp_path, mode, content, error):
    token = tmp_path / "token"
    token.touch(mode=mode)
    token.chmod(mode)
    token.write_text(content)
    data = yaml.safe_load(config(tmp_path).read_text())
    data["api"] = {"listen": "127.0.0.1:9180", "token_file": str(token)}
    path = tmp_path / "with-token.yaml"
    path.write_text(yaml.safe_dump(data))
    out = announcer("check", "-c", str(path))
    assert out.returncode == 2 and "api.token_file" in out.stderr, out.stderr
    assert error in out.stderr
    token.chmod(0o600)
    token.write_text("a-token-long-enough-to-pass\n")
    assert announcer("check", "-c", str(path)).returncode == 0


def test_check_refuses_a_drain_state_file_it_cannot_write(tmp_path):
    data = yaml.safe_load(config(tmp_path).read_text())
    data["drain"] = {"state_file": "/proc/announcer-drains.json"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    out = announcer("check", "-c", str(path))
    assert out.returncode == 2 and "drain.state_file: cannot write in /proc" in out.stderr
    data["drain"] = {"state_file": str(tmp_path / "drains.json")}
    path.write_text(yaml.safe_dump(data))
    assert announcer("check", "-c", str(path)).returncode == 0
