"""Difficulty-aware scaling (pure): raise a pool's replica floor ahead of demand.

The router exports, per pool, the compute units per second its plans send there
(gauge ``ponder_router_planned_compute_units_per_second{pool,tier}``, see
docs/kubernetes.md). A plan exists before the pool sees its load, and a shift in
the difficulty mix moves reasoning-tier demand first, so the floor can rise
before Serve's ongoing-request autoscaler reacts.

Rule, per pool with ``autoscaling.demand.enabled``:
  demand    = sum of the gauge over router replicas, for this pool's namespace
  slope     = (demand - previous demand) / elapsed, if positive, else 0
  projected = demand + slope * lookahead_s; 0 when under dead_band * capacity
  wanted    = ceil(projected * headroom / replica_capacity_cu_per_s),
              clamped to [replicas.min, replicas.max]
The floor rises to ``wanted`` at once and falls to it only after it has held
for ``autoscaling.downscale_delay_s`` since the last rise. Serve's autoscaler
still adds replicas above the floor. The router's rate decays exponentially and
never reaches 0 on its own; the dead-band is what lets an idle scale-to-zero
pool drop its floor to 0.

Pools are keyed by (namespace, pool): a sample's ``namespace`` label when it has
one, else the namespace of the router that exported it, so same-named pools in
two namespaces never share demand. The floor exists only while demand scaling
is on: ``step`` clears a stored floor as soon as it is turned off.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ponder.common.crd_models import ModelPoolSpec

METRIC = "ponder_router_planned_compute_units_per_second"
_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(?P<k>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<v>(?:[^"\\]|\\.)*)"')


def parse_demand(texts: list[str], metric: str = METRIC, namespace: str = "") -> dict[tuple[str, str], float]:
    """Sum the gauge per (namespace, pool) over Prometheus text expositions (one per
    router pod); ``namespace`` is the default for samples without that label.

    Lines that do not parse, NaN and negative values are skipped.
    """
    out: dict[tuple[str, str], float] = {}
    for text in texts:
        for line in text.splitlines():
            m = _LINE.match(line.strip())
            if not m or m.group("name") != metric:
                continue
            labels = {x.group("k"): x.group("v") for x in _LABEL.finditer(m.group("labels") or "")}
            try:
                value = float(m.group("value"))
            except ValueError:
                continue
            if "pool" not in labels or math.isnan(value) or value < 0:
                continue
            key = (labels.get("namespace") or namespace, labels["pool"])
            out[key] = out.get(key, 0.0) + value
    return out


@dataclass(frozen=True)
class Floor:
    floor: int
    demand: float
    at: float
    raised_at: float | None


def next_floor(spec: ModelPoolSpec, demand: float, now: float, prev: Floor | None) -> Floor:
    """Apply the rule above; returns a floor in [replicas.min, replicas.max]."""
    d = spec.autoscaling.demand
    r = spec.replicas
    slope = 0.0
    if prev is not None and now > prev.at:
        slope = max(0.0, (demand - prev.demand) / (now - prev.at))
    projected = demand + slope * d.lookahead_s
    if projected < d.dead_band * d.replica_capacity_cu_per_s:
        projected = 0.0
    wanted = 0 if projected <= 0 else math.ceil(projected * d.headroom / d.replica_capacity_cu_per_s)
    wanted = min(max(wanted, r.min), r.max)
    current = r.min if prev is None else min(max(prev.floor, r.min), r.max)
    raised_at = None if prev is None else prev.raised_at
    if wanted > current:
        return Floor(wanted, demand, now, now)
    if wanted < current and (raised_at is None or now - raised_at >= spec.autoscaling.downscale_delay_s):
        return Floor(wanted, demand, now, raised_at)
    return Floor(current, demand, now, raised_at)


def stored(status: dict | None) -> Floor | None:
    """The floor kept in a ModelPool's status (None: none)."""
    st = status or {}
    if st.get("replicasFloor") is None or st.get("plannedDemandAt") is None:
        return None
    return Floor(int(st["replicasFloor"]), float(st.get("plannedDemandCuPerS") or 0.0),
                 float(st["plannedDemandAt"]), st.get("floorRaisedAt"))


CLEARED = {"replicasFloor": None, "plannedDemandCuPerS": None, "plannedDemandAt": None, "floorRaisedAt": None}


def step(spec: ModelPoolSpec, status: dict | None, demand: float | None, now: float) -> tuple[bool, int | None, dict]:
    """One pass of the demand loop for one pool: (re-render the RayService?, floor to
    render with, status patch).

    Demand scaling off: a stored floor is cleared (re-render without it), else
    nothing. On, with no reading (router unreachable): keep the stored floor. On,
    with a reading: ``next_floor``; re-render when the floor changed or none was
    stored.
    """
    if not spec.autoscaling.demand.enabled:
        if (status or {}).get("replicasFloor") is None:
            return False, None, {}
        return True, None, dict(CLEARED)
    prev = stored(status)
    if demand is None:
        return False, None if prev is None else prev.floor, {}
    f = next_floor(spec, demand, now, prev)
    patch = {"replicasFloor": f.floor, "plannedDemandCuPerS": f.demand, "plannedDemandAt": f.at,
             "floorRaisedAt": f.raised_at}
    return (prev is None or f.floor != prev.floor), f.floor, patch


def floor_for(spec: ModelPoolSpec, status: dict | None) -> int | None:
    """The floor a reconcile renders with: the stored one while demand scaling is on, else none."""
    if not spec.autoscaling.demand.enabled:
        return None
    prev = stored(status)
    return None if prev is None else prev.floor
