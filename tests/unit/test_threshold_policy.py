"""The threshold policy, built from config: routing rule, hints, budget caps and config errors."""
from __future__ import annotations

import pytest

from ponder.common.config import PonderConfig, parse_config
from ponder.common.errors import BudgetInfeasible, ConfigError, InvalidArgument, UnknownPool
from ponder.router.policies.base import build_policy, registered
from ponder.router.types import Request, Sampling

SHORT = "What is the capital of France?"
KEYWORD = "Prove that the square root of two is irrational."


def policy(params: dict | None = None, cfg: PonderConfig | None = None):
    cfg = cfg or parse_config({"routing": {"policy": {"name": "threshold", "params": params or {}}}})
    return build_policy(cfg)


def request(prompt: str = SHORT, **kw) -> Request:
    return Request(request_id="r1", prompt=prompt, **kw)


def test_threshold_is_registered():
    assert "threshold" in registered()


async def test_short_prompt_goes_to_small_single():
    plan = await policy().plan(request())
    assert (plan.pool, plan.strategy, plan.samples, plan.thinking_budget) == ("small", "single", 1, 0)
    assert plan.policy == "threshold"
    assert "no hard keyword" in plan.reason
    # Shared cost model: prompt tokens = len/4, output = the small pool's max_tokens_default (64).
    assert plan.expected_compute_units == pytest.approx(len(SHORT) // 4 * 0.1 + 64 * 1.0)
    assert all(c.feasible for c in plan.candidates)
    assert (plan.candidates[0].pool, plan.candidates[0].strategy, plan.candidates[0].score) == ("small", "single", 1.0)


async def test_long_prompt_goes_to_reasoning_with_default_thinking():
    plan = await policy().plan(request("x" * 400))
    assert (plan.pool, plan.strategy, plan.samples, plan.thinking_budget) == ("reasoning", "think", 1, 256)
    assert "400 chars >= long_prompt_chars 400" in plan.reason


async def test_keyword_goes_to_reasoning_case_insensitively():
    plan = await policy().plan(request("Please SOLVE this: 3x = 9"))
    assert (plan.pool, plan.strategy, plan.thinking_budget) == ("reasoning", "think", 256)
    assert "'solve'" in plan.reason


async def test_params_change_the_rule():
    pol = policy({"long_prompt_chars": 10, "keywords": ["banana"]})
    assert (await pol.plan(request("short"))).pool == "small"
    assert (await pol.plan(request("eleven char"))).pool == "reasoning"
    assert (await pol.plan(request("a banana"))).pool == "reasoning"
    assert (await pol.plan(request("prove it"))).pool == "small"


async def test_thinking_budget_is_capped_by_routing_limit():
    cfg = parse_config({"routing": {"max_thinking_tokens": 100}})
    plan = await build_policy(cfg).plan(request(KEYWORD))
    assert plan.thinking_budget == 100


async def test_hinted_pool_overrides_the_rule():
    plan = await policy().plan(request(KEYWORD, hint_pool="small"))
    assert (plan.pool, plan.strategy, plan.thinking_budget) == ("small", "single", 0)
    assert "hints.pool=small" in plan.reason


async def test_hinted_best_of_n_with_samples():
    plan = await policy().plan(request(hint_strategy="best_of_n", hint_samples=5))
    assert (plan.pool, plan.strategy, plan.samples, plan.thinking_budget) == ("small", "best_of_n", 5, 0)
    assert plan.expected_compute_units == pytest.approx(5 * (len(SHORT) // 4 * 0.1 + 64))


async def test_hinted_best_of_n_without_samples_uses_the_smallest_configured_count():
    cfg = parse_config({"routing": {"policy": {"name": "threshold"}, "best_of_n_samples": [6, 4]}})
    plan = await build_policy(cfg).plan(request(hint_strategy="best_of_n"))
    assert plan.samples == 4


async def test_hinted_single_on_reasoning_pool_skips_thinking():
    plan = await policy().plan(request(KEYWORD, hint_strategy="single"))
    assert (plan.pool, plan.strategy, plan.thinking_budget) == ("reasoning", "single", 0)


async def test_hinted_thinking_budget():
    plan = await policy().plan(request(KEYWORD, hint_thinking_budget=32))
    assert (plan.strategy, plan.thinking_budget) == ("think", 32)


async def test_think_forced_on_a_pool_without_thinking():
    with pytest.raises(InvalidArgument) as ei:
        await policy().plan(request(hint_pool="small", hint_strategy="think"))
    assert ei.value.field == "hints.strategy"
    assert "'small'" in ei.value.problem


async def test_unknown_hinted_strategy_and_pool():
    with pytest.raises(InvalidArgument) as ei:
        await policy().plan(request(hint_strategy="beam"))
    assert ei.value.field == "hints.strategy"
    with pytest.raises(UnknownPool) as ei:
        await policy().plan(request(hint_pool="nope"))
    assert ei.value.field == "hints.pool"


async def test_budget_cap_cuts_the_thinking_budget():
    pol = policy()
    full = await pol.plan(request(KEYWORD))
    cap = full.expected_compute_units * 0.6
    plan = await pol.plan(request(KEYWORD, max_compute_units=cap))
    assert (plan.pool, plan.strategy) == ("reasoning", "think")
    assert 16 <= plan.thinking_budget < full.thinking_budget
    assert plan.expected_compute_units <= cap
    assert "budget.max_compute_units" in plan.reason
    infeasible = [c for c in plan.candidates if not c.feasible]
    assert full.thinking_budget in [c.thinking_budget for c in infeasible if c.strategy == "think"]
    assert all(c.expected_compute_units > cap and "> cap" in c.note for c in infeasible)
    chosen = plan.candidates[0]
    assert chosen.feasible and chosen.thinking_budget == plan.thinking_budget


async def test_budget_cap_cuts_samples():
    pol = policy()
    one = await pol.plan(request(hint_pool="small", hint_strategy="best_of_n", hint_samples=1))
    plan = await pol.plan(request(hint_pool="small", hint_strategy="best_of_n", hint_samples=4,
                                  max_compute_units=one.expected_compute_units * 2.5))
    assert (plan.strategy, plan.samples, plan.clamped) == ("best_of_n", 2, "hints.samples 4 -> 2")
    assert sorted(c.samples for c in plan.candidates) == [1, 2, 3, 4]
    assert {c.samples for c in plan.candidates if c.feasible} == {1, 2}


async def test_cap_that_fits_leaves_the_plan_alone():
    pol = policy()
    full = await pol.plan(request(KEYWORD))
    plan = await pol.plan(request(KEYWORD, max_compute_units=full.expected_compute_units))
    assert plan.thinking_budget == full.thinking_budget
    assert "cut to fit" not in plan.reason and plan.clamped == ""


async def test_cap_below_cheapest_plan_is_infeasible():
    with pytest.raises(BudgetInfeasible) as ei:
        await policy().plan(request(KEYWORD, max_compute_units=1.0))
    assert ei.value.field == "budget.max_compute_units"
    assert "cheapest plan" in str(ei.value)


# Default pools declare 50 ms to the first token, 288 prompt and 43 output tokens per second.
async def test_plan_reports_the_latency_estimate():
    plan = await policy().plan(request())
    # SHORT is 7 prompt tokens; the small pool writes up to 64.
    assert plan.expected_latency_ms == pytest.approx(50 + 1000 * (7 / 288 + 64 / 43), abs=1e-3)
    assert plan.candidates[0].expected_latency_ms == plan.expected_latency_ms


async def test_latency_cap_cuts_the_thinking_budget():
    plan = await policy().plan(request(KEYWORD, max_latency_ms=3000))
    # KEYWORD is 12 prompt tokens; thinking T reads 12 + (12 + T) tokens and writes T + 32.
    assert (plan.pool, plan.strategy, plan.thinking_budget) == ("reasoning", "think", 64)
    assert plan.expected_latency_ms == pytest.approx(50 + 1000 * (88 / 288 + 96 / 43), abs=1e-3)
    assert "cut to fit budget.max_latency_ms=3000" in plan.reason
    think = {c.thinking_budget: c for c in plan.candidates if c.pool == "reasoning" and c.strategy == "think"}
    assert sorted(think) == [16, 32, 64, 128, 256, 512]
    assert think[256].note == f"takes ~{50 + 1000 * (280 / 288 + 288 / 43):.0f} ms > cap 3000 ms"
    assert [think[t].feasible for t in sorted(think)] == [True, True, True, False, False, False]


async def test_latency_cap_below_the_fastest_plan_is_refused():
    with pytest.raises(BudgetInfeasible) as ei:
        await policy().plan(request(KEYWORD, max_latency_ms=100))
    assert ei.value.field == "budget.max_latency_ms"
    fastest = 50 + 1000 * (12 / 288 + 32 / 43)  # one plain sample on the reasoning pool
    assert f"100 ms is below the fastest plan (~{fastest:.0f} ms for pool 'reasoning', single n=1)" in str(ei.value)
    with pytest.raises(BudgetInfeasible) as ei:
        await policy().plan(request(KEYWORD, max_latency_ms=100, max_compute_units=1.0))
    assert ei.value.field == "budget.max_compute_units"


async def test_requested_max_tokens_feeds_the_estimate():
    plan = await policy().plan(request(sampling=Sampling(max_tokens=10)))
    assert plan.expected_compute_units == pytest.approx(len(SHORT) // 4 * 0.1 + 10)


def test_unknown_policy_name():
    cfg = parse_config({"routing": {"policy": {"name": "oracle"}}})
    with pytest.raises(ConfigError) as ei:
        build_policy(cfg)
    ((path, msg),) = ei.value.problems
    assert path == "routing.policy.name"
    assert "'oracle'" in msg and "threshold" in msg


@pytest.mark.parametrize(
    "params,path",
    [
        ({"long_prompt_chars": 0}, "routing.policy.params.long_prompt_chars"),
        ({"keywords": "prove"}, "routing.policy.params.keywords"),
        ({"colour": "red"}, "routing.policy.params.colour"),
        ({"small_pool": "nope"}, "routing.policy.params.small_pool"),
        ({"reasoning_pool": "nope"}, "routing.policy.params.reasoning_pool"),
    ],
)
def test_bad_params_name_the_field(params, path):
    with pytest.raises(ConfigError) as ei:
        policy(params)
    assert [p for p, _ in ei.value.problems] == [path]


async def test_without_a_reasoning_pool_hard_prompts_use_the_small_pool():
    cfg = parse_config({"pools": [{"name": "only"}]})
    plan = await build_policy(cfg).plan(request(KEYWORD))
    assert (plan.pool, plan.strategy) == ("only", "single")


async def test_a_listed_cascade_answers_the_easy_prompts_and_hard_ones_go_up():
    cfg = parse_config({"routing": {"policy": {"name": "threshold"}, "strategies": ["single", "cascade"]}})
    policy = build_policy(cfg)
    easy = await policy.plan(Request(request_id="e", prompt="What is 2+2?"))
    assert (easy.pool, easy.strategy) == ("small", "cascade") and "cascade listed" in easy.reason
    hard = await policy.plan(Request(request_id="h", prompt="Prove that there are infinitely many primes."))
    assert (hard.pool, hard.strategy) == ("reasoning", "single")  # nothing above reasoning to escalate to
    hinted = await policy.plan(Request(request_id="s", prompt="What is 2+2?", hint_strategy="single"))
    assert hinted.strategy == "single"
    unlisted = await build_policy(parse_config({"routing": {"policy": {"name": "threshold"}}})).plan(
        Request(request_id="u", prompt="What is 2+2?"))
    assert unlisted.strategy == "single"
