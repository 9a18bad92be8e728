"""Test-time strategies: the plans a pool can run, and how their samples are drawn and combined.

``BUILTIN`` is the one explicit list of strategy classes; ``build`` makes one
instance of each per router, injecting what a strategy needs (the voting
client). Adding a strategy is one module with a ``Strategy`` subclass plus
one line in ``BUILTIN``; a duplicate name fails at build time.
"""
from __future__ import annotations

from typing import Iterable

from ponder.router.strategies.base import Strategy, StreamDelta
from ponder.router.strategies.best_of_n import BestOfN
from ponder.router.strategies.cascade import Cascade
from ponder.router.strategies.single import Single, Think
from ponder.router.strategies.softcot import SoftCoT
from ponder.router.strategies.vote import Vote

BUILTIN: tuple[type[Strategy], ...] = (Single, BestOfN, Think, SoftCoT, Vote, Cascade)
NAMES: tuple[str, ...] = tuple(c.name for c in BUILTIN)


def build(voting_client=None, extra: Iterable[Strategy] = ()) -> dict[str, Strategy]:
    """One instance per strategy, by name. ``extra`` adds instances (plug-ins outside this package)."""
    out: dict[str, Strategy] = {}
    for s in [*(Vote(voting_client) if c is Vote else c() for c in BUILTIN), *extra]:
        if s.name in out:
            raise ValueError(f"strategy {s.name!r} registered twice")
        out[s.name] = s
    return out


__all__ = ["BUILTIN", "NAMES", "Strategy", "StreamDelta", "build"]
