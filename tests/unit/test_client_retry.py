"""The client library's pure parts: backoff, server pushback, the retry budget, config from the environment."""
from __future__ import annotations

import random

import grpc
import pytest

from ponder.client import ClientConfig, RetryBudget, RetryPolicy
from ponder.client.aio import build_request
from ponder.client.retry import pushback_s


def test_backoff_is_full_jitter_under_a_capped_exponential():
    p = RetryPolicy(initial_backoff_s=0.1, max_backoff_s=1.0, multiplier=2.0)
    rand = random.Random(0)
    for retry, cap in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)):
        waits = [p.backoff_s(retry, rand) for _ in range(200)]
        assert 0 <= min(waits) and max(waits) <= cap and max(waits) > cap * 0.8
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_pushback_is_read_from_trailing_metadata():
    assert pushback_s((("grpc-retry-pushback-ms", "250"),)) == 0.25
    assert pushback_s((("grpc-retry-pushback-ms", b"0"),)) == 0.0
    assert pushback_s((("grpc-retry-pushback-ms", "-1"),)) == -1.0
    assert pushback_s((("grpc-retry-pushback-ms", "soon"),)) == -1.0
    assert pushback_s((("other", "1"),)) is None and pushback_s(None) is None


def test_retry_budget_stops_retries_after_failures_and_recovers_with_successes():
    b = RetryBudget(max_tokens=4, token_ratio=0.5)
    assert b.allows_retry()
    b.failed(); b.failed()  # noqa: E702
    assert not b.allows_retry()  # 2 of 4 tokens left: half or less
    b.succeeded()
    assert b.allows_retry()


def test_config_reads_arguments_then_environment():
    env = {"PONDER_ADDRESS": "router:50051", "PONDER_API_KEY": "k1", "PONDER_TLS_CA": "/ca.pem"}
    c = ClientConfig.resolve(env=env)
    assert (c.address, c.api_key, c.tls, c.ca_file) == ("router:50051", "k1", True, "/ca.pem")
    assert c.metadata() == (("authorization", "Bearer k1"),)
    c = ClientConfig.resolve("here:1", api_key="k2", tls=False, env=env)
    assert (c.address, c.api_key, c.tls) == ("here:1", "k2", False)
    assert ClientConfig.resolve(env={}).metadata() == () and not ClientConfig.resolve(env={}).tls


def test_build_request_sets_only_what_was_given():
    r = build_request("hi", max_tokens=8, budget_cu=5.0, pool="small", samples=3, messages=(), labels={"a": "b"})
    assert (r.prompt, r.sampling.max_tokens, r.budget.max_compute_units, r.hints.pool, r.hints.samples) == ("hi", 8, 5.0, "small", 3)
    assert not r.sampling.HasField("temperature") and not r.budget.HasField("max_latency_ms")
    r = build_request(messages=[{"role": "user", "content": "q"}, ("assistant", "a")])
    assert [(m.role, m.content) for m in r.messages] == [("user", "q"), ("assistant", "a")]
    assert grpc.StatusCode.UNAVAILABLE  # the retryable codes are grpc's own
