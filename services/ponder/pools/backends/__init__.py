"""Backend registry: config kind -> implementation, imported only when used."""
from __future__ import annotations

from ponder.common.config import LlamaCppBackend, OpenAIBackend, SimBackend, VLLMBackend
from ponder.pools.backends.base import Backend, Delta, Done, GenParams

__all__ = ["Backend", "Delta", "Done", "GenParams", "make_backend"]


def make_backend(cfg: LlamaCppBackend | OpenAIBackend | VLLMBackend | SimBackend) -> Backend:
    """Build the backend a pool config names; heavy engines are imported here, lazily."""
    if isinstance(cfg, SimBackend):
        from ponder.pools.backends.sim import SimulatedBackend

        return SimulatedBackend(cfg)
    if isinstance(cfg, LlamaCppBackend):
        from ponder.pools.backends.llamacpp import LlamaCppEngine

        return LlamaCppEngine(cfg)
    if isinstance(cfg, OpenAIBackend):
        from ponder.pools.backends.openai import OpenAICompatBackend

        return OpenAICompatBackend(cfg)
    if isinstance(cfg, VLLMBackend):
        from ponder.pools.backends.vllm import VLLMEngine

        return VLLMEngine(cfg)
    raise TypeError(f"unknown backend config {type(cfg).__name__}")
