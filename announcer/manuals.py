"""The man page and the shell completions, generated from the CLI's one argument parser by
maintained libraries (argparse-manpage, shtab), never written by hand:

    python -m announcer.manuals OUTDIR    # announcer.1, announcer.bash, _announcer (zsh)

Both libraries are build-time tools (the `manuals` extra); the plugin never imports this.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import __version__
from .cli import build_parser

__all__ = ["completion", "man_page", "write_manuals"]

SEE_ALSO = (
    "exabgp(1), and the documentation: docs/operations.md (drains, the fleet, the API, "
    "metrics), docs/configuration.md, docs/router.md"
)


def man_page() -> str:
    """announcer(1): every command and option, as `announcer --help` and its subcommands say.
    The date follows SOURCE_DATE_EPOCH when set (reproducible builds)."""
    from build_manpages.manpage import Manpage  # type: ignore[import-untyped]

    parser = build_parser()
    page = Manpage(
        parser,
        {
            "project_name": "announcer",
            "version": __version__,
            "manual_title": "announcer manual",
            "description": parser.description,
        },
    )
    return f'{page}\n.SH "SEE ALSO"\n{SEE_ALSO}\n'


def completion(shell: str) -> str:
    """The completion script for bash or zsh."""
    import shtab

    return str(shtab.complete(build_parser(), shell=shell))


def write_manuals(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "announcer.1": man_page(),
        "announcer.bash": completion("bash"),
        "_announcer": completion("zsh"),
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return [folder / name for name in files]


if __name__ == "__main__":
    for path in write_manuals(Path(sys.argv[1] if len(sys.argv) > 1 else "dist")):
        sys.stderr.write(f"wrote {path}\n")
