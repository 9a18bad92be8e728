"""Sampling filters of the transformers backend's decode loop (pure tensor functions)."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from ponder.pools.backends.torch_lm import filter_logits  # noqa: E402

LOGITS = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))


def kept(logits) -> list[int]:
    return [i for i, v in enumerate(logits.tolist()) if v != -math.inf]


def test_top_k_keeps_the_k_most_likely():
    assert kept(filter_logits(LOGITS, 1.0, 1.0, 2)) == [0, 1]
    assert kept(filter_logits(LOGITS, 1.0, 1.0, 0)) == [0, 1, 2, 3]  # 0: off


def test_top_p_keeps_the_token_that_crosses_p():
    assert kept(filter_logits(LOGITS, 1.0, 0.5, 0)) == [0]
    assert kept(filter_logits(LOGITS, 1.0, 0.6, 0)) == [0, 1]
    assert kept(filter_logits(LOGITS, 1.0, 0.9, 0)) == [0, 1, 2]
    assert kept(filter_logits(LOGITS, 1.0, 0.01, 0)) == [0]  # the most likely always survives


def test_temperature_scales_the_logits():
    out = filter_logits(LOGITS, 0.5, 1.0, 0)
    assert torch.allclose(out, LOGITS * 2)
