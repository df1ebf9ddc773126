"""`announcer keepalived-config` renders what keepalived itself accepts (`keepalived -t`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "examples" / "stable-next-hops-host.yaml"
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"


def render(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "announcer", "keepalived-config", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_rendered_configuration_passes_keepalived_config_test(tmp_path):
    if not Path(KEEPALIVED).exists():
        pytest.fail("keepalived is not installed: run scripts/setup.sh")
    rendered = render(EXAMPLE)
    assert rendered.returncode == 0, rendered.stderr
    conf = tmp_path / "keepalived.conf"
    conf.write_text(rendered.stdout)
    test = subprocess.run(
        [KEEPALIVED, "--config-test", "-f", str(conf)], capture_output=True, text=True, check=False
    )
    assert test.returncode == 0, test.stdout + test.stderr
    # one VRRPv3 instance per slot, each tracking the plugin's health file
    assert rendered.stdout.count("vrrp_instance ") == 2
    assert rendered.stdout.count("announcer_slots\n") == 2
    assert 'file "/run/announcer/slots"' in rendered.stdout
    assert "vrrp_version 3" in rendered.stdout and "nopreempt" in rendered.stdout


def test_a_health_file_keepalived_could_misread_is_refused(tmp_path):
    data = yaml.safe_load(EXAMPLE.read_text())
    data["stable_next_hops"]["health_file"] = '/run/announcer/"slots'
    config = tmp_path / "announcer.yaml"
    config.write_text(yaml.safe_dump(data))
    rendered = render(config)
    assert rendered.returncode == 2
    assert "cannot be written into keepalived's configuration" in rendered.stderr


def test_without_stable_next_hops_there_is_nothing_to_render():
    rendered = render(ROOT / "deploy" / "examples" / "nginx-host.yaml")
    assert rendered.returncode == 2
    assert "no stable_next_hops: section" in rendered.stderr
