"""LocalRedis: starts a real redis-server on loopback and stops it; a missing binary says how to install."""
from __future__ import annotations

import socket

import pytest
import redis

from ponder.common.errors import DependencyMissing
from ponder.common.redis_server import INSTALL_HINT, LocalRedis, free_port


def test_starts_answers_and_stops(tmp_path):
    data = tmp_path / "data"
    server = LocalRedis(data)
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    with server as r:
        assert r.proc is not None and r.proc.poll() is None
        assert data.is_dir()
        client = redis.Redis.from_url(r.url)
        try:
            assert client.ping() is True
            client.set("k", "v")
            assert client.get("k") == b"v"
        finally:
            client.close()
        proc = r.proc
    assert server.proc is None
    assert proc.poll() is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=0.5).close()


def test_explicit_port_and_stop_twice(tmp_path):
    port = free_port()
    server = LocalRedis(tmp_path, port=port).start()
    try:
        assert server.port == port
        assert server.url.endswith(f":{port}/0")
    finally:
        server.stop()
    server.stop()
    assert server.proc is None


def test_missing_binary_says_how_to_install(tmp_path):
    server = LocalRedis(tmp_path / "data", binary="no-such-redis")
    with pytest.raises(DependencyMissing) as ei:
        server.start()
    err = ei.value
    assert err.what == "redis-server"
    assert err.how == INSTALL_HINT
    assert "apt-get install redis-server" in str(err) and "brew install redis" in str(err) and "REDIS_URL" in str(err)
    assert server.proc is None
    assert not (tmp_path / "data").exists()


def test_a_killed_server_is_restarted_on_its_port_with_its_data(tmp_path):
    import signal
    import time

    server = LocalRedis(tmp_path / "data").start().supervise(poll_s=0.05)
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "kept")
        client.xadd("s", {"a": "1"})
        first = server.proc
        first.send_signal(signal.SIGKILL)
        first.wait()
        deadline = time.monotonic() + 30  # generous: a loaded machine starts redis-server slowly
        while time.monotonic() < deadline and (server.restarts == 0 or server.proc is first):
            time.sleep(0.05)
        assert server.restarts == 1 and server.proc.poll() is None
        assert client.get("k") == b"kept" and client.xlen("s") == 1  # the append-only file brought it back
        client.close()
    finally:
        server.stop()
    assert server.proc is None and server.restarts == 1  # a stop is not a death: no restart after it

