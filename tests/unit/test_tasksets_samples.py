"""Outcome tables drawn from a real pool over gRPC: rows, resuming, settings checks, and the CLI."""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import threading

import pytest

from ponder.common.config import PoolConfig, SimBackend
from ponder.common.errors import InvalidArgument, PoolUnavailable
from ponder.common.telemetry import Tracing
from ponder.pools.servicer import start_standalone
from ponder.router.clients import PoolClient
from ponder.tasksets import cli, make_taskset
from ponder.tasksets.samples import TableSettings, draw_table, per_question, read_rows, sample_seed

SETTINGS = TableSettings("arith", 7, 0, 0.7, 0.95, 8, 0, 0)


@pytest.fixture
async def sim_pool():
    """A standalone pool with the sim backend (a test double that says so) on a real gRPC port."""
    cfg = PoolConfig(name="small", backend=SimBackend(ttft_ms=0, tpot_ms=0, output_tokens=4))
    server, port, engine, _ = await start_standalone(cfg, "127.0.0.1:0", Tracing("test-samples"))
    yield f"127.0.0.1:{port}", engine
    await server.stop(0)
    await engine.close()


class FailsAfter:
    """Wraps a client; the (n+1)-th call raises PoolUnavailable, as a pool going away would."""

    def __init__(self, client, n):
        self.client, self.n = client, n

    async def generate(self, req, timeout_s):
        if self.n <= 0:
            raise PoolUnavailable("small", "gone")
        self.n -= 1
        return await self.client.generate(req, timeout_s)


async def test_rows_record_every_sample_and_a_rerun_draws_only_what_is_missing(sim_pool, tmp_path):
    address, engine = sim_pool
    qs = make_taskset("arith", 7)
    path = tmp_path / "t.jsonl"
    client = PoolClient("small", address)
    try:
        with pytest.raises(PoolUnavailable):
            await draw_table(FailsAfter(client, 10), qs, path, SETTINGS, {"plain": 3}, concurrency=3)
        first = read_rows(path)
        assert 8 <= len(first) <= 10  # calls in flight when the pool went away are lost, nothing else
        rows = await draw_table(client, qs, path, SETTINGS, {"plain": 3}, concurrency=3)
    finally:
        await client.close()
    assert len(rows) == len(read_rows(path)) == 21
    assert len({(r["id"], r["index"]) for r in rows}) == 21
    # the second run asked only for the rows the first did not write
    assert 21 <= engine.requests_total <= 10 + 21 - len(first)
    r = rows[0]
    assert r["simulated"] and r["model"].startswith("sim(") and r["output_tokens"] == 4 and r["latency_ms"] >= 0
    assert r["seed"] == sample_seed(0, r["id"], "plain", r["index"])
    assert r["correct"] == (r["parsed"] == r["answer"])
    table = per_question(rows)
    assert len(table) == 7 and all(t["samples"] == 3 and len(t["answers"]) == 3 for t in table)


async def test_a_rerun_with_other_settings_is_refused_naming_the_flag(sim_pool, tmp_path):
    address, _ = sim_pool
    client = PoolClient("small", address)
    path = tmp_path / "t.jsonl"
    try:
        await draw_table(client, make_taskset("arith", 7), path, SETTINGS, {"plain": 1})
        other = dataclasses.replace(SETTINGS, temperature=1.0)
        with pytest.raises(InvalidArgument) as e:
            await draw_table(client, make_taskset("arith", 7), path, other, {"plain": 1})
        assert e.value.field == "temperature"
        with pytest.raises(InvalidArgument) as e:
            await draw_table(client, make_taskset("arith", 7), path, SETTINGS, {"greedy": 1})
        assert e.value.field == "mode"
    finally:
        await client.close()


def run_cli(argv, capsys):
    parser = argparse.ArgumentParser(prog="ponder")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    rc = args.func(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_against_a_pool_prints_the_table_and_a_json_summary(tmp_path, capsys):
    loop = asyncio.new_event_loop()
    ready, holder = threading.Event(), {}

    async def serve():
        cfg = PoolConfig(name="small", backend=SimBackend(ttft_ms=0, tpot_ms=0, output_tokens=3))
        holder["srv"] = await start_standalone(cfg, "127.0.0.1:0", Tracing("test-samples-cli"))
        holder["stop"] = asyncio.Event()
        ready.set()
        await holder["stop"].wait()
        await holder["srv"][0].stop(0)
        await holder["srv"][2].close()

    t = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    t.start()
    try:
        ready.wait(10)
        out_path = str(tmp_path / "s.jsonl")
        rc, out, _ = run_cli(["bench", "samples", "--address", f"127.0.0.1:{holder['srv'][1]}", "--questions", "14",
                              "--samples", "2", "--out", out_path, "--json"], capsys)
        assert rc == 0
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["rows"] == 28 and summary["questions"] == 14 and summary["model"].startswith("sim(")
        assert "L1-000" in out and "plain" in out
        rc, _, err = run_cli(["bench", "samples", "--address", "127.0.0.1:1", "--samples", "0", "--out", out_path], capsys)
        assert rc == 2 and "samples" in err
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        t.join(10)
        loop.close()
