"""Confidence of a small model's answer: features of (prompt, answer) → calibrated P(answer is right).

A cascade answers with the cheap plan first and escalates when this score is
low. Everything here is a pure function of what a serving system holds after
the cheap call; nothing calls a model.

Features (``FEATURE_NAMES``), all finite:

- size: log characters of the prompt and the answer, answer lines;
- format validity: a final answer is marked (``####``, ``\\boxed{}``,
  "the answer is", "Answer:"), the answer ends cleanly (terminal punctuation,
  a closing bracket or a number) rather than mid-word (a cut-off generation);
- checkable arithmetic: equations ``a op b = c`` and calculator annotations
  ``<<expr=c>>`` in the answer, how many, and the share whose right side is
  wrong;
- grounding: the share of the prompt's numbers the answer uses;
- hedging and repetition: hedge phrases per 100 words, the share of repeated
  lines;
- token log-probabilities when the backend returns them (mean, minimum, share
  below log 0.5), else zeros with ``has_logprobs`` 0;
- agreement among a few cheap samples when given (share whose final answer
  equals this answer's), else 0 with ``has_samples`` 0;
- the final value (``final_answer``): present, a whole number, equal to the
  last computed result in the answer, copied from the prompt;
- the prompt-only router's P(cheap model right) when given (its logit), else
  0 with ``has_prior`` 0.

``ConfidenceScorer`` is a logistic regression (scikit-learn, on standardised
features) with Platt calibration fitted on cross-fitted scores; it saves to
and loads from one JSON file and scores one answer with a dot product.
``should_escalate`` is the cascade's decision rule for a budget multiplier λ.
"""
from __future__ import annotations

import json
import math
import pathlib
import re
import warnings
from typing import Sequence

import numpy as np

from ponder.router.classifiers.calibration import Calibrator, expected_calibration_error
from ponder.router.classifiers.threads import one_thread

FORMAT_VERSION = 1
FEATURE_NAMES = (
    "log_prompt_chars", "log_answer_chars", "log_answer_lines", "has_final_marker", "clean_ending",
    "log_checked_equations", "wrong_equation_share", "prompt_numbers_used", "hedges_per_100_words",
    "repeated_line_share", "has_logprobs", "mean_logprob", "min_logprob", "low_logprob_share",
    "has_samples", "sample_agreement", "has_final_value", "final_is_whole", "final_is_last_result",
    "final_in_prompt", "has_prior", "prior_logit",
)

_NUM = r"-?\d[\d,]*(?:\.\d+)?"
_NUMBER = re.compile(_NUM)
_FINAL = re.compile(r"####|\\boxed\{|the (?:final )?answer is|answer\s*:", re.IGNORECASE)
_FINAL_VALUE = re.compile(r"(?:####|\\boxed\{|answer is|answer\s*:)\s*\$?\s*(" + _NUM + ")", re.IGNORECASE)
_EQUATION = re.compile(r"(" + _NUM + r")\s*([-+*/×x÷])\s*(" + _NUM + r")\s*=\s*\$?\s*(" + _NUM + ")")
_ANNOTATION = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
_SAFE_EXPR = re.compile(r"^[\d\s.+\-*/()]+$")
_HEDGES = re.compile(
    r"\b(?:maybe|perhaps|probably|possibly|i think|i believe|not sure|unsure|unclear|assum\w*|approximately|"
    r"roughly|it seems|might|could be|cannot be determined|can't be determined|i'm not certain)\b", re.IGNORECASE)
_CLEAN_END = re.compile(r"(?:[.!?)\]}\"'*`]|\d)\s*$")


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _evaluate(expr: str) -> float | None:
    """Value of a plain arithmetic expression (digits, + - * / and brackets), None when it is not one."""
    expr = expr.replace(",", "")
    if not _SAFE_EXPR.match(expr) or len(expr) > 200:
        return None
    try:
        return float(eval(expr, {"__builtins__": {}}, {}))  # noqa: S307  (only digits, operators, brackets)
    except (SyntaxError, ZeroDivisionError, TypeError, ValueError, OverflowError):
        return None


def _apply(a: float, op: str, b: float) -> float | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op in "*×x":
        return a * b
    return a / b if b else None


def checked_equations(answer: str) -> tuple[int, int]:
    """(equations whose value could be checked, how many of them are wrong) in ``answer``.

    Counts ``a op b = c`` and calculator annotations ``<<expr=c>>``; a value
    within 1e-6 relative (or 0.01 absolute, for rounded money) is right.
    """
    checked = wrong = 0
    for expr, result in _ANNOTATION.findall(answer):
        v, r = _evaluate(expr), _number(result.strip())
        if v is None or r is None:
            continue
        checked += 1
        wrong += not math.isclose(v, r, rel_tol=1e-6, abs_tol=1e-2)
    for a, op, b, c in _EQUATION.findall(_ANNOTATION.sub(" ", answer)):
        x, y, r = _number(a), _number(b), _number(c)
        if x is None or y is None or r is None:
            continue
        v = _apply(x, op, y)
        if v is None:
            continue
        checked += 1
        wrong += not math.isclose(v, r, rel_tol=1e-6, abs_tol=1e-2)
    return checked, wrong


def final_answer(answer: str) -> str | None:
    """The marked final value (``#### 18``, ``\\boxed{18}``, "the answer is 18"), else the last number, else None."""
    marked = _FINAL_VALUE.findall(answer)
    if marked:
        return str(_number(marked[-1]))
    nums = _NUMBER.findall(answer)
    return str(_number(nums[-1])) if nums else None


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return math.log(p / (1 - p))


def answer_features(prompt: str, answer: str, token_logprobs: Sequence[float] | None = None,
                    samples: Sequence[str] | None = None, prior: float | None = None) -> np.ndarray:
    """The ``FEATURE_NAMES`` features of one answer, float64, all finite."""
    words = answer.split()
    lines = [ln.strip() for ln in answer.splitlines() if ln.strip()]
    checked, wrong = checked_equations(answer)
    prompt_nums = {_number(n) for n in _NUMBER.findall(prompt)} - {None}
    answer_nums = {_number(n) for n in _NUMBER.findall(answer)} - {None}
    used = len(prompt_nums & answer_nums) / len(prompt_nums) if prompt_nums else 1.0
    hedges = len(_HEDGES.findall(answer)) * 100.0 / max(len(words), 1)
    repeated = 1.0 - len(set(lines)) / len(lines) if lines else 0.0
    if token_logprobs is not None and len(token_logprobs):
        lp = np.asarray(token_logprobs, dtype=np.float64)
        lp = lp[np.isfinite(lp)]
    else:
        lp = np.zeros(0)
    has_lp = float(len(lp) > 0)
    lp_feats = [float(lp.mean()), float(lp.min()), float(np.mean(lp < math.log(0.5)))] if len(lp) else [0.0, 0.0, 0.0]
    agreement, has_samples = 0.0, 0.0
    if samples:
        mine = final_answer(answer)
        others = [final_answer(s) for s in samples]
        agreement = float(np.mean([o is not None and o == mine for o in others])) if mine is not None else 0.0
        has_samples = 1.0
    fin = final_answer(answer)
    fin_v = float(fin) if fin is not None else None
    results = [_number(r.strip()) for _, r in _ANNOTATION.findall(answer)] + \
        [_number(m[3]) for m in _EQUATION.findall(answer)]
    results = [r for r in results if r is not None]
    return np.array([
        math.log1p(len(prompt)), math.log1p(len(answer)), math.log1p(len(lines)),
        float(bool(_FINAL.search(answer))), float(bool(_CLEAN_END.search(answer))),
        math.log1p(checked), wrong / checked if checked else 0.0, used, hedges, repeated,
        has_lp, *lp_feats, has_samples, agreement,
        float(fin_v is not None), float(fin_v is not None and fin_v.is_integer()),
        float(fin_v is not None and bool(results) and math.isclose(results[-1], fin_v, abs_tol=1e-2)),
        float(fin_v is not None and fin_v in prompt_nums),
        float(prior is not None), _logit(prior) if prior is not None else 0.0,
    ], dtype=np.float64)


def feature_matrix(prompts: Sequence[str], answers: Sequence[str],
                   token_logprobs: Sequence[Sequence[float] | None] | None = None,
                   samples: Sequence[Sequence[str] | None] | None = None,
                   priors: Sequence[float] | None = None) -> np.ndarray:
    """``answer_features`` per row, shape (n, len(FEATURE_NAMES)); ValueError on lists of unequal length."""
    n = len(prompts)
    lps = token_logprobs if token_logprobs is not None else [None] * n
    smp = samples if samples is not None else [None] * n
    pri = priors if priors is not None else [None] * n
    if not (len(answers) == len(lps) == len(smp) == len(pri) == n):
        raise ValueError(f"{n} prompts but {len(answers)} answers, {len(lps)} log-probability lists, "
                         f"{len(smp)} sample lists, {len(pri)} priors")
    if not n:
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.vstack([answer_features(p, a, lp, s, q) for p, a, lp, s, q in zip(prompts, answers, lps, smp, pri)])


class ConfidenceScorer:
    """P(answer right) = Platt(standardised features · w + b); ``fit`` learns w, b and the calibration."""

    def __init__(self, mu: np.ndarray | None = None, sd: np.ndarray | None = None, w: np.ndarray | None = None,
                 b: float = 0.0, calibrator: Calibrator | None = None, report: dict | None = None):
        k = len(FEATURE_NAMES)
        self.mu = np.zeros(k) if mu is None else np.asarray(mu, dtype=np.float64)
        self.sd = np.ones(k) if sd is None else np.asarray(sd, dtype=np.float64)
        self.w = np.zeros(k) if w is None else np.asarray(w, dtype=np.float64)
        self.b = float(b)
        self.calibrator = calibrator or Calibrator("none")
        self.report = report or {}

    def raw(self, x: np.ndarray) -> np.ndarray:
        return ((np.atleast_2d(x) - self.mu) / self.sd) @ self.w + self.b

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(right) per row of a feature matrix (n, len(FEATURE_NAMES)), in [0, 1]."""
        return self.calibrator(self.raw(x))

    def score(self, prompt: str, answer: str, token_logprobs: Sequence[float] | None = None,
              samples: Sequence[str] | None = None, prior: float | None = None) -> float:
        """Calibrated P(``answer`` to ``prompt`` is right), in [0, 1]. ``prior``: the prompt-only
        classifier's P(cheap pool right), when the scorer was trained with one."""
        return float(self.predict_features(answer_features(prompt, answer, token_logprobs, samples, prior))[0])

    def fit(self, x: np.ndarray, y: np.ndarray, l2: float = 1e-2, folds: int = 5, seed: int = 0) -> "ConfidenceScorer":
        """Fit on features ``x`` (n, k) and labels ``y`` (n,); ValueError with one class or too few rows.

        The calibration is fitted on out-of-fold scores of ``folds`` models, the
        final weights on all rows; ``report`` gets n, the base rate and the
        out-of-fold ECE before and after calibration.
        """
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y).astype(bool)
        if len(y) < 2 * folds or y.all() or not y.any():
            raise ValueError(f"need both classes and at least {2 * folds} rows, got {len(y)} rows, {int(y.sum())} right")

        def one(xt: np.ndarray, yt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
            mu, sd = xt.mean(axis=0), xt.std(axis=0)
            sd[sd < 1e-9] = 1.0
            m = LogisticRegression(C=1.0 / (l2 * len(yt)), max_iter=1000)
            with warnings.catch_warnings(), one_thread():
                warnings.simplefilter("ignore", ConvergenceWarning)
                m.fit((xt - mu) / sd, yt)
            return mu, sd, m.coef_[0], float(m.intercept_[0])

        fold = np.random.default_rng(seed).permutation(len(y)) % folds
        oof = np.zeros(len(y))
        for j in range(folds):
            tr, te = fold != j, fold == j
            if y[tr].all() or not y[tr].any():
                oof[te] = 0.0
                continue
            mu, sd, w, b = one(x[tr], y[tr])
            oof[te] = ((x[te] - mu) / sd) @ w + b
        self.mu, self.sd, self.w, self.b = one(x, y)
        self.calibrator = Calibrator.fit("platt", oof, y)
        self.report = {"n": int(len(y)), "base_rate": float(y.mean()),
                       "oof_ece_raw": expected_calibration_error(1 / (1 + np.exp(-oof)), y),
                       "oof_ece": expected_calibration_error(self.calibrator(oof), y),
                       "weights": {n: round(float(v), 4) for n, v in zip(FEATURE_NAMES, self.w)}}
        return self

    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, "features": list(FEATURE_NAMES), "mu": self.mu.tolist(),
                "sd": self.sd.tolist(), "w": self.w.tolist(), "b": self.b, "calibrator": self.calibrator.to_dict(),
                "report": self.report}

    @classmethod
    def from_dict(cls, d: dict) -> "ConfidenceScorer":
        """ValueError when the dict is of another format version or feature list."""
        if d.get("format_version") != FORMAT_VERSION or tuple(d.get("features", ())) != FEATURE_NAMES:
            raise ValueError(f"confidence scorer of format {d.get('format_version')!r} with features "
                             f"{d.get('features')!r}; this ponder reads format {FORMAT_VERSION} with {list(FEATURE_NAMES)}")
        return cls(d["mu"], d["sd"], d["w"], d["b"], Calibrator.from_dict(d["calibrator"]), d.get("report", {}))

    def save(self, path: str | pathlib.Path) -> pathlib.Path:
        """Write atomically (temporary file, then rename)."""
        p = pathlib.Path(path)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: str | pathlib.Path) -> "ConfidenceScorer":
        return cls.from_dict(json.loads(pathlib.Path(path).read_text()))


def should_escalate(p_cheap_right: float, p_strong_right: float, lam: float, strong_cost_cu: float) -> bool:
    """Escalate when the expected accuracy gained, P(strong right) - P(cheap answer right), exceeds
    λ times the extra call's cost (the cheap call is already spent)."""
    return p_strong_right - p_cheap_right > lam * strong_cost_cu
