"""`announcer exabgp-config` renders configs that ExaBGP 5.0 itself accepts."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "deploy" / "examples").glob("*.yaml"))
EXABGP = Path(sys.executable).parent / "exabgp"


def render(config: Path) -> str:
    return subprocess.run(
        [sys.executable, "-m", "announcer", "exabgp-config", "-c", str(config)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.exabgp
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_rendered_config_passes_exabgp_validate(example, tmp_path):
    conf = tmp_path / "exabgp.conf"
    conf.write_text(render(example))
    result = subprocess.run(
        [str(EXABGP), "validate", str(conf)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_neighbor_is_bound_to_the_plugin_and_reports_state():
    text = render(ROOT / "deploy" / "examples" / "dual-stack-host.yaml")
    assert text.count("processes [ announcer ];") == 2
    assert text.count("neighbor-changes;") == 2
    assert "encoder json;" in text
    assert "local-address 2001:db8:ffff::13;" in text
    assert "graceful-restart" not in text.replace("# graceful", "")
