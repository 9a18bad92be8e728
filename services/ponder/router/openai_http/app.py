"""The OpenAI-compatible HTTP application (Starlette) over the router's shared ``RequestPath``.

Every generation goes through the same steps as a gRPC call: the body becomes
a ``GenerateRequest`` (``convert``), the request's headers are its metadata
(``authorization``, ``traceparent``), and the deadline comes from
``x-ponder-timeout-s`` or the openai client's ``x-stainless-timeout``.
Errors are answered in OpenAI's shape, ``{"error": {message, type, param,
code}}``, with the HTTP status from ``ponder.common.errors.HTTP_STATUS``.

Streams are server-sent events. The first event is awaited before the
response starts, so a request refused before any output still gets its real
status code; an error after that arrives as a final ``error`` event. A client
that disconnects cancels the pool calls and the request is recorded as
CANCELLED.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Callable

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ponder.common.errors import InvalidArgument, PonderError, http_status, grpc_status, split_field
from ponder.router.convert import plan_to_proto
from ponder.router.openai_http import convert
from ponder.router.request_path import RequestPath
from ponder.v1 import router_pb2

log = logging.getLogger(__name__)
_END = object()  # the end of a stream's events
_TYPE_OF_STATUS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                   404: "invalid_request_error", 409: "conflict_error", 429: "rate_limit_error"}
_CODE_OF_STATUS = {404: "model_not_found", 429: "rate_limit_exceeded", 503: "unavailable", 504: "timeout"}


def error_body(err: BaseException, origin: dict[str, str] | None = None) -> tuple[int, dict]:
    """(HTTP status, OpenAI error object) for any exception; the message names the client's parameter."""
    status = http_status(err)
    message = grpc_status(err)[1]
    param = convert.error_param(err, origin or {}) if isinstance(err, PonderError) else None
    if isinstance(err, InvalidArgument) and param:
        message = f"{param}: {err.problem}"
    elif param:
        message = f"{param}: {split_field(message)[1]}"
    if status == 404 and not isinstance(err, convert.UnknownModel):
        code = "not_found"
    else:
        code = _CODE_OF_STATUS.get(status, "unsupported_parameter" if isinstance(err, convert.UnsupportedParameter) else None)
    kind = _TYPE_OF_STATUS.get(status, "server_error")
    return status, {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(err: BaseException, origin: dict[str, str] | None = None) -> JSONResponse:
    status, body = error_body(err, origin)
    if status >= 500 and not isinstance(err, PonderError):
        log.exception("internal error on the HTTP front", exc_info=err)
    headers = {}
    retry_after = getattr(err, "retry_after_s", None)
    if retry_after is not None:
        headers["retry-after"] = str(max(1, int(retry_after + 0.999)))
    return JSONResponse(body, status_code=status, headers=headers)


def deadline_s(headers) -> float | None:
    """Seconds the client will wait: ``x-ponder-timeout-s``, else ``x-stainless-timeout``; None when neither parses."""
    for name in ("x-ponder-timeout-s", "x-stainless-timeout"):
        v = headers.get(name)
        if v:
            try:
                t = float(v)
            except ValueError:
                raise InvalidArgument(name, f"must be seconds, got {v!r}") from None
            if t > 0:
                return t
    return None


def _sse(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


class _ClosingStream(StreamingResponse):
    """A streaming response that closes its body iterator however it ends (a client gone included)."""

    async def stream_response(self, send) -> None:
        async with contextlib.aclosing(self.body_iterator):
            await super().stream_response(send)


def build_app(path_of: Callable[[], RequestPath]) -> Starlette:
    """The application; ``path_of()`` returns the router's request path (read per request, so reloads apply)."""

    async def generate(request: HttpRequest, chat: bool) -> Response:
        origin: dict[str, str] = {}
        try:
            path = path_of()
            metadata = [(k.lower(), v) for k, v in request.headers.items()]
            await path.admit(metadata, "generate")  # the same keys and tenants as the gRPC door
            try:
                body = json.loads(await request.body() or b"null")
            except ValueError as e:
                raise InvalidArgument("body", f"malformed JSON: {e}") from None
            msg, origin = convert.to_generate_request(body, path.state.cfg, chat)
            remaining = deadline_s(request.headers)
            model = body["model"]
            span = "router.http.chat_completions" if chat else "router.http.completions"
            if body.get("stream"):
                return await _stream(path, msg, metadata, remaining, span, model, chat, body)
            resp = await path.generate(msg, metadata, remaining, span=span)
            out = convert.chat_completion(resp, model) if chat else convert.completion(resp, model)
            return JSONResponse(out, headers=convert.answer_headers(resp))
        except Exception as e:  # noqa: BLE001 - the HTTP front's one error boundary
            return error_response(e, origin)

    async def _stream(path, msg, metadata, remaining, span, model, chat, body) -> Response:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        planned: dict = {}
        queue: asyncio.Queue = asyncio.Queue()

        async def produce() -> None:
            # One task runs the whole request path, so its spans open and close in one context;
            # cancelling this task (the client went away) cancels the pool calls.
            try:
                events = path.stream(msg, metadata, remaining, span=span,
                                     on_plan=lambda rid, plan: planned.update(request_id=rid, plan=plan))
                async with contextlib.aclosing(events):
                    async for ev in events:
                        queue.put_nowait(ev)
                queue.put_nowait(_END)
            except Exception as e:  # noqa: BLE001 - handed to the response, which answers it
                queue.put_nowait(e)

        producer = asyncio.create_task(produce())

        async def stop_producer() -> None:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer

        try:
            first = await queue.get()
        except BaseException:
            await stop_producer()
            raise
        if isinstance(first, BaseException):
            raise first
        rid = planned["request_id"]
        cid, created = (f"chatcmpl-{rid}" if chat else f"cmpl-{rid}"), int(time.time())
        headers = convert.plan_headers(plan_to_proto(planned["plan"], with_candidates=False), rid)

        async def sse():
            started: set[int] = set()
            try:
                ev = first
                while ev is not _END:
                    if isinstance(ev, BaseException):
                        yield _sse(error_body(ev, {})[1])
                        break
                    if ev.HasField("delta"):
                        d = ev.delta
                        yield _sse(convert.chunk(chat, cid, model, created, d.sample_index, d.text, d.thinking,
                                                 first=d.sample_index not in started))
                        started.add(d.sample_index)
                    else:
                        yield _final(ev.final)
                    ev = await queue.get()
                yield b"data: [DONE]\n\n"
            finally:
                await stop_producer()

        def _final(resp: router_pb2.GenerateResponse) -> bytes:
            n = max(1, len(resp.samples))
            out = b""
            for i in range(n):
                c = convert.chunk(chat, cid, model, created, i, finish=convert.finish_reason(resp.finish_reason))
                out += _sse(c)
            tail = convert.chunk(chat, cid, model, created, 0)
            tail["choices"] = []
            tail["usage"] = convert.usage_dict(resp.usage) if include_usage else None
            tail["ponder"] = convert.ponder_dict(resp)
            return out + _sse(tail)

        return _ClosingStream(sse(), media_type="text/event-stream",
                              headers={**headers, "cache-control": "no-cache"})

    async def chat_completions(request: HttpRequest) -> Response:
        return await generate(request, chat=True)

    async def completions(request: HttpRequest) -> Response:
        return await generate(request, chat=False)

    async def models(request: HttpRequest) -> Response:
        cfg = path_of().state.cfg
        data = [{"id": convert.AUTO_MODEL, "object": "model", "created": 0, "owned_by": "ponder",
                 "ponder": {"kind": "router", "policy": cfg.routing.policy.name}}]
        for p in cfg.pools:
            data.append({"id": p.name, "object": "model", "created": 0, "owned_by": "ponder",
                         "ponder": {"kind": "pool", "tier": p.tier, "backend": p.backend.kind, "model": p.model_label()}})
        return JSONResponse({"object": "list", "data": data})

    async def health(request: HttpRequest) -> Response:
        return JSONResponse({"status": "ok"})

    async def not_found(request: HttpRequest, exc) -> Response:
        status = getattr(exc, "status_code", 404)
        return JSONResponse({"error": {"message": f"{request.method} {request.url.path}: {getattr(exc, 'detail', 'not found')}",
                                       "type": "invalid_request_error", "param": None, "code": "not_found" if status == 404 else None}},
                            status_code=status)

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
