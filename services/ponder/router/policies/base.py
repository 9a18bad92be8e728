"""The allocation-policy plug-in kind: a scorer over the candidates every policy shares.

Planning is filter -> score -> pick, in one pass over the whole request
(context included):

1. candidates: every strategy offers its plans on every pool
   (``PoolCatalog.candidates``), each priced by the shared cost and latency model;
2. filters: the shared ``filters.FILTERS`` (hints, allowed strategies, tasks,
   limits, context window, caps), the only place a plan is refused or clamped;
3. score: the policy's one method, ``score``, sets each remaining candidate's
   ``score`` (higher is better) and may set its ``expected_accuracy``;
   infeasible ones are scored too, so a plan shows what the caps cost;
4. pick: the feasible candidate with the highest score, ties to the cheaper
   plan. When a better-scored candidate broke a cap, the reason says which
   ("cut to fit budget.max_latency_ms=3000").

Policies register by name; ``build_policy`` builds the configured one and
checks its typed params, failing with the config field path.
"""
from __future__ import annotations

import abc
from typing import ClassVar, Mapping, Protocol

from pydantic import BaseModel, ValidationError

from ponder.common.config import PonderConfig
from ponder.common.errors import ConfigError, InvalidArgument
from ponder.router.catalog import PoolCatalog
from ponder.router.policies.filters import FILTERS, broken_caps
from ponder.router.types import Candidate, Plan, Request


class LambdaSource(Protocol):
    """A budget controller: the price of one compute unit in accuracy, and the realised costs it learns from."""

    def lambda_per_cu(self) -> float: ...

    async def observe(self, compute_units: float) -> object: ...


class Policy(abc.ABC):
    """Scores candidate plans for one request."""

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    # Whether ``score`` prices compute with a budget controller's λ (the router then attaches one).
    uses_budget: ClassVar[bool] = False

    def __init__(self, params: BaseModel, catalog: PoolCatalog):
        self.params = params
        self.catalog = catalog
        self.budget: LambdaSource | None = None

    def set_budget(self, source: LambdaSource | None) -> None:
        """Attach the budget controller that prices compute (policies that ignore cost may ignore it)."""
        self.budget = source

    @abc.abstractmethod
    def score(self, req: Request, cands: list[Candidate]) -> str:
        """Set ``score`` on every candidate of ``cands`` (non-empty); return why the best feasible one wins."""

    async def plan(self, req: Request) -> Plan:
        """Filter -> score -> pick. Raises InvalidArgument / BudgetInfeasible naming the field."""
        cat = self.catalog
        cands = cat.candidates(req)
        for _, f in FILTERS:
            cands = f(req, cands, cat)
        if not any(c.feasible for c in cands):
            raise InvalidArgument(
                "hints", f"no plan matches the hints (pool {req.hint_pool or 'any'}, strategy {req.hint_strategy or 'any'})"
            )
        why = self.score(req, cands)
        top = max(cands, key=lambda c: (c.score, -c.expected_compute_units))
        cands.sort(key=lambda c: (not c.feasible, -c.score, c.expected_compute_units))
        win = cands[0]
        if not top.feasible:
            broken = broken_caps(top, req, cat)
            if broken:
                why += f"; cut to fit {' and '.join(broken)}"
        if win.clamped:
            why += f"; clamped {win.clamped}"
        return Plan(
            pool=win.pool, strategy=win.strategy, samples=win.samples, thinking_budget=win.thinking_budget,
            expected_compute_units=win.expected_compute_units, expected_latency_ms=win.expected_latency_ms,
            expected_accuracy=win.expected_accuracy, policy=self.name, reason=why, candidates=cands,
            context_id=req.context_id, clamped=win.clamped, escalate_below=win.escalate_below,
        )


_REGISTRY: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    if cls.name in _REGISTRY:
        raise ValueError(f"policy {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> list[str]:
    return sorted(_REGISTRY)


def build_policy(cfg: PonderConfig, strategies: Mapping[str, object] | None = None, failover=None) -> Policy:
    """Build the configured policy over ``strategies`` (default: the built-in ones, no voting client);
    ``failover`` (breakers, retry budget) is kept from a previous build on a reload.

    Bad names or params -> ConfigError with the field path.
    """
    import ponder.router.policies  # noqa: F401  (the package registers the built-in policies)

    catalog = PoolCatalog(cfg, strategies=strategies, failover=failover)
    unknown = [s for s in cfg.routing.strategies if s not in catalog.strategies]
    if unknown:
        raise ConfigError("routing", [("routing.strategies", f"unknown strategies {unknown}; known: {catalog.strategy_names}")])
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
    return cls(params, catalog)
