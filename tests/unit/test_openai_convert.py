"""OpenAI bodies -> router requests and answers back (pure), and the HTTP side of the error table."""
from __future__ import annotations

import pytest

from ponder.common import errors as E
from ponder.common.config import parse_config
from ponder.router.openai_http import convert
from ponder.router.openai_http.app import deadline_s, error_body
from ponder.v1 import common_pb2, router_pb2

CFG = parse_config({})  # default pools: small, reasoning (thinking budget_tokens 256)
MSG = [{"role": "user", "content": "hi"}]


def chat(**kw):
    return convert.to_generate_request({"model": "ponder/auto", "messages": MSG, **kw}, CFG, chat=True)


def test_sampling_and_ponder_fields_map_onto_the_router_request():
    msg, origin = chat(max_completion_tokens=32, temperature=0.5, top_p=0.9, stop="\n", seed=3, user="u1",
                       ponder={"budget": {"max_compute_units": 50, "max_latency_ms": 900}, "context_id": "c1",
                               "labels": {"team": "a"}, "request_id": "r1"})
    assert (msg.sampling.max_tokens, msg.sampling.top_p, list(msg.sampling.stop), msg.sampling.seed) == (32, pytest.approx(0.9), ["\n"], 3)
    assert (msg.budget.max_compute_units, msg.budget.max_latency_ms) == (50, 900)
    assert (msg.context_id, dict(msg.labels), msg.request_id, msg.hints.pool) == ("c1", {"team": "a"}, "r1", "")
    assert origin["sampling.max_tokens"] == "max_completion_tokens"


def test_a_pool_name_forces_the_pool_and_developer_turns_are_system_turns():
    msg, _ = convert.to_generate_request({"model": "small", "messages": [
        {"role": "developer", "content": [{"type": "text", "text": "be brief"}]}, *MSG]}, CFG, chat=True)
    assert msg.hints.pool == "small" and [(m.role, m.content) for m in msg.messages] == [("system", "be brief"), ("user", "hi")]


def test_n_draws_best_of_n_and_reasoning_effort_sets_think():
    msg, origin = chat(n=4)
    assert (msg.hints.strategy, msg.hints.samples, origin["hints.samples"]) == ("best_of_n", 4, "n")
    for effort, budget in (("low", 128), ("medium", 256), ("high", 512)):
        msg, origin = chat(reasoning_effort=effort)
        assert (msg.hints.strategy, msg.hints.thinking_budget) == ("think", budget)
        assert origin["hints.thinking_budget"] == "reasoning_effort"
    msg, _ = chat(reasoning_effort="none")
    assert msg.hints.thinking_budget == 0 and msg.hints.strategy == ""


def test_reasoning_effort_needs_a_thinking_pool():
    with pytest.raises(E.InvalidArgument) as exc:
        convert.to_generate_request({"model": "small", "messages": MSG, "reasoning_effort": "high"}, CFG, chat=True)
    assert exc.value.field == "reasoning_effort" and "'small'" in exc.value.problem


@pytest.mark.parametrize("kw, param", [
    ({"logprobs": True}, "logprobs"), ({"presence_penalty": 0.5}, "presence_penalty"), ({"foo": 1}, "foo"),
    ({"response_format": {"type": "json_object"}}, "response_format"), ({"ponder": {"speed": 1}}, "ponder.speed"),
])
def test_unsupported_parameters_are_named(kw, param):
    with pytest.raises(convert.UnsupportedParameter) as exc:
        chat(**kw)
    assert exc.value.field == param


def test_neutral_values_of_unimplemented_parameters_pass():
    msg, _ = chat(logprobs=False, presence_penalty=0, frequency_penalty=0.0, response_format={"type": "text"}, store=False)
    assert msg.messages[0].content == "hi"


@pytest.mark.parametrize("body, exc, param", [
    ({"messages": MSG}, E.InvalidArgument, "model"),
    ({"model": "gpt-4o", "messages": MSG}, convert.UnknownModel, "model"),
    ({"model": "ponder/auto", "messages": []}, E.InvalidArgument, "messages"),
    ({"model": "ponder/auto", "messages": MSG, "max_tokens": 2.5}, E.InvalidArgument, "max_tokens"),
    ({"model": "ponder/auto", "messages": MSG, "seed": -1}, E.InvalidArgument, "seed"),
    ({"model": "ponder/auto", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
     convert.UnsupportedParameter, "messages[0].content[0].type"),
])
def test_bad_bodies_name_the_parameter(body, exc, param):
    with pytest.raises(exc) as e:
        convert.to_generate_request(body, CFG, chat=True)
    assert convert.error_param(e.value, {}) == param


def test_completions_take_one_prompt_and_best_of():
    msg, origin = convert.to_generate_request({"model": "ponder/auto", "prompt": ["2+2="], "best_of": 3}, CFG, chat=False)
    assert (msg.prompt, msg.hints.samples, origin["hints.samples"]) == ("2+2=", 3, "best_of")
    with pytest.raises(convert.UnsupportedParameter):
        convert.to_generate_request({"model": "ponder/auto", "prompt": ["a", "b"]}, CFG, chat=False)


def test_router_field_paths_become_the_clients_parameters():
    assert convert.openai_param("sampling.max_tokens", {}) == "max_tokens"
    assert convert.openai_param("sampling.max_tokens", {"sampling.max_tokens": "max_completion_tokens"}) == "max_completion_tokens"
    assert convert.openai_param("sampling.stop[1]", {}) == "stop[1]"
    assert convert.openai_param("budget.max_compute_units", {}) == "ponder.budget.max_compute_units"


def test_every_category_has_an_http_status_and_an_openai_error():
    assert set(E.HTTP_STATUS) == set(E.GRPC_STATUS)
    cases = [(E.InvalidArgument("sampling.top_p", "bad"), 400, "top_p"), (convert.UnknownModel("x", ["a"]), 404, "model"),
             (E.PoolUnavailable("small", "down"), 503, None), (E.PoolOverloaded("small", 9, 8), 429, None),
             (E.DeadlineExceeded("router", 1.0), 504, None), (E.BackendError("sim", "boom"), 500, None),
             (ValueError("bug"), 500, None)]
    for err, status, param in cases:
        code, body = error_body(err)
        assert code == status and body["error"]["param"] == param and body["error"]["message"]
    assert error_body(E.PoolOverloaded("s", 9, 8))[1]["error"]["type"] == "rate_limit_error"


def test_deadline_header():
    assert deadline_s({"x-stainless-timeout": "600"}) == 600.0
    assert deadline_s({"x-ponder-timeout-s": "1.5", "x-stainless-timeout": "600"}) == 1.5
    assert deadline_s({}) is None
    with pytest.raises(E.InvalidArgument):
        deadline_s({"x-ponder-timeout-s": "soon"})


def test_answers_use_openais_usage_shape_and_every_sample_is_a_choice():
    resp = router_pb2.GenerateResponse(request_id="r", text="b", samples=["a", "b"], finish_reason="length",
                                       plan=common_pb2.Plan(pool="small", strategy="best_of_n", samples=2),
                                       usage=common_pb2.Usage(prompt_tokens=5, output_tokens=12, thinking_tokens=4, compute_units=3))
    out = convert.chat_completion(resp, "ponder/auto", created=1)
    assert [c["message"]["content"] for c in out["choices"]] == ["a", "b"] and out["ponder"]["chosen_index"] == 1
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["usage"] == {"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17,
                            "completion_tokens_details": {"reasoning_tokens": 4}}
    assert convert.answer_headers(resp)["x-ponder-compute-units"] == "3"
