"""Request validation: each bad field is refused with its exact proto field path."""
from __future__ import annotations

import math

import pytest

from ponder.common.config import PonderConfig, parse_config
from ponder.common.errors import InvalidArgument
from ponder.router.validate import MAX_COMPUTE_UNITS, MAX_ID_CHARS, MAX_STOP, validate
from ponder.v1 import common_pb2, router_pb2


@pytest.fixture
def cfg() -> PonderConfig:
    return parse_config({"routing": {"max_prompt_chars": 100, "max_samples": 4, "max_thinking_tokens": 512}})


def req(**kw) -> router_pb2.GenerateRequest:
    if "messages" not in kw:
        kw.setdefault("prompt", "What is 2+2?")
    return router_pb2.GenerateRequest(**kw)


def refused(msg, cfg, exc=InvalidArgument) -> InvalidArgument:
    with pytest.raises(exc) as ei:
        validate(msg, cfg)
    return ei.value


def field_of(msg, cfg) -> str:
    return refused(msg, cfg).field


def test_empty_prompt(cfg):
    assert field_of(router_pb2.GenerateRequest(), cfg) == "prompt"


def test_whitespace_prompt(cfg):
    assert field_of(req(prompt=" \n\t "), cfg) == "prompt"


def test_prompt_over_limit(cfg):
    err = refused(req(prompt="x" * 101), cfg)
    assert err.field == "prompt"
    assert "101" in err.problem and "routing.max_prompt_chars" in err.problem
    assert validate(req(prompt="x" * 100), cfg).prompt == "x" * 100


def test_prompt_and_messages_together(cfg):
    msg = req(prompt="hi", messages=[common_pb2.ChatMessage(role="user", content="hi")])
    assert field_of(msg, cfg) == "messages"


def test_bad_role_names_the_turn(cfg):
    msg = req(messages=[common_pb2.ChatMessage(role="user", content="hi"), common_pb2.ChatMessage(role="robot", content="x")])
    err = refused(msg, cfg)
    assert err.field == "messages[1].role"
    assert "'robot'" in err.problem


def test_all_empty_turns(cfg):
    assert field_of(req(messages=[common_pb2.ChatMessage(role="user", content="")]), cfg) == "messages"


def test_messages_over_limit(cfg):
    turns = [common_pb2.ChatMessage(role="user", content="x" * 60), common_pb2.ChatMessage(role="assistant", content="y" * 41)]
    assert field_of(req(messages=turns), cfg) == "messages"


@pytest.mark.parametrize("max_tokens", [0, 131073])
def test_max_tokens_out_of_range(cfg, max_tokens):
    err = refused(req(sampling=common_pb2.SamplingParams(max_tokens=max_tokens)), cfg)
    assert err.field == "sampling.max_tokens"
    assert "1..131072" in err.problem


@pytest.mark.parametrize("temperature", [math.nan, -0.5, 2.5, math.inf])
def test_bad_temperature(cfg, temperature):
    assert field_of(req(sampling=common_pb2.SamplingParams(temperature=temperature)), cfg) == "sampling.temperature"


@pytest.mark.parametrize("top_p", [0.0, -0.1, 1.5, math.nan])
def test_bad_top_p(cfg, top_p):
    assert field_of(req(sampling=common_pb2.SamplingParams(top_p=top_p)), cfg) == "sampling.top_p"


def test_bad_top_k(cfg):
    assert field_of(req(sampling=common_pb2.SamplingParams(top_k=100_001)), cfg) == "sampling.top_k"


def test_too_many_stop_strings(cfg):
    err = refused(req(sampling=common_pb2.SamplingParams(stop=["s"] * (MAX_STOP + 1))), cfg)
    assert err.field == "sampling.stop"


@pytest.mark.parametrize("stop,field", [([""], "sampling.stop[0]"), (["ok", "x" * 257], "sampling.stop[1]")])
def test_bad_stop_string(cfg, stop, field):
    assert field_of(req(sampling=common_pb2.SamplingParams(stop=stop)), cfg) == field


@pytest.mark.parametrize("cu", [-1.0, 0.0, math.inf, math.nan, MAX_COMPUTE_UNITS * 1.5])
def test_bad_max_compute_units(cfg, cu):
    assert field_of(req(budget=common_pb2.Budget(max_compute_units=cu)), cfg) == "budget.max_compute_units"


@pytest.mark.parametrize("ms", [-5.0, 0.0, math.inf, 1e12])
def test_bad_max_latency(cfg, ms):
    assert field_of(req(budget=common_pb2.Budget(max_latency_ms=ms)), cfg) == "budget.max_latency_ms"


def test_hinted_samples_below_one(cfg):
    err = refused(req(hints=common_pb2.Hints(samples=0)), cfg)
    assert err.field == "hints.samples"
    assert ">= 1" in err.problem


def test_config_dependent_hints_are_left_to_planning(cfg):
    # Pool names, sample and thinking limits are checked once, by the planning filters.
    r = validate(req(hints=common_pb2.Hints(pool="huge", samples=50, thinking_budget=100_000)), cfg)
    assert (r.hint_pool, r.hint_samples, r.hint_thinking_budget) == ("huge", 50, 100_000)


def test_overlong_ids(cfg):
    assert field_of(req(request_id="r" * (MAX_ID_CHARS + 1)), cfg) == "request_id"
    assert field_of(req(context_id="c" * (MAX_ID_CHARS + 1)), cfg) == "context_id"


def test_too_many_labels(cfg):
    assert field_of(req(labels={f"k{i}": "v" for i in range(33)}), cfg) == "labels"


def test_valid_request_maps_every_field(cfg):
    msg = req(
        prompt="Prove it.",
        sampling=common_pb2.SamplingParams(max_tokens=20, temperature=0.5, top_p=0.25, top_k=7, stop=["\n", "END"], seed=42),
        budget=common_pb2.Budget(max_compute_units=300.0, max_latency_ms=1500.0),
        context_id="ctx-1",
        hints=common_pb2.Hints(pool="reasoning", strategy="best_of_n", samples=3, thinking_budget=64),
        request_id="req-1",
        labels={"team": "a", "run": "7"},
    )
    r = validate(msg, cfg)
    assert r.request_id == "req-1"
    assert r.prompt == "Prove it."
    assert r.messages == ()
    s = r.sampling
    assert (s.max_tokens, s.temperature, s.top_p, s.top_k, s.stop, s.seed) == (20, 0.5, 0.25, 7, ("\n", "END"), 42)
    assert (r.max_compute_units, r.max_latency_ms) == (300.0, 1500.0)
    assert r.context_id == "ctx-1"
    assert (r.hint_pool, r.hint_strategy, r.hint_samples, r.hint_thinking_budget) == ("reasoning", "best_of_n", 3, 64)
    assert r.labels == {"team": "a", "run": "7"}


def test_unset_fields_stay_unset_and_request_id_is_assigned(cfg):
    a = validate(req(), cfg)
    b = validate(req(), cfg)
    s = a.sampling
    assert (s.max_tokens, s.temperature, s.top_p, s.top_k, s.seed, s.stop) == (None, None, None, None, None, ())
    assert (a.max_compute_units, a.max_latency_ms) == (None, None)
    assert (a.hint_pool, a.hint_strategy, a.hint_samples, a.hint_thinking_budget) == ("", "", None, None)
    assert len(a.request_id) == 32 and int(a.request_id, 16) >= 0
    assert a.request_id != b.request_id


def test_valid_messages_are_kept_in_order(cfg):
    turns = [
        common_pb2.ChatMessage(role="system", content="Be brief."),
        common_pb2.ChatMessage(role="user", content="Hi"),
        common_pb2.ChatMessage(role="assistant", content="Hello"),
    ]
    r = validate(req(messages=turns), cfg)
    assert r.prompt == ""
    assert r.messages == (("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"))
    assert r.text == "Be brief.\nHi\nHello"


def test_zero_temperature_and_full_top_p_are_valid(cfg):
    r = validate(req(sampling=common_pb2.SamplingParams(temperature=0.0, top_p=1.0, top_k=0)), cfg)
    assert (r.sampling.temperature, r.sampling.top_p, r.sampling.top_k) == (0.0, 1.0, 0)
