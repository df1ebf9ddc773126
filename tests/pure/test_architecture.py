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
    """The announcer packages and top-level modules a module imports (relative imports
    resolved from its folder)."""
    inside = path.relative_to(ROOT / "announcer").parts[:-1]  # () for a top-level module
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            if node.module and node.module.startswith("announcer."):
                names.add(node.module.split(".")[1])
            continue
        base = list(inside[: len(inside) - (node.level - 1)])
        target = base + (node.module.split(".") if node.module else [])
        if target:
            names.add(target[0])
        else:  # `from . import x` at the top level
            names |= {alias.name for alias in node.names}
    return names


# The layers, bottom up. Each may import only what is listed (and itself):
# - the core: pure, nothing else;
# - the foundation: the configuration and what reads it (values, files, logging);
# - the edges, each facing one outside party (ExaBGP, the host's kernel and daemons, the
#   probed services, operators): the core and the foundation, never each other;
# - the renderers (config files and the plan, from a configuration);
# - the wiring (app), which alone knows every edge; and the tools on top (cli, lab, docgen).
CORE = {"core"}
FOUNDATION = {"config", "specs", "durations", "logs", "secrets", "__version__"}
EDGES = {"exabgp", "host", "probing", "api"}
ALLOWED = {
    "core": CORE,
    **dict.fromkeys(FOUNDATION, CORE | FOUNDATION),
    **dict.fromkeys(EDGES, CORE | FOUNDATION),
    "render": CORE | FOUNDATION,
    "app": CORE | FOUNDATION | EDGES,
}
LAYERED = sorted(
    path
    for path in (ROOT / "announcer").rglob("*.py")
    if (path.relative_to(ROOT / "announcer").parts[0].removesuffix(".py")) in ALLOWED
)


def _layer(path: Path) -> str:
    return path.relative_to(ROOT / "announcer").parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", LAYERED, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_imports_a_layer_above_or_another_edge(path):
    """The API reads the plugin through api/sources.py's protocols, the renderers stand
    apart from the running plugin, and no edge knows another: only app/ wires them."""
    layer = _layer(path)
    assert _announcer_imports(path) - {layer} <= ALLOWED[layer]


def test_every_package_has_a_layer():
    """A new folder is placed in the layers above before it can hold code."""
    tools = {"cli", "lab", "docgen", "manuals", "__main__", "__init__"}
    for path in (ROOT / "announcer").rglob("*.py"):
        assert _layer(path) in ALLOWED or _layer(path) in tools, path


def test_every_error_a_user_is_told_of_has_the_one_base():
    """Every exception class in the plugin is an AnnouncerError (located problems, one type
    to catch), except the few that never reach a user, each named here with why."""
    from announcer.core.errors import AnnouncerError

    internal = {
        "_Finished": "ends the task group on purpose",
        "InjectedFault": "the test-only fault hook",
        "_YamlRefused": "turned into a ConfigError by the loader",
        "NetlinkError": "an OSError, handled where the socket is read",
        "VtyError": "an OSError, handled where the vty is read",
        "NotPure": "tests only",
        "_Refused": "turned into a Malformed message by the ExaBGP line parser",
    }
    import importlib
    import inspect

    for path in (ROOT / "announcer").rglob("*.py"):
        if _layer(path) in {"lab", "__main__"}:
            continue
        module = importlib.import_module(
            ".".join(
                ("announcer", *path.relative_to(ROOT / "announcer").with_suffix("").parts)
            ).removesuffix(".__init__")
        )
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__ == module.__name__
                and name not in internal
            ):
                assert issubclass(value, AnnouncerError), f"{module.__name__}.{name}"
