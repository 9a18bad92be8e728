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

from ponder.common.sampling import DEFAULTS


@dataclasses.dataclass(frozen=True, slots=True)
class GenParams:
    prompt: str
    max_tokens: int
    temperature: float = DEFAULTS.temperature
    top_p: float = DEFAULTS.top_p
    top_k: int = DEFAULTS.top_k
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Chat turns as (role, content); backends without a chat template use ``prompt``.
    messages: tuple[tuple[str, str], ...] = ()
    request_id: str = ""
    # SoftCoT: None = the pool's default, False = plain generation, True = steer with soft thoughts.
    soft_thoughts: bool | None = None
    # Input embeddings [seq, hidden] (a torch tensor) that replace the prompt; only
    # backends with ``accepts_embeddings`` read it.
    prompt_embeds: object | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Delta:
    text: str
    tokens: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Done:
    prompt_tokens: int
    output_tokens: int
    finish_reason: str  # "stop" | "length" | "cancelled"
    # SoftCoT usage: soft tokens in the backbone's input, assistant tokens read, assistant + projection time.
    soft_thought_tokens: int = 0
    assistant_tokens: int = 0
    assistant_ms: float = 0.0


class Backend(abc.ABC):
    """A model engine. Implementations: llamacpp, openai, vllm, transformers, sim (test double);
    the SoftCoT pool wraps one that ``accepts_embeddings``."""

    kind: str = "?"
    simulated: bool = False
    # Requests the engine generates at once; the pool engine queues the rest.
    # Engines that batch (vLLM, remote servers) take all; single-context ones take 1.
    max_concurrency: int = 1_000_000
    accepts_embeddings: bool = False  # reads GenParams.prompt_embeds

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
