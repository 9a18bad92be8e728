"""``openai``: any OpenAI-compatible HTTP server (vLLM, SGLang, llama.cpp server).

Each request is one ``POST {base_url}/completions`` (``/chat/completions`` when
``use_chat``) with ``stream: true``, on one kept-open ``httpx.AsyncClient``.
The answer is Server-Sent Events: each event's ``data:`` holds one JSON chunk
and ``data: [DONE]`` ends the stream. Usage is asked for with
``stream_options.include_usage``; when the server does not send it
(llama-cpp-python's server does not) output tokens are counted as content
chunks and prompt tokens are reported as 0, meaning unknown. Closing the
stream closes the HTTP response, which is how the server learns to stop.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import AsyncIterator, Mapping

import httpx

from ponder.common.config import OpenAIBackend
from ponder.common.errors import BackendError, BackendUnavailable
from ponder.common.telemetry import trace_headers
from ponder.pools.backends.base import Backend, Delta, Done, GenParams, flatten_messages

_ERROR_BODY_CHARS = 500


def request_path(cfg: OpenAIBackend) -> str:
    return "/chat/completions" if cfg.use_chat else "/completions"


def completion_body(params: GenParams, cfg: OpenAIBackend) -> dict:
    """JSON body for ``request_path(cfg)`` (pure; unit-tested).

    Chat bodies carry ``params.messages`` (or the prompt as one user turn);
    completion bodies carry ``params.prompt`` (or the flattened turns).
    ``top_k`` is not in OpenAI's schema but vLLM, SGLang and llama.cpp read
    it; it is left out when 0 or less (disabled).
    """
    body: dict = {
        "model": cfg.model,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if cfg.use_chat:
        turns = params.messages or (("user", params.prompt),)
        body["messages"] = [{"role": role, "content": content} for role, content in turns]
    else:
        body["prompt"] = params.prompt or flatten_messages(params.messages)
    if params.top_k > 0:
        body["top_k"] = params.top_k
    if params.stop:
        body["stop"] = list(params.stop)
    if params.seed is not None:
        body["seed"] = params.seed
    return body


def auth_headers(cfg: OpenAIBackend, environ: Mapping[str, str]) -> dict[str, str]:
    """``Authorization`` header from the variable ``cfg.api_key_env`` names; BackendError if it is unset."""
    if cfg.api_key_env is None:
        return {}
    key = environ.get(cfg.api_key_env)
    if not key:
        raise BackendError("openai", f"api_key_env names {cfg.api_key_env!r} but that environment variable is unset")
    return {"Authorization": f"Bearer {key}"}


def error_message(body: bytes) -> str:
    """The server's own words from an error body: OpenAI ``{"error": {"message"}}``, FastAPI ``detail``, or text."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        for value in (err, doc.get("detail"), doc.get("message")):
            if value:
                return value if isinstance(value, str) else json.dumps(value)
    text = body.decode("utf-8", "replace").strip()
    return text[:_ERROR_BODY_CHARS] or "(empty body)"


class SSEParser:
    """Incremental Server-Sent Events decoder: feed lines, get each event's data.

    Per the SSE spec an event ends at a blank line, its ``data:`` lines are
    joined with newlines, one space after the colon is dropped, and lines
    starting with ``:`` are comments (keep-alives). Other fields are ignored.
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """Data of the event this line completes, else None."""
        line = line.rstrip("\r\n")
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def flush(self) -> str | None:
        """Data of a pending event (a stream may end without the final blank line)."""
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return data


@dataclasses.dataclass
class ChunkReader:
    """Folds streamed chunks into text pieces, a finish reason and token counts.

    Each chunk with non-empty text counts as one token (role headers and
    closing chunks carry none); the server's ``usage``, when present,
    overrides that count.
    """

    chat: bool
    chunks: int = 0
    finish_reason: str | None = None
    usage: dict | None = None

    def add(self, chunk: dict) -> str | None:
        """Text piece this chunk adds (None if it adds no token); BackendError for an error chunk."""
        if not isinstance(chunk, dict):
            raise BackendError("openai", f"stream chunk is not a JSON object: {chunk!r}")
        if chunk.get("error"):
            raise BackendError("openai", f"server error mid-stream: {error_message(json.dumps(chunk).encode())}")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        choices = chunk.get("choices") or []
        if not choices:
            return None
        choice = choices[0]
        finish = choice.get("finish_reason")
        if finish:
            self.finish_reason = finish
        text = (choice.get("delta") or {}).get("content") if self.chat else choice.get("text")
        if not text:
            return None
        self.chunks += 1
        return text

    def done(self) -> Done:
        usage = self.usage or {}
        return Done(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or self.chunks),
            finish_reason=self.finish_reason or "stop",
        )


class OpenAICompatBackend(Backend):
    kind = "openai"

    def __init__(self, cfg: OpenAIBackend, client: httpx.AsyncClient | None = None):
        """``client`` replaces the backend's own (tests); the caller then closes it."""
        self.cfg = cfg
        self._client = client
        self._owns_client = client is None
        self._headers: dict[str, str] | None = None

    @property
    def model(self) -> str:
        return self.cfg.model

    async def start(self) -> None:
        if self._headers is None:
            self._headers = auth_headers(self.cfg, os.environ)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.cfg.request_timeout_s))
            self._owns_client = True

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

    async def stream(self, params: GenParams) -> AsyncIterator[Delta | Done]:
        if self._client is None or self._headers is None:
            await self.start()
        url = self.cfg.base_url + request_path(self.cfg)
        # The pool's span travels on, so a server that traces (vLLM, SGLang with OTel on) continues it.
        headers = {**self._headers, **trace_headers()}
        if params.request_id:
            headers["X-Request-Id"] = params.request_id
        request = self._client.build_request("POST", url, json=completion_body(params, self.cfg), headers=headers)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.ConnectError as e:
            raise BackendUnavailable("openai", f"cannot connect to {url}: {e}") from e
        except httpx.TimeoutException as e:
            raise BackendUnavailable("openai", f"no answer from {url} within {self.cfg.request_timeout_s}s") from e
        except httpx.HTTPError as e:
            raise BackendError("openai", f"POST {url} failed: {type(e).__name__}: {e}") from e
        lines = response.aiter_lines()
        try:
            if response.status_code >= 400:
                body = await response.aread()
                err = BackendUnavailable if response.status_code in (502, 503, 504) else BackendError
                raise err("openai", f"POST {url} returned HTTP {response.status_code}: {error_message(body)}")
            reader = ChunkReader(chat=self.cfg.use_chat)
            parser = SSEParser()
            while True:
                try:
                    data = parser.feed(await anext(lines))
                except StopAsyncIteration:
                    data = parser.flush()
                    if data is None:
                        if reader.finish_reason is None:
                            cut = f"{url} ended the stream before [DONE] or a finish reason"
                            raise BackendError("openai", cut) from None
                        break
                if data is None:
                    continue
                if data.strip() == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError as e:
                    raise BackendError("openai", f"{url} sent a stream event that is not JSON: {data[:200]!r}") from e
                text = reader.add(chunk)
                if text is not None:
                    yield Delta(text, 1)
        except httpx.TimeoutException as e:
            raise BackendError("openai", f"{url} sent nothing for {self.cfg.request_timeout_s}s") from e
        except httpx.HTTPError as e:
            raise BackendError("openai", f"reading the stream from {url} failed: {type(e).__name__}: {e}") from e
        finally:
            await lines.aclose()
            await response.aclose()
        yield reader.done()
