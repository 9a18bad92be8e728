"""The ``cascade`` strategy: its pure parts against hand-computed cases, its pricing, and runs over
scripted pool clients (test doubles that answer fixed texts) directly and through the router servicer.
The same strategy over real gRPC sim pools is in tests/integration/test_router_cascade.py."""
from __future__ import annotations

import numpy as np
import pytest

from ponder.common.config import parse_config
from ponder.common.errors import ConfigError, PoolUnavailable
from ponder.common.telemetry import Tracing
from ponder.router import costing
from ponder.router import strategies as registry
from ponder.router.catalog import PoolCatalog
from ponder.router.confidence import FEATURE_NAMES, ConfidenceScorer
from ponder.router.policies.base import build_policy
from ponder.router.request_path import RequestPath, RouterState
from ponder.router.servicer import RouterServicer
from ponder.router.strategies.cascade import (
    Cascade, agreement, answer_key, cascade_accuracy, escalation_share,
)
from ponder.router.strategies.base import StreamDelta
from ponder.router.types import Answer, Plan, Request
from ponder.v1 import common_pb2, pool_pb2, router_pb2


class ScriptedPool:
    """A pool client test double: the i-th call answers ``texts[i]`` (the last one repeats), or raises ``error``."""

    def __init__(self, name: str, texts: list[str], error: Exception | None = None):
        self.name, self.texts, self.error = name, texts, error
        self.calls: list[pool_pb2.PoolGenerateRequest] = []

    async def generate(self, req, timeout_s):
        self.calls.append(req)
        if self.error is not None:
            raise self.error
        text = self.texts[min(len(self.calls) - 1, len(self.texts) - 1)]
        return pool_pb2.PoolGenerateResponse(text=text, finish_reason="stop", prompt_tokens=10, output_tokens=4,
                                             model=f"model-{self.name}")

    async def stream(self, req, timeout_s):
        r = await self.generate(req, timeout_s)
        yield pool_pb2.PoolGenerateChunk(delta={"text": r.text})
        yield pool_pb2.PoolGenerateChunk(final=r)

    async def close(self):
        pass


class Clients(dict):
    async def close(self):
        pass


def config(**cascade):
    return parse_config({"routing": {"strategies": ["single", "cascade"], "cascade": cascade}})


# ----------------------------------------------------------------------------- pure parts
@pytest.mark.parametrize("text,key", [
    ("3 + 4 = 7\n#### 7", "7.0"),
    ("The answer is 1,200.", "1200.0"),
    ("Paris\n\n The capital is  Paris. ", "the capital is paris"),
    ("", ""),
])
def test_answer_key(text, key):
    assert answer_key(text) == key


def test_agreement_is_the_share_of_others_with_the_same_key():
    assert agreement("so #### 12", ["12", "It is 12.", "13"]) == pytest.approx(2 / 3)
    assert agreement("x", []) == 0.0
    assert agreement("", ["", ""]) == 0.0


def test_escalation_share_moves_from_the_prior_to_the_observed_rate():
    assert escalation_share(0, 0, 0.5) == 0.5
    assert escalation_share(2, 8, 0.5, weight=8) == pytest.approx((2 + 4) / 16)
    assert escalation_share(100, 1000, 0.5, weight=8) == pytest.approx(104 / 1008)


def test_cascade_accuracy_hand_computed():
    # kept accuracy halfway between p=0.6 and min(1, 0.6/0.5)=1: 0.8; half the prompts stay, half go to p_s=0.9.
    assert cascade_accuracy(0.6, 0.9, 0.5) == pytest.approx(0.5 * 0.8 + 0.5 * 0.9)
    assert cascade_accuracy(0.6, 0.9, 0.0) == pytest.approx(0.6)  # never escalates: the cheap pool alone
    assert cascade_accuracy(0.6, 0.9, 1.0) == pytest.approx(0.9)  # always escalates: the dear pool alone
    assert cascade_accuracy(0.6, 0.9, 0.5, selectivity=0.0) == pytest.approx(0.75)


def test_config_needs_a_signal_and_known_pools():
    with pytest.raises(ConfigError, match="scorer_path or agreement_samples"):
        config(agreement_samples=0)
    with pytest.raises(ConfigError, match="escalate_to"):
        config(escalate_to={"small": "nope"})


# ----------------------------------------------------------------------------- planning
def test_candidates_offered_on_the_cheap_pool_only_and_priced_with_the_escalation_share():
    cfg = config(agreement_samples=2, prior_escalation_share=0.25)
    cas = Cascade()
    cat = PoolCatalog(cfg, strategies={"single": registry.build()["single"], "cascade": cas})
    req = Request(request_id="r", prompt="What is 2+2?")
    assert cas.candidates(req, cfg.pool("reasoning"), cat) == []  # nothing dearer to escalate to
    (c,) = cas.candidates(req, cfg.pool("small"), cat)
    cheap = cat.estimate(req, "small", "cascade", 3, 0)
    dear = cat.estimate(req, "reasoning", "single", 1, 0)
    assert c.samples == 3
    assert c.expected_compute_units == pytest.approx(cheap.expected_compute_units + 0.25 * dear.expected_compute_units)
    assert "escalates to reasoning" in c.note
    cas.record("small", True)
    cas.record("small", False)
    (c2,) = cas.candidates(req, cfg.pool("small"), cat)
    e = escalation_share(1, 2, 0.25)
    assert c2.expected_compute_units == pytest.approx(cheap.expected_compute_units + e * dear.expected_compute_units,
                                                      abs=1e-3)


async def test_difficulty_policy_credits_the_cascade_with_both_pools():
    cfg = parse_config({"routing": {"strategies": ["single", "cascade"], "policy": {
        "name": "difficulty", "params": {"prior_accuracy": {"small": 0.5, "reasoning": 0.9}}}}})
    policy = build_policy(cfg, registry.build())
    plan = await policy.plan(Request(request_id="r", prompt="What is 2+2?", hint_strategy="cascade"))
    (c,) = [c for c in plan.candidates if c.strategy == "cascade"]
    assert c.expected_accuracy == pytest.approx(cascade_accuracy(0.5, 0.9, 0.5), abs=1e-6)
    assert "escalation pool p=0.900" in c.note


# ----------------------------------------------------------------------------- running
async def run(cas: Cascade, cfg, clients, stream=False, prompt="Tom has 3 apples and buys 4. How many?"):
    req = Request(request_id="r", prompt=prompt)
    cat = PoolCatalog(cfg, strategies={"cascade": cas})
    (cand,) = cas.candidates(req, cfg.pool("small"), cat)
    plan = Plan(pool="small", strategy="cascade", samples=cand.samples, reason="test")
    items = [i async for i in cas.run(req, plan, clients, 10.0, stream)]
    return req, plan, items


async def test_agreeing_samples_keep_the_cheap_answer():
    cfg = config(agreement_samples=2)
    clients = Clients(small=ScriptedPool("small", ["3 + 4 = 7. The answer is 7."]),
                      reasoning=ScriptedPool("reasoning", ["7"]))
    cas = Cascade()
    req, plan, (ans,) = await run(cas, cfg, clients)
    assert isinstance(ans, Answer) and ans.text.endswith("7.") and ans.model == "model-small"
    assert len(ans.samples) == 3 and {s.pool for s in ans.samples} == {"small"}
    assert clients["reasoning"].calls == []
    assert "kept the small answer" in plan.reason and "confidence 1.00" in plan.reason
    # extra samples are drawn at a temperature that lets them disagree; the answer keeps the request's sampling
    assert not clients["small"].calls[0].sampling.HasField("temperature")
    assert clients["small"].calls[1].sampling.temperature == pytest.approx(0.7)
    assert cas._runs["small"] == [0, 1]


async def test_disagreeing_samples_escalate_and_usage_counts_both_pools():
    cfg = config(agreement_samples=2)
    clients = Clients(small=ScriptedPool("small", ["#### 7", "#### 8", "#### 9"]),
                      reasoning=ScriptedPool("reasoning", ["#### 7"]))
    cas = Cascade()
    req, plan, (ans,) = await run(cas, cfg, clients)
    assert ans.model == "model-reasoning" and ans.text == "#### 7"
    assert [s.pool for s in ans.samples] == ["small", "small", "small", "reasoning"]
    assert "confidence 0.00 < 0.5 (default), escalated to reasoning" in plan.reason
    assert clients["reasoning"].calls[0].request_id == "r/3"
    u = costing.usage(cfg, req, plan, ans, 1.0)
    small, dear = cfg.pool("small").cost, cfg.pool("reasoning").cost
    assert u.compute_units == pytest.approx(3 * small.units(10, 4) + dear.units(10, 4))
    assert (u.samples, u.prompt_tokens, u.output_tokens) == (4, 40, 16)
    assert cas._runs["small"] == [1, 1]


async def test_stream_sends_the_kept_answer_once_or_the_escalated_deltas():
    cfg = config(agreement_samples=1)
    same = Clients(small=ScriptedPool("small", ["42"]), reasoning=ScriptedPool("reasoning", ["41"]))
    _, _, items = await run(Cascade(), cfg, same, stream=True)
    assert [type(i) for i in items] == [StreamDelta, Answer] and items[0].text == "42"
    differ = Clients(small=ScriptedPool("small", ["42", "43"]), reasoning=ScriptedPool("reasoning", ["41"]))
    _, _, items = await run(Cascade(), cfg, differ, stream=True)
    assert [type(i) for i in items] == [StreamDelta, Answer]
    assert items[0].text == "41" and items[0].sample_index == 2 and items[1].text == "41"


async def test_escalation_pool_down_keeps_the_cheap_answer():
    cfg = config(agreement_samples=1)
    clients = Clients(small=ScriptedPool("small", ["42", "43"]),
                      reasoning=ScriptedPool("reasoning", [""], error=PoolUnavailable("reasoning", "down")))
    _, plan, (ans,) = await run(Cascade(), cfg, clients)
    assert ans.text == "42" and len(ans.samples) == 2
    assert "escalation to reasoning failed" in plan.reason


def scorer_file(tmp_path, bias: float):
    """A scorer whose P(right) is sigmoid(bias) for every answer (zero weights, no calibration)."""
    k = len(FEATURE_NAMES)
    s = ConfidenceScorer(np.zeros(k), np.ones(k), np.zeros(k), bias)
    return str(s.save(tmp_path / "scorer.json"))


@pytest.mark.parametrize("bias,escalates", [(-3.0, True), (3.0, False)])
async def test_a_configured_scorer_decides_without_extra_samples(tmp_path, bias, escalates):
    cfg = config(agreement_samples=0, scorer_path=scorer_file(tmp_path, bias), threshold=0.5)
    clients = Clients(small=ScriptedPool("small", ["#### 7"]), reasoning=ScriptedPool("reasoning", ["#### 8"]))
    _, plan, (ans,) = await run(Cascade(), cfg, clients)
    assert len(clients["small"].calls) == 1
    assert (ans.text == "#### 8") is escalates
    assert ("escalated to reasoning" in plan.reason) is escalates


async def test_through_the_servicer_the_plan_and_usage_show_the_escalation():
    cfg = config(agreement_samples=1)
    strategies = registry.build()
    clients = Clients(small=ScriptedPool("small", ["#### 7", "#### 8"]),
                      reasoning=ScriptedPool("reasoning", ["#### 7"]))
    state = RouterState(cfg, build_policy(cfg, strategies), clients, strategies)
    svc = RouterServicer(RequestPath(state, Tracing("test")))

    class Ctx:
        def invocation_metadata(self):
            return ()

        def time_remaining(self):
            return None

    resp = await svc.Generate(router_pb2.GenerateRequest(
        prompt="What is 3+4?", hints=common_pb2.Hints(strategy="cascade")), Ctx())
    assert resp.plan.strategy == "cascade" and resp.plan.pool == "small"
    assert "escalated to reasoning" in resp.plan.reason
    assert resp.text == "#### 7" and resp.usage.samples == 3
    small, dear = cfg.pool("small").cost, cfg.pool("reasoning").cost
    assert resp.usage.compute_units == pytest.approx(2 * small.units(10, 4) + dear.units(10, 4))


async def test_an_unreadable_scorer_is_a_config_error_naming_the_field(tmp_path):
    cfg = config(agreement_samples=0, scorer_path=str(tmp_path / "missing.json"))
    clients = Clients(small=ScriptedPool("small", ["#### 7"]), reasoning=ScriptedPool("reasoning", ["#### 8"]))
    with pytest.raises(ConfigError, match="routing.cascade.scorer_path"):
        await run(Cascade(), cfg, clients)


# ----------------------------------------------------------------------------- λ sets the threshold
from hypothesis import given, settings, strategies as st  # noqa: E402

from ponder.router.strategies.cascade import DEFAULT_THRESHOLD, escalation_threshold  # noqa: E402

unit = st.floats(0, 1)
lam_st = st.floats(0, 10)
cost_st = st.floats(0, 1000)


def escalates(conf: float, p_strong: float, lam: float, cu: float) -> bool:
    return conf < escalation_threshold(p_strong, lam, cu)


def test_escalation_threshold_hand_computed():
    assert escalation_threshold(0.9, 0.001, 100) == pytest.approx(0.8)
    assert escalation_threshold(0.9, 0.0, 100) == pytest.approx(0.9)
    assert escalation_threshold(0.9, 0.01, 100) == pytest.approx(-0.1)


@given(conf=unit, p_strong=unit, cu=cost_st)
def test_at_lambda_zero_it_escalates_exactly_when_the_strong_pool_is_likelier_right(conf, p_strong, cu):
    assert escalates(conf, p_strong, 0.0, cu) is (p_strong > conf)


@given(conf=unit, p_strong=unit, cu=st.floats(0.01, 1000))
def test_above_p_strong_per_cu_it_never_escalates(conf, p_strong, cu):
    assert not escalates(conf, p_strong, p_strong / cu * 1.0001 + 1e-9, cu)


@settings(max_examples=300)
@given(conf=unit, p_strong=unit, cu=cost_st, lams=st.tuples(lam_st, lam_st))
def test_escalation_is_monotone_in_lambda(conf, p_strong, cu, lams):
    lo, hi = sorted(lams)
    if escalates(conf, p_strong, hi, cu):
        assert escalates(conf, p_strong, lo, cu)


def difficulty_config(lam: float, **cascade):
    return parse_config({"routing": {"strategies": ["single", "cascade"], "cascade": cascade, "policy": {
        "name": "difficulty", "params": {"prior_accuracy": {"small": 0.5, "reasoning": 0.9}, "lambda_per_cu": lam}}}})


class FixedLambda:
    """A budget controller test double with a fixed λ."""

    def __init__(self, lam: float):
        self.lam = lam

    def lambda_per_cu(self) -> float:
        return self.lam

    async def observe(self, compute_units: float) -> float:
        return self.lam


async def planned(cfg, req: Request, budget=None):
    strategies = registry.build()
    policy = build_policy(cfg, strategies)
    if budget is not None:
        policy.set_budget(budget)
    return strategies["cascade"], policy, await policy.plan(req)


async def test_the_policy_sets_the_threshold_from_lambda_and_the_escalation_call_price():
    req = Request(request_id="r", prompt="What is 2+2?", hint_strategy="cascade")
    cas, policy, plan = await planned(difficulty_config(1e-3), req)
    dear = policy.catalog.estimate(req, "reasoning", "single", 1, 0).expected_compute_units
    assert plan.strategy == "cascade"
    assert plan.escalate_below == pytest.approx(0.9 - 1e-3 * dear, abs=1e-6)
    # the budget controller's λ wins over the params' lambda_per_cu
    _, _, plan2 = await planned(difficulty_config(1e-3), req, FixedLambda(2e-3))
    assert plan2.escalate_below == pytest.approx(0.9 - 2e-3 * dear, abs=1e-6)
    # a configured threshold overrides λ
    _, _, plan3 = await planned(difficulty_config(1e-3, threshold=0.3), req)
    assert plan3.escalate_below is None


@pytest.mark.parametrize("lam,answers,escalated", [
    (0.0, ["#### 7", "#### 7", "#### 8"], True),     # confidence 0.5 < p_strong 0.9: worth it at no price
    (0.0, ["#### 7", "#### 7", "#### 7"], False),    # confidence 1.0 >= p_strong 0.9: nothing to gain at any λ
    (1.0, ["#### 7", "#### 8", "#### 9"], False),    # confidence 0, but the dear call costs more than it adds
])
async def test_run_escalates_by_the_lambda_rule(lam, answers, escalated):
    cfg = difficulty_config(lam)
    req = Request(request_id="r", prompt="Tom has 3 apples and buys 4. How many?", hint_strategy="cascade")
    cas, _, plan = await planned(cfg, req)
    clients = Clients(small=ScriptedPool("small", answers), reasoning=ScriptedPool("reasoning", ["#### 7"]))
    (ans,) = [i async for i in cas.run(req, plan, clients, 10.0, False)]
    assert (ans.model == "model-reasoning") is escalated
    assert "(lambda)" in plan.reason


@pytest.mark.parametrize("threshold,escalated", [(None, True), (0.4, False)])
async def test_a_configured_threshold_wins_over_lambda(threshold, escalated):
    cfg = difficulty_config(0.0, **({} if threshold is None else {"threshold": threshold}))
    req = Request(request_id="r", prompt="What is 3+4?", hint_strategy="cascade")
    cas, _, plan = await planned(cfg, req)
    clients = Clients(small=ScriptedPool("small", ["#### 7", "#### 7", "#### 8"]),
                      reasoning=ScriptedPool("reasoning", ["#### 7"]))
    (ans,) = [i async for i in cas.run(req, plan, clients, 10.0, False)]
    assert (ans.model == "model-reasoning") is escalated
    assert ("routing.cascade.threshold" in plan.reason) is (threshold is not None)


async def test_without_lambda_or_configured_threshold_the_default_applies():
    cfg = config(agreement_samples=2)  # the threshold policy: no λ
    clients = Clients(small=ScriptedPool("small", ["#### 7", "#### 7", "#### 8"]),
                      reasoning=ScriptedPool("reasoning", ["#### 7"]))
    _, plan, (ans,) = await run(Cascade(), cfg, clients)
    assert plan.escalate_below is None and DEFAULT_THRESHOLD == 0.5
    assert ans.model == "model-small" and f"confidence 0.50 >= {DEFAULT_THRESHOLD:g} (default)" in plan.reason
