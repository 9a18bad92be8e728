"""Multi-sample outcome tables: M samples per question from a pool, one JSON line per sample.

``draw_table`` sends every (question, mode, index) that the table does not yet
hold to the pool as one ``ModelPool.Generate`` call (seed = a hash of the
table's seed, the question id, the mode and the index, so a rerun draws the
same samples), at most ``concurrency`` at a time, and appends each answer as
one line as soon as it returns. A table is therefore resumable: an interrupted
run loses at most the calls in flight, and a rerun with the same settings
draws only what is missing. The settings live in a sidecar ``<table>.meta.json``;
a rerun with different settings raises InvalidArgument naming the flag, so one
table never mixes two sampling setups.

Modes: ``plain`` (answer directly, thinking budget 0) and ``think`` (the
pool's thinking phase with ``thinking_budget`` tokens first; needs a pool with
``thinking`` configured). A row records the question, its level and kind, the
reply, the parsed answer and whether it is right, prompt/output/thinking
tokens, latency and the model that answered.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import pathlib
from typing import Callable, Iterable, Sequence

from ponder.common.errors import InvalidArgument
from ponder.tasksets.arith import Question, parse_answer
from ponder.v1 import common_pb2, pool_pb2

MODES = ("plain", "think")


@dataclasses.dataclass(frozen=True, slots=True)
class TableSettings:
    """What makes two tables comparable; stored beside the table."""

    taskset: str
    questions: int
    taskset_seed: int
    temperature: float
    top_p: float
    max_tokens: int
    thinking_budget: int
    seed: int


def sample_seed(seed: int, qid: str, mode: str, index: int) -> int:
    """Deterministic per-sample seed in [0, 2^31)."""
    h = hashlib.blake2b(f"{seed}|{qid}|{mode}|{index}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") % (1 << 31)


def read_rows(path: pathlib.Path) -> list[dict]:
    """Rows of a table; a torn last line (an interrupted write) is skipped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def check_settings(path: pathlib.Path, settings: TableSettings) -> None:
    """Write the sidecar on first use; InvalidArgument naming the flag when a rerun's settings differ."""
    meta = path.with_name(path.name + ".meta.json")
    want = dataclasses.asdict(settings)
    if meta.exists():
        have = json.loads(meta.read_text())
        for k, v in want.items():
            if have.get(k) != v:
                raise InvalidArgument(
                    k.replace("_", "-"), f"table {path} was drawn with {k}={have.get(k)!r}, not {v!r}; "
                    "use another --out or the same settings")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps(want, indent=1))


def interleave(questions: Sequence[Question]) -> list[Question]:
    """Round-robin over levels (first of each level, then second, ...), so a partial table spans every level."""
    seen: dict[int, int] = {}
    keyed = []
    for pos, q in enumerate(questions):
        rank = seen.get(q.level, 0)
        seen[q.level] = rank + 1
        keyed.append((rank, q.level, pos, q))
    return [q for *_, q in sorted(keyed, key=lambda t: t[:3])]


def todo(questions: Sequence[Question], rows: Iterable[dict], wants: dict[str, int]) -> list[tuple[Question, str, int]]:
    """(question, mode, index) triples the table still lacks: question-major (a question's samples in a row,
    which lets an engine reuse the prompt's cache), questions interleaved over levels."""
    have = {(r["id"], r["mode"], r["index"]) for r in rows}
    return [(q, m, i) for q in interleave(questions) for m, n in wants.items() for i in range(n)
            if (q.id, m, i) not in have]


def make_request(q: Question, mode: str, index: int, s: TableSettings) -> pool_pb2.PoolGenerateRequest:
    return pool_pb2.PoolGenerateRequest(
        request_id=f"samples-{q.id}-{mode}-{index}",
        prompt=q.prompt(),
        sampling=common_pb2.SamplingParams(
            max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p, stop=["\n", "Q:"],
            seed=sample_seed(s.seed, q.id, mode, index),
        ),
        thinking_budget=s.thinking_budget if mode == "think" else 0,
    )


def make_row(q: Question, mode: str, index: int, seed: int, r: pool_pb2.PoolGenerateResponse) -> dict:
    parsed = parse_answer(r.text)
    return {
        "id": q.id, "level": q.level, "kind": q.kind, "question": q.question, "answer": q.answer,
        "mode": mode, "index": index, "seed": seed, "text": r.text, "thinking": r.thinking,
        "parsed": parsed, "correct": parsed == q.answer, "finish_reason": r.finish_reason,
        "prompt_tokens": r.prompt_tokens, "output_tokens": r.output_tokens, "thinking_tokens": r.thinking_tokens,
        "latency_ms": round(r.latency_ms, 2), "model": r.model, "simulated": r.simulated,
    }


async def draw_table(
    client, questions: Sequence[Question], path: pathlib.Path, settings: TableSettings, wants: dict[str, int],
    concurrency: int = 4, timeout_s: float = 300.0, progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Fill the table at ``path`` (see module docstring); returns all its rows. Pool errors propagate."""
    for m in wants:
        if m not in MODES:
            raise InvalidArgument("mode", f"unknown mode {m!r}; known: {', '.join(MODES)}")
    check_settings(path, settings)
    rows = read_rows(path)
    work = todo(questions, rows, wants)
    total, done = len(work), 0
    queue: asyncio.Queue = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    with path.open("a") as f:

        async def worker() -> None:
            nonlocal done
            while not queue.empty():
                q, mode, i = queue.get_nowait()
                req = make_request(q, mode, i, settings)
                r = await client.generate(req, timeout_s)
                row = make_row(q, mode, i, req.sampling.seed, r)
                f.write(json.dumps(row) + "\n")
                f.flush()
                rows.append(row)
                done += 1
                if progress:
                    progress(done, total)

        tasks = [asyncio.create_task(worker()) for _ in range(max(1, concurrency))]
        try:
            done_, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:  # a failure (or our own cancellation) stops the other workers before the file closes
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in done_:
            if t.exception() is not None:
                raise t.exception()
    return rows


def per_question(rows: Iterable[dict]) -> list[dict]:
    """One summary per (question, mode): answers in index order, correct count, mean tokens and latency."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["id"], r["mode"]), []).append(r)
    out = []
    for (qid, mode), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["index"])
        n = len(rs)
        out.append({
            "id": qid, "mode": mode, "level": rs[0]["level"], "question": rs[0]["question"], "answer": rs[0]["answer"],
            "answers": [r["parsed"] for r in rs], "correct": sum(r["correct"] for r in rs), "samples": n,
            "mean_output_tokens": round(sum(r["output_tokens"] for r in rs) / n, 2),
            "mean_latency_ms": round(sum(r["latency_ms"] for r in rs) / n, 1),
        })
    return out
