"""``extractive``: query-agnostic compression by self-information under a small local model.

In the style of LLMLingua / Selective Context: text that a language model can
predict from what came before carries little information and can go.

  1. Split the text into units (sentences; or clauses at , and ;). Exact repeats
     of an earlier unit are dropped first.
  2. Score every token by its self-information -log p(token | preceding text)
     under the local model (a GGUF through llama.cpp), reading the text in
     windows of ``window_tokens`` that start at unit boundaries.
  3. A unit's score is the mean self-information of its tokens plus a fact prior,
     ``fact_weight_nats`` x its fact density: the share of its words, after the
     first, that hold a digit or start with a capital (numbers and proper names:
     what entity-value statements are made of, in any phrasing).
  4. Keep the highest-scoring units while their tokens fit in total / target_ratio
     (total: the raw text's tokens, exact repeats included, so the ratio is raw / kept)
     (a unit that does not fit is skipped, smaller ones may still fit), skipping a
     near repeat: a unit whose word set overlaps one already kept by ``max_overlap``
     (Jaccard) or more and that names no number or name that unit lacks. So
     boilerplate said again in other words does not crowd out facts, while facts
     phrased alike (same sentence, other entity and value) all stay. Emit the kept
     units in their original order, joined by ``unit_separator`` (a space, or one
     unit per line).

No library fits offline with a GGUF (LLMLingua loads Hugging Face checkpoints),
so this is written on llama-cpp-python's logits. It is one step whatever the
job's passes; cost is the tokens scored at ``prompt_token_cu``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import re

import numpy as np

from ponder.common.config import ExtractiveSettings
from ponder.common.errors import BackendError, DependencyMissing
from ponder.consolidation.strategies.base import StepContext, StepResult, Strategy

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE = re.compile(r"(?<=[,;:])\s+")
_WORD = re.compile(r"\w[\w'-]*")


def split_units(text: str, unit: str = "sentence") -> list[str]:
    """Units of ``text`` in order, whitespace-trimmed, empty ones dropped."""
    parts = [p.strip() for p in _SENTENCE.split(text)]
    if unit == "phrase":
        parts = [c.strip() for p in parts for c in _CLAUSE.split(p)]
    return [p for p in parts if p]


_SEPARATORS = {"space": " ", "newline": "\n"}


def join_units(units: list[str], separator: str = "space") -> str:
    """The kept units as one text: ``separator`` 'space' joins them with single spaces, 'newline'
    puts one unit per line (a unit's own line breaks become spaces, so a line is a unit).
    Raises ValueError on another separator."""
    if separator not in _SEPARATORS:
        raise ValueError(f"unit_separator must be one of {sorted(_SEPARATORS)}, not {separator!r}")
    if separator == "newline":
        units = [" ".join(u.split()) for u in units]
    return _SEPARATORS[separator].join(units)


def unit_key(unit: str) -> str:
    """The unit lower-cased with its whitespace collapsed: units with equal keys are exact repeats."""
    return " ".join(unit.lower().split())


def drop_repeats(units: list[str]) -> list[str]:
    """Units with exact repeats (whitespace- and case-insensitive) removed, first kept."""
    seen: set[str] = set()
    out = []
    for u in units:
        k = unit_key(u)
        if k not in seen:
            seen.add(k)
            out.append(u)
    return out


def _is_fact_word(w: str) -> bool:
    return w[0].isupper() or any(c.isdigit() for c in w)


def fact_density(unit: str) -> float:
    """Share of the unit's words after the first that contain a digit or start with an
    upper-case letter, in [0, 1]; 0 for a unit of one word or none."""
    words = _WORD.findall(unit)[1:]
    if not words:
        return 0.0
    return sum(_is_fact_word(w) for w in words) / len(words)


def word_set(unit: str) -> frozenset[str]:
    """Lower-cased words of the unit."""
    return frozenset(w.lower() for w in _WORD.findall(unit))


def fact_words(unit: str) -> frozenset[str]:
    """Its words after the first that hold a digit or start with a capital (numbers, names)."""
    return frozenset(w for w in _WORD.findall(unit)[1:] if _is_fact_word(w))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b| in [0, 1]; 0 when both are empty."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def select_units(scores: list[float], tokens: list[int], ratio: float,
                 words: list[frozenset[str]] | None = None, max_overlap: float = 1.0,
                 facts: list[frozenset[str]] | None = None, total_tokens: int | None = None) -> list[int]:
    """Indices of the units to keep, ascending: highest score first while the kept tokens
    stay within ``total_tokens`` (the raw text's, repeats included; default sum(tokens)) / ratio,
    skipping a near repeat: a unit whose ``words`` overlap
    a kept unit's by ``max_overlap`` or more (1.0: only identical word sets) and whose
    ``facts`` are all in that unit's (no ``facts``: overlap alone decides). At least one unit
    when any exists. Ties keep the earlier unit."""
    if not scores:
        return []
    budget = (sum(tokens) if total_tokens is None else total_tokens) / ratio
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept, used = [], 0
    for i in order:
        if used + tokens[i] > budget:
            continue
        if words is not None and any(
            jaccard(words[i], words[k]) >= max_overlap and (facts is None or facts[i] <= facts[k]) for k in kept
        ):
            continue
        kept.append(i)
        used += tokens[i]
    if not kept:
        kept = [min(order, key=lambda i: tokens[i])]
    return sorted(kept)


def choose(units: list[str], info: list[float], tokens: list[int], ratio: float, fact_weight_nats: float,
           max_overlap: float, total_tokens: int | None = None) -> list[int]:
    """Indices of the units to keep, ascending (steps 3-4 above): ``info`` (mean self-information
    per unit, nats) plus ``fact_weight_nats`` x fact density, then ``select_units`` under
    ``total_tokens`` (default sum(tokens)) / ``ratio`` with the near-repeat rule. Pure: the same
    scores can be re-selected under other settings without scoring again."""
    scores = [sc + fact_weight_nats * fact_density(u) for sc, u in zip(info, units)]
    return select_units(scores, tokens, ratio, [word_set(u) for u in units], max_overlap,
                        [fact_words(u) for u in units], total_tokens)


def repeat_counts(units: list[str]) -> list[int]:
    """For each unit that ``drop_repeats`` keeps, in its order, how often it occurs in ``units``
    (1 or more): the raw text's tokens are sum(count x tokens) over the kept units."""
    counts: dict[str, int] = {}
    for u in units:
        k = unit_key(u)
        counts[k] = counts.get(k, 0) + 1
    return [counts[unit_key(u)] for u in drop_repeats(units)]


@dataclasses.dataclass(frozen=True)
class ScoredText:
    """A text's units (exact repeats dropped) with their mean self-information and tokens, scored
    once; ``select`` makes its form under any settings without scoring again."""

    units: list[str]
    info: list[float]
    tokens: list[int]
    total_tokens: int  # the raw text's, repeats included
    scored: int        # tokens the model read

    def select(self, settings: ExtractiveSettings, ratio: float | None = None) -> tuple[str, int]:
        """(the form under ``settings``, at ``ratio`` or the settings' target ratio; tokens kept)."""
        if not self.units:
            return "", 0
        keep = choose(self.units, self.info, self.tokens, settings.target_ratio if ratio is None else ratio,
                      settings.fact_weight_nats, settings.max_overlap, self.total_tokens)
        return (join_units([self.units[i] for i in keep], settings.unit_separator),
                sum(self.tokens[i] for i in keep))


def mean_self_information(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-token -log p(target) from rows of next-token logits (row i predicts targets[i]), in nats."""
    m = logits.max(axis=1, keepdims=True)
    lse = (m[:, 0] + np.log(np.exp(logits - m).sum(axis=1)))
    return lse - logits[np.arange(len(targets)), targets]


class SelfInformationScorer:
    """Token self-information under a GGUF model; one thread owns the llama.cpp context."""

    def __init__(self, settings: ExtractiveSettings):
        self.settings = settings
        self._llm = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="extractive")

    def _load(self):
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise DependencyMissing("llama-cpp-python", "pip install 'ponder[cpu]'") from None
            path = self.settings.model_path
            if path is None:
                from ponder.pools.models import ensure_default_gguf

                path = str(ensure_default_gguf())
            self._llm = Llama(
                model_path=path, n_ctx=self.settings.window_tokens + 8, n_batch=self.settings.window_tokens + 8,
                n_threads=self.settings.n_threads, logits_all=True, verbose=False,
            )
        return self._llm

    def tokenize(self, unit: str) -> list[int]:
        return self._load().tokenize((" " + unit).encode(), add_bos=False, special=False)

    def unit_scores(self, units: list[str]) -> tuple[list[float], list[int], int]:
        """(mean self-information per unit, tokens per unit, tokens scored). Blocking."""
        llm = self._load()
        toks = [self.tokenize(u) or [llm.token_bos()] for u in units]
        w = self.settings.window_tokens
        scores: list[float] = [0.0] * len(units)
        scored = 0
        i = 0
        while i < len(units):
            j, n = i, 0
            while j < len(units) and (n == 0 or n + len(toks[j]) <= w):
                n += min(len(toks[j]), w)
                j += 1
            window = [t for k in range(i, j) for t in toks[k][:w]][:w]
            seq = [llm.token_bos(), *window]
            llm.reset()
            llm.eval(seq)
            logits = np.asarray(llm.scores[: len(seq) - 1], dtype=np.float32)
            si = mean_self_information(logits, np.asarray(seq[1:]))
            pos = 0
            for k in range(i, j):
                m = min(len(toks[k]), w - pos) if pos < w else 0
                scores[k] = float(si[pos: pos + m].mean()) if m > 0 else 0.0
                pos += m
            scored += len(seq)
            i = j
        return scores, [len(t) for t in toks], scored

    def score(self, text: str) -> ScoredText:
        """``text`` split into units (exact repeats dropped) and scored. Blocking."""
        every = split_units(text, self.settings.unit)
        units = drop_repeats(every)
        if not units:
            return ScoredText([], [], [], 0, 0)
        info, tokens, scored = self.unit_scores(units)
        return ScoredText(units, info, tokens, sum(c * t for c, t in zip(repeat_counts(every), tokens)), scored)

    def compress(self, text: str, ratio: float) -> tuple[str, int, int]:
        """(compressed text, tokens scored, tokens kept). Blocking."""
        scored = self.score(text)
        form, kept = scored.select(self.settings, ratio)
        return form, scored.scored, kept

    async def acompress(self, text: str, ratio: float) -> tuple[str, int, int]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self.compress, text, ratio)
        except (DependencyMissing, BackendError):
            raise
        except (ValueError, RuntimeError) as e:
            raise BackendError("extractive", str(e)) from e

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()


class Extractive(Strategy):
    name = "extractive"

    def __init__(self, settings: ExtractiveSettings, scorer: SelfInformationScorer | None = None):
        self.settings = settings
        self.scorer = scorer or SelfInformationScorer(settings)

    def steps(self, passes: int) -> int:
        return 1

    async def run_step(self, step: int, text: str, ctx: StepContext) -> StepResult:
        out, scored, kept = await self.scorer.acompress(text, self.settings.target_ratio)
        return StepResult(out, scored, kept, scored * self.settings.prompt_token_cu)

    async def close(self) -> None:
        await asyncio.to_thread(self.scorer.close)
