"""Small real-EEG fixtures for decoder tests (2 subjects of EEGMMIDB, 40 Hz, 1 s windows)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mi_small(eegmmidb_path):
    """EEGMMIDB S001+S002, CAR, 8-30 Hz, resampled to 80 Hz, 0.5-2.5 s windows: (90, 64, 160)."""
    from decoders.data import load_eegmmidb
    from decoders.preprocessing import Preprocessor

    return load_eegmmidb([1, 2], eegmmidb_path, Preprocessor(sfreq=80.0), tmin=0.5, tmax=2.5)


#: Signal parameters of the ``toy`` fixture.
TOY_CHANS, TOY_SFREQ, TOY_WINDOW = 8, 64.0, 2.0


@pytest.fixture(scope="module")
def toy():
    """24 synthetic trials (8 ch, 64 Hz, 2 s): class 1 has 3x the amplitude on channel 0."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, TOY_CHANS, int(TOY_SFREQ * TOY_WINDOW))) * 1e-5
    y = np.arange(24) % 2
    X[y == 1, 0] *= 3.0
    return X.astype(np.float32), y
