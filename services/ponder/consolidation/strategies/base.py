"""The strategy plug-in interface and its registry.

A strategy turns a context into a shorter form in one or more steps. Each step
reads the text the previous step left (the raw text for the first) and reports
what it spent: model tokens read and written and compute units. Steps are the
unit of progress: the scheduler checks the pool's idleness before each one and
saves the text after it, so a retried job resumes where it stopped.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Callable

from ponder.common.config import ConsolidatorConfig, Cost
from ponder.common.errors import InvalidArgument


@dataclasses.dataclass(frozen=True)
class StepResult:
    text: str
    tokens_in: int        # model tokens read
    tokens_out: int       # model tokens written (extractive: tokens kept)
    compute_units: float  # what the step cost, in compute units


@dataclasses.dataclass
class StepContext:
    """What a step may use: the job's pool (client and prices), the settings, the pass kinds."""

    pool: str
    client: object | None                  # PoolClient of the job's pool (rethink)
    cost: Cost
    settings: ConsolidatorConfig
    pass_kinds: tuple[str, ...] = ("re_represent", "precompute_answers")
    pass_max_tokens: tuple[int, ...] = ()  # per pass kind, from the policy; empty: the settings'
    num_questions: tuple[int, ...] = ()


class Strategy(abc.ABC):
    name: str = ""

    @abc.abstractmethod
    def steps(self, passes: int) -> int:
        """Steps this strategy takes for a job with ``passes`` (>= 1)."""

    @abc.abstractmethod
    async def run_step(self, step: int, text: str, ctx: StepContext) -> StepResult:
        """Run step ``step`` (0-based) on ``text``; raise PonderError subclasses on failure
        (PoolUnavailable when the pool is down: the job is retried later)."""

    async def close(self) -> None:
        """Release models or threads."""


class StrategyRegistry:
    """Factories by name; a duplicate name fails at registration."""

    def __init__(self) -> None:
        self._factories: dict[str, Callable[[ConsolidatorConfig], Strategy]] = {}
        self._made: dict[str, Strategy] = {}

    def register(self, name: str, factory: Callable[[ConsolidatorConfig], Strategy]) -> None:
        if name in self._factories:
            raise ValueError(f"consolidation strategy {name!r} is registered twice")
        self._factories[name] = factory

    @property
    def names(self) -> list[str]:
        return sorted(self._factories)

    def parse_chain(self, chain: str, field: str = "strategy") -> list[str]:
        """``"extractive+rethink"`` -> ["extractive", "rethink"]; INVALID_ARGUMENT naming
        ``field`` for an empty or unknown name or a repeated one."""
        names = [n.strip() for n in chain.split("+")]
        for n in names:
            if n not in self._factories:
                raise InvalidArgument(field, f"unknown strategy {n!r}; registered: {', '.join(self.names)}")
        if len(set(names)) != len(names):
            raise InvalidArgument(field, f"strategy repeated in {chain!r}")
        return names

    def get(self, name: str, settings: ConsolidatorConfig) -> Strategy:
        if name not in self._made:
            self._made[name] = self._factories[name](settings)
        return self._made[name]

    def plan(self, names: list[str], passes: int, settings: ConsolidatorConfig) -> list[tuple[Strategy, int]]:
        """The job's steps in order: (strategy, its step index)."""
        out = []
        for n in names:
            s = self.get(n, settings)
            out += [(s, i) for i in range(s.steps(passes))]
        return out

    async def close(self) -> None:
        for s in self._made.values():
            await s.close()
        self._made.clear()
