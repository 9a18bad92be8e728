"""openai backend against a real OpenAI-compatible server: llama-cpp-python's, on Gemma 3 270M.

One server per module. Each test compares the backend's stream with what the
same server answers to a plain (non-streamed) request, so the checks hold for
whatever text the model writes.
"""
from __future__ import annotations

import asyncio
import os
import pathlib
import socket
import subprocess
import sys
import time

import httpx
import pytest

from ponder.common.config import OpenAIBackend
from ponder.common.errors import BackendError, BackendUnavailable
from ponder.pools.backends.base import Delta, Done, GenParams
from ponder.pools.backends.openai import OpenAICompatBackend

pytestmark = pytest.mark.integration

MODEL = "gemma-3-270m"
N_CTX = 1024
PROMPT = "Once upon a time"
SERVER_START_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, base_url: str, log: pathlib.Path):
        self.base_url = base_url
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    for module in ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"):
        pytest.importorskip(module, reason="llama.cpp server needs: pip install 'llama-cpp-python[server]'")
    from ponder.common.errors import DependencyMissing
    from ponder.pools.models import ensure_default_gguf

    try:
        model_path = ensure_default_gguf()
    except DependencyMissing as e:
        pytest.skip(str(e))
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", MODEL,
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    srv = Server(f"http://127.0.0.1:{port}/v1", log)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {proc.returncode}:\n{srv.log_text()[-3000:]}")
            try:
                if httpx.get(srv.base_url + "/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server not ready in {SERVER_START_S}s:\n{srv.log_text()[-3000:]}")
            time.sleep(0.2)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
async def backend(server):
    b = OpenAICompatBackend(OpenAIBackend(base_url=server.base_url, model=MODEL, request_timeout_s=60))
    await b.start()
    yield b
    await b.close()


async def plain(server: Server, path: str, **body) -> dict:
    """The server's own non-streamed answer, for comparison."""
    async with httpx.AsyncClient(timeout=60) as c:
        r = await c.post(server.base_url + path, json={"model": MODEL, "temperature": 0, **body})
        r.raise_for_status()
        return r.json()


async def collect(b: OpenAICompatBackend, p: GenParams) -> tuple[str, list[Delta], Done]:
    items = [item async for item in b.stream(p)]
    deltas, done = items[:-1], items[-1]
    assert all(isinstance(d, Delta) for d in deltas)
    assert isinstance(done, Done)
    return "".join(d.text for d in deltas), deltas, done


async def test_stream_matches_the_plain_answer_and_its_usage(server, backend):
    ref = await plain(server, "/completions", prompt=PROMPT, max_tokens=6)
    text, deltas, done = await collect(backend, GenParams(prompt=PROMPT, max_tokens=6, temperature=0.0))
    assert text and text == ref["choices"][0]["text"]
    assert done.output_tokens == ref["usage"]["completion_tokens"] == len(deltas)
    assert done.finish_reason == ref["choices"][0]["finish_reason"]
    assert 0 < done.output_tokens <= 6


async def test_stop_sequence_reaches_the_server(server, backend):
    ref = (await plain(server, "/completions", prompt=PROMPT, max_tokens=8))["choices"][0]["text"]
    words = ref.split()
    assert len(words) >= 3, ref
    stop = " " + words[2]
    text, _, done = await collect(backend, GenParams(prompt=PROMPT, max_tokens=8, temperature=0.0, stop=(stop,)))
    assert text == ref.split(stop)[0]
    assert done.finish_reason == "stop"


async def test_chat_stream_matches_the_plain_chat_answer(server):
    b = OpenAICompatBackend(OpenAIBackend(base_url=server.base_url, model=MODEL, use_chat=True))
    messages = (("user", "Write one word about the sea."),)
    try:
        ref = await plain(server, "/chat/completions", messages=[{"role": "user", "content": messages[0][1]}],
                          max_tokens=8)
        text, _, done = await collect(b, GenParams(prompt="", messages=messages, max_tokens=8, temperature=0.0))
    finally:
        await b.close()
    assert text == (ref["choices"][0]["message"]["content"] or "")
    assert done.finish_reason == ref["choices"][0]["finish_reason"]


async def test_closing_mid_stream_stops_the_server(server, backend):
    # Long enough that finishing it would take the server many seconds on CPU.
    gen = backend.stream(GenParams(prompt=PROMPT, max_tokens=N_CTX - 16, temperature=0.0))
    got = [await anext(gen), await anext(gen)]
    assert all(isinstance(d, Delta) for d in got)
    await gen.aclose()

    deadline = time.monotonic() + 10
    while "Disconnected from client" not in server.log_text():
        assert time.monotonic() < deadline, "server never saw the client go away"
        await asyncio.sleep(0.05)
    # The server runs one request at a time: a quick answer now means the long one stopped.
    t0 = time.monotonic()
    _, _, done = await collect(backend, GenParams(prompt=PROMPT, max_tokens=2, temperature=0.0))
    assert done.output_tokens > 0
    assert time.monotonic() - t0 < 5


async def test_rejected_request_carries_status_and_the_servers_message(backend):
    with pytest.raises(BackendError) as err:
        await collect(backend, GenParams(prompt=PROMPT, max_tokens=4, top_p=1.5))
    assert "HTTP 500" in err.value.message  # this server answers validation errors with 500
    assert "top_p" in err.value.message and "less than or equal to 1" in err.value.message


async def test_stream_that_dies_before_done_is_an_error(backend):
    # Too long a prompt: once streaming has begun this server can only end the stream empty.
    with pytest.raises(BackendError, match=r"ended the stream before \[DONE\]"):
        await collect(backend, GenParams(prompt="word " * (N_CTX * 2), max_tokens=4))


async def test_wrong_base_url_is_a_404(server):
    b = OpenAICompatBackend(OpenAIBackend(base_url=server.base_url.removesuffix("/v1"), model=MODEL))
    try:
        with pytest.raises(BackendError, match=r"/completions returned HTTP 404: Not Found"):
            await collect(b, GenParams(prompt=PROMPT, max_tokens=2))
    finally:
        await b.close()


async def test_connection_refused_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    b = OpenAICompatBackend(OpenAIBackend(base_url=url, model=MODEL))
    try:
        with pytest.raises(BackendUnavailable, match=f"cannot connect to {url}/completions"):
            await collect(b, GenParams(prompt=PROMPT, max_tokens=2))
    finally:
        await b.close()
