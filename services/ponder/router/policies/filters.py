"""Filters every policy shares: they narrow the candidates the strategies offered.

Each filter sees the request and the candidates still in play and returns the
ones it keeps. A filter that can leave nothing raises the error naming the
request field (or config field) that made it so; that is the only place a
request is refused for its shape against the configuration. Order matters
and is fixed by ``FILTERS``:

1. ``hints``: ``hints.pool`` and ``hints.strategy`` are strict.
2. ``allowed``: only strategies listed in ``routing.strategies``.
3. ``task``: a task request runs only ``vote``; a prompt never does.
4. ``limits``: ``hints.samples`` <= ``routing.max_samples``, ``hints.thinking_budget`` <=
   ``routing.max_thinking_tokens``, ``sampling.max_tokens`` <= the pool's ``max_tokens_limit``.
5. ``context_window``: prompt (context included) + thinking + output fit the pool's window.
6. ``circuit``: pools whose circuit breaker is open are not offered (``resilience``);
   when every remaining candidate is on one, ``CircuitOpen`` (UNAVAILABLE with retry pushback).
7. ``quota``: candidates costing more than the tenant's compute quota leaves (``req.quota``)
   are marked infeasible; when none fits, ``QuotaExceeded`` (RESOURCE_EXHAUSTED with retry pushback).
8. ``caps``: expected compute units <= the lower of ``budget.max_compute_units`` and
   ``routing.budget.max_cu_per_request``; expected latency <= ``budget.max_latency_ms``.
   Over-cap candidates stay in the plan's list marked infeasible, with why.
9. ``exact_hints``: a candidate matching ``hints.samples`` / ``hints.thinking_budget``
   exactly wins over its clamped variants; the variants remain only when no exact one fits.
"""
from __future__ import annotations

from typing import Callable, Sequence

from ponder.common.errors import BudgetInfeasible, InvalidArgument, UnknownPool
from ponder.router.catalog import PoolCatalog
from ponder.router.resilience import CircuitOpen
from ponder.router.types import Candidate, Request

Filter = Callable[[Request, list[Candidate], PoolCatalog], list[Candidate]]


def hints(req: Request, cands: list[Candidate], cat: PoolCatalog) -> list[Candidate]:
    if req.hint_pool:
        if req.hint_pool not in cat.pools:
            raise UnknownPool("hints.pool", req.hint_pool, list(cat.pools))
        cands = [c for c in cands if c.pool == req.hint_pool]
    if req.hint_strategy:
        known = cat.strategy_names
        if req.hint_strategy not in known:
            raise InvalidArgument("hints.strategy", f"unknown strategy {req.hint_strategy!r}; known: {', '.join(known)}")
        kept = [c for c in cands if c.strategy == req.hint_strategy]
        if not kept and req.task is None:
            where = f"pool {req.hint_pool!r}" if req.hint_pool else "any pool"
            extra = " (it has no thinking config)" if req.hint_strategy == "think" else ""
            raise InvalidArgument("hints.strategy", f"strategy {req.hint_strategy!r} is not offered on {where}{extra}")
        cands = kept
    return cands


def allowed(req: Request, cands: list[Candidate], cat: PoolCatalog) -> list[Candidate]:
    ok = cat.routing.strategies
    if req.hint_strategy and req.hint_strategy not in ok:
        raise InvalidArgument("hints.strategy", f"strategy {req.hint_strategy!r} is not allowed by routing.strategies {ok}")
    return [c for c in cands if c.strategy in ok]


def task(req: Request, cands: list[Candidate], cat: PoolCatalog) -> list[Candidate]:
    if req.task is None:
        return [c for c in cands if c.strategy != "vote"]
    if "vote" not in cat.routing.strategies:
        raise InvalidArgument("task", f"strategy 'vote' is not allowed by routing.strategies {cat.routing.strategies}")
    if req.hint_strategy and req.hint_strategy != "vote":
        raise InvalidArgument("hints.strategy", f"a task runs with strategy 'vote', not {req.hint_strategy!r}")
    return [c for c in cands if c.strategy == "vote"]


def limits(req: Request, cands: list[Candidate], cat: PoolCatalog) -> list[Candidate]:
    r = cat.routing
    if req.hint_samples is not None and req.hint_samples > r.max_samples:
        raise InvalidArgument("hints.samples", f"must be in 1..{r.max_samples} (routing.max_samples), got {req.hint_samples}")
    if req.hint_thinking_budget is not None and req.hint_thinking_budget > r.max_thinking_tokens:
        raise InvalidArgument(
            "hints.thinking_budget",
            f"must be <= {r.max_thinking_tokens} (routing.max_thinking_tokens), got {req.hint_thinking_budget}",
        )
    mt = req.sampling.max_tokens
    if mt is None or req.task is not None:
        return cands
    kept = [c for c in cands if mt <= cat.pools[c.pool].max_tokens_limit]
    if not kept and cands:
        limits_ = sorted({f"{c.pool} {cat.pools[c.pool].max_tokens_limit}" for c in cands})
        raise InvalidArgument("sampling.max_tokens", f"{mt} exceeds the limit of every eligible pool ({', '.join(limits_)})")
    return kept


def context_window(req: Request, cands: list[Candidate], cat: PoolCatalog) -> list[Candidate]:
    if req.task is not None:
        return cands
    prompt = cat.prompt_tokens(req)
    kept, over = [], []
    for c in cands:
        pool = cat.pools[c.pool]
        window = cat.context_window(pool)
        need = prompt + c.thinking_budget * 2 + cat.max_tokens(req, pool) if c.thinking_budget else prompt + cat.max_tokens(req, pool)
        (over if window is not None and need > window else kept).append(c)
    if not kept and over:
        field = "messages" if req.messages else "prompt"
        windows = sorted({f"{c.pool} {cat.context_window(cat.pools[c.pool])}" for c in over})
        ctx = " with the stored context" if req.context is not None else ""
        raise InvalidArgument(field, f"~{prompt} tokens{ctx} plus the output do not fit any eligible pool's "
                                     f"context window ({', '.join(windows)} tokens)")
    return kept


def circuit(req: Request, cands: list[Candidate], cat: PoolCatalog) -> list[Candidate]:
    breakers = cat.failover.breakers
    kept = [c for c in cands if breakers[c.pool].available()]
    if not kept and cands:
        pools = sorted({c.pool for c in cands})
        raise CircuitOpen(pools, min(breakers[p].retry_after_s() for p in pools))
    return kept


def quota(req: Request, cands: list[Candidate], cat: PoolCatalog) -> list[Candidate]:
    left = req.quota
    if left is None or left.cu_left == float("inf"):
        return cands
    for c in cands:
        if c.expected_compute_units > left.cu_left:
            c.feasible = False
            why = f"costs {c.expected_compute_units} CU > {left.cu_left:g} left in tenant quota {left.field}"
            c.note = f"{c.note}; {why}" if c.note else why
    if cands and not any(c.feasible for c in cands):
        from ponder.router.quotas import QuotaExceeded

        cheapest = min(c.expected_compute_units for c in cands)
        raise QuotaExceeded(left.tenant, f"{left.field} compute units ({left.cu_left:g} left, cheapest plan {cheapest:g})",
                            left.retry_after_s)
    return cands


def over_caps(c: Candidate, max_cu: float | None, max_latency_ms: float | None) -> str:
    """Why ``c`` breaks the caps, one clause per cap (unset: none); "" when it fits both."""
    why = []
    if max_cu is not None and c.expected_compute_units > max_cu:
        why.append(f"costs {c.expected_compute_units} CU > cap {max_cu:g}")
    if max_latency_ms is not None and c.expected_latency_ms > max_latency_ms:
        why.append(f"takes ~{c.expected_latency_ms:.0f} ms > cap {max_latency_ms:g} ms")
    return "; ".join(why)


def compute_cap(req: Request, cat: PoolCatalog) -> tuple[float, str]:
    """The binding compute cap and its field: the lower of the request's and the config's."""
    cap, field = cat.routing.budget.max_cu_per_request, "routing.budget.max_cu_per_request"
    if req.max_compute_units is not None and req.max_compute_units <= cap:
        cap, field = req.max_compute_units, "budget.max_compute_units"
    return cap, field


def broken_caps(c: Candidate, req: Request, cat: PoolCatalog) -> list[str]:
    """The caps ``c`` breaks, as "field=value" ("budget.max_latency_ms=3000"); [] when none."""
    cap, field = compute_cap(req, cat)
    out = [f"{field}={cap:g}"] if c.expected_compute_units > cap else []
    if req.max_latency_ms is not None and c.expected_latency_ms > req.max_latency_ms:
        out.append(f"budget.max_latency_ms={req.max_latency_ms:g}")
    return out


def caps(req: Request, cands: list[Candidate], cat: PoolCatalog) -> list[Candidate]:
    cap, field = compute_cap(req, cat)
    for c in cands:
        why = over_caps(c, cap, req.max_latency_ms)
        if why:
            c.feasible = False
            c.note = f"{c.note}; {why}" if c.note else why
    if cands and not any(c.feasible for c in cands):
        raise infeasible(cands, cap, req.max_latency_ms, field)
    return cands


def exact_hints(req: Request, cands: list[Candidate], cat: PoolCatalog) -> list[Candidate]:
    if req.hint_samples is None and req.hint_thinking_budget is None:
        return cands
    if any(c.feasible and not c.clamped for c in cands):
        for c in cands:
            if c.clamped and c.feasible:
                c.feasible = False
                c.note = f"{c.note}; an exact match of the hints fits" if c.note else "an exact match of the hints fits"
    return cands


def infeasible(tried: Sequence[Candidate], max_cu: float | None, max_latency_ms: float | None,
               cu_field: str = "budget.max_compute_units") -> BudgetInfeasible:
    """The error when none of ``tried`` (non-empty) fits the caps.

    It names the compute cap (``cu_field``) with the cheapest plan when no plan
    is cheap enough, else ``budget.max_latency_ms`` with the fastest plan within
    the compute cap (and says so when a faster one costs too much).
    """
    affordable = [c for c in tried if max_cu is None or c.expected_compute_units <= max_cu]
    if not affordable:
        cheapest = min(tried, key=lambda c: c.expected_compute_units)
        return BudgetInfeasible(
            cu_field,
            f"{max_cu:g} is below the cheapest plan ({cheapest.expected_compute_units} CU for pool "
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


FILTERS: tuple[tuple[str, Filter], ...] = (
    ("hints", hints),
    ("allowed", allowed),
    ("task", task),
    ("limits", limits),
    ("context_window", context_window),
    ("circuit", circuit),
    ("quota", quota),
    ("caps", caps),
    ("exact_hints", exact_hints),
)
