"""Training the projection: next-token cross-entropy on rationale + answer, everything else frozen.

AdamW on the projection's weight and bias only; examples in a seeded shuffled
order, ``batch`` examples per step (gradient accumulation, one sequence at a
time, so memory stays at one sequence). Every ``eval_every`` steps the mean
loss on held-out examples is logged; every ``checkpoint_every`` steps the
projection, optimizer and position are written to ``<out>.state`` so a killed
run resumes where it stopped. The final projection goes to ``out`` as
safetensors with metadata (see ``checkpoint``).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import random
import time
from typing import Callable

from ponder.common.errors import InvalidArgument
from ponder.softcot.checkpoint import ModelId, save_projection
from ponder.softcot.data import Example, data_hash, prompt_of, target_of
from ponder.softcot.model import SoftCoTModel


@dataclasses.dataclass
class TrainSettings:
    steps: int = 200
    batch: int = 4
    lr: float = 1e-3
    weight_decay: float = 0.0
    eval_every: int = 25
    checkpoint_every: int = 25
    seed: int = 0

    def check(self) -> None:
        for name in ("steps", "batch", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise InvalidArgument(name, f"must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise InvalidArgument("lr", f"must be > 0, got {self.lr}")


def eval_loss(model: SoftCoTModel, examples: list[Example]) -> float:
    """Mean loss over ``examples`` without gradients; NaN for none."""
    import torch

    if not examples:
        return float("nan")
    with torch.no_grad():
        return sum(float(model.loss(prompt_of(e.question), target_of(e))) for e in examples) / len(examples)


@functools.lru_cache(maxsize=4)
def _order(n: int, seed: int, epoch: int) -> list[int]:
    idx = list(range(n))
    random.Random(f"{seed}:{epoch}").shuffle(idx)
    return idx


def train(model: SoftCoTModel, train_set: list[Example], eval_set: list[Example], out: str,
          settings: TrainSettings, resume: bool = True, log: Callable[[str], None] = print,
          progress: bool = True) -> dict:
    """Train ``model.projection`` in place; returns ``{"history": [...], "steps": n, "out": path}``.

    History entries: ``{"step", "train_loss", "eval_loss", "elapsed_s"}`` at every eval.
    """
    import torch

    settings.check()
    if not train_set:
        raise InvalidArgument("data", "no training examples")
    proj = model.projection
    proj.requires_grad_(True)
    opt = torch.optim.AdamW(proj.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    state_path = out + ".state"
    digest = data_hash(train_set)
    step, history = 0, []
    if resume and os.path.exists(state_path):
        st = torch.load(state_path, weights_only=False)
        if st["data_sha256"] == digest and st["settings"] == dataclasses.asdict(settings):
            proj.load_state_dict(st["projection"])
            opt.load_state_dict(st["optimizer"])
            step, history = st["step"], st["history"]
            log(f"resumed from {state_path} at step {step}")
        else:
            log(f"ignoring {state_path}: made with other data or settings")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=settings.steps, initial=step, desc="softcot train", unit="step")
    t0 = time.monotonic()
    running: list[float] = []
    per_epoch = len(train_set)
    while step < settings.steps:
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for j in range(settings.batch):
            k = step * settings.batch + j
            ex = train_set[_order(per_epoch, settings.seed, k // per_epoch)[k % per_epoch]]
            loss = model.loss(prompt_of(ex.question), target_of(ex)) / settings.batch
            loss.backward()
            total += loss.item()
        opt.step()
        step += 1
        running.append(total)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{total:.3f}")
        if step % settings.eval_every == 0 or step == settings.steps:
            ev = eval_loss(model, eval_set)
            entry = {"step": step, "train_loss": sum(running) / len(running), "eval_loss": ev,
                     "elapsed_s": round(time.monotonic() - t0, 1)}
            history.append(entry)
            running = []
            log(f"step {step}: train loss {entry['train_loss']:.4f}, eval loss {ev:.4f}")
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            tmp = state_path + ".part"
            torch.save({"projection": proj.state_dict(), "optimizer": opt.state_dict(), "step": step,
                        "history": history, "data_sha256": digest, "settings": dataclasses.asdict(settings)}, tmp)
            os.replace(tmp, state_path)
    if bar is not None:
        bar.close()
    proj.requires_grad_(False)
    save_projection(out, proj, ModelId.of(model.assistant), ModelId.of(model.backbone), {
        "num_thought_tokens": model.num_soft,
        "begin_marker": model.cfg.begin_marker,
        "end_marker": model.cfg.end_marker,
        "backbone_template": model.cfg.backbone_template,
        "assistant_template": model.cfg.assistant_template,
        "data_sha256": digest,
        "examples": len(train_set),
        "steps": step,
        "settings": dataclasses.asdict(settings),
        "history": history,
    })
    return {"history": history, "steps": step, "out": out}
