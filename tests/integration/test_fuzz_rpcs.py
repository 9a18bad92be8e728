"""Every public Router RPC fuzzed over real gRPC (sim pools, real redis-server): generated protobuf
requests and random byte strings never crash the server and invalid ones are INVALID_ARGUMENT
naming the field. ``PONDER_FUZZ_EXAMPLES`` sets the count per RPC and kind (bench/faults.py: 10,000)."""
from __future__ import annotations

import json
import os

import grpc
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fuzzing import RPCS, BackgroundStack, Tally, call
from conftest import sim_config

pytestmark = pytest.mark.integration
EXAMPLES = int(os.environ.get("PONDER_FUZZ_EXAMPLES", "60"))


def report(rpc: str, kind: str, tally: Tally) -> None:
    """Append the tally to $PONDER_FUZZ_REPORT (one JSON line) when bench/faults.py asks for it."""
    path = os.environ.get("PONDER_FUZZ_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"rpc": rpc, "kind": kind, **tally.summary()}) + "\n")


@pytest.fixture(scope="module")
def router(redis_url):
    with BackgroundStack(sim_config(), redis_url) as stack:
        with grpc.insecure_channel(stack.address) as ch:
            yield ch


@pytest.mark.parametrize("rpc", sorted(RPCS))
def test_generated_requests(router, rpc):
    tally = Tally()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(RPCS[rpc])
    def one(msg):
        tally.add(rpc, *call(router, rpc, msg.SerializeToString()))

    one()
    report(rpc, "generated", tally)
    assert tally.crashes == 0 and tally.unnamed_invalid == 0, tally.summary()


@pytest.mark.parametrize("rpc", sorted(RPCS))
def test_random_bytes(router, rpc):
    tally = Tally()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(max_size=2000))
    def one(data):
        tally.add(rpc, *call(router, rpc, data))

    one()
    report(rpc, "random_bytes", tally)
    assert tally.crashes == 0 and tally.unnamed_invalid == 0, tally.summary()
    assert tally.codes["UNKNOWN"] == 0
