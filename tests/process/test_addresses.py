"""The address guard's configuration and the plugin without CAP_NET_ADMIN. The guard itself
(netlink events, assign and remove) is tested against real interfaces in the lab
(tests/lab/test_addresses.py) and in the reducer's tables and simulation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from announcer.config import ConfigError, parse_config
from announcer.specs import spec_from_config

BIN = Path(sys.executable).parent


def config(**extra: object) -> dict:
    return {
        "checks": {"web": {"tcp": {"port": 1}}},
        "vips": [
            {"prefix": "192.0.2.55/32", "checks": ["web"]},
            {"prefix": "2001:db8::55/128", "checks": ["web"], "address": "ignore"},
        ],
        "api": {"listen": ""},
        **extra,
    }


def test_require_is_the_default_and_a_vip_may_say_otherwise():
    spec = spec_from_config(parse_config(config()))
    assert [vip.address.value for vip in spec.vips] == ["require", "ignore"]
    spec = spec_from_config(parse_config(config(addresses={"mode": "manage"})))
    assert [vip.address.value for vip in spec.vips] == ["manage", "ignore"]


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        ({"addresses": {"mode": "sometimes"}}, "addresses.mode", "require"),
        ({"addresses": {"interface": "lo; rm -rf /"}}, "addresses.interface", "pattern"),
        (
            {
                "addresses": {"mode": "manage"},
                "vips": [{"prefix": "192.0.2.0/28", "checks": ["web"], "allow_subnet": True}],
            },
            "vips[0].address",
            "host addresses only",
        ),
    ],
)
def test_bad_address_settings_are_refused_with_the_path(extra, where, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(config(**extra))
    assert any(issue.path == where and message in issue.message for issue in caught.value.issues), (
        caught.value.issues
    )


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_manage_without_cap_net_admin_fails_clearly_and_announces_nothing(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config(addresses={"mode": "manage"})))
    # root without CAP_NET_ADMIN: the capability is dropped from the bounding set
    process = subprocess.Popen(
        ["setpriv", "--bounding-set=-net_admin", str(BIN / "announcer"), "run", "-c", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.wait(10) == 2
    finally:
        process.kill()
        stdout, stderr = process.communicate()
    assert "CAP_NET_ADMIN" in stderr
    assert "Traceback" not in stderr
    assert not [line for line in stdout.splitlines() if line.startswith("announce")]


async def test_a_refused_assign_undoes_only_what_it_added(monkeypatch):
    """A reload whose new managed VIP cannot be assigned is refused; the addresses of the
    VIPs already running (routes out there) stay where they are."""
    from announcer.app import address_keeper
    from announcer.host.addresses import AddressError

    on_lo = {"192.0.2.55"}
    removed: list[str] = []

    async def assign(address: str, interface: str) -> bool:
        if address == "192.0.2.57":
            raise AddressError("refused")
        if address in on_lo:
            return False
        on_lo.add(address)
        return True

    async def unassign(address: str, interface: str) -> bool:
        removed.append(address)
        on_lo.discard(address)
        return True

    monkeypatch.setattr(address_keeper, "assign", assign)
    monkeypatch.setattr(address_keeper, "unassign", unassign)
    keeper = address_keeper.AddressKeeper(lambda: None, None)  # type: ignore[arg-type]
    first = parse_config(config(addresses={"mode": "manage"}))
    await keeper.assign_for(first)
    assert set(keeper.owned) == {"192.0.2.55"}
    vips = [{"prefix": f"192.0.2.{n}/32", "checks": ["web"]} for n in (55, 56, 57)]
    with pytest.raises(AddressError):
        await keeper.assign_for(parse_config(config(addresses={"mode": "manage"}, vips=vips)))
    assert removed == ["192.0.2.56"]  # the one this attempt added; .55 stays
    assert on_lo == {"192.0.2.55"} and set(keeper.owned) == {"192.0.2.55"}
