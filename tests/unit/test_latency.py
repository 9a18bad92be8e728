"""The latency model and tracker: estimates by hand, declared then observed speed, and guards."""
from __future__ import annotations

import dataclasses
import math

import pytest

from ponder.common.config import PoolConfig, Speed, parse_config
from ponder.router.latency import LatencyTracker, SpeedEstimate, expected_latency_ms
from ponder.router.catalog import PoolCatalog
from ponder.router.types import Plan, Request, SampleResult, Sampling

# 100 ms to the first token, 5 ms per prompt token, 20 ms per output token, 2 samples at once.
SPEED = Speed(ttft_ms=100, prefill_tokens_per_s=200, decode_tokens_per_s=50, concurrent_samples=2)
POOL = PoolConfig(name="small", speed=SPEED)
PROMPT = "x" * 160  # 40 tokens by the router's estimate


def sample(ttft_ms: float, duration_ms: float, output_tokens: int, thinking_tokens: int = 0) -> SampleResult:
    return SampleResult(
        text="a", thinking="", finish_reason="stop", prompt_tokens=40, output_tokens=output_tokens,
        thinking_tokens=thinking_tokens, ttft_ms=ttft_ms, model="m", simulated=False, duration_ms=duration_ms,
    )


# 40 prompt tokens (200 ms), TTFT 250 ms: 50 ms of the TTFT is not prefill;
# 32 answer tokens of 64 allowed, 10 ms each after the first token.
OBSERVED = sample(ttft_ms=250, duration_ms=250 + 32 * 10, output_tokens=32)


def test_expected_latency_by_hand():
    s = SpeedEstimate.declared(SPEED)
    assert s.output_share == 1.0
    # 100 ms + 40 / 200 s + 64 / 50 s
    assert expected_latency_ms(s, 40, 64, 1, 0) == pytest.approx(100 + 200 + 1280)
    # Two samples run at once, a third waits for a slot.
    assert expected_latency_ms(s, 40, 64, 2, 0) == pytest.approx(1580)
    assert expected_latency_ms(s, 40, 64, 3, 0) == pytest.approx(2 * 1580)
    # Thinking 100 tokens: reads 40 + (40 + 100) tokens, writes 100 + 64.
    assert expected_latency_ms(s, 40, 64, 1, 100) == pytest.approx(100 + 180 * 5 + 164 * 20)
    # Half of max_tokens expected.
    assert expected_latency_ms(dataclasses.replace(s, output_share=0.5), 40, 64, 1, 0) == pytest.approx(100 + 200 + 640)


def test_catalog_estimate_uses_the_pools_declared_speed():
    cfg = parse_config({"pools": [
        {"name": "small", "speed": SPEED.model_dump()},
        {"name": "reasoning", "tier": "reasoning", "thinking": {"budget_tokens": 100}, "max_tokens_default": 32,
         "speed": {**SPEED.model_dump(), "concurrent_samples": 1}},
    ]})
    cat = PoolCatalog(cfg)
    req = Request(request_id="r", prompt=PROMPT)
    assert cat.estimate(req, "small", "single", 1, 0).expected_latency_ms == pytest.approx(1580)
    assert cat.estimate(req, "small", "best_of_n", 3, 0).expected_latency_ms == pytest.approx(3160)
    assert cat.estimate(req, "reasoning", "best_of_n", 3, 0).expected_latency_ms == pytest.approx(3 * (100 + 200 + 640))
    think = cat.estimate(req, "reasoning", "think", 1, 100)
    assert think.expected_latency_ms == pytest.approx(100 + 180 * 5 + 132 * 20)
    short = Request(request_id="r", prompt=PROMPT, sampling=Sampling(max_tokens=10))
    assert cat.estimate(short, "small", "single", 1, 0).expected_latency_ms == pytest.approx(100 + 200 + 200)


def test_declared_speed_until_enough_observations_then_the_observed_means():
    tracker = LatencyTracker(min_observations=3)
    declared = tracker.speed(POOL)
    assert declared == SpeedEstimate(100, 200, 50, 2, 1.0)
    for _ in range(2):
        tracker.observe(POOL, 40, 64, [OBSERVED])
        assert tracker.speed(POOL) == declared
    tracker.observe(POOL, 40, 64, [OBSERVED])
    observed = tracker.speed(POOL)
    assert observed.ttft_ms == pytest.approx(50)
    assert observed.decode_tokens_per_s == pytest.approx(100)
    assert observed.output_share == pytest.approx(0.5)
    assert (observed.prefill_tokens_per_s, observed.concurrent_samples) == (200, 2)  # declared only
    # The model reproduces what it observed.
    assert expected_latency_ms(observed, 40, 64, 1, 0) == pytest.approx(OBSERVED.duration_ms)
    assert tracker.speed(PoolConfig(name="other", speed=SPEED)) == declared


def test_means_weight_the_newest_by_alpha_and_average_time_per_token():
    tracker = LatencyTracker(alpha=0.5, min_observations=1)
    tracker.observe(POOL, 40, 64, [sample(ttft_ms=250, duration_ms=250 + 10 * 10, output_tokens=10)])
    tracker.observe(POOL, 40, 64, [sample(ttft_ms=350, duration_ms=350 + 10 * 30, output_tokens=10)])
    s = tracker.speed(POOL)
    assert s.ttft_ms == pytest.approx((50 + 150) / 2)
    assert s.decode_tokens_per_s == pytest.approx(1000 / 20)  # mean of 10 and 30 ms per token
    assert s.output_share == pytest.approx(10 / 64)


def test_only_the_first_sample_to_start_gives_the_ttft():
    tracker = LatencyTracker(min_observations=1)
    queued = sample(ttft_ms=250 + 570, duration_ms=250 + 570 + 32 * 10, output_tokens=32)
    tracker.observe(POOL, 40, 64, [queued, OBSERVED])
    s = tracker.speed(POOL)
    assert s.ttft_ms == pytest.approx(50)
    assert s.decode_tokens_per_s == pytest.approx(100)  # both samples decode at 10 ms per token


def test_thinking_samples_discount_the_answer_phase_reread():
    tracker = LatencyTracker(min_observations=1)
    # 20 thinking + 32 answer tokens; the answer phase re-reads 40 + 20 tokens (300 ms).
    thought = sample(ttft_ms=250, duration_ms=250 + 300 + 52 * 10, output_tokens=52, thinking_tokens=20)
    tracker.observe(POOL, 40, 64, [thought])
    s = tracker.speed(POOL)
    assert s.decode_tokens_per_s == pytest.approx(100)
    assert s.output_share == pytest.approx(0.5)


@pytest.mark.parametrize(
    "bad",
    [
        sample(ttft_ms=0, duration_ms=0, output_tokens=4),
        sample(ttft_ms=10, duration_ms=-5, output_tokens=4),
        sample(ttft_ms=10, duration_ms=math.nan, output_tokens=4),
        sample(ttft_ms=10, duration_ms=math.inf, output_tokens=4),
        sample(ttft_ms=50, duration_ms=20, output_tokens=4),
        sample(ttft_ms=-1, duration_ms=20, output_tokens=4),
        sample(ttft_ms=math.nan, duration_ms=20, output_tokens=4),
    ],
)
def test_nonsense_samples_are_skipped(bad):
    tracker = LatencyTracker(min_observations=1)
    tracker.observe(POOL, 40, 64, [bad])
    tracker.observe(POOL, 40, 64, [])
    assert tracker.speed(POOL) == SpeedEstimate.declared(SPEED)


def test_a_sample_without_tokens_adds_no_decode_time():
    tracker = LatencyTracker(min_observations=1)
    tracker.observe(POOL, 40, 64, [sample(ttft_ms=150, duration_ms=300, output_tokens=0)])
    tracker.observe(POOL, 40, 64, [sample(ttft_ms=150, duration_ms=150, output_tokens=5)])  # no time after the first
    s = tracker.speed(POOL)
    assert s.decode_tokens_per_s == SPEED.decode_tokens_per_s
    assert s.ttft_ms == pytest.approx(0.0)  # 150 ms TTFT is faster than the declared prefill: no negative time
    assert 0.0 < s.output_share < 1.0


def test_catalog_observe_uses_the_requests_allowance_and_prompt_estimate():
    cat = PoolCatalog(parse_config({"pools": [{"name": "small", "speed": SPEED.model_dump()}]}),
                      LatencyTracker(min_observations=1))
    req = Request(request_id="r", prompt=PROMPT, sampling=Sampling(max_tokens=32))
    cat.observe(req, Plan(pool="small", strategy="single"), [OBSERVED])
    s = cat.latency.speed(cat.pools["small"])
    assert (s.ttft_ms, s.output_share) == (pytest.approx(50), pytest.approx(1.0))
    assert cat.estimate(req, "small", "single", 1, 0).expected_latency_ms == pytest.approx(OBSERVED.duration_ms)


@pytest.mark.parametrize("kwargs", [{"alpha": 0}, {"alpha": 1.5}, {"min_observations": 0}])
def test_tracker_parameters_are_checked(kwargs):
    with pytest.raises(ValueError):
        LatencyTracker(**kwargs)
