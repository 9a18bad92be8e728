"""``cascade``: answer with the cheap pool first, escalate to a dearer pool when the answer looks wrong.

Run: one sample of the cheap pool (the answer) plus ``routing.cascade.agreement_samples``
extra cheap samples drawn in parallel at a sampling temperature of at least
``AGREEMENT_TEMPERATURE`` (so they can disagree). The answer's confidence, a
P(right) in [0, 1], is

- the configured ``ConfidenceScorer`` (``routing.cascade.scorer_path``, from
  ``ponder router cv --cascade --save-scorer``) on the answer's text features,
  with the extra samples' agreement among them when there are any; the pools
  return no token log-probabilities, so those features stay off;
- else the share of extra samples whose final answer (``answer_key``) equals the
  answer's.

Below the escalation threshold t the request escalates: one plain sample of
the escalation pool (``escalate_to`` for the cheap pool, else the next pool up
the ladder: tier small < softcot < reasoning, then price per token) answers
instead; when that pool is down the cheap answer stands. Usage counts every sample of both pools, each priced by
the pool that drew it (``SampleResult.pool``); the plan's reason says whether it
escalated, with the confidence and threshold.

Threshold, in order of precedence:

1. ``routing.cascade.threshold`` when set: a fixed t under every policy;
2. else, under a policy that prices compute with λ and gives the escalation
   pool's P(correct) p_s (``Gains.pool_p``, ``Gains.lambda_per_cu``: the
   ``difficulty`` policy, λ from its budget controller when attached):
   t = p_s − λ·c_s, c_s the escalation call's expected compute units. With the
   confidence read as P(cheap answer right), escalating iff confidence < t is
   escalating iff p_s − P(cheap right) > λ·c_s, the accuracy − λ·cost rule the
   policy plans with (``confidence.should_escalate``); the cheap samples are
   already paid. At λ = 0 every answer the strong pool is likelier to get right
   escalates; t ≤ 0 never escalates;
3. else ``DEFAULT_THRESHOLD``.

The policy sets t on the candidate (``Candidate.escalate_below``) while it
scores it; the plan carries it to ``run``.

Price: cheap samples + e · the escalation pool's single sample, compute units
and latency alike, e = P(escalate) for the cheap pool: the share of this
router's cascades on that pool that escalated, smoothed towards
``prior_escalation_share`` with ``PRIOR_WEIGHT`` pseudo-runs. Expected accuracy
(``cascade_accuracy``) needs the escalation pool's P(correct) from the policy
(``Gains.pool_p``); without it the cascade is credited with the cheap pool's p.

Candidates are offered only on pools that have somewhere to escalate to, and
only when ``cascade`` is among ``routing.strategies`` (off by default).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import re
import time
from typing import AsyncIterator

from ponder.common.config import PoolConfig
from ponder.common.errors import ConfigError, Unavailable
from ponder.router.confidence import ConfidenceScorer, final_answer
from ponder.router.strategies.base import Gains, StreamDelta, Strategy, draw
from ponder.router.types import Answer, Candidate, Plan, Request, SampleResult

AGREEMENT_TEMPERATURE = 0.7
DEFAULT_THRESHOLD = 0.5  # t when neither routing.cascade.threshold nor a policy's λ sets one
PRIOR_WEIGHT = 8.0
# Where between a blind escalation (kept answers as good as the pool's p) and a perfect one (only wrong
# answers escalate) the kept answers' accuracy is assumed to lie.
SELECTIVITY = 0.5
_WS = re.compile(r"\s+")
_TIER_RANK = {"small": 0, "softcot": 1, "reasoning": 2}


def answer_key(text: str) -> str:
    """What two answers must share to agree: the final number when there is one, else the last
    non-empty line, lower-cased with whitespace collapsed and end punctuation dropped; "" for none."""
    fin = final_answer(text)
    if fin is not None:
        return fin
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return _WS.sub(" ", lines[-1]).strip().strip(".!?").lower() if lines else ""


def agreement(answer: str, others: list[str]) -> float:
    """Share of ``others`` whose ``answer_key`` equals the answer's, in [0, 1]; 0 for an empty answer or none."""
    key = answer_key(answer)
    if not others or not key:
        return 0.0
    return sum(answer_key(o) == key for o in others) / len(others)


def escalation_share(escalated: int, runs: int, prior: float, weight: float = PRIOR_WEIGHT) -> float:
    """P(escalate), in [0, 1]: (escalated + prior·weight) / (runs + weight)."""
    return (escalated + prior * weight) / (runs + weight)


def cascade_accuracy(p_cheap: float, p_strong: float, e: float, selectivity: float = SELECTIVITY) -> float:
    """Expected P(correct) of a cascade, in [0, 1]: (1 - e)·kept + e·p_strong.

    kept, the accuracy of the answers that stay, runs from p_cheap (escalation
    blind to correctness) to min(1, p_cheap / (1 - e)) (only wrong answers
    escalate) by ``selectivity``.
    """
    if e >= 1.0:
        return p_strong
    best = min(1.0, p_cheap / (1.0 - e))
    kept = p_cheap + selectivity * (best - p_cheap)
    return min(1.0, max(0.0, (1.0 - e) * kept + e * p_strong))


def escalation_threshold(p_strong: float, lam: float, strong_cu: float) -> float:
    """The confidence below which a cascade escalates at price λ: p_strong − λ·strong_cu, in
    (−inf, 1] for p_strong in [0, 1] and λ, strong_cu ≥ 0; ≤ 0 means never (a confidence is ≥ 0).
    Decreasing in λ, so the answers that escalate at a higher λ are a subset of those at a lower one."""
    return p_strong - lam * strong_cu


def ladder_rank(pool: PoolConfig) -> tuple[int, float, float]:
    """Where a pool stands on the escalation ladder: tier (small < softcot < reasoning), then price per
    output token, then per prompt token; a cascade escalates to the lowest pool above its own."""
    return _TIER_RANK[pool.tier], pool.cost.output_token_cu, pool.cost.prompt_token_cu


class Cascade(Strategy):
    name = "cascade"

    def __init__(self) -> None:
        self._catalog = None  # the catalog of the config this router plans with (set by ``candidates``)
        self._runs: dict[str, list[int]] = {}  # cheap pool -> [escalated, runs]
        self._scorer: tuple[str, float, ConfidenceScorer] | None = None

    # ------------------------------------------------------------------ planning
    def target(self, req: Request, pool: str, catalog) -> str | None:
        """The pool ``pool`` escalates to: ``escalate_to``, else the next pool up the ladder; None at the top."""
        cc = catalog.routing.cascade
        if pool in cc.escalate_to:
            return cc.escalate_to[pool]
        own = ladder_rank(catalog.pools[pool])
        above = sorted((ladder_rank(p), p.name) for p in catalog.pools.values() if ladder_rank(p) > own)
        return above[0][1] if above else None

    def escalation_share(self, pool: str, prior: float) -> float:
        esc, runs = self._runs.get(pool, (0, 0))
        return escalation_share(esc, runs, prior)

    def candidates(self, req: Request, pool: PoolConfig, catalog) -> list[Candidate]:
        self._catalog = catalog
        to = self.target(req, pool.name, catalog)
        if to is None:
            return []
        cc = catalog.routing.cascade
        cheap = catalog.estimate(req, pool.name, self.name, 1 + cc.agreement_samples, 0)
        strong = catalog.estimate(req, to, "single", 1, 0)
        e = self.escalation_share(pool.name, cc.prior_escalation_share)
        cheap.expected_compute_units = round(cheap.expected_compute_units + e * strong.expected_compute_units, 3)
        cheap.expected_latency_ms = round(cheap.expected_latency_ms + e * strong.expected_latency_ms, 3)
        cheap.note = f"escalates to {to} ({strong.expected_compute_units:g} CU); P(escalate) {e:.2f}"
        cheap.escalate_to, cheap.escalate_cu = to, strong.expected_compute_units
        return [cheap]

    def accuracy(self, cand: Candidate, p: float, gains: Gains) -> tuple[float, str]:
        """cascade_accuracy with the escalation pool's p from ``gains.pool_p``; also sets the candidate's
        escalation threshold from ``gains.lambda_per_cu`` unless ``routing.cascade.threshold`` fixes it."""
        cat = self._catalog
        pool_p = getattr(gains, "pool_p", None)
        lam = getattr(gains, "lambda_per_cu", None)
        to, strong_cu = cand.escalate_to, cand.escalate_cu
        p_strong = pool_p(to) if (pool_p is not None and to) else None
        if cat is None or p_strong is None:
            return p, "no P(correct) for the escalation pool: credited with the cheap pool's"
        cc = cat.routing.cascade
        note = f"escalation pool p={p_strong:.3f}"
        if cc.threshold is None and lam is not None:
            cand.escalate_below = round(escalation_threshold(p_strong, lam, strong_cu), 6)
            note += f"; escalates below confidence {cand.escalate_below:g} = p - lambda*{strong_cu:g} CU"
        e = self.escalation_share(cand.pool, cc.prior_escalation_share)
        return cascade_accuracy(p, p_strong, e), note

    @staticmethod
    def plan_threshold(plan: Plan, cc) -> tuple[float, str]:
        """(t, where it came from): routing.cascade.threshold, else the plan's λ-set one, else the default."""
        if cc.threshold is not None:
            return cc.threshold, "routing.cascade.threshold"
        if plan.escalate_below is not None:
            return plan.escalate_below, "lambda"
        return DEFAULT_THRESHOLD, "default"

    # ------------------------------------------------------------------ running
    def scorer(self, path: str) -> ConfidenceScorer:
        """The scorer at ``path``, re-read when the file changes; ConfigError (FAILED_PRECONDITION) naming
        ``routing.cascade.scorer_path`` when it cannot be read."""
        try:
            mtime = pathlib.Path(path).stat().st_mtime
            if self._scorer is None or self._scorer[:2] != (path, mtime):
                self._scorer = (path, mtime, ConfidenceScorer.load(path))
        except (OSError, ValueError, KeyError) as e:
            raise ConfigError("routing", [("routing.cascade.scorer_path", f"cannot load {path!r}: {e}")]) from None
        return self._scorer[2]

    def confidence(self, prompt: str, answer: str, others: list[str], scorer_path: str | None) -> float:
        """P(answer right) in [0, 1]: the scorer when configured, else the agreement of ``others``."""
        if scorer_path:
            return self.scorer(scorer_path).score(prompt, answer, samples=others or None)
        return agreement(answer, others)

    def record(self, pool: str, escalated: bool) -> None:
        row = self._runs.setdefault(pool, [0, 0])
        row[0] += int(escalated)
        row[1] += 1

    async def run(self, req: Request, plan: Plan, pools, timeout_s: float, stream: bool) -> AsyncIterator[StreamDelta | Answer]:
        cat = self._catalog
        if cat is None:
            raise RuntimeError("cascade run before any plan: candidates() binds the catalog")
        cc = cat.routing.cascade
        t0 = time.monotonic()
        extra_req = req
        if cc.agreement_samples:
            temp = max(req.sampling.temperature or 0.0, AGREEMENT_TEMPERATURE)
            extra_req = dataclasses.replace(req, sampling=dataclasses.replace(req.sampling, temperature=temp))

        async def one(r: Request, i: int) -> SampleResult:
            async with contextlib.aclosing(draw(r, plan, pools[plan.pool], timeout_s, i, False)) as items:
                async for item in items:
                    if isinstance(item, SampleResult):
                        return dataclasses.replace(item, pool=plan.pool)
            raise RuntimeError("a pool sample ended without a result")

        cheap = list(await asyncio.gather(one(req, 0), *(one(extra_req, i) for i in range(1, 1 + cc.agreement_samples))))
        first = cheap[0]
        conf = self.confidence(req.text, first.text, [s.text for s in cheap[1:]], cc.scorer_path)
        to = self.target(req, plan.pool, cat)
        t, t_from = self.plan_threshold(plan, cc)
        escalate = to is not None and conf < t
        self.record(plan.pool, escalate)
        if escalate:
            strong_plan = dataclasses.replace(plan, pool=to, strategy="single", samples=1, thinking_budget=0,
                                              candidates=[])
            left = max(0.001, timeout_s - (time.monotonic() - t0))
            final, sent = None, False
            try:
                async with contextlib.aclosing(draw(req, strong_plan, pools[to], left, len(cheap), stream)) as items:
                    async for item in items:
                        if isinstance(item, SampleResult):
                            final = dataclasses.replace(item, pool=to)
                        else:
                            sent = True
                            yield item
            except Unavailable as e:
                if sent:  # part of the dear answer is out: the cheap one cannot replace it
                    raise
                plan.reason += (f"; cascade: confidence {conf:.2f} < {t:g} ({t_from}), escalation to {to} failed "
                                f"({e}); kept the {plan.pool} answer")
            else:
                plan.reason += f"; cascade: confidence {conf:.2f} < {t:g} ({t_from}), escalated to {to}"
                done = [*cheap, final]
                yield Answer(final.text, final.finish_reason, done, final.model, final.simulated, final.ttft_ms)
                return
        else:
            plan.reason += (f"; cascade: confidence {conf:.2f} >= {t:g} ({t_from}), kept the {plan.pool} answer"
                            if to is not None else "; cascade: no pool to escalate to")
        if stream:
            yield StreamDelta(first.text, 0, False)
        yield Answer(first.text, first.finish_reason, cheap, first.model, first.simulated, first.ttft_ms)
