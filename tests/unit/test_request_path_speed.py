"""What keeps the request path lean: the servers' event loop, the startup heap kept out of the
collector's way, the error boundary applied once at registration (generic handlers included),
non-recording spans when nothing exports them, and cached metric children."""
from __future__ import annotations

import asyncio
import gc

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.common import eventloop
from ponder.common import errors as E
from ponder.common.grpcutil import _BoundedGeneric, create_server, stop_server
from ponder.common.telemetry import Tracing, extract_metadata, inject_metadata
from ponder.common.config import parse_config
from ponder.router.metrics import RouterMetrics
from ponder.v1 import pool_pb2, pool_pb2_grpc


def test_loop_factory_choices(monkeypatch):
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert eventloop.loop_factory() is uvloop.new_event_loop  # installed: the default
    assert eventloop.loop_factory("asyncio") is None
    assert eventloop.loop_factory(" UVLOOP ") is uvloop.new_event_loop
    monkeypatch.setenv(eventloop.ENV, "asyncio")
    assert eventloop.loop_factory() is None
    with pytest.raises(ValueError, match="PONDER_EVENT_LOOP='tokio'"):
        eventloop.loop_factory("tokio")


def test_run_serves_a_grpc_round_trip_on_uvloop():
    uvloop = pytest.importorskip("uvloop")

    class Echo(pool_pb2_grpc.ModelPoolServicer):
        async def Generate(self, request, context):
            return pool_pb2.PoolGenerateResponse(text=request.prompt.upper())

    async def main():
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        server, port, health = create_server("127.0.0.1:0", lambda s: pool_pb2_grpc.add_ModelPoolServicer_to_server(Echo(), s), [])
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                return (await pool_pb2_grpc.ModelPoolStub(ch).Generate(pool_pb2.PoolGenerateRequest(prompt="hi"))).text
        finally:
            await stop_server(server, health, [], 0)

    assert eventloop.run(main()) == "HI"


def test_freeze_startup_heap_moves_live_objects_out_of_the_collector():
    try:
        n = eventloop.freeze_startup_heap()
        assert n > 1000 and gc.get_freeze_count() == n
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


class Failing(pool_pb2_grpc.ModelPoolServicer):
    async def Generate(self, request, context):
        raise E.PoolUnavailable("small", "gone")


async def test_the_boundary_covers_services_registered_only_as_generic_handlers():
    def register(server):  # how older generated code and hand-written services register
        handlers = {"Generate": grpc.unary_unary_rpc_method_handler(
            Failing().Generate, request_deserializer=pool_pb2.PoolGenerateRequest.FromString,
            response_serializer=pool_pb2.PoolGenerateResponse.SerializeToString)}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("ponder.v1.ModelPool", handlers),))

    server, port, health = create_server("127.0.0.1:0", register, [])
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = pool_pb2_grpc.ModelPoolStub(ch)
            for _ in range(2):  # the second call takes the cached wrapped handler
                with pytest.raises(grpc.aio.AioRpcError) as ei:
                    await stub.Generate(pool_pb2.PoolGenerateRequest(prompt="x"))
                assert ei.value.code() == grpc.StatusCode.UNAVAILABLE and "gone" in ei.value.details()
            # Bytes that are no PoolGenerateRequest: INVALID_ARGUMENT naming the request, not UNKNOWN.
            raw = ch.unary_unary("/ponder.v1.ModelPool/Generate", request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
            with pytest.raises(grpc.aio.AioRpcError) as ei:
                await raw(b"\xff\xff\xff")
            assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT and ei.value.details().startswith("request:")
    finally:
        await stop_server(server, health, [], 0)


def test_generic_handlers_are_wrapped_once_per_method_and_rewrapped_when_they_change():
    class Details:
        def __init__(self, method):
            self.method = method

    first = grpc.unary_unary_rpc_method_handler(lambda r, c: r)
    second = grpc.unary_unary_rpc_method_handler(lambda r, c: r)

    class Inner(grpc.GenericRpcHandler):
        current = first

        def service(self, details):
            return self.current if details.method == "/s/M" else None

    inner = Inner()
    g = _BoundedGeneric(inner)
    a, b = g.service(Details("/s/M")), g.service(Details("/s/M"))
    assert a is b and a is not first and a.unary_unary is not first.unary_unary
    inner.current = second
    assert g.service(Details("/s/M")) is not a
    assert g.service(Details("/s/Other")) is None


def test_without_an_exporter_spans_do_not_record_but_trace_ids_still_flow():
    tracer = Tracing("t").tracer
    with tracer.start_as_current_span("root") as root:
        assert not root.is_recording() and root.get_span_context().is_valid
        md = dict(inject_metadata())
        assert md["traceparent"].split("-")[1] == format(root.get_span_context().trace_id, "032x")
    # A caller that sampled its trace is followed: the span records, so the sampled flag passes on.
    sampled = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    with tracer.start_as_current_span("child", context=extract_metadata(sampled)) as child:
        assert child.is_recording()
        assert child.get_span_context().trace_id == 0x0AF7651916CD43DD8448EB211C80319C
        assert dict(inject_metadata())["traceparent"].endswith("-01")
    assert trace.get_current_span().get_span_context().is_valid is False


def test_with_an_exporter_every_span_records():
    spans = InMemorySpanExporter()
    tracing = Tracing("t", spans, simple=True)
    with tracing.tracer.start_as_current_span("root") as root:
        assert root.is_recording()
    assert [s.name for s in spans.get_finished_spans()] == ["root"]


def test_metric_children_are_cached_and_count_right():
    cfg = parse_config({})
    m = RouterMetrics(cfg.pools)
    pool = cfg.pools[0].name
    for _ in range(3):
        m.answered(pool, "single", "OK", 2.0, 0.01)
        m.tenant_answered("acme", "OK", 2.0)
    reg = m.registry
    assert reg.get_sample_value("ponder_router_requests_total", {"pool": pool, "strategy": "single", "code": "OK"}) == 3
    assert reg.get_sample_value("ponder_router_compute_units_total", {"pool": pool}) == 6.0
    assert reg.get_sample_value("ponder_router_latency_seconds_count", {"pool": pool}) == 3
    assert reg.get_sample_value("ponder_router_tenant_requests_total", {"tenant": "acme", "code": "OK"}) == 3
    assert reg.get_sample_value("ponder_router_tenant_compute_units_total", {"tenant": "acme"}) == 6.0
    assert len(m._pool_children) == 1 and len(m._tenant_children) == 1
