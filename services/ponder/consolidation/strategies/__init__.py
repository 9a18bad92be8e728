"""Consolidation strategies: one interface (``Strategy``), one registry, registered here once."""
from __future__ import annotations

from ponder.consolidation.strategies.base import StepContext, StepResult, Strategy, StrategyRegistry


def default_registry() -> StrategyRegistry:
    from ponder.consolidation.strategies.extractive import Extractive
    from ponder.consolidation.strategies.rethink import Rethink

    reg = StrategyRegistry()
    reg.register("extractive", lambda cfg: Extractive(cfg.extractive))
    reg.register("rethink", lambda cfg: Rethink(cfg.rethink))
    return reg


__all__ = ["StepContext", "StepResult", "Strategy", "StrategyRegistry", "default_registry"]
