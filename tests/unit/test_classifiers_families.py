"""Router families: similarity-weighted neighbours and matrix factorisation; gain heads."""
import numpy as np
import pytest

from ponder.router.classifiers import build_classifier, gain_target, load_classifier, registered, save_classifier
from ponder.router.training import metrics as M


def topics(n=300, seed=0):
    """Three topics: the weak model fails geometry, both fail riddles, both pass greetings.

    The right routing is obvious: geometry goes strong first; riddles gain nothing from the strong model.
    """
    rng = np.random.default_rng(seed)
    texts, weak, strong, kind = [], [], [], []
    for i in range(n):
        k = i % 3
        if k == 0:
            texts.append(f"compute the area of triangle number {rng.integers(1000)} with sides and angles")
            weak.append(rng.random() < 0.1)
            strong.append(rng.random() < 0.9)
        elif k == 1:
            texts.append(f"riddle {rng.integers(1000)}: what walks on four legs at dawn, a sphinx asks")
            weak.append(rng.random() < 0.1)
            strong.append(rng.random() < 0.1)
        else:
            texts.append(f"say hello politely to friend {rng.integers(1000)} in a warm greeting")
            weak.append(rng.random() < 0.9)
            strong.append(rng.random() < 0.9)
        kind.append(k)
    return texts, np.array(weak), np.array(strong), np.array(kind)


@pytest.mark.parametrize("name,params", [("sw-neighbours", {"k": 20}), ("mf", {"rank": 4, "hash_bits": 12})])
def test_family_routes_the_obvious_table(name, params, tmp_path):
    assert name in registered()
    texts, w, s, kind = topics()
    labels = {"weak": w, "strong": s, gain_target("weak", "strong"): s & ~w, gain_target("strong", "weak"): w & ~s}
    clf = build_classifier(name, params).fit(texts, labels)
    tt, tw, ts, tk = topics(150, seed=1)
    p = clf.predict_proba(tt)
    assert p.shape == (150, 4) and ((0 <= p) & (p <= 1)).all()
    gain = clf.gain_score(tt, "weak", "strong")
    # Geometry (the only topic where the strong model adds anything) goes strong first.
    assert gain[tk == 0].min() > max(gain[tk == 1].max(), gain[tk == 2].max())
    # P(weak right) follows the topics even though the riddles and geometry both defeat it.
    assert p[tk == 2, 0].mean() > 0.7 > 0.3 > p[tk == 1, 0].mean()
    # As good as routing by the true topic (the best any prompt-only router can do here).
    by_topic = M.apgr(M.router_curve((tk == 0).astype(float) - (tk == 2) * 0.01, tw, ts))
    assert M.apgr(M.router_curve(gain, tw, ts)) > by_topic - 0.02
    back = load_classifier(save_classifier(clf, tmp_path / name))
    assert back.targets == clf.targets
    assert np.allclose(back.predict_proba(tt[:10]), p[:10], atol=1e-5)


def test_neighbours_skip_unknown_outcomes_and_weight_by_similarity():
    texts = ["alpha beta gamma", "alpha beta delta", "zeta eta theta", "zeta eta iota"]
    y = np.array([1.0, np.nan, 0.0, 0.0])
    clf = build_classifier("sw-neighbours", {"k": 2, "prior_weight": 0.0, "calibration": "none",
                                             "temperature": 0.05})
    clf.fit(texts, {"pool": y})
    raw = clf._scores(clf.vectors(["alpha beta"]))
    # The unknown row carries no weight; the nearest known row is right, the far ones are wrong.
    assert raw[0, 0] > 0.99
    assert clf._scores(clf.vectors(["zeta eta"]))[0, 0] < 0.01


def test_gain_score_without_gain_heads_is_the_difference():
    texts, w, s, _ = topics(120)
    clf = build_classifier("sw-neighbours", {"k": 10}).fit(texts, {"weak": w, "strong": s})
    p = clf.predict_proba(texts[:5])
    assert np.allclose(clf.gain_score(texts[:5], "weak", "strong"), p[:, 1] - p[:, 0])
    with pytest.raises(KeyError, match="no target 'big'"):
        clf.gain_score(texts[:5], "weak", "big")
