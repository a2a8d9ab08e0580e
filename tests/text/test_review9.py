"""Regression tests of review 9 (EEG-to-text): NaN can never score as retrieval hits, non-finite
training windows are refused with a clear error, and a second ``fit`` is a fresh fit."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from bci_app.errors import ConfigError

from .conftest import SMALL


def test_retrieval_topk_counts_nan_as_miss():
    from decoders.text.evaluation import retrieval_topk

    assert not retrieval_topk(np.full((3, 4), np.nan), [0, 1, 2], 1).any()
    s = np.array([[0.9, np.nan, 0.1], [0.2, 0.8, 0.1], [np.nan, 0.1, 0.5]])
    # row 0: a NaN distractor ranks against the truth; row 2: NaN truth
    assert retrieval_topk(s, [0, 1, 0], 1).tolist() == [False, True, False]
    assert retrieval_topk(s, [0, 1, 0], 2).tolist() == [True, True, False]


def test_score_decoder_of_a_nan_model_scores_zero(fitted):
    from decoders.text.evaluation import score_decoder

    ds, dec = fitted
    broken = copy.copy(dec)
    broken.model_ = copy.deepcopy(dec.model_)
    broken.model_.sem_head[-1].bias.data.fill_(float("nan"))
    X = ds.X[:6]
    truth = np.arange(6) % len(dec.candidates_)
    sc = score_decoder(broken, X, ["x"] * 6, dec.candidate_embeddings_, truth)
    assert sc["metrics"]["top1"] == 0.0 and sc["metrics"]["top5"] == 0.0


def test_fit_refuses_non_finite_or_empty_windows(synthetic):
    from decoders.text.estimator import EEGTextDecoder, TextTrainSettings

    ds = synthetic(4.0, **SMALL)
    dec = EEGTextDecoder(16, ds.sfreq, ds.window_s, {"d_model": 32},
                         TextTrainSettings(max_epochs=1))
    X = ds.X[:10].copy()
    X[3, 2, 5] = np.nan
    with pytest.raises(ConfigError, match=r"X: 1 of 10 windows hold NaN.*window 3.*Fix"):
        dec.fit(X, ds.sentences[:10])
    with pytest.raises(ConfigError, match="X_val: 1 of 10 windows"):
        dec.fit(ds.X[10:20], ds.sentences[10:20], X, ds.sentences[:10])
    with pytest.raises(ConfigError, match="at least one training window"):
        dec.fit(ds.X[:0], [])
    with pytest.raises(ConfigError, match="sentences_val: expected 10"):
        dec.fit(ds.X[10:20], ds.sentences[10:20], ds.X[:10])


def test_second_fit_derives_max_len_from_its_own_sentences(synthetic, tmp_path):
    from decoders.text.bundle import load_text_bundle, save_text_bundle
    from decoders.text.estimator import EEGTextDecoder, TextTrainSettings

    ds = synthetic(4.0, **SMALL)
    X, short = ds.X[:12], ds.sentences[:12]
    long_ = [s + " and " + s for s in short]
    st = TextTrainSettings(max_epochs=1)
    dec = EEGTextDecoder(16, ds.sfreq, ds.window_s, {"d_model": 32}, st).fit(X, short)
    need = max(len(dec.tokenizer_.encode(s)) for s in long_)
    assert dec.model_.max_len < need
    dec.fit(X, long_)
    assert dec.model_.max_len >= need
    fresh = EEGTextDecoder(16, ds.sfreq, ds.window_s, {"d_model": 32}, st).fit(X, long_)
    assert dec.model_params == fresh.model_params
    # a max_len the caller chose is kept
    fixed = EEGTextDecoder(16, ds.sfreq, ds.window_s, {"d_model": 32, "max_len": 6}, st)
    assert fixed.fit(X, short).fit(X, long_).model_.max_len == 6
    # the bundle remembers which parameters fit derived
    save_text_bundle(dec, tmp_path / "tb", {"channels": ds.ch_names,
                                            "preprocessing": ds.preprocessing})
    loaded = load_text_bundle(tmp_path / "tb").decoder
    assert set(loaded.derived_params) == {"max_len", "vocab_size"}
    assert loaded.fit(X, short).model_.max_len == EEGTextDecoder(
        16, ds.sfreq, ds.window_s, {"d_model": 32}, st).fit(X, short).model_.max_len


def test_beam_width_must_be_at_least_one(fitted):
    from bci_app.cli import build_parser
    from bci_app.commands.evaluate_text import run
    from decoders.text.estimator import EEGTextDecoder

    ds, dec = fitted
    for bad in (0, -2):
        with pytest.raises(ConfigError, match="beam: expected an integer >= 1"):
            EEGTextDecoder(16, ds.sfreq, ds.window_s, beam=bad)
        with pytest.raises(ConfigError, match="beam: expected an integer >= 1"):
            dec.decode_text(ds.X[:1], beam=bad)
    with pytest.raises(ConfigError, match="--beam: expected >= 1"):
        run(build_parser().parse_args(["evaluate-text", "--beam", "0"]))


def test_beam_wider_than_the_vocabulary_decodes(fitted):
    ds, dec = fitted
    (text, conf), = dec.decode_text(ds.X[:1], beam=len(dec.tokenizer_) + 3)
    assert isinstance(text, str) and 0 < conf <= 1
