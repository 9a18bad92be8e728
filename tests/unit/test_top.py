"""``ponder top``'s frame: rates from two scrapes of the router's real metrics registry."""
from __future__ import annotations

from prometheus_client import generate_latest

from ponder.client.types import PoolStatus, Status
from ponder.common.config import PoolConfig
from ponder.router.metrics import RouterMetrics
from ponder.top import parse_metrics, render, snapshot

STATUS = Status("0.1.0", "threshold", (PoolStatus("small", "small", "sim", "sim", True, "", 2, 1, 40.0),), "ponder:outcomes",
                "http://127.0.0.1:8080/v1", raw=None)


def test_rates_error_ratio_and_plan_mix_between_two_scrapes():
    m = RouterMetrics([PoolConfig(name="small"), PoolConfig(name="reasoning", tier="reasoning")])
    m.answered("small", "single", "OK", 5.0, 0.1)
    before = parse_metrics(generate_latest(m.registry).decode())
    for _ in range(3):
        m.answered("small", "single", "OK", 5.0, 0.1)
    m.answered("reasoning", "think", "OK", 50.0, 1.0)
    m.answered("", "", "INVALID_ARGUMENT", 0.0, 0.0)
    after = parse_metrics(generate_latest(m.registry).decode())
    snap = snapshot(STATUS, "r:1", after, before, dt_s=2.0, target_cu=20.0)
    assert snap["requests_per_s"] == 2.5 and snap["error_ratio"] == 0.2
    assert snap["cu_per_s"] == 32.5 and snap["cu_per_request"] == 16.25 and snap["target_cu_per_request"] == 20.0
    assert snap["plan_mix"] == {"reasoning/think": 0.2, "small/single": 0.6}
    assert snap["pools"][0]["queue_depth"] == 2 and snap["http"]["url"].endswith("/v1")
    render(snap)  # renders without error


def test_first_frame_has_no_rates():
    snap = snapshot(STATUS, "r:1")
    assert snap["requests_per_s"] is None and snap["plan_mix"] == {} and snap["pools"][0]["name"] == "small"
