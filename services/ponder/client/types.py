"""Typed results of the router's RPCs (frozen dataclasses built from the protos; ``raw`` keeps the proto)."""
from __future__ import annotations

import dataclasses

from ponder.v1 import common_pb2, router_pb2


@dataclasses.dataclass(frozen=True)
class Plan:
    pool: str
    strategy: str
    samples: int
    thinking_budget: int
    expected_compute_units: float
    expected_latency_ms: float
    expected_accuracy: float
    policy: str
    reason: str
    clamped: str
    context_id: str

    @classmethod
    def from_proto(cls, p: common_pb2.Plan) -> "Plan":
        return cls(p.pool, p.strategy, p.samples, p.thinking_budget, p.expected_compute_units, p.expected_latency_ms,
                   p.expected_accuracy, p.policy, p.reason, p.clamped, p.context_id)


@dataclasses.dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    output_tokens: int  # thinking included
    thinking_tokens: int
    compute_units: float
    latency_ms: float
    time_to_first_token_ms: float
    samples: int

    @classmethod
    def from_proto(cls, u: common_pb2.Usage) -> "Usage":
        return cls(u.prompt_tokens, u.output_tokens, u.thinking_tokens, u.compute_units, u.latency_ms,
                   u.time_to_first_token_ms, u.samples)


@dataclasses.dataclass(frozen=True)
class Answer:
    request_id: str
    text: str
    finish_reason: str
    model: str
    simulated: bool
    plan: Plan
    usage: Usage
    samples: tuple[str, ...]  # every sample's text for best_of_n; () otherwise
    raw: router_pb2.GenerateResponse = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, r: router_pb2.GenerateResponse) -> "Answer":
        return cls(r.request_id, r.text, r.finish_reason, r.model, r.simulated, Plan.from_proto(r.plan),
                   Usage.from_proto(r.usage), tuple(r.samples), r)


@dataclasses.dataclass(frozen=True)
class Delta:
    """A piece of streamed text; ``thinking`` while the pool is in its thinking phase."""

    text: str
    sample_index: int
    thinking: bool


@dataclasses.dataclass(frozen=True)
class PlanResult:
    request_id: str
    plan: Plan
    raw: router_pb2.PlanResponse = dataclasses.field(repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class PoolStatus:
    name: str
    tier: str
    backend: str
    model: str
    healthy: bool
    error: str
    queue_depth: int
    running: int
    tokens_per_s: float


@dataclasses.dataclass(frozen=True)
class Status:
    version: str
    policy: str
    pools: tuple[PoolStatus, ...]
    outcome_log: str
    http_url: str  # the OpenAI-compatible base URL; "" when off
    raw: router_pb2.StatusResponse = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, s: router_pb2.StatusResponse) -> "Status":
        pools = tuple(PoolStatus(p.name, p.tier, p.backend, p.model, p.healthy, p.error, p.stats.queue_depth,
                                 p.stats.running, p.stats.tokens_per_s) for p in s.pools)
        return cls(s.version, s.policy, pools, s.outcome_log, s.http.url, s)
