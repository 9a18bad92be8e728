"""``ponder context put|get|consolidate|jobs`` against a real consolidator over gRPC."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading

import pytest

from ponder.common.config import ConsolidatorConfig, PonderConfig, PoolConfig, SimBackend
from ponder.consolidation.servicer import start

pytestmark = pytest.mark.integration


@pytest.fixture
def consolidator_address(redis_url, redis_client):
    """A consolidator on its own event loop in a thread (the CLI runs its own loop)."""
    loop = asyncio.new_event_loop()
    cfg = PonderConfig(pools=[PoolConfig(name="small", backend=SimBackend(), address="127.0.0.1:1")],
                       consolidator=ConsolidatorConfig(workers=0))
    srv = loop.run_until_complete(start(cfg, redis_url, "127.0.0.1:0"))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{srv.port}"
    asyncio.run_coroutine_threadsafe(srv.stop(0), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def ponder(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-m", "ponder.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=60, env=env)


def test_context_put_get_consolidate(consolidator_address):
    a = ["--address", consolidator_address]
    put = ponder("context", "put", "doc-1", *a, "--json", stdin="The depot in Arlen holds 412 crates. " * 30)
    assert put.returncode == 0, put.stderr
    info = json.loads(put.stdout)
    assert info["context_id"] == "doc-1" and len(info["version"]) == 64
    got = ponder("context", "get", "doc-1", *a)
    assert got.returncode == 0 and "no consolidated form of this version yet" in got.stdout
    job = ponder("context", "consolidate", "doc-1", *a, "--strategy", "extractive+rethink", "--passes", "2", "--json")
    assert job.returncode == 0, job.stderr
    j = json.loads(job.stdout)
    assert j["state"] == "queued" and j["steps_total"] == 3 and j["strategy"] == "extractive+rethink"
    jobs = json.loads(ponder("context", "jobs", "doc-1", *a).stdout)["jobs"]
    assert [x["job_id"] for x in jobs] == [j["job_id"]]
    bad = ponder("context", "consolidate", "doc-1", *a, "--strategy", "nope")
    assert bad.returncode == 2 and "INVALID_ARGUMENT: strategy" in bad.stderr
    missing = ponder("context", "get", "nope", *a)
    assert missing.returncode == 2 and "NOT_FOUND" in missing.stderr
