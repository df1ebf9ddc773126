"""announcer: a BGP/ECMP anycast announcer, run as an ExaBGP process plugin."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
