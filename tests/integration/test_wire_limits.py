"""Bad input at the wire, over real gRPC: oversized messages, malformed ids, random bytes."""
from __future__ import annotations

import grpc
import pytest

from ponder.v1 import router_pb2

pytestmark = pytest.mark.integration


async def test_a_message_over_the_limit_is_refused_before_parsing(sim_stack):
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="x" * (9 * 1024 * 1024)), timeout=10)
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.aio.AioRpcError) as ei:  # under the byte limit, over routing.max_prompt_chars
        await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="x" * (5 * 1024 * 1024)), timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT and ei.value.details().startswith("prompt")


@pytest.mark.parametrize("field,value", [
    ("context_id", "ponder:ctx:*"), ("context_id", "a b"), ("context_id", "-x"), ("request_id", "has space"),
    ("request_id", "new\nline"),
])
async def test_ids_that_would_reach_redis_keys_are_checked(sim_stack, field, value):
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="hi", **{field: value}), timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT and ei.value.details().startswith(field)
