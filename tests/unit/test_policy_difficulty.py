"""The difficulty policy: candidates, scores, caps and hints."""
import numpy as np
import pytest

from ponder.common.config import parse_config
from ponder.common.errors import BudgetInfeasible, ConfigError, UnknownPool
from ponder.router.classifiers.base import Classifier
from ponder.router.catalog import PoolCatalog
from ponder.router.policies.base import build_policy
from ponder.router.policies.difficulty import DifficultyPolicy
from ponder.router.strategies.accuracy import majority_vote_accuracy, thinking_accuracy
from ponder.router.types import Request


class FixedClassifier(Classifier):
    """Returns per-target probabilities chosen by the test."""

    name = "fixed-test"

    def __init__(self, probs: dict[str, float], roles: dict[str, str] | None = None):
        super().__init__(params=None)
        self.targets = list(probs)
        self.probs = probs
        self.report = {"roles": roles or {}}

    def fit(self, texts, labels):
        return self

    def raw_scores(self, texts):
        raise NotImplementedError

    def predict_proba(self, texts):
        return np.array([[self.probs[t] for t in self.targets]] * len(texts))

    def save_arrays(self, directory):
        pass

    def load_arrays(self, directory):
        pass


def config(**params):
    return parse_config({"routing": {"policy": {"name": "difficulty", "params": params}}})


def policy(probs=None, roles=None, **params):
    cfg = config(**params)
    clf = FixedClassifier(probs, roles) if probs else None
    return DifficultyPolicy(DifficultyPolicy.Params.model_validate(params), PoolCatalog(cfg), clf)


def req(**kw):
    return Request(request_id="r", prompt="What is 2 + 2?", **kw)


def test_majority_vote_accuracy_by_hand():
    assert majority_vote_accuracy(0.6, 1) == pytest.approx(0.6)
    assert majority_vote_accuracy(0.6, 3) == pytest.approx(0.6**3 + 3 * 0.6**2 * 0.4)  # 0.648
    assert majority_vote_accuracy(0.7, 2) == pytest.approx(0.7)  # tie split evenly
    assert majority_vote_accuracy(0.4, 5) < 0.4  # voting amplifies below one half
    assert majority_vote_accuracy(0.9, 101) == pytest.approx(1.0, abs=1e-9)


def test_thinking_accuracy_grows_with_budget():
    assert thinking_accuracy(0.5, 0, 0.5, 256) == pytest.approx(0.5)
    assert thinking_accuracy(0.5, 256, 0.5, 256) == pytest.approx(1 / (1 + np.exp(-0.5)))
    assert thinking_accuracy(0.6, 512, 0.5, 256) > thinking_accuracy(0.6, 256, 0.5, 256)


def test_registered_and_built_from_config():
    pol = build_policy(config(lambda_per_cu=0.01))
    assert isinstance(pol, DifficultyPolicy) and pol.params.lambda_per_cu == 0.01
    with pytest.raises(ConfigError, match="routing.policy.params.samples"):
        build_policy(config(samples="many"))


async def test_scores_are_accuracy_minus_lambda_cost_and_winner_is_max():
    pol = policy({"weak": 0.9, "strong": 0.95}, {"weak": "weak", "strong": "strong"}, lambda_per_cu=0.001)
    plan = await pol.plan(req())
    for c in plan.candidates:
        assert c.score == pytest.approx(c.expected_accuracy - 0.001 * c.expected_compute_units, abs=1e-5)
    best = max(plan.candidates, key=lambda c: c.score)
    assert (plan.pool, plan.strategy, plan.samples) == (best.pool, best.strategy, best.samples)
    assert "lambda=0.001" in plan.reason and "runner-up" in plan.reason
    assert any("classifier" in c.note for c in plan.candidates)


async def test_hard_prompts_buy_more_compute_than_easy_ones():
    roles = {"weak": "weak", "strong": "strong"}
    easy = await policy({"weak": 0.97, "strong": 0.98}, roles, lambda_per_cu=5e-4).plan(req())
    hard = await policy({"weak": 0.3, "strong": 0.7}, roles, lambda_per_cu=5e-4).plan(req())
    assert hard.expected_compute_units > easy.expected_compute_units
    # With compute free, the most accurate candidate wins.
    free = await policy({"weak": 0.3, "strong": 0.7}, roles, lambda_per_cu=0.0).plan(req())
    assert free.expected_compute_units == max(
        c.expected_compute_units for c in free.candidates if c.expected_accuracy == max(
            x.expected_accuracy for x in free.candidates))


async def test_budget_controller_lambda_is_used():
    class Lam:
        def lambda_per_cu(self):
            return 10.0  # compute is precious: cheapest plan

    pol = policy({"weak": 0.5, "strong": 0.9}, {"weak": "weak", "strong": "strong"})
    pol.set_budget(Lam())
    plan = await pol.plan(req())
    assert plan.expected_compute_units == min(c.expected_compute_units for c in plan.candidates)
    assert "budget controller" in plan.reason


async def test_cap_filters_and_infeasible_names_the_field():
    pol = policy(lambda_per_cu=0.0)
    plan = await pol.plan(req(max_compute_units=70))
    assert plan.expected_compute_units <= 70
    assert any(not c.feasible and "cap 70" in c.note for c in plan.candidates)
    with pytest.raises(BudgetInfeasible) as e:
        await pol.plan(req(max_compute_units=1))
    assert e.value.field == "budget.max_compute_units"


# "What is 2 + 2?" is 3 prompt tokens; both default pools declare 50 ms to the first token,
# 288 prompt and 43 output tokens per second, one sample at a time.
SMALL_SINGLE_MS = 50 + 1000 * (3 / 288 + 64 / 43)
REASONING_SINGLE_MS = 50 + 1000 * (3 / 288 + 32 / 43)  # max_tokens_default 32


async def test_candidates_carry_the_latency_estimate():
    plan = await policy(lambda_per_cu=0.0).plan(req())
    by = {(c.pool, c.strategy, c.samples, c.thinking_budget): c.expected_latency_ms for c in plan.candidates}
    assert by[("small", "single", 1, 0)] == pytest.approx(SMALL_SINGLE_MS, abs=1e-3)
    assert by[("small", "best_of_n", 3, 0)] == pytest.approx(3 * SMALL_SINGLE_MS, abs=1e-3)
    assert by[("reasoning", "single", 1, 0)] == pytest.approx(REASONING_SINGLE_MS, abs=1e-3)
    # Thinking 128: reads 3 + (3 + 128) tokens, writes 128 + 32.
    assert by[("reasoning", "think", 1, 128)] == pytest.approx(50 + 1000 * (134 / 288 + 160 / 43), abs=1e-3)
    win = next(c for c in plan.candidates if c.score == max(x.score for x in plan.candidates))
    assert plan.expected_latency_ms == win.expected_latency_ms
    assert f"~{win.expected_latency_ms:.0f} ms" in plan.reason


async def test_latency_cap_makes_slower_candidates_infeasible():
    plan = await policy(lambda_per_cu=0.0).plan(req(max_latency_ms=2000))
    assert plan.expected_latency_ms <= 2000
    assert {(c.pool, c.strategy, c.samples) for c in plan.candidates if c.feasible} >= {
        ("small", "single", 1), ("reasoning", "single", 1)}
    assert all(c.feasible == (c.expected_latency_ms <= 2000) for c in plan.candidates)
    slow = [c for c in plan.candidates if not c.feasible]
    assert all(c.expected_latency_ms > 2000 and "> cap 2000 ms" in c.note for c in slow)
    bo3 = next(c for c in slow if (c.pool, c.strategy, c.samples) == ("small", "best_of_n", 3))
    assert f"takes ~{3 * SMALL_SINGLE_MS:.0f} ms > cap 2000 ms" in bo3.note


async def test_latency_cap_below_the_fastest_plan_names_the_field():
    with pytest.raises(BudgetInfeasible) as e:
        await policy().plan(req(max_latency_ms=500))
    assert e.value.field == "budget.max_latency_ms"
    assert f"500 ms is below the fastest plan (~{REASONING_SINGLE_MS:.0f} ms for pool 'reasoning', single n=1)" in str(e.value)
    # When no plan is cheap enough either, the compute cap is the one to fix first.
    with pytest.raises(BudgetInfeasible) as e:
        await policy().plan(req(max_latency_ms=500, max_compute_units=1))
    assert e.value.field == "budget.max_compute_units"


async def test_latency_error_names_the_fastest_affordable_plan():
    cfg = parse_config({
        "pools": [{"name": "small"}, {"name": "reasoning", "tier": "reasoning", "max_tokens_default": 32,
                                      "cost": {"output_token_cu": 10.0}}],
        "routing": {"policy": {"name": "difficulty"}},
    })
    pol = DifficultyPolicy(DifficultyPolicy.Params(), PoolCatalog(cfg))
    with pytest.raises(BudgetInfeasible) as e:
        await pol.plan(req(max_latency_ms=1000, max_compute_units=100))
    assert e.value.field == "budget.max_latency_ms"
    assert (f"below the fastest plan within budget.max_compute_units (~{SMALL_SINGLE_MS:.0f} ms for pool 'small'"
            in str(e.value))


async def test_hints_restrict_candidates():
    pol = policy(lambda_per_cu=0.0)
    plan = await pol.plan(req(hint_pool="small", hint_strategy="best_of_n", hint_samples=4))
    assert {(c.pool, c.strategy, c.samples) for c in plan.candidates if c.feasible} == {("small", "best_of_n", 4)}
    # Smaller counts are offered as clamped variants, used only when the exact one breaks a cap.
    assert {c.samples: c.clamped for c in plan.candidates if not c.feasible} == {
        3: "hints.samples 4 -> 3", 2: "hints.samples 4 -> 2", 1: "hints.samples 4 -> 1"}
    with pytest.raises(UnknownPool):
        await pol.plan(req(hint_pool="nope"))


def test_pool_targets_must_exist():
    with pytest.raises(ConfigError, match="pool_targets.ghost"):
        policy(pool_targets={"ghost": "x"})
    with pytest.raises(ConfigError, match="no target 'x'"):
        policy({"weak": 0.5}, pool_targets={"small": "x"})


def fitted_policy(fit, **params):
    """Classifier p: small 0.6, reasoning 0.7; its report carries ``fit`` as retrain's think_logit_gain."""
    clf = FixedClassifier({"weak": 0.6, "strong": 0.7}, {"weak": "weak", "strong": "strong"})
    clf.report["think_logit_gain"] = fit
    return DifficultyPolicy(DifficultyPolicy.Params.model_validate(params), PoolCatalog(config(**params)), clf)


def think_candidates(plan):
    return {c.thinking_budget: c for c in plan.candidates if c.strategy == "think"}


async def test_think_uses_the_gain_fitted_by_retrain():
    pol = fitted_policy({"reasoning": {"gain": 0.8, "n": 140, "ref_tokens": 256}}, lambda_per_cu=0.0)
    think = think_candidates(await pol.plan(req()))
    # logit(0.7) + 0.8 * log2(1 + 256/256) = 0.847298 + 0.8
    assert think[256].expected_accuracy == pytest.approx(1 / (1 + np.exp(-(np.log(0.7 / 0.3) + 0.8))), abs=1e-6)
    assert think[256].expected_accuracy == pytest.approx(0.838526, abs=1e-6)
    # T = 512: log2(3) units of gain.
    assert think[512].expected_accuracy == pytest.approx(
        1 / (1 + np.exp(-(np.log(0.7 / 0.3) + 0.8 * np.log2(3)))), abs=1e-6)
    assert all("gain 0.80 (fitted, n=140)" in c.note for c in think.values())
    assert all("gain" not in c.note for c in (await pol.plan(req())).candidates if c.strategy != "think")


async def test_think_falls_back_to_the_prior_gain():
    # Fitted for another think_ref_tokens, or for another pool: the think_logit_gain prior applies.
    for fit in ({"reasoning": {"gain": 0.8, "n": 140, "ref_tokens": 512}},
                {"small": {"gain": 0.8, "n": 140, "ref_tokens": 256}}, {}):
        pol = fitted_policy(fit, think_logit_gain=0.3, lambda_per_cu=0.0)
        think = think_candidates(await pol.plan(req()))
        assert think[256].expected_accuracy == pytest.approx(thinking_accuracy(0.7, 256, 0.3, 256), abs=1e-6)
        assert all("gain 0.30 (prior)" in c.note for c in think.values())
    # Without a classifier at all, too.
    think = think_candidates(await policy(lambda_per_cu=0.0).plan(req()))
    assert all("gain 0.50 (prior)" in c.note for c in think.values())
