"""The man page and the shell completions come from the CLI's one parser, so they cannot miss
a command or an option; and the name users are told to install is the distribution's."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from announcer.cli import build_parser
from announcer.manuals import completion, man_page

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> dict[str, list[str]]:
    """Every subcommand and its long options, from the parser itself."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {
        name: [
            s for a in p._actions for s in a.option_strings if s.startswith("--") and s != "--help"
        ]
        for name, p in sub.choices.items()  # type: ignore[union-attr]
    }


def test_the_man_page_has_every_command_and_every_option():
    page = man_page().replace("\\-", "-")
    for name, options in _commands().items():
        assert f"'announcer {name}'" in page, name
        for option in options:
            assert option in page, (name, option)
    assert '.SH "SEE ALSO"' in page


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_completions_offer_every_command_and_option(shell):
    script = completion(shell)
    for name, options in _commands().items():
        assert name in script, name
        for option in options:
            assert option in script, (shell, name, option)


def test_the_distribution_name_is_the_one_the_docs_tell_users_to_install():
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    assert name != "announcer"  # someone else's project on the package index
    install = (ROOT / "docs" / "install.md").read_text()
    told = set(re.findall(r"pip install '([a-z0-9-]+)\[", install))
    assert told == {name}, told
