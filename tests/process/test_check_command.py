"""`announcer check` as an operator runs it: every shipped example passes, and a bad file
prints every problem with its path and exits 2 (the parsing itself: tests/pure/test_config.py)."""

import subprocess
import sys

import pytest
import yaml

from tests.pure.test_config import EXAMPLES, base


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_announcer_check(path, tmp_path):
    # the files an example names are the host's: made here as an operator would make them
    data = yaml.safe_load(path.read_text())
    if data.get("api", {}).get("token_file"):
        token = tmp_path / "api-token"
        token.touch(mode=0o600)
        token.write_text("an-operators-token-0123456789\n")
        data["api"]["token_file"] = str(token)
    if data.get("drain", {}).get("state_file"):
        data["drain"]["state_file"] = str(tmp_path / "drains.json")
    example = tmp_path / path.name
    example.write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [sys.executable, "-m", "announcer", "check", "-c", str(example)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_prints_every_error_and_exits_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(base(vips__0__prefix="192.0.2.0/33", checks__web__rise=0)))
    result = subprocess.run(
        [sys.executable, "-m", "announcer", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "vips[0].prefix: 192.0.2.0/33 is not a valid prefix" in result.stderr
    assert "checks.web.rise" in result.stderr
    assert result.stdout == ""


# what `announcer check` must not import: the event loop, the probes' clients, the reducer (a
# thousand-VIP file is asked to check in 0.2 s, and these were half of it)
HEAVY = ("asyncio", "aiohttp", "healthchecks._lean_http", "announcer.core.machine")


def test_check_imports_no_event_loop_probe_or_reducer(tmp_path):
    path = tmp_path / "announcer.yaml"
    path.write_text(yaml.safe_dump(base()))
    script = (
        "import sys\n"
        "from announcer.cli import main\n"
        f"code = main(['check', '-c', {str(path)!r}])\n"
        f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 []"
