"""Planning as filter -> score -> pick: every cap under every policy, tasks included,
the shared filters, and a strategy added as one class plus its registration."""
from __future__ import annotations

import pytest

from ponder.common.config import parse_config
from ponder.common.errors import BudgetInfeasible, ConfigError, InvalidArgument, UnknownPool
from ponder.router import strategies as registry
from ponder.router.policies.base import build_policy
from ponder.router.strategies.base import Strategy
from ponder.router.types import Answer, Candidate, Request, Sampling
from ponder.v1 import voting_pb2

POLICIES = ["threshold", "difficulty"]
HARD = "Prove that the square root of two is irrational."


def policy(name: str, routing: dict | None = None, pools: list | None = None, strategies=None):
    data: dict = {"routing": {"policy": {"name": name}, **(routing or {})}}
    if pools is not None:
        data["pools"] = pools
    return build_policy(parse_config(data), strategies)


def req(prompt: str = HARD, **kw) -> Request:
    return Request(request_id="r", prompt=prompt, **kw)


def task(disks: int = 3, **voting) -> voting_pb2.SolveRequest:
    return voting_pb2.SolveRequest(task="hanoi", hanoi=voting_pb2.HanoiParams(disks=disks),
                                   voting=voting_pb2.VotingParams(**voting))


class FakeVotingClient:
    """Stands in for the voting service: planning never calls it."""


def with_voting(name: str, routing: dict | None = None):
    return policy(name, routing, strategies=registry.build(FakeVotingClient()))


@pytest.mark.parametrize("name", POLICIES)
async def test_config_cap_holds_under_every_policy(name):
    free = await policy(name).plan(req())
    cap = free.expected_compute_units * 0.5
    plan = await policy(name, {"budget": {"max_cu_per_request": cap, "target_cu_per_request": cap}}).plan(req())
    assert plan.expected_compute_units <= cap
    assert all(c.expected_compute_units <= cap for c in plan.candidates if c.feasible)
    assert any(not c.feasible and "> cap" in c.note for c in plan.candidates)


@pytest.mark.parametrize("name", POLICIES)
async def test_request_cap_below_config_cap_binds(name):
    plan = await policy(name).plan(req(max_compute_units=40.0))
    assert plan.expected_compute_units <= 40.0


@pytest.mark.parametrize("name", POLICIES)
async def test_config_cap_names_its_field_when_nothing_fits(name):
    pol = policy(name, {"budget": {"max_cu_per_request": 1.0, "target_cu_per_request": 1.0}})
    with pytest.raises(BudgetInfeasible) as ei:
        await pol.plan(req())
    assert ei.value.field == "routing.budget.max_cu_per_request"


@pytest.mark.parametrize("name", POLICIES)
async def test_routing_strategies_restrict_every_policy(name):
    plan = await policy(name, {"strategies": ["single"]}).plan(req())
    assert plan.strategy == "single"
    assert {c.strategy for c in plan.candidates} == {"single"}
    with pytest.raises(InvalidArgument) as ei:
        await policy(name, {"strategies": ["single"]}).plan(req(hint_strategy="best_of_n"))
    assert ei.value.field == "hints.strategy"


@pytest.mark.parametrize("name", POLICIES)
async def test_task_is_planned_with_its_voting_cost_and_capped(name):
    pol = with_voting(name)
    plan = await pol.plan(req("", task=task(3, p=0.9)))
    assert plan.strategy == "vote"
    # 7 steps of Hanoi with 3 disks; k from p=0.9 and the default target; every sample priced.
    assert plan.samples >= 7 and plan.expected_compute_units > 0
    assert "7 steps" in plan.candidates[0].note
    with pytest.raises(BudgetInfeasible) as ei:
        await pol.plan(req("", task=task(3, p=0.9), max_compute_units=1.0))
    assert ei.value.field == "budget.max_compute_units"


@pytest.mark.parametrize("name", POLICIES)
async def test_a_prompt_never_gets_vote_and_a_task_only_vote(name):
    pol = with_voting(name)
    assert all(c.strategy != "vote" for c in (await pol.plan(req())).candidates)
    with pytest.raises(InvalidArgument) as ei:
        await pol.plan(req("", task=task(), hint_strategy="single"))
    assert ei.value.field == "hints.strategy"


async def test_bad_task_parameters_name_the_task_field():
    with pytest.raises(InvalidArgument) as ei:
        await with_voting("threshold").plan(req("", task=task(0)))
    assert ei.value.field == "task.hanoi.disks"


async def test_task_without_a_voting_service_is_a_failed_precondition():
    from ponder.common.errors import FailedPrecondition

    with pytest.raises(FailedPrecondition):
        await policy("threshold").plan(req("", task=task()))


@pytest.mark.parametrize("name", POLICIES)
async def test_max_tokens_over_one_pools_limit_routes_to_a_pool_that_allows_it(name):
    pools = [{"name": "small", "max_tokens_limit": 100},
             {"name": "reasoning", "tier": "reasoning", "max_tokens_limit": 2000, "thinking": {}}]
    plan = await policy(name, pools=pools).plan(req("hi", sampling=Sampling(max_tokens=500)))
    assert plan.pool == "reasoning"
    with pytest.raises(InvalidArgument) as ei:
        await policy(name, pools=pools).plan(req("hi", sampling=Sampling(max_tokens=500), hint_pool="small"))
    assert ei.value.field == "sampling.max_tokens"


async def test_context_window_filter_refuses_what_fits_no_pool():
    pools = [{"name": "small", "backend": {"kind": "llamacpp", "n_ctx": 256}}]
    with pytest.raises(InvalidArgument) as ei:
        await policy("threshold", pools=pools).plan(req("word " * 400))
    assert ei.value.field == "prompt" and "context window" in ei.value.problem


@pytest.mark.parametrize("name", POLICIES)
async def test_hint_limits_are_refused_once_by_the_filter(name):
    pol = policy(name, {"max_samples": 4, "best_of_n_samples": [3]})
    with pytest.raises(InvalidArgument) as ei:
        await pol.plan(req(hint_strategy="best_of_n", hint_samples=5))
    assert ei.value.field == "hints.samples"
    with pytest.raises(InvalidArgument) as ei:
        await policy(name, {"max_thinking_tokens": 100}).plan(req(hint_thinking_budget=200))
    assert ei.value.field == "hints.thinking_budget"
    with pytest.raises(UnknownPool):
        await pol.plan(req(hint_pool="gpu"))


@pytest.mark.parametrize("name", POLICIES)
async def test_hinted_samples_are_clamped_only_to_fit_and_the_plan_says_so(name):
    pol = policy(name)
    exact = await pol.plan(req("hi", hint_pool="small", hint_strategy="best_of_n", hint_samples=4))
    assert (exact.samples, exact.clamped) == (4, "")
    cap = exact.expected_compute_units * 0.6
    plan = await pol.plan(req("hi", hint_pool="small", hint_strategy="best_of_n", hint_samples=4, max_compute_units=cap))
    assert plan.samples < 4 and plan.expected_compute_units <= cap
    assert plan.clamped == f"hints.samples 4 -> {plan.samples}"
    assert f"clamped hints.samples 4 -> {plan.samples}" in plan.reason


def test_unknown_strategy_in_config_names_the_field():
    with pytest.raises(ConfigError) as ei:
        policy("threshold", {"strategies": ["single", "beam"]})
    assert ei.value.problems[0][0] == "routing.strategies"


class Echo(Strategy):
    """A test strategy: one sample on small-tier pools, answered with the prompt reversed."""

    name = "echo"

    def candidates(self, req, pool, catalog) -> list[Candidate]:
        return [catalog.estimate(req, pool.name, self.name, 1, 0)] if pool.tier == "small" else []

    def accuracy(self, cand, p, gains):
        return 0.99, "echo is always right"

    async def run(self, req, plan, pools, timeout_s, stream):
        yield Answer(req.prompt[::-1], "stop", [], "echo", True, 0.0)


async def test_a_new_strategy_is_one_class_plus_its_registration():
    strategies = registry.build(extra=[Echo()])
    pol = policy("difficulty", {"strategies": ["single", "echo"]}, strategies=strategies)
    plan = await pol.plan(req("abc"))
    assert (plan.strategy, plan.pool) == ("echo", "small")
    assert plan.expected_accuracy == pytest.approx(0.99)
    items = [x async for x in strategies["echo"].run(req("abc"), plan, None, 1.0, False)]
    assert items[-1].text == "cba"


def test_a_duplicate_strategy_name_fails_at_build():
    class Twin(Echo):
        name = "single"

    with pytest.raises(ValueError, match="registered twice"):
        registry.build(extra=[Twin()])


SOFTCOT_POOLS = [
    {"name": "small"},
    {"name": "softcot", "tier": "softcot", "backend": {"kind": "transformers"},
     "softcot": {"projection_path": "p.safetensors", "num_thought_tokens": 4, "assistant_token_cu": 0.05}},
]


async def test_softcot_is_offered_only_on_softcot_pools_and_priced_with_its_assistant():
    pol = policy("difficulty", pools=SOFTCOT_POOLS)
    plan = await pol.plan(req("What is 2 + 2?"))
    soft = [c for c in plan.candidates if c.strategy == "softcot"]
    assert [c.pool for c in soft] == ["softcot"]
    plain = next(c for c in plan.candidates if (c.pool, c.strategy) == ("softcot", "single"))
    # The backbone reads the 4 soft tokens and 2 markers more, and the assistant reads the prompt and placeholders.
    assert soft[0].expected_compute_units > plain.expected_compute_units
    # With the prior gain of 0, soft thoughts cost more for the same accuracy: the plain sample wins.
    assert soft[0].expected_accuracy == pytest.approx(plain.expected_accuracy)
    gained = policy("difficulty", {"policy": {"name": "difficulty", "params": {"softcot_logit_gain": 1.0}}},
                    pools=SOFTCOT_POOLS)
    plan = await gained.plan(req("What is 2 + 2?", hint_pool="softcot"))
    assert plan.strategy == "softcot" and "soft-thought gain 1.00 (prior)" in plan.candidates[0].note


async def test_threshold_targets_softcot_on_a_hinted_softcot_pool():
    plan = await policy("threshold", pools=SOFTCOT_POOLS).plan(req("hi", hint_pool="softcot"))
    assert plan.strategy == "softcot"


def test_softcot_plans_ask_the_pool_for_soft_thoughts_and_others_do_not():
    from ponder.router.strategies.base import pool_request
    from ponder.router.types import Plan

    assert pool_request(req("hi"), Plan(pool="softcot", strategy="softcot")).soft_thoughts is True
    assert pool_request(req("hi"), Plan(pool="softcot", strategy="single")).soft_thoughts is False
