"""Generate docs/configuration.md's reference tables from the pydantic models."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from healthchecks import PROBE_TYPES

from .config import (
    ApiConfig,
    BfdConfig,
    BfddConfig,
    BgpConfig,
    CheckConfig,
    Config,
    DampeningConfig,
    DrainConfig,
    ExabgpConfig,
    FleetConfig,
    NeighborConfig,
    SlotConfig,
    StableNextHopsConfig,
    VipConfig,
    VipFleetConfig,
    WeightConfig,
)
from .durations import format_duration

__all__ = ["BEGIN", "END", "SECTIONS", "render_reference", "update_file"]

BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m announcer.docgen docs/configuration.md -->"
END = "<!-- END GENERATED REFERENCE -->"

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("top level", Config),
    ("bgp", BgpConfig),
    ("bgp.neighbors[]", NeighborConfig),
    ("bgp.neighbors[].bfd", BfdConfig),
    ("checks.NAME", CheckConfig),
    *((f"checks.NAME.{name}", model) for name, model in PROBE_TYPES.items()),
    ("vips[]", VipConfig),
    ("vips[].weight", WeightConfig),
    ("vips[].fleet", VipFleetConfig),
    ("drain", DrainConfig),
    ("dampening", DampeningConfig),
    ("fleet", FleetConfig),
    ("stable_next_hops", StableNextHopsConfig),
    ("stable_next_hops.slots[]", SlotConfig),
    ("api", ApiConfig),
    ("exabgp", ExabgpConfig),
    ("bfdd", BfddConfig),
]

_DURATION_FIELDS = {
    "advert_interval",
    "interval",
    "fast_interval",
    "confirm_interval",
    "timeout",
    "ttl",
    "ack_timeout",
    "gshut_period",
    "max_wait",
    "half_life",
    "max_suppress",
    "min_announce_interval",
}


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(dict.fromkeys(names))
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _default(name: str, info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return "`{}`" if isinstance(value, BaseModel) else f"`{value!r}`"
    if info.default is PydanticUndefined or info.default is None:
        return "none"
    if name in _DURATION_FIELDS and isinstance(info.default, int | float):
        return f"`{format_duration(float(info.default))}`"
    if isinstance(info.default, bool):
        return f"`{str(info.default).lower()}`"
    return f"`{info.default}`"


def _constraints(info: FieldInfo) -> str:
    parts = []
    for item in info.metadata:
        for attr, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
        min_length = getattr(item, "min_length", None)
        if min_length:
            parts.append(f"at least {min_length}")
    return ", ".join(parts)


def render_reference() -> str:
    out = []
    for title, model in SECTIONS:
        out.append(f"### `{title}`\n")
        out.append("| key | type | default | notes |")
        out.append("|---|---|---|---|")
        for name, info in model.model_fields.items():
            if name == "type":
                continue
            kind = "duration" if name in _DURATION_FIELDS else _type_name(info.annotation)
            notes = " ".join(filter(None, [info.description or "", _constraints(info)]))
            out.append(f"| `{name}` | {kind} | {_default(name, info)} | {notes} |")
        out.append("")
    return "\n".join(out)


def update_file(path: str) -> bool:
    """Rewrite the generated part of `path`; True if it changed."""
    from pathlib import Path

    file = Path(path)
    text = file.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n\n{render_reference()}\n{END}{tail}"
    if new != text:
        file.write_text(new)
        return True
    return False


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:]:
        print(f"{name}: {'updated' if update_file(name) else 'up to date'}")
