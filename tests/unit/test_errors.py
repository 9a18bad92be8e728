"""The one error table: every category maps to one status; the boundary answers with it."""
from __future__ import annotations

import grpc
import pytest

from ponder.common import errors as E
from ponder.common.grpcutil import create_server, stop_server
from ponder.v1 import pool_pb2, pool_pb2_grpc


@pytest.mark.parametrize("cls,code", [
    (E.UnknownPool, grpc.StatusCode.INVALID_ARGUMENT), (E.BudgetInfeasible, grpc.StatusCode.INVALID_ARGUMENT),
    (E.PoolUnavailable, grpc.StatusCode.UNAVAILABLE), (E.BackendUnavailable, grpc.StatusCode.UNAVAILABLE),
    (E.PoolOverloaded, grpc.StatusCode.RESOURCE_EXHAUSTED), (E.BackendError, grpc.StatusCode.INTERNAL),
    (E.ConfigError, grpc.StatusCode.FAILED_PRECONDITION), (E.DependencyMissing, grpc.StatusCode.FAILED_PRECONDITION),
])
def test_concrete_errors_take_their_categorys_status(cls, code):
    assert E.status_of(cls) == code


def test_every_ponder_error_in_the_package_has_a_category():
    import importlib
    import pkgutil

    import ponder

    for m in pkgutil.walk_packages(ponder.__path__, "ponder."):
        if m.name.startswith(("ponder.v1", "ponder.pools.serve_app", "ponder.pools.backends.vllm")):
            continue
        try:
            importlib.import_module(m.name)
        except ImportError:
            continue
    seen, todo = set(), [E.PonderError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    uncategorised = [c for c in seen if not any(b in E.GRPC_STATUS and b is not E.PonderError for b in c.__mro__)]
    assert not uncategorised, f"errors without a category: {uncategorised}"
    assert not [c for c in seen if "code" in vars(c)], "status codes are set only in the table"


def test_from_status_round_trips_the_category():
    for cls, code in E.GRPC_STATUS.items():
        if cls is E.PonderError:
            continue
        err = E.from_status(code, "x")
        assert isinstance(err, cls) and E.grpc_status(err) == (code, "x")


def test_non_ponder_errors_are_internal():
    assert E.grpc_status(ValueError("boom"))[0] == grpc.StatusCode.INTERNAL


class Failing(pool_pb2_grpc.ModelPoolServicer):
    async def Generate(self, request, context):
        raise E.BudgetInfeasible("budget.max_compute_units", "too small")

    async def GenerateStream(self, request, context):
        yield pool_pb2.PoolGenerateChunk(delta={"text": "a"})
        raise E.PoolUnavailable("small", "gone")

    async def Stats(self, request, context):
        raise KeyError("bug")


async def test_the_interceptor_is_the_boundary_of_every_server():
    server, port, health = create_server("127.0.0.1:0", lambda s: pool_pb2_grpc.add_ModelPoolServicer_to_server(Failing(), s), [])
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = pool_pb2_grpc.ModelPoolStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as ei:
                await stub.Generate(pool_pb2.PoolGenerateRequest(prompt="x"))
            assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert ei.value.details() == "budget.max_compute_units: too small"
            got = []
            with pytest.raises(grpc.aio.AioRpcError) as ei:
                async for chunk in stub.GenerateStream(pool_pb2.PoolGenerateRequest(prompt="x")):
                    got.append(chunk.delta.text)
            assert got == ["a"] and ei.value.code() == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(grpc.aio.AioRpcError) as ei:
                await stub.Stats(pool_pb2.PoolStatsRequest())
            assert ei.value.code() == grpc.StatusCode.INTERNAL and "KeyError" in ei.value.details()
    finally:
        await stop_server(server, health, [], 0)
