"""map_status: a pool's gRPC status becomes a domain error of the right category."""
from __future__ import annotations

import grpc
import pytest

from ponder.common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    PoolUnavailable,
    ResourceExhausted,
    grpc_status,
)
from ponder.pools.client import map_status


def test_unavailable():
    err = map_status("small", grpc.StatusCode.UNAVAILABLE, "connection refused", 5.0)
    assert isinstance(err, PoolUnavailable)
    assert (err.pool, err.detail) == ("small", "connection refused")
    assert grpc_status(err)[0] == grpc.StatusCode.UNAVAILABLE


def test_unavailable_without_details():
    err = map_status("small", grpc.StatusCode.UNAVAILABLE, "", 5.0)
    assert isinstance(err, PoolUnavailable)
    assert err.detail == "connection failed"


def test_not_found_means_not_deployed():
    err = map_status("reasoning", grpc.StatusCode.NOT_FOUND, "Application 'reasoning' not found", 5.0)
    assert isinstance(err, PoolUnavailable)
    assert err.detail == "not deployed (Application 'reasoning' not found)"
    assert grpc_status(err)[0] == grpc.StatusCode.UNAVAILABLE


def test_a_dead_serve_replica_is_unavailable_so_fallback_fires():
    details = "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task."
    err = map_status("small", grpc.StatusCode.INTERNAL, details, 5.0)
    assert isinstance(err, PoolUnavailable)
    assert grpc_status(err)[0] == grpc.StatusCode.UNAVAILABLE


def test_deadline_exceeded():
    err = map_status("small", grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", 2.5)
    assert isinstance(err, DeadlineExceeded)
    assert (err.timeout_s, err.where) == (2.5, "pool 'small'")
    assert grpc_status(err)[0] == grpc.StatusCode.DEADLINE_EXCEEDED


def test_invalid_argument_splits_field_from_details():
    details = "sampling.max_tokens: must be in 1..64 for pool 'small', got 100"
    err = map_status("small", grpc.StatusCode.INVALID_ARGUMENT, details, 5.0)
    assert isinstance(err, InvalidArgument)
    assert err.field == "sampling.max_tokens"
    assert err.problem == "must be in 1..64 for pool 'small', got 100 (pool 'small')"


def test_invalid_argument_without_a_field_prefix():
    err = map_status("small", grpc.StatusCode.INVALID_ARGUMENT, "request could not be parsed", 5.0)
    assert err.field == "request"
    assert "request could not be parsed" in err.problem


@pytest.mark.parametrize(
    "code,category",
    [(grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhausted), (grpc.StatusCode.INTERNAL, Internal),
     (grpc.StatusCode.FAILED_PRECONDITION, FailedPrecondition)],
)
def test_other_codes_keep_their_category(code, category):
    err = map_status("small", code, "queue is full", 5.0)
    assert isinstance(err, category)
    assert grpc_status(err) == (code, "pool 'small': queue is full")
