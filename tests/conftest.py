"""Shared fixtures: a real redis-server per test session."""
from __future__ import annotations

import pytest

from ponder.common.redis_server import LocalRedis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """URL of a real redis-server started for this test session (flushed per test by users)."""
    with LocalRedis(tmp_path_factory.mktemp("redis")) as r:
        yield r.url


@pytest.fixture
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()
