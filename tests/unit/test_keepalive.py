"""Client keepalive against a server's ping policy, on real grpc.aio servers and channels.

gRPC's default server policy (pings at most every 5 min without data, none while idle, GOAWAY
"too_many_pings" after 2 strikes) is reproduced at a 1 s floor so the test runs in seconds; gRPC
core logs the GOAWAY on stderr, which capfd reads at the file-descriptor level.
"""
from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ponder.common.grpcutil import (
    CHANNEL_OPTIONS, DEFAULT_SERVER_MIN_PING_INTERVAL_MS, FOREIGN_CHANNEL_OPTIONS, OWN_SERVER_MIN_PING_INTERVAL_MS,
    SERVER_OPTIONS, keepalive_options,
)

FLOOR_MS = 1000
DEFAULT_POLICY = [("grpc.http2.min_ping_interval_without_data_ms", FLOOR_MS), ("grpc.http2.max_ping_strikes", 2)]


class SlowHealth(health.aio.HealthServicer):
    async def Check(self, request, context):
        await asyncio.sleep(3.5)  # a long call that sends no data (a non-streaming generation)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def _exercise(client_options) -> list[str]:
    server = grpc.aio.server(options=DEFAULT_POLICY)
    health_pb2_grpc.add_HealthServicer_to_server(SlowHealth(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=client_options)
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        statuses = [(await stub.Check(health_pb2.HealthCheckRequest(), timeout=20)).status]
        await asyncio.sleep(3.5)  # idle connection
        statuses.append((await stub.Check(health_pb2.HealthCheckRequest(), timeout=20)).status)
        return [health_pb2.HealthCheckResponse.ServingStatus.Name(s) for s in statuses]
    finally:
        await channel.close()
        await server.stop(None)


def test_keepalive_within_the_servers_floor_draws_no_goaway_over_long_and_idle_calls(capfd):
    assert asyncio.run(_exercise(keepalive_options(FLOOR_MS))) == ["SERVING", "SERVING"]
    assert "too_many_pings" not in capfd.readouterr().err


def test_the_goaway_is_seen_when_the_client_pings_too_often(capfd):
    # The control: pinging 7x faster than the floor, idle included, is what the policy punishes.
    asyncio.run(_exercise(keepalive_options(FLOOR_MS // 7, permit_without_calls=True)))
    assert "too_many_pings" in capfd.readouterr().err


def test_channel_options_match_the_servers_they_reach():
    foreign, own, server = dict(FOREIGN_CHANNEL_OPTIONS), dict(CHANNEL_OPTIONS), dict(SERVER_OPTIONS)
    # Pools behind Serve's proxy keep gRPC's default policy: no idle pings, none under its floor.
    assert foreign["grpc.keepalive_permit_without_calls"] == 0
    assert foreign["grpc.keepalive_time_ms"] > DEFAULT_SERVER_MIN_PING_INTERVAL_MS
    # ponder's own servers allow idle pings at their floor; their clients ping slower than it.
    assert server["grpc.keepalive_permit_without_calls"] == 1
    assert server["grpc.http2.min_ping_interval_without_data_ms"] == OWN_SERVER_MIN_PING_INTERVAL_MS
    assert own["grpc.keepalive_time_ms"] > OWN_SERVER_MIN_PING_INTERVAL_MS
