"""The sampler interface: one call, one sample of one step's prompt.

Samplers are safe to call concurrently; the solver draws a step's samples in
parallel. Transient failures (pool down, overloaded, deadline) raise
``PoolUnavailable`` and are retried by the solver; anything else raises
``SamplerRefused`` and fails the step at once.
"""
from __future__ import annotations

import abc
import dataclasses

from ponder.voting.tasks.base import StepPrompt


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    text: str
    prompt_tokens: int
    output_tokens: int
    finish_reason: str  # stop | length
    compute_units: float
    simulated: bool = False


class Sampler(abc.ABC):
    name: str = "?"
    simulated: bool = False

    @abc.abstractmethod
    async def sample(self, prompt: StepPrompt, seed: int) -> Sample:
        """One sample of the prompt, drawn with ``seed``."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release channels."""
