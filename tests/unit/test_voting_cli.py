"""``vote hanoi`` / ``vote add`` through the CLI parser, in-process and against a server."""
from __future__ import annotations

import argparse
import asyncio
import json
import threading

from ponder.voting import cli
from ponder.voting.samplers import SamplerRegistry
from ponder.voting.servicer import start


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="ponder")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    rc = args.func(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_hanoi_json(capsys):
    rc, out, _ = run(["vote", "hanoi", "--disks", "3", "--sampler", "sim:0.9", "--target-success", "0.99", "--json"], capsys)
    s = json.loads(out.strip().splitlines()[-1])
    assert rc == 0 and s["success"] and s["steps_completed"] == 7 and s["simulated"]
    assert s["k"] >= 3 and s["answer"] == "[[], [], [3, 2, 1]]"


def test_add_human_output(capsys):
    rc, out, _ = run(["vote", "add", "--digits", "4", "--a", "1999", "--b", "8001", "--k", "3", "--sampler", "sim:0.8"], capsys)
    assert rc == 0 and "SIMULATED" in out and "answer: 10000 (correct: True)" in out
    assert out.count("step ") == 4


def test_bad_input_exits_2(capsys):
    rc, _, err = run(["vote", "hanoi", "--disks", "0"], capsys)
    assert rc == 2 and "hanoi.disks" in err
    rc, _, err = run(["vote", "add", "--digits", "3", "--p", "0.5"], capsys)
    assert rc == 2 and "voting.p" in err


def test_remote_server(capsys):
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = {}

    async def serve():
        holder["vs"] = await start("127.0.0.1:0", SamplerRegistry())
        holder["stop"] = asyncio.Event()
        ready.set()
        await holder["stop"].wait()
        await holder["vs"].stop(0)

    t = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    t.start()
    try:
        ready.wait(10)
        port = holder["vs"].port
        rc, out, _ = run(["vote", "add", "--digits", "5", "--k", "2", "--address", f"127.0.0.1:{port}", "--json"], capsys)
        s = json.loads(out)
        assert rc == 0 and s["task"] == "addition" and s["steps_completed"] == 5 and s["request_id"]
        rc, _, err = run(["vote", "hanoi", "--disks", "3", "--sampler", "pool:none", "--address", f"127.0.0.1:{port}"], capsys)
        assert rc == 2 and "INVALID_ARGUMENT" in err and "sampler" in err
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        t.join(10)
        loop.close()


def test_count_decomposition_and_the_reported_bound(capsys):
    rc, out, _ = run(["vote", "add", "--digits", "6", "--a", "999999", "--b", "1", "--decomposition", "count",
                      "--sampler", "sim:0.9", "--json"], capsys)
    s = json.loads(out.strip().splitlines()[-1])
    assert rc == 0 and s["answer"] == "1000000" and s["correct"]
    assert s["steps_total"] == 6  # one successor per column: 9 -> 10, then 9 + carry 1 five times
    assert s["calibration_valid"] == 64 and s["p"] == s["p_lower_bound"] < s["p_estimate"]
    rc, out, _ = run(["vote", "hanoi", "--disks", "3", "--sampler", "sim:0.95"], capsys)
    assert rc == 0 and "Wilson bound" in out and "k=1 " not in out
