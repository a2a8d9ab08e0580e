"""Shared fixtures of the EEG-to-text tests: small synthetic reading datasets (cached)."""

from __future__ import annotations

from functools import lru_cache

import pytest


@lru_cache(maxsize=8)
def _synthetic(snr: float, n_sentences: int, subjects: tuple[int, ...], reps: int, sfreq):
    from decoders.text.synthetic import SyntheticReadingEEG

    return SyntheticReadingEEG(snr=snr, n_sentences=n_sentences, subjects=subjects, reps=reps,
                               sfreq=sfreq, seed=0).generate()


@pytest.fixture(scope="session")
def synthetic(eegmmidb_path):
    """``synthetic(snr, n_sentences=120, subjects=(1, 2, 3, 4), reps=2, sfreq=80)``"""

    def make(snr: float, n_sentences: int = 120, subjects=(1, 2, 3, 4), reps: int = 2,
             sfreq=80.0):
        return _synthetic(float(snr), n_sentences, tuple(subjects), reps, sfreq)

    return make
