"""The boundaries the design depends on: a pure core, and probes that stand alone."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_CORE = {
    "asyncio",
    "aiohttp",
    "socket",
    "subprocess",
    "os",
    "time",
    "logging",
    "random",
    "threading",
    "pydantic",
    "prometheus_client",
    "yaml",
}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "path", sorted((ROOT / "announcer" / "core").glob("*.py")), ids=lambda p: p.name
)
def test_core_does_no_io_and_reads_no_clock(path):
    assert not imports(path) & FORBIDDEN_IN_CORE


@pytest.mark.parametrize("path", sorted((ROOT / "healthchecks").glob("*.py")), ids=lambda p: p.name)
def test_healthchecks_never_imports_announcer(path):
    assert "announcer" not in imports(path)


def test_nothing_prints_to_stdout_in_the_plugin():
    """stdout belongs to ExaBGP: only the CLI's own commands may print."""
    allowed = {"cli.py", "docgen.py"}  # command-line tools, never run by ExaBGP
    for path in (ROOT / "announcer").rglob("*.py"):
        if path.name in allowed or "lab" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        calls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"
        ]
        assert not calls, f"{path} calls print()"


def test_no_shell_anywhere():
    for path in [*(ROOT / "announcer").rglob("*.py"), *(ROOT / "healthchecks").rglob("*.py")]:
        text = path.read_text()
        assert "shell=True" not in text, path
        assert "create_subprocess_shell" not in text, path
        assert "os.system(" not in text, path


def _announcer_imports(path: Path) -> set[str]:
    """The announcer packages a module imports (relative imports resolved from its folder)."""
    package = path.parent.name
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.level == 1:
                names.add(package)
            elif node.level == 2:
                names.add(node.module.split(".")[0])
            elif node.module.startswith("announcer."):
                names.add(node.module.split(".")[1])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "announcer" / "api").glob("*.py")), ids=str)
def test_the_api_reads_the_plugin_through_protocols_only(path):
    """The operator edge imports neither the wiring (app) nor the other edges: it reads a
    snapshot and submits events through api/sources.py."""
    assert not _announcer_imports(path) & {"app", "exabgp", "host", "probing", "lab", "cli"}


@pytest.mark.parametrize("path", sorted((ROOT / "announcer" / "core").glob("*.py")), ids=str)
def test_the_core_imports_only_the_core(path):
    assert _announcer_imports(path) <= {"core"}
