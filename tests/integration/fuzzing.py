"""Fuzzing every public Router RPC over real gRPC: hypothesis-generated protobuf requests and
random byte strings. Shared by tests/integration/test_fuzz_rpcs.py (a small count in `make test`)
and bench/faults.py (the full count).

An answer counts as a crash when the status is UNKNOWN or INTERNAL or the server stops
answering; an INVALID_ARGUMENT must name a field (``field: problem``). Other statuses
(NOT_FOUND for an unknown context, FAILED_PRECONDITION for a task without voting workers)
are allowed and counted in ``non_invalid_argument``.
"""
from __future__ import annotations

import asyncio
import collections
import re
import threading

import grpc
from hypothesis import strategies as st

from ponder.v1 import common_pb2, router_pb2

FIELD_RE = re.compile(r"^[a-z_][a-z0-9_.\[\]]*: ")
CRASH = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}

texts = st.text(max_size=300)
ids = st.one_of(st.just(""), st.text(max_size=140), st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True))
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
u32 = st.integers(0, 2**32 - 1)


@st.composite
def generate_requests(draw) -> router_pb2.GenerateRequest:
    req = router_pb2.GenerateRequest(prompt=draw(texts), context_id=draw(ids), request_id=draw(ids))
    for role, content in draw(st.lists(st.tuples(st.sampled_from(["user", "system", "assistant", "x", ""]), texts),
                                       max_size=3)):
        req.messages.add(role=role, content=content)
    s = req.sampling
    if draw(st.booleans()):
        s.max_tokens = draw(st.one_of(st.integers(0, 2000), u32))
    if draw(st.booleans()):
        s.temperature = draw(st.floats(width=32, allow_nan=True))
    if draw(st.booleans()):
        s.top_p = draw(st.floats(width=32, allow_nan=True))
    s.stop.extend(draw(st.lists(st.text(max_size=20), max_size=10)))
    if draw(st.booleans()):
        req.budget.max_compute_units = draw(floats)
    if draw(st.booleans()):
        req.budget.max_latency_ms = draw(floats)
    h = req.hints
    h.pool = draw(st.sampled_from(["", "small", "reasoning", "nope"]))
    h.strategy = draw(st.sampled_from(["", "single", "best_of_n", "think", "vote", "bad"]))
    if draw(st.booleans()):
        h.samples = draw(st.integers(0, 40))
    if draw(st.booleans()):
        h.thinking_budget = draw(st.integers(0, 10000))
    for k, v in draw(st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3)).items():
        req.labels[k] = v
    return req


def feedback_requests():
    return st.builds(
        lambda rid, c, s: router_pb2.FeedbackRequest(request_id=rid, **({"correct": c} if c is not None else {}),
                                                     **({"score": s} if s is not None else {})),
        ids, st.one_of(st.none(), st.booleans()), st.one_of(st.none(), floats),
    )


# RPC -> (request type, strategy of valid-typed requests)
RPCS = {
    "Generate": generate_requests(),
    "GenerateStream": generate_requests(),
    "Plan": generate_requests(),
    "Feedback": feedback_requests(),
    "Status": st.just(router_pb2.StatusRequest()),
}
STREAMING = {"GenerateStream"}


class Tally:
    def __init__(self):
        self.cases = 0
        self.crashes = 0
        self.non_invalid_argument = 0
        self.unnamed_invalid = 0
        self.codes: collections.Counter[str] = collections.Counter()
        self.examples: list[str] = []

    def add(self, rpc: str, code: grpc.StatusCode, details: str) -> None:
        self.cases += 1
        self.codes[code.name] += 1
        bad = None
        if code in CRASH:
            self.crashes += 1
            bad = "crash"
        elif code == grpc.StatusCode.INVALID_ARGUMENT and not FIELD_RE.match(details):
            self.unnamed_invalid += 1
            bad = "invalid argument without a field"
        elif code not in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT):
            self.non_invalid_argument += 1
        if bad and len(self.examples) < 5:
            self.examples.append(f"{rpc}: {bad}: {code.name} {details[:200]}")

    def summary(self) -> dict:
        return {"cases": self.cases, "crashes": self.crashes, "non_invalid_argument": self.non_invalid_argument,
                "unnamed_invalid_argument": self.unnamed_invalid, "codes": dict(self.codes), "examples": self.examples}


def call(channel: grpc.Channel, rpc: str, payload: bytes, timeout_s: float = 10.0) -> tuple[grpc.StatusCode, str]:
    """Send raw bytes to /ponder.v1.Router/<rpc> on a sync channel; (status, details)."""
    method = f"/ponder.v1.Router/{rpc}"
    try:
        if rpc in STREAMING:
            for _ in channel.unary_stream(method)(payload, timeout=timeout_s):
                pass
        else:
            channel.unary_unary(method)(payload, timeout=timeout_s)
    except grpc.RpcError as e:
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


class BackgroundStack:
    """Sim pools and a router on port 0 running in their own thread's event loop, for sync clients."""

    def __init__(self, cfg, redis_url: str | None):
        self.cfg, self.redis_url = cfg, redis_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.address = ""

    def __enter__(self) -> "BackgroundStack":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        return self

    async def _start(self) -> None:
        from ponder.common.telemetry import Tracing
        from ponder.pools.servicer import start_standalone
        from ponder.router.server import start_router

        tracing = Tracing("ponder-fuzz")
        self.pools = []
        for p in self.cfg.pools:
            server, port, engine, health = await start_standalone(p, "127.0.0.1:0", tracing)
            self.pools.append((server, engine, health))
            p.address = f"127.0.0.1:{port}"
        self.router = await start_router(self.cfg, None, self.redis_url, tracing, address="127.0.0.1:0")
        self.address = self.router.address

    async def _stop(self) -> None:
        from ponder.common.grpcutil import stop_server
        from ponder.pools.servicer import SERVICE

        await self.router.stop(0)
        for server, engine, health in self.pools:
            await stop_server(server, health, [SERVICE], 0)
            await engine.close()

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
