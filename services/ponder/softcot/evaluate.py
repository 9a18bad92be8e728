"""Accuracy with and without soft thoughts, on the same questions, seeds and output budget.

For each seed the same questions are answered twice by the same backbone with
the same ``max_tokens``: once from the plain prompt, once with the assistant's
soft thoughts in place. Decoding is greedy unless ``temperature > 0`` (then
sampled with the seed). Accuracy per condition comes with a Wilson 95 %
interval over all answers; the paired difference with a normal-approximation
95 % interval over per-question differences.
"""
from __future__ import annotations

import math
import time
from typing import Callable

from ponder.common.stats import wilson  # noqa: F401 - also this module's public name
from ponder.softcot.data import STOP, Example, is_correct, prompt_of
from ponder.softcot.model import SoftCoTModel


def paired_diff(with_: list[bool], without: list[bool], z: float = 1.96) -> dict:
    """Mean of per-question (with - without) and its normal-approximation interval."""
    d = [int(a) - int(b) for a, b in zip(with_, without)]
    n = len(d)
    if n == 0:
        return {"mean": 0.0, "ci95": [0.0, 0.0]}
    m = sum(d) / n
    var = sum((x - m) ** 2 for x in d) / max(1, n - 1)
    half = z * math.sqrt(var / n)
    return {"mean": round(m, 4), "ci95": [round(m - half, 4), round(m + half, 4)]}


def answer(model: SoftCoTModel, question: str, soft: bool, max_tokens: int, temperature: float, seed: int) -> tuple[str, float]:
    """The backbone's answer text and the assistant + projection time in ms (0 without soft thoughts)."""
    import torch

    prompt = prompt_of(question)
    t0 = time.perf_counter()
    assistant_ms = 0.0
    with torch.inference_mode():
        if soft:
            embeds = model.backbone_input(prompt).embeds
            assistant_ms = (time.perf_counter() - t0) * 1000
        else:
            embeds = model.backbone.embed(model.backbone.encode(prompt))
        pieces = [d.text for d in model.backbone.decode(
            embeds, max_tokens, temperature=temperature, top_p=1.0, top_k=0, seed=seed, stop=STOP
        ) if hasattr(d, "text")]
    return "".join(pieces), assistant_ms


def evaluate(model: SoftCoTModel, sets: dict[int, list[Example]], max_tokens: int, temperature: float = 0.0,
             log: Callable[[str], None] = lambda _: None) -> dict:
    """``sets`` maps seed -> questions. Returns the report described in the module docstring."""
    res = {True: [], False: []}
    per_seed = []
    assistant_ms: list[float] = []
    for seed, examples in sets.items():
        got = {True: 0, False: 0}
        for i, ex in enumerate(examples):
            for soft in (False, True):
                text, ms = answer(model, ex.question, soft, max_tokens, temperature, seed * 100_003 + i)
                ok = is_correct(text, ex.answer)
                res[soft].append(ok)
                got[soft] += ok
                if soft:
                    assistant_ms.append(ms)
        per_seed.append({"seed": seed, "n": len(examples), "accuracy_with": got[True] / max(1, len(examples)),
                         "accuracy_without": got[False] / max(1, len(examples))})
        log(f"seed {seed}: with {got[True]}/{len(examples)}, without {got[False]}/{len(examples)}")
    n = len(res[True])
    cw, cwo = sum(res[True]), sum(res[False])
    return {
        "accuracy_with": round(cw / max(1, n), 4),
        "accuracy_without": round(cwo / max(1, n), 4),
        "ci95_with": [round(x, 4) for x in wilson(cw, n)],
        "ci95_without": [round(x, 4) for x in wilson(cwo, n)],
        "difference": paired_diff(res[True], res[False]),
        "n": n,
        "seeds": [s["seed"] for s in per_seed],
        "per_seed": per_seed,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "assistant_ms": sorted(assistant_ms),
    }
