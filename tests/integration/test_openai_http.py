"""The OpenAI-compatible HTTP front of a real router (real gRPC pools running the ``sim``
backend, a latency-model test double; a real redis-server), driven by the official
``openai`` client (sync, async, streaming), raw HTTP and ``curl``."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import httpx
import openai
import pytest
import redis.asyncio as aioredis

from ponder.common.config import PonderConfig, PoolConfig, RouterConfig, SimBackend, Speed, Thinking
from ponder.common.grpcutil import stop_server
from ponder.common.telemetry import Tracing
from ponder.pools.servicer import SERVICE as POOL_SERVICE, start_standalone
from ponder.router.server import start_router
from ponder.v1 import router_pb2, router_pb2_grpc

pytestmark = pytest.mark.integration
SPEED = Speed(ttft_ms=1, prefill_tokens_per_s=1e6, decode_tokens_per_s=1000, concurrent_samples=64)
MSG = [{"role": "user", "content": "The capital of France is"}]


def config() -> PonderConfig:
    """Two sim pools like the gRPC tests', plus a slow one for dropped streams."""
    return PonderConfig(
        pools=[
            PoolConfig(name="small", backend=SimBackend(ttft_ms=1, tpot_ms=1, output_tokens=8), speed=SPEED),
            PoolConfig(name="reasoning", tier="reasoning", backend=SimBackend(ttft_ms=1, tpot_ms=1, output_tokens=8),
                       thinking=Thinking(budget_tokens=8), cost={"prompt_token_cu": 0.2, "output_token_cu": 4.0}, speed=SPEED),
            PoolConfig(name="slow", backend=SimBackend(ttft_ms=1, tpot_ms=20, output_tokens=400), speed=SPEED,
                       max_tokens_default=400),
        ],
        router=RouterConfig(port=0),
    )


@pytest.fixture
async def front(redis_url, redis_client):
    import grpc
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    tracing = Tracing("ponder-test", spans, simple=True)
    cfg = config()
    pools = {}
    for p in cfg.pools:
        pools[p.name] = await start_standalone(p, "127.0.0.1:0", tracing)
        p.address = f"127.0.0.1:{pools[p.name][1]}"
    handle = await start_router(cfg, None, redis_url, tracing, address="127.0.0.1:0", http_address="127.0.0.1:0")
    channel = grpc.aio.insecure_channel(handle.address)
    handle.stub, handle.pools, handle.spans, handle.redis_url = router_pb2_grpc.RouterStub(channel), pools, spans, redis_url
    yield handle
    await channel.close()
    await handle.stop(0)
    for server, _, engine, health in pools.values():
        await stop_server(server, health, [POOL_SERVICE], 0)
        await engine.close()


async def outcomes(url: str, n: int, timeout_s: float = 5.0) -> list[dict]:
    """The first ``n`` outcome records (waiting for the batched writer)."""
    r = aioredis.Redis.from_url(url)
    try:
        for _ in range(int(timeout_s / 0.05)):
            rows = await r.xrange("ponder:outcomes")
            if len(rows) >= n:
                return [{k.decode(): v.decode() for k, v in f.items()} for _, f in rows]
            await asyncio.sleep(0.05)
        raise AssertionError(f"{n} outcome records expected, got {len(rows)}")
    finally:
        await r.aclose()


async def test_sync_client_chat_completion_carries_plan_usage_and_headers(front):
    def call():
        client = openai.OpenAI(base_url=front.http_url, api_key="sk-test")
        return client.chat.completions.with_raw_response.create(model="ponder/auto", messages=MSG, max_tokens=16)

    raw = await asyncio.to_thread(call)
    resp = raw.parse()
    assert resp.choices[0].message.content.startswith("[simulated]")
    assert resp.choices[0].finish_reason in ("stop", "length") and resp.model == "ponder/auto"
    assert (resp.usage.completion_tokens, resp.usage.completion_tokens_details.reasoning_tokens) == (8, 0)
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + 8
    extra = resp.model_extra["ponder"]
    assert extra["plan"]["pool"] == "small" and extra["plan"]["strategy"] == "single"
    assert extra["usage"]["compute_units"] > 0 and extra["simulated"] is True
    assert raw.headers["x-ponder-pool"] == "small" and raw.headers["x-ponder-request-id"] == extra["request_id"]
    assert float(raw.headers["x-ponder-compute-units"]) == pytest.approx(extra["usage"]["compute_units"], rel=1e-5)
    # The same request path as gRPC: one span and one outcome record.
    (out,) = await outcomes(front.redis_url, 1)
    assert out["request_id"] == extra["request_id"] and out["status"] == "OK" and out["pool"] == "small"
    (span,) = [s for s in front.spans.get_finished_spans() if s.name == "router.http.chat_completions"]
    assert span.attributes["ponder.pool"] == "small"
    # GenAI semantic conventions beside ponder's plan attributes.
    a = span.attributes
    assert (a["gen_ai.operation.name"], a["gen_ai.request.model"], a["gen_ai.request.max_tokens"]) == ("chat", "ponder/auto", 16)
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (resp.usage.prompt_tokens, 8)
    assert a["gen_ai.response.id"] == extra["request_id"]
    assert tuple(a["gen_ai.response.finish_reasons"]) == (resp.choices[0].finish_reason,)


async def test_async_client_streams_every_sample_as_a_choice(front):
    client = openai.AsyncOpenAI(base_url=front.http_url, api_key="sk-test")
    stream = await client.chat.completions.create(model="ponder/auto", messages=MSG, n=3, stream=True,
                                                  stream_options={"include_usage": True})
    text: dict[int, str] = {}
    finished, usage, extra = set(), None, None
    async for chunk in stream:
        for c in chunk.choices:
            text[c.index] = text.get(c.index, "") + (c.delta.content or "")
            if c.finish_reason:
                finished.add(c.index)
        if chunk.usage is not None:
            usage, extra = chunk.usage, chunk.model_extra["ponder"]
    assert set(text) == finished == {0, 1, 2}
    assert all(t.startswith("[simulated]") for t in text.values())
    assert usage.completion_tokens == 3 * 8
    assert extra["plan"]["strategy"] == "best_of_n" and extra["plan"]["samples"] == 3
    await client.close()


async def test_text_completion_best_of_and_a_forced_pool(front):
    client = openai.AsyncOpenAI(base_url=front.http_url, api_key="sk-test")
    resp = await client.completions.create(model="small", prompt="2+2=", best_of=3, seed=7)
    assert len(resp.choices) == 1 and resp.choices[0].text.startswith("[simulated]")
    plan = resp.model_extra["ponder"]["plan"]
    assert (plan["pool"], plan["strategy"], plan["samples"]) == ("small", "best_of_n", 3)
    stream = await client.completions.create(model="reasoning", prompt="hi", stream=True)
    parts = [c.choices[0].text async for c in stream if c.choices]
    assert "".join(parts).startswith("[simulated]")
    await client.close()


async def test_reasoning_effort_sets_the_thinking_budget(front):
    client = openai.AsyncOpenAI(base_url=front.http_url, api_key="sk-test")
    high = await client.chat.completions.create(model="ponder/auto", messages=MSG, reasoning_effort="high")
    plan = high.model_extra["ponder"]["plan"]
    assert (plan["pool"], plan["strategy"], plan["thinking_budget"]) == ("reasoning", "think", 16)  # 2 x budget_tokens 8
    reasoning = high.usage.completion_tokens_details.reasoning_tokens
    assert 0 < reasoning <= 16 and reasoning == high.model_extra["ponder"]["usage"]["thinking_tokens"]
    low = await client.chat.completions.create(model="reasoning", messages=MSG, reasoning_effort="low")
    assert low.model_extra["ponder"]["plan"]["thinking_budget"] == 4
    none = await client.chat.completions.create(model="small", messages=MSG, reasoning_effort="minimal")
    assert none.usage.completion_tokens_details.reasoning_tokens == 0
    await client.close()


async def test_models_health_and_status_report_the_front(front):
    client = openai.AsyncOpenAI(base_url=front.http_url, api_key="sk-test")
    ids = [m.id async for m in client.models.list()]
    assert ids == ["ponder/auto", "small", "reasoning", "slow"]
    async with httpx.AsyncClient() as http:
        health = await http.get(front.http_url.removesuffix("/v1") + "/health")
        missing = await http.get(front.http_url + "/nothing")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    status = await front.stub.Status(router_pb2.StatusRequest(), timeout=10)
    assert status.http.url == front.http_url and front.http_url.endswith("/v1")
    await client.close()


async def test_cli_status_json_reports_the_http_url(front, capsys):
    from ponder import cli

    rc = await asyncio.to_thread(cli.main, ["status", "--json", "--address", front.address])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["http"]["url"] == front.http_url


@pytest.mark.parametrize(
    "body, status, param",
    [
        ({"model": "nope", "messages": MSG}, 404, "model"),
        ({"model": "ponder/auto", "messages": MSG, "logprobs": True}, 400, "logprobs"),
        ({"model": "ponder/auto", "messages": MSG, "tools": [{"type": "function"}]}, 400, "tools"),
        ({"model": "ponder/auto", "messages": MSG, "frobnicate": 1}, 400, "frobnicate"),
        ({"model": "ponder/auto", "messages": [{"role": "user", "content": "x" * 40_000}]}, 400, "messages"),
        ({"model": "ponder/auto", "messages": [{"role": "tool", "content": "x"}]}, 400, "messages[0].role"),
        ({"model": "ponder/auto", "messages": MSG, "temperature": 5}, 400, "temperature"),
        ({"model": "ponder/auto", "messages": MSG, "max_completion_tokens": 0}, 400, "max_completion_tokens"),
        ({"model": "ponder/auto", "messages": MSG, "reasoning_effort": "extreme"}, 400, "reasoning_effort"),
        ({"model": "ponder/auto", "messages": MSG, "ponder": {"budget": {"max_compute_units": 0.01}}}, 400,
         "ponder.budget.max_compute_units"),
        ({"model": "ponder/auto", "messages": MSG, "ponder": {"strategy": "magic"}}, 400, "ponder.strategy"),
        ({"model": "ponder/auto", "messages": MSG, "n": 2, "ponder": {"strategy": "think"}}, 400, "n"),
        ({"model": "ponder/auto", "messages": MSG, "stream": True, "temperature": -1}, 400, "temperature"),
    ],
)
async def test_bad_input_gets_openais_error_shape_naming_the_parameter(front, body, status, param):
    async with httpx.AsyncClient() as http:
        r = await http.post(front.http_url + "/chat/completions", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["message"].startswith(param + ":")
    assert err["type"] == "invalid_request_error"


async def test_malformed_json_and_pool_outage_and_deadline(front):
    async with httpx.AsyncClient() as http:
        bad = await http.post(front.http_url + "/chat/completions", content=b"{not json",
                              headers={"content-type": "application/json"})
        late = await http.post(front.http_url + "/chat/completions", headers={"x-ponder-timeout-s": "0.05"},
                               json={"model": "slow", "messages": MSG})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "body"
    assert late.status_code == 504 and late.json()["error"]["code"] == "timeout"
    server, _, engine, health = front.pools["small"]
    await stop_server(server, health, [POOL_SERVICE], 0)
    client = openai.AsyncOpenAI(base_url=front.http_url, api_key="sk-test", max_retries=0)
    with pytest.raises(openai.APIStatusError) as exc:
        await client.chat.completions.create(model="small", messages=MSG)
    assert exc.value.status_code == 503 and "unavailable" in exc.value.message
    await client.close()


async def test_a_dropped_stream_cancels_the_pool_call(front):
    engine = front.pools["slow"][2]
    async with httpx.AsyncClient() as http:
        async with http.stream("POST", front.http_url + "/chat/completions",
                               json={"model": "slow", "messages": MSG, "stream": True}) as r:
            assert r.status_code == 200 and r.headers["x-ponder-pool"] == "slow"
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    break  # one chunk, then the client goes away
    for _ in range(100):
        if engine.stats()["running"] == 0:
            break
        await asyncio.sleep(0.02)
    stats = engine.stats()
    assert stats["running"] == 0 and stats["output_tokens_total"] < 400
    (out,) = await outcomes(front.redis_url, 1)
    assert out["status"] == "CANCELLED" and out["pool"] == "slow"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
async def test_curl(front):
    body = json.dumps({"model": "ponder/auto", "messages": MSG})
    cmd = ["curl", "-sS", "-D", "-", front.http_url + "/chat/completions", "-H", "content-type: application/json",
           "-H", "authorization: Bearer sk-test", "-d", body]
    out = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=30)
    head, _, payload = out.stdout.replace("\r\n", "\n").partition("\n\n")
    assert head.startswith("HTTP/1.1 200") and "x-ponder-pool: small" in head.lower()
    assert json.loads(payload)["choices"][0]["message"]["content"].startswith("[simulated]")


async def test_a_taken_http_port_is_a_config_error_naming_the_field(front):
    from ponder.common.errors import ConfigError

    port = front.http_url.rsplit(":", 1)[1].split("/")[0]
    with pytest.raises(ConfigError) as exc:
        await start_router(front.servicer.state.cfg, None, None, Tracing("t"), address="127.0.0.1:0",
                           http_address=f"127.0.0.1:{port}")
    assert exc.value.problems[0][0] == "router.http_port"
