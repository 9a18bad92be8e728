"""Router metrics: the decaying planned-demand rate and the Prometheus exposition."""
from __future__ import annotations

import math

import pytest
from prometheus_client import generate_latest

from ponder.common.config import PoolConfig
from ponder.router.metrics import DecayingRate, RouterMetrics


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_decaying_rate_matches_its_definition():
    clock = Clock()
    r = DecayingRate(60.0, clock)
    r.add(600.0)
    assert r.read() == pytest.approx(10.0)
    clock.t += 60
    assert r.read() == pytest.approx(10.0 / math.e)
    r.add(120.0)
    assert r.read() == pytest.approx(10.0 / math.e + 2.0)


def test_steady_stream_converges_to_its_rate():
    clock = Clock()
    r = DecayingRate(60.0, clock)
    for _ in range(3000):  # 50 CU every 0.5 s = 100 CU/s for 25 minutes
        clock.t += 0.5
        r.add(50.0)
    assert r.read() == pytest.approx(100.0, rel=0.01)


def test_exposition_has_one_series_per_pool_and_follows_reload():
    clock = Clock()
    pools = [PoolConfig(name="small"), PoolConfig(name="reasoning", tier="reasoning")]
    m = RouterMetrics(pools, clock=clock)
    m.planned("reasoning", 300.0)
    m.planned("unknown", 5.0)  # a pool removed by a reload: ignored
    m.answered("reasoning", "think", "OK", 280.0, 1.5)
    text = generate_latest(m.registry).decode()
    assert 'ponder_router_planned_compute_units_per_second{pool="reasoning",tier="reasoning"} 5.0' in text
    assert 'ponder_router_planned_compute_units_per_second{pool="small",tier="small"} 0.0' in text
    assert 'ponder_router_compute_units_total{pool="reasoning"} 280.0' in text
    assert 'ponder_router_requests_total{code="OK",pool="reasoning",strategy="think"} 1.0' in text
    m.set_pools([PoolConfig(name="reasoning", tier="reasoning"), PoolConfig(name="big", tier="reasoning")])
    assert m.planned_rate("reasoning") == pytest.approx(5.0)
    text = generate_latest(m.registry).decode()
    assert 'pool="small"' not in text.split("ponder_router_planned_compute_units_per_second")[-1]
    assert 'ponder_router_planned_compute_units_per_second{pool="big",tier="reasoning"} 0.0' in text
