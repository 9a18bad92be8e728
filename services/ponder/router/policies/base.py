"""The allocation-policy plug-in kind: one async method, ``plan``.

A policy sees the validated request and a ``PoolCatalog`` (configured pools,
their prices, speeds and limits) and returns a ``Plan``. Policies must respect
the request's hints and caps; ``PoolCatalog.estimate`` gives every policy the
same cost and latency model so plans are comparable, and ``over_caps`` and
``infeasible`` the same verdicts on the caps.
"""
from __future__ import annotations

import abc
from typing import ClassVar, Sequence

from pydantic import BaseModel, ValidationError

from ponder.common.config import PonderConfig, PoolConfig
from ponder.common.errors import BudgetInfeasible, ConfigError, InvalidArgument
from ponder.router.latency import LatencyTracker, expected_latency_ms
from ponder.router.types import Candidate, Plan, Request, SampleResult

CHARS_PER_TOKEN = 4.0


class PoolCatalog:
    """View of the configured pools, with the shared cost and latency model.

    The pools are read-only; ``latency`` learns their speeds from the answers
    the router reports through ``observe``.
    """

    def __init__(self, cfg: PonderConfig, latency: LatencyTracker | None = None):
        self.cfg = cfg
        self.pools = {p.name: p for p in cfg.pools}
        self.latency = latency if latency is not None else LatencyTracker()

    def by_tier(self, tier: str) -> list[PoolConfig]:
        return [p for p in self.cfg.pools if p.tier == tier]

    def estimate_prompt_tokens(self, req: Request) -> int:
        return max(1, int(len(req.text) / CHARS_PER_TOKEN))

    def estimate(self, req: Request, pool: str, strategy: str, samples: int, thinking_budget: int) -> Candidate:
        """Expected compute units, pessimistic: every sample uses its whole token allowance;
        expected latency from the pool's speed now (``latency.expected_latency_ms``)."""
        p = self.pools[pool]
        max_tokens = req.sampling.max_tokens or p.max_tokens_default
        prompt = self.estimate_prompt_tokens(req)
        per_sample_prompt = prompt
        if thinking_budget:
            # The answer phase re-reads prompt and thoughts.
            per_sample_prompt = 2 * prompt + thinking_budget
        cu = samples * p.cost.units(per_sample_prompt, max_tokens + thinking_budget)
        ms = expected_latency_ms(self.latency.speed(p), prompt, max_tokens, samples, thinking_budget)
        return Candidate(
            pool=pool,
            strategy=strategy,
            samples=samples,
            thinking_budget=thinking_budget,
            expected_compute_units=round(cu, 3),
            expected_latency_ms=round(ms, 3),
        )

    def observe(self, req: Request, plan: Plan, samples: Sequence[SampleResult]) -> None:
        """Feed the samples that answered ``req`` on ``plan.pool`` to the latency tracker."""
        p = self.pools[plan.pool]
        max_tokens = req.sampling.max_tokens or p.max_tokens_default
        self.latency.observe(p, self.estimate_prompt_tokens(req), max_tokens, samples)


def over_caps(c: Candidate, max_compute_units: float | None, max_latency_ms: float | None) -> str:
    """Why ``c`` breaks the caps, one clause per cap (unset: none); "" when it fits both."""
    why = []
    if max_compute_units is not None and c.expected_compute_units > max_compute_units:
        why.append(f"costs {c.expected_compute_units} CU > cap {max_compute_units}")
    if max_latency_ms is not None and c.expected_latency_ms > max_latency_ms:
        why.append(f"takes ~{c.expected_latency_ms:.0f} ms > cap {max_latency_ms:g} ms")
    return "; ".join(why)


def infeasible(
    tried: Sequence[Candidate], max_compute_units: float | None, max_latency_ms: float | None,
    cu_field: str = "budget.max_compute_units",
) -> BudgetInfeasible:
    """The error when none of ``tried`` (non-empty) fits the caps.

    It names the compute cap (``cu_field``) with the cheapest plan when no plan
    is cheap enough, else ``budget.max_latency_ms`` with the fastest plan within
    the compute cap (and says so when a faster one costs too much).
    """
    affordable = [c for c in tried if max_compute_units is None or c.expected_compute_units <= max_compute_units]
    if not affordable:
        cheapest = min(tried, key=lambda c: c.expected_compute_units)
        return BudgetInfeasible(
            cu_field,
            f"{max_compute_units} is below the cheapest plan ({cheapest.expected_compute_units} CU for pool "
            f"{cheapest.pool!r}, {cheapest.strategy}); raise the budget or lower sampling.max_tokens",
        )
    fastest = min(affordable, key=lambda c: c.expected_latency_ms)
    faster_too_costly = min(c.expected_latency_ms for c in tried) < fastest.expected_latency_ms
    within = f" within {cu_field}" if faster_too_costly else ""
    return BudgetInfeasible(
        "budget.max_latency_ms",
        f"{max_latency_ms:g} ms is below the fastest plan{within} (~{fastest.expected_latency_ms:.0f} ms for pool "
        f"{fastest.pool!r}, {fastest.strategy} n={fastest.samples}); raise the cap or lower sampling.max_tokens",
    )


class Policy(abc.ABC):
    """Chooses a plan for one request."""

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]]

    def __init__(self, params: BaseModel, catalog: PoolCatalog):
        self.params = params
        self.catalog = catalog

    @abc.abstractmethod
    async def plan(self, req: Request) -> Plan:
        """Return the plan; raise InvalidArgument/BudgetInfeasible for impossible requests."""


def task_plan(catalog: PoolCatalog, req: Request, policy: str) -> Plan:
    """The plan for a decomposed task: the voting workers, sampling the hinted or small pool.

    The same for every policy: the task's own step count and k, chosen by the
    voting service from the target success, decide its cost, not the prompt.
    """
    routing = catalog.cfg.routing
    if "vote" not in routing.strategies:
        raise InvalidArgument("task", f"strategy 'vote' is not allowed by routing.strategies {routing.strategies}")
    if req.hint_strategy and req.hint_strategy != "vote":
        raise InvalidArgument("hints.strategy", f"a task runs with strategy 'vote', not {req.hint_strategy!r}")
    if req.hint_pool:
        pool = req.hint_pool
    else:
        small = routing.tiers.small or [p.name for p in catalog.by_tier("small")]
        pool = small[0] if small else catalog.cfg.pools[0].name
    name = getattr(req.task, "task", "?")
    return Plan(
        pool=pool, strategy="vote", samples=0, policy=policy,
        reason=f"decomposed task {name!r}: first-to-ahead-by-k voting on pool {pool!r}",
        context_id=req.context_id,
    )


_REGISTRY: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    if cls.name in _REGISTRY:
        raise ValueError(f"policy {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    from ponder.router.policies import difficulty, threshold  # noqa: F401  (register themselves)


def build_policy(cfg: PonderConfig) -> Policy:
    """Build the configured policy; bad names or params -> ConfigError with the field path."""
    _load_builtins()
    pc = cfg.routing.policy
    cls = _REGISTRY.get(pc.name)
    if cls is None:
        raise ConfigError("routing", [("routing.policy.name", f"unknown policy {pc.name!r}; known: {sorted(_REGISTRY)}")])
    try:
        params = cls.Params.model_validate(pc.params)
    except ValidationError as e:
        problems = [
            ("routing.policy.params." + ".".join(str(x) for x in err["loc"]), err["msg"]) for err in e.errors()
        ]
        raise ConfigError("routing", problems) from None
    return cls(params, PoolCatalog(cfg))
