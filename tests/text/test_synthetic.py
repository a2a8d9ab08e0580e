"""The synthetic reading-EEG generator: real rest background, known signatures, SNR dial."""

from __future__ import annotations

import numpy as np
import pytest

from bci_app.errors import ConfigError
from decoders.text.synthetic import SyntheticReadingEEG, make_corpus


def test_corpus_distinct_and_seeded():
    c = make_corpus(50, seed=1)
    assert len(set(c)) == 50 and c == make_corpus(50, seed=1) and c != make_corpus(50, seed=2)
    assert all(4 <= len(s.split()) <= 7 for s in c)


def test_generator_snr_and_ground_truth(eegmmidb_path):
    kw = {"n_sentences": 6, "subjects": (2, 3), "reps": 1, "sfreq": 80.0, "seed": 0,
              "data_path": eegmmidb_path}
    d0 = SyntheticReadingEEG(snr=0.0, **kw).generate()
    d1 = SyntheticReadingEEG(snr=1.0, **kw).generate()
    assert d0.X.shape == (12, 16, 160) and d0.sfreq == 80.0
    assert np.all(d0.sentence_ids == d1.sentence_ids) and d0.corpus == d1.corpus
    # same background draws: difference = the signal, with RMS = snr x background RMS
    sig = d1.X - d0.X
    ratio = np.sqrt((sig ** 2).mean(axis=(1, 2))) / np.sqrt((d0.X ** 2).mean(axis=(1, 2)))
    np.testing.assert_allclose(ratio, 1.0, rtol=1e-3)
    # background is real EEG in µV (tens of µV), not white noise
    assert 2 < d0.X.std() < 200
    # deterministic
    np.testing.assert_array_equal(SyntheticReadingEEG(snr=1.0, **kw).generate().X, d1.X)
    # the same word leaves the same signature (up to the reader's perturbation)
    gen = SyntheticReadingEEG(snr=1.0, **kw)
    a, b = gen.signature("dog", 2, 80.0), gen.signature("dog", 3, 80.0)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.8
    assert abs(np.corrcoef(a.ravel(), gen.signature("cat", 2, 80.0).ravel())[0, 1]) < 0.8


def test_generator_errors():
    with pytest.raises(ConfigError, match="snr"):
        SyntheticReadingEEG(snr=-1)
    gen = SyntheticReadingEEG(window_s=0.5)
    with pytest.raises(ConfigError, match="window_s"):
        gen.sentence_signal("a b c d e", 1, 160.0, 80, np.random.default_rng(0))
