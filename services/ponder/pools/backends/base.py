"""The one interface every model backend implements.

A backend turns ``GenParams`` into a stream of ``Delta`` items that ends with
exactly one ``Done``. Closing the stream early (``aclose()``, or cancelling the
task iterating it) must stop generation promptly: that is how gRPC
cancellation reaches the engine.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import AsyncIterator


@dataclasses.dataclass(frozen=True, slots=True)
class GenParams:
    prompt: str
    max_tokens: int
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Chat turns as (role, content); backends without a chat template use ``prompt``.
    messages: tuple[tuple[str, str], ...] = ()
    request_id: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Delta:
    text: str
    tokens: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Done:
    prompt_tokens: int
    output_tokens: int
    finish_reason: str  # "stop" | "length"


class Backend(abc.ABC):
    """A model engine. Implementations: llamacpp, openai, vllm, sim (test double)."""

    kind: str = "?"
    simulated: bool = False

    @property
    @abc.abstractmethod
    def model(self) -> str:
        """What model this backend really runs (file, name or 'sim')."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Load weights or open connections; called once before the first request."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine."""

    @abc.abstractmethod
    def stream(self, params: GenParams) -> AsyncIterator[Delta | Done]:
        """Generate; yields Delta items then exactly one Done."""


def flatten_messages(messages: tuple[tuple[str, str], ...]) -> str:
    """Plain-completion prompt for chat turns, for base models with no chat template."""
    parts = []
    for role, content in messages:
        label = {"system": "System", "user": "User", "assistant": "Assistant"}.get(role, role.capitalize())
        parts.append(f"{label}: {content}")
    parts.append("Assistant:")
    return "\n".join(parts)
