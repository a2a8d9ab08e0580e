"""Statistics and profile handling of decoders.calibration / bci_app.profiles."""

from __future__ import annotations

import numpy as np
import pytest

from bci_app.errors import BundleError, ConfigError
from bci_app.profiles import list_profiles, load_profile, save_profile
from decoders.calibration import CVScore, band_power_maps, chance_upper, wilson_interval


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-3)
    assert np.isnan(wilson_interval(0, 0)[0])


def test_chance_threshold_and_confusion():
    assert chance_upper(20, 2) == pytest.approx(0.70)
    assert chance_upper(100, 2) == pytest.approx(0.58)
    s = CVScore("x", np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 2, 5)
    assert s.accuracy == pytest.approx(0.6)
    assert s.confusion.tolist() == [[1, 1], [1, 2]]
    d = s.to_dict()
    assert d["chance"] == 0.5 and d["n_trials"] == 5 and len(d["ci95"]) == 2


def test_band_power_maps_sign():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((10, 3, 80))
    X = ref.copy()
    X[:5, 0] *= 0.5  # class 0: power on channel 0 drops to 25 % (ERD of -75 %)
    y = np.array([0] * 5 + [1] * 5)
    bp = band_power_maps(X, y, ref, 2)
    assert bp[0, 0] == pytest.approx(-75, abs=1e-6)
    assert np.allclose(bp[1], 0) and np.allclose(bp[0, 1:], 0)


def test_profile_errors(tmp_path):
    with pytest.raises(ConfigError, match="user"):
        save_profile(None, "../evil", root=tmp_path)
    with pytest.raises(BundleError, match="no profile.json"):
        load_profile(tmp_path / "nobody")
    assert list_profiles(tmp_path) == []
