"""BLEU / ROUGE-1 / retrieval metrics, splits and baseline inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bci_app.errors import ConfigError
from decoders.text.evaluation import (
    baseline_inputs,
    bleu,
    disjoint_split,
    retrieval_topk,
    rouge1,
)
from decoders.text.synthetic import ReadingDataset


def test_bleu_known_values():
    refs = ["the cat is on the mat"]
    assert bleu(refs, refs, 4) == pytest.approx(1.0)
    # Papineni's example: "the the the the the the the" vs ref -> clipped unigram precision 2/7
    assert bleu(["the cat is on the mat"], ["the the the the the the the"], 1) == \
        pytest.approx(2 / 7)
    # hypothesis "the cat" (2 words) vs 6-word ref: p1 = 1, p2 = 1, BP = exp(1 - 6/2)
    assert bleu(refs, ["the cat"], 2) == pytest.approx(math.exp(1 - 3))
    assert bleu(refs, ["dog"], 1) == 0.0
    assert bleu(refs, [""], 1) == 0.0
    # corpus level: counts pooled before the ratio
    b1 = bleu(["a b", "c d"], ["a b", "x y"], 1)
    assert b1 == pytest.approx(0.5)


def test_rouge1():
    assert rouge1(["a b c d"], ["a b"]) == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert rouge1(["a b"], ["c"]) == 0.0
    assert rouge1(["a b", "a b"], ["a b", "c"]) == pytest.approx(0.5)


def test_retrieval_topk_and_ties():
    scores = np.array([[0.1, 0.9, 0.0], [0.5, 0.2, 0.3], [1.0, 1.0, 1.0]])
    truth = [1, 2, 0]
    assert retrieval_topk(scores, truth, 1).tolist() == [True, False, False]
    assert retrieval_topk(scores, truth, 2).tolist() == [True, True, False]
    assert retrieval_topk(scores, truth, 3).tolist() == [True, True, True]


def _toy(n_sub=4, n_sent=20, reps=2):
    subs, sids = np.meshgrid(np.arange(1, n_sub + 1), np.arange(n_sent), indexing="ij")
    subs = np.repeat(subs.ravel(), reps)
    sids = np.repeat(sids.ravel(), reps)
    X = np.random.default_rng(0).standard_normal((len(subs), 3, 10)).astype(np.float32)
    return ReadingDataset(X, sids, subs, [f"s {i}" for i in range(n_sent)], ["a", "b", "c"],
                          10.0, 1.0)


def test_disjoint_split_by_subject_and_sentence():
    ds = _toy()
    sp = disjoint_split(ds, seed=3)
    tr_sub, te_sub = set(ds.subjects[sp.train]), set(ds.subjects[sp.test])
    va_sub = set(ds.subjects[sp.val])
    tr_s, va_s, te_s = (set(ds.sentence_ids[i]) for i in (sp.train, sp.val, sp.test))
    assert not tr_sub & te_sub and not va_sub & te_sub
    assert not tr_s & te_s and not va_s & te_s and not tr_s & va_s
    assert len(sp.test) and len(sp.val) and len(sp.train)
    with pytest.raises(ConfigError, match="subjects"):
        disjoint_split(ds.subset(np.flatnonzero(ds.subjects == 1)))


def test_baseline_inputs():
    ds = _toy()
    rng = np.random.default_rng(0)
    X = ds.X * np.array([1.0, 5.0, 20.0])[None, :, None].astype(np.float32) + 3
    noise = baseline_inputs("noise", X, ds.sentence_ids, rng)
    np.testing.assert_allclose(noise.std(axis=(0, 2)), X.std(axis=(0, 2)), rtol=0.1)
    np.testing.assert_allclose(noise.mean(axis=(0, 2)), X.mean(axis=(0, 2)), atol=1.0)
    assert not np.allclose(noise, X)
    sh = baseline_inputs("shuffled", X, ds.sentence_ids, rng)
    # every window now comes from another sentence's trial
    src = [int(np.flatnonzero((X == row).all(axis=(1, 2)))[0]) for row in sh]
    assert all(ds.sentence_ids[s] != ds.sentence_ids[i] for i, s in enumerate(src))
    assert np.all(baseline_inputs("text_prior", X, ds.sentence_ids, rng) == 0)
    with pytest.raises(ConfigError, match="condition"):
        baseline_inputs("magic", X, ds.sentence_ids, rng)
