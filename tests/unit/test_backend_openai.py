"""openai backend: request mapping, SSE parsing and error mapping, against httpx's mock transport."""
from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest

from ponder.common.config import OpenAIBackend
from ponder.common.errors import BackendError, BackendUnavailable, grpc_status
from ponder.pools.backends.base import Delta, Done, GenParams
from ponder.pools.backends.openai import (
    ChunkReader,
    OpenAICompatBackend,
    SSEParser,
    auth_headers,
    completion_body,
    error_message,
    request_path,
)

BASE = "http://model-server:8000/v1"

# Captured from llama-cpp-python's server (no usage in streams), trimmed ids.
LLAMACPP_SSE = (
    'data: {"id": "cmpl-1", "object": "text_completion", "model": "x", "choices": '
    '[{"text": " the", "index": 0, "logprobs": null, "finish_reason": null}]}\r\n\r\n'
    'data: {"id": "cmpl-1", "object": "text_completion", "model": "x", "choices": '
    '[{"text": " capital", "index": 0, "logprobs": null, "finish_reason": null}]}\r\n\r\n'
    'data: {"id": "cmpl-1", "object": "text_completion", "model": "x", "choices": '
    '[{"text": "", "index": 0, "logprobs": null, "finish_reason": "length"}]}\r\n\r\n'
    "data: [DONE]\r\n\r\n"
)

# vLLM style: usage in a last chunk with no choices, then [DONE]; a keep-alive comment too.
VLLM_CHAT_SSE = (
    'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}\n\n'
    ": keep-alive\n\n"
    'data: {"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null}\n\n'
    'data: {"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}],"usage":null}\n\n'
    'data: {"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}],"usage":null}\n\n'
    'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}\n\n'
    "data: [DONE]\n\n"
)


def cfg(**kw) -> OpenAIBackend:
    return OpenAIBackend(base_url=BASE, model="m", **kw)


def params(**kw) -> GenParams:
    kw.setdefault("prompt", "Say hi")
    kw.setdefault("max_tokens", 8)
    return GenParams(**kw)


class Recorder:
    """A mock transport handler that records requests and answers with canned SSE."""

    def __init__(self, body: str | bytes = LLAMACPP_SSE, status: int = 200, content_type="text/event-stream"):
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.content_type = content_type
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, content=self.body, headers={"content-type": self.content_type})


def backend(handler, **kw) -> OpenAICompatBackend:
    return OpenAICompatBackend(cfg(**kw), client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


async def collect(b: OpenAICompatBackend, p: GenParams) -> list:
    return [item async for item in b.stream(p)]


# ---------------------------------------------------------------- request mapping
def test_completion_body_maps_every_field():
    p = params(temperature=0.0, top_p=0.5, top_k=20, stop=("\n", "END"), seed=7, max_tokens=5)
    assert completion_body(p, cfg()) == {
        "model": "m",
        "prompt": "Say hi",
        "max_tokens": 5,
        "temperature": 0.0,
        "top_p": 0.5,
        "top_k": 20,
        "stop": ["\n", "END"],
        "seed": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert request_path(cfg()) == "/completions"


def test_completion_body_leaves_out_unset_options():
    body = completion_body(params(top_k=0), cfg())
    assert not {"top_k", "stop", "seed", "messages"} & set(body)


def test_completion_body_flattens_messages_without_chat():
    p = params(prompt="", messages=(("system", "Be brief."), ("user", "Hi")))
    body = completion_body(p, cfg())
    assert body["prompt"] == "System: Be brief.\nUser: Hi\nAssistant:"
    assert "messages" not in body


def test_chat_body_sends_messages_or_the_prompt_as_one_user_turn():
    c = cfg(use_chat=True)
    assert request_path(c) == "/chat/completions"
    turns = completion_body(params(messages=(("system", "S"), ("user", "U"))), c)["messages"]
    assert turns == [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    body = completion_body(params(prompt="Just this"), c)
    assert body["messages"] == [{"role": "user", "content": "Just this"}]
    assert "prompt" not in body


def test_auth_header_comes_from_the_named_variable():
    assert auth_headers(cfg(), {"OPENAI_API_KEY": "sk-x"}) == {}
    assert auth_headers(cfg(api_key_env="POOL_KEY"), {"POOL_KEY": "sk-1"}) == {"Authorization": "Bearer sk-1"}
    with pytest.raises(BackendError, match="POOL_KEY"):
        auth_headers(cfg(api_key_env="POOL_KEY"), {})


# ---------------------------------------------------------------- SSE parsing
def test_sse_parser_splits_events_and_follows_the_spec():
    parser = SSEParser()
    text = ": comment\nevent: message\ndata: {\"a\":\ndata:1}\nid: 3\n\ndata:[DONE]\n"
    out = [d for line in text.splitlines() if (d := parser.feed(line)) is not None]
    assert out == ['{"a":\n1}']  # two data lines join with a newline; the last event has no blank line yet
    assert parser.flush() == "[DONE]"
    assert parser.flush() is None


def test_chunk_reader_counts_content_chunks_when_no_usage():
    reader = ChunkReader(chat=False)
    texts = []
    for event in LLAMACPP_SSE.split("\r\n\r\n"):
        data = event.removeprefix("data: ")
        if data and data != "[DONE]":
            texts.append(reader.add(json.loads(data)))
    assert texts == [" the", " capital", None]
    assert reader.done() == Done(prompt_tokens=0, output_tokens=2, finish_reason="length")


def test_chunk_reader_prefers_server_usage_and_skips_role_header():
    reader = ChunkReader(chat=True)
    assert reader.add({"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}) is None
    assert reader.add({"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]}) == "ok"
    reader.add({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 4}})
    assert reader.done() == Done(11, 4, "stop")


def test_chunk_reader_raises_on_an_error_chunk():
    with pytest.raises(BackendError, match="out of KV cache"):
        ChunkReader(chat=False).add({"error": {"message": "out of KV cache", "code": 500}})


# ---------------------------------------------------------------- the stream, over httpx
async def test_stream_of_completions_without_usage():
    rec = Recorder()
    b = backend(rec)
    items = await collect(b, params(max_tokens=3, request_id="r-1"))
    assert items == [Delta(" the", 1), Delta(" capital", 1), Done(0, 2, "length")]
    (req,) = rec.requests
    assert str(req.url) == BASE + "/completions"
    assert req.headers["x-request-id"] == "r-1"
    assert "authorization" not in req.headers
    assert json.loads(req.content)["max_tokens"] == 3
    await b.close()


async def test_the_pools_trace_context_goes_to_the_server():
    from ponder.common.telemetry import Tracing

    rec = Recorder()
    b = backend(rec)
    await collect(b, params())
    assert "traceparent" not in rec.requests[0].headers  # no span, nothing to continue
    tracing = Tracing("test")
    with tracing.tracer.start_as_current_span("pool.generate") as span:
        await collect(b, params())
    tid = format(span.get_span_context().trace_id, "032x")
    assert rec.requests[1].headers["traceparent"].split("-")[1] == tid
    await b.close()


async def test_stream_of_chat_with_usage_and_api_key(monkeypatch):
    monkeypatch.setenv("POOL_KEY", "sk-secret")
    rec = Recorder(VLLM_CHAT_SSE)
    b = backend(rec, use_chat=True, api_key_env="POOL_KEY")
    items = await collect(b, params(messages=(("user", "hi"),)))
    assert [i.text for i in items if isinstance(i, Delta)] == ["Hel", "lo", "!"]
    assert items[-1] == Done(7, 3, "stop")
    assert str(rec.requests[0].url) == BASE + "/chat/completions"
    assert rec.requests[0].headers["authorization"] == "Bearer sk-secret"


async def test_stream_accepts_an_end_without_done_after_a_finish_reason():
    body = 'data: {"choices":[{"text":"x","finish_reason":"stop"}]}'  # no blank line, no [DONE]
    items = await collect(backend(Recorder(body)), params())
    assert items == [Delta("x", 1), Done(0, 1, "stop")]


async def test_stream_cut_short_is_an_error():
    body = 'data: {"choices":[{"text":"x","finish_reason":null}]}\n\n'
    with pytest.raises(BackendError, match=r"ended the stream before \[DONE\]"):
        await collect(backend(Recorder(body)), params())


async def test_stream_event_that_is_not_json_is_an_error():
    with pytest.raises(BackendError, match="not JSON"):
        await collect(backend(Recorder("data: <html>\n\n")), params())


# ---------------------------------------------------------------- error mapping
@pytest.mark.parametrize(
    "body, expected",
    [
        (b'{"error": {"message": "model xyz not found", "type": "invalid_request_error"}}', "model xyz not found"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b'{"object": "error", "message": "max_tokens too large"}', "max_tokens too large"),
        (b"Bad Gateway", "Bad Gateway"),
        (b"", "(empty body)"),
    ],
)
def test_error_message_extracts_the_servers_words(body, expected):
    assert error_message(body) == expected


async def test_http_error_carries_status_and_message():
    body = b'{"error": {"message": "The model `m` does not exist."}}'
    rec = Recorder(body, status=404, content_type="application/json")
    with pytest.raises(BackendError) as err:
        await collect(backend(rec), params())
    assert "HTTP 404" in err.value.message
    assert "The model `m` does not exist." in err.value.message
    assert err.value.backend == "openai"


async def test_connection_refused_is_unavailable_and_names_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAICompatBackend(OpenAIBackend(base_url=f"http://127.0.0.1:{port}/v1", model="m"))
    with pytest.raises(BackendUnavailable, match=f"cannot connect to http://127.0.0.1:{port}/v1/completions") as err:
        await collect(b, params())
    assert grpc_status(err.value)[0].name == "UNAVAILABLE"  # the router falls back on it
    await b.close()


async def test_an_overloaded_upstream_is_unavailable():
    rec = Recorder(b'{"error": {"message": "busy"}}', status=503, content_type="application/json")
    with pytest.raises(BackendUnavailable, match="HTTP 503"):
        await collect(backend(rec), params())


async def test_missing_api_key_fails_at_start(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    b = OpenAICompatBackend(cfg(api_key_env="NO_SUCH_KEY_VAR"))
    with pytest.raises(BackendError, match="NO_SUCH_KEY_VAR"):
        await b.start()


# ---------------------------------------------------------------- cancellation
class EndlessStream(httpx.AsyncByteStream):
    """One token every 10 ms until closed; records that it was closed."""

    def __init__(self):
        self.sent = 0
        self.closed = asyncio.Event()

    async def __aiter__(self):
        while True:
            self.sent += 1
            yield f'data: {{"choices":[{{"text":"t{self.sent}","finish_reason":null}}]}}\n\n'.encode()
            await asyncio.sleep(0.01)

    async def aclose(self):
        self.closed.set()


async def test_closing_the_stream_closes_the_response():
    stream = EndlessStream()
    b = backend(lambda request: httpx.Response(200, stream=stream, headers={"content-type": "text/event-stream"}))
    gen = b.stream(params(max_tokens=1000))
    first = await anext(gen)
    assert first == Delta("t1", 1)
    await gen.aclose()
    assert stream.closed.is_set()
    sent = stream.sent
    await asyncio.sleep(0.05)
    assert stream.sent == sent  # nothing is read after close


async def test_cancelling_the_consuming_task_closes_the_response():
    stream = EndlessStream()
    b = backend(lambda request: httpx.Response(200, stream=stream, headers={"content-type": "text/event-stream"}))
    got = []

    async def consume():
        async for item in b.stream(params(max_tokens=1000)):
            got.append(item)

    task = asyncio.create_task(consume())
    while len(got) < 3:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(stream.closed.wait(), 1)
