"""The task interface: a problem cut into minimal steps that voting can decide one at a time.

A task is pure: it holds no sampler and no clock. States and step results are
immutable and hashable, because votes are counted on the parsed result (two
samples agree when their parsed results are equal, whatever their text).
"""
from __future__ import annotations

import abc
import dataclasses
import random
from typing import Any, Generic, Hashable, TypeVar

S = TypeVar("S")
R = TypeVar("R", bound=Hashable)


@dataclasses.dataclass(frozen=True, slots=True)
class StepPrompt:
    """What a sampler sees for one step; ``task`` and ``state`` serve scripted samplers only."""

    text: str
    max_tokens: int
    stop: tuple[str, ...]
    step: int
    task: Any = None
    state: Any = None


class Task(abc.ABC, Generic[S, R]):
    """A sequential task decided step by step."""

    name: str = "?"

    @abc.abstractmethod
    def initial_state(self) -> S: ...

    @abc.abstractmethod
    def total_steps(self) -> int:
        """Steps a correct run takes; the solver stops a run that goes past it."""

    @abc.abstractmethod
    def done(self, state: S) -> bool: ...

    @abc.abstractmethod
    def prompt(self, state: S, step: int) -> StepPrompt:
        """The next step's prompt, built only from the minimal state that step needs."""

    def vary(self, prompt: StepPrompt, seed: int) -> StepPrompt:
        """The prompt one sample drawn with ``seed`` sees: by default ``prompt`` itself; tasks that
        decorrelate samples reword it or change its examples here (same step, same answer)."""
        return prompt

    @abc.abstractmethod
    def parse(self, text: str, state: S) -> R:
        """Parse a sample into a step result; raise ValueError when it breaks the format (a red flag)."""

    @abc.abstractmethod
    def apply(self, state: S, result: R) -> S:
        """The state after the winning result."""

    @abc.abstractmethod
    def render(self, result: R) -> str:
        """The answer text a model should write for ``result`` (``parse(render(r)) == r``)."""

    @abc.abstractmethod
    def oracle(self, state: S) -> R:
        """The correct result for the step at ``state`` (calibration, scripted samplers, checks)."""

    @abc.abstractmethod
    def plausible_error(self, state: S, rng: random.Random) -> R:
        """A wrong but well-formed result a model might give at ``state``."""

    @abc.abstractmethod
    def calibration_states(self, rng: random.Random, n: int) -> list[S]:
        """``n`` states drawn from along a correct run, to estimate p."""

    def describe(self, state: S) -> str:
        """Progress so far, as text for the final summary."""
        return str(state)

    def answer(self, state: S) -> str:
        """The task's result at a final state."""
        return self.describe(state)

    def verify(self, state: S) -> bool | None:
        """Whether a final state is the right answer; None when the task cannot tell."""
        return None
