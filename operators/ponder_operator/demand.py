"""Difficulty-aware scaling (pure): raise a pool's replica floor ahead of demand.

The router exports, per pool, the compute units per second its plans send there
(gauge ``ponder_router_planned_compute_units_per_second{pool,tier}``, see
docs/kubernetes.md). A plan exists before the pool sees its load, and a shift in
the difficulty mix moves reasoning-tier demand first, so the floor can rise
before Serve's ongoing-request autoscaler reacts.

Rule, per pool with ``autoscaling.demand.enabled``:
  demand    = sum of the gauge over router replicas
  slope     = (demand - previous demand) / elapsed, if positive, else 0
  projected = demand + slope * lookahead_s
  wanted    = ceil(projected * headroom / replica_capacity_cu_per_s),
              clamped to [replicas.min, replicas.max]
The floor rises to ``wanted`` at once and falls to it only after it has held
for ``autoscaling.downscale_delay_s`` since the last rise. Serve's autoscaler
still adds replicas above the floor.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ponder.common.crd_models import ModelPoolSpec

METRIC = "ponder_router_planned_compute_units_per_second"
_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(?P<k>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<v>(?:[^"\\]|\\.)*)"')


def parse_demand(texts: list[str], metric: str = METRIC) -> dict[str, float]:
    """Sum the gauge per ``pool`` label over Prometheus text expositions (one per router pod).

    Lines that do not parse, NaN and negative values are skipped.
    """
    out: dict[str, float] = {}
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
            out[labels["pool"]] = out.get(labels["pool"], 0.0) + value
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
    wanted = 0 if projected <= 0 else math.ceil(projected * d.headroom / d.replica_capacity_cu_per_s)
    wanted = min(max(wanted, r.min), r.max)
    current = r.min if prev is None else min(max(prev.floor, r.min), r.max)
    raised_at = None if prev is None else prev.raised_at
    if wanted > current:
        return Floor(wanted, demand, now, now)
    if wanted < current and (raised_at is None or now - raised_at >= spec.autoscaling.downscale_delay_s):
        return Floor(wanted, demand, now, raised_at)
    return Floor(current, demand, now, raised_at)
