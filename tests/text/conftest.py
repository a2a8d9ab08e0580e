"""Shared fixtures of the EEG-to-text tests: small synthetic reading datasets (cached)."""

from __future__ import annotations

from functools import lru_cache

import pytest


@lru_cache(maxsize=8)
def _synthetic(snr: float, n_sentences: int, subjects: tuple[int, ...], reps: int, sfreq):
    from decoders.text.synthetic import SyntheticReadingEEG

    return SyntheticReadingEEG(snr=snr, n_sentences=n_sentences, subjects=subjects, reps=reps,
                               sfreq=sfreq, seed=0).generate()


#: a small dataset for smoke tests: 2 readers (EEGMMIDB S002, S003) x 20 sentences
SMALL = {"n_sentences": 20, "subjects": (2, 3), "reps": 1}


@pytest.fixture(scope="session")
def synthetic(eegmmidb_path):
    """``synthetic(snr, n_sentences=120, subjects=(1, 2, 3, 4), reps=2, sfreq=80)``"""

    def make(snr: float, n_sentences: int = 120, subjects=(1, 2, 3, 4), reps: int = 2,
             sfreq=80.0):
        return _synthetic(float(snr), n_sentences, tuple(subjects), reps, sfreq)

    return make


@pytest.fixture(scope="session")
def fitted(synthetic):
    """(dataset, EEGTextDecoder) trained 2 epochs on 120 trials (a smoke model, not a good one)."""
    import numpy as np

    from decoders.text.estimator import EEGTextDecoder, TextTrainSettings

    ds = synthetic(4.0, **SMALL)
    idx = np.arange(len(ds))
    dec = EEGTextDecoder(16, ds.sfreq, ds.window_s, {"d_model": 32},
                         TextTrainSettings(max_epochs=2, seed=1))
    dec.fit(ds.X[idx], [ds.sentences[i] for i in idx], candidates=ds.corpus[:10])
    return ds, dec
