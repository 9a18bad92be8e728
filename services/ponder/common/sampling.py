"""The one set of sampling defaults: what a request that sets none is sampled with.

Every component that samples (pool engine, backends, voting sampler, router)
reads these, so a request means the same thing wherever it is sent. The pool
engine applies them to any field a request leaves unset.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class SamplingDefaults:
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40  # 0 or less: no top-k cut


DEFAULTS = SamplingDefaults()


def resolve(
    temperature: float | None, top_p: float | None, top_k: int | None, defaults: SamplingDefaults = DEFAULTS
) -> tuple[float, float, int]:
    """``(temperature, top_p, top_k)`` with each unset (None) field taken from ``defaults``; never fails."""
    return (
        defaults.temperature if temperature is None else temperature,
        defaults.top_p if top_p is None else top_p,
        defaults.top_k if top_k is None else top_k,
    )

# The same figures by name, for callers that take one parameter at a time.
TEMPERATURE = DEFAULTS.temperature
TOP_P = DEFAULTS.top_p
TOP_K = DEFAULTS.top_k
