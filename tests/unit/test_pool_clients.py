"""map_rpc_error: a pool's gRPC status becomes the router's domain error."""
from __future__ import annotations

import grpc
import pytest

from ponder.common.errors import DeadlineExceeded, InvalidArgument, PoolUnavailable, grpc_status
from ponder.router.clients import PoolCallError, map_rpc_error


def rpc_error(code: grpc.StatusCode, details: str | None) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


def test_unavailable():
    err = map_rpc_error("small", rpc_error(grpc.StatusCode.UNAVAILABLE, "connection refused"), 5.0)
    assert isinstance(err, PoolUnavailable)
    assert (err.pool, err.detail) == ("small", "connection refused")
    assert err.code == grpc.StatusCode.UNAVAILABLE


def test_unavailable_without_details():
    err = map_rpc_error("small", rpc_error(grpc.StatusCode.UNAVAILABLE, None), 5.0)
    assert isinstance(err, PoolUnavailable)
    assert err.detail == "connection failed"


def test_not_found_means_not_deployed():
    err = map_rpc_error("reasoning", rpc_error(grpc.StatusCode.NOT_FOUND, "Application 'reasoning' not found"), 5.0)
    assert isinstance(err, PoolUnavailable)
    assert err.pool == "reasoning"
    assert err.detail == "not deployed (Application 'reasoning' not found)"
    assert grpc_status(err)[0] == grpc.StatusCode.UNAVAILABLE


def test_deadline_exceeded():
    err = map_rpc_error("small", rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"), 2.5)
    assert isinstance(err, DeadlineExceeded)
    assert err.timeout_s == 2.5
    assert err.where == "pool 'small'"
    assert err.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_invalid_argument_splits_field_from_details():
    details = "sampling.max_tokens: must be in 1..64 for pool 'small', got 100"
    err = map_rpc_error("small", rpc_error(grpc.StatusCode.INVALID_ARGUMENT, details), 5.0)
    assert isinstance(err, InvalidArgument)
    assert err.field == "sampling.max_tokens"
    assert err.problem == "must be in 1..64 for pool 'small', got 100 (pool 'small')"
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT


def test_invalid_argument_without_details():
    err = map_rpc_error("small", rpc_error(grpc.StatusCode.INVALID_ARGUMENT, ""), 5.0)
    assert isinstance(err, InvalidArgument)
    assert err.field == "request"


def test_invalid_argument_without_a_field_prefix():
    err = map_rpc_error("small", rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "request could not be parsed"), 5.0)
    assert err.field == "request"
    assert "request could not be parsed" in err.problem


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL, grpc.StatusCode.FAILED_PRECONDITION],
)
def test_other_codes_keep_the_code(code):
    err = map_rpc_error("small", rpc_error(code, "queue is full"), 5.0)
    assert isinstance(err, PoolCallError)
    assert err.code == code
    assert err.pool == "small"
    assert str(err) == "pool 'small': queue is full"
    assert grpc_status(err) == (code, "pool 'small': queue is full")
