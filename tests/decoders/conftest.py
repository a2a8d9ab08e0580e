"""Small real-EEG fixtures for decoder tests (2 subjects of EEGMMIDB, 40 Hz, 1 s windows)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mi_small(eegmmidb_path):
    """EEGMMIDB S001+S002, CAR, 8-30 Hz, resampled to 80 Hz, 0.5-2.5 s windows: (90, 64, 160)."""
    from decoders.data import load_eegmmidb
    from decoders.preprocessing import Preprocessor

    return load_eegmmidb([1, 2], eegmmidb_path, Preprocessor(sfreq=80.0), tmin=0.5, tmax=2.5)
