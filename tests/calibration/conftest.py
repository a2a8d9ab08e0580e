"""Shared pieces of the calibration tests: simulated subjects from real EEGMMIDB runs."""

from __future__ import annotations

import pytest

from acquisition.files import read_file
from acquisition.simulated import eegmmidb_files


@pytest.fixture(scope="session")
def s7_recordings(eegmmidb_path):
    """Subject 7, runs 4/8/12, read once per test session (real EEG, 64 ch @ 160 Hz)."""
    return [read_file(p) for p in eegmmidb_files(7, (4, 8, 12), eegmmidb_path)]
