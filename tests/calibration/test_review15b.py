"""Review 15b of user profiles: the user's stored Euclidean alignment must be the one calibration
fitted, and the decoder's config must still say it uses one. Real EEGMMIDB trials (subject 7),
a real pretrained CSP+LDA bundle, a real calibration; each test fails on the code before its
fix (the profile loaded and decoded with a broken alignment, or without it)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from bci_app.errors import BundleError
from bci_app.profiles import ALIGNMENT_NAME, load_profile, save_profile
from decoders.calibration import calibrate, epochs_from_stream

EVENTS = {"T1": "left", "T2": "right"}


@pytest.fixture(scope="module")
def s7_trials(s7_recordings, pretrained_csp):
    """Subject 7's real trials, cut with the pretrained bundle's chain (as calibration does)."""
    Xs, ys = [], []
    for rec in s7_recordings:
        cues = [(m.timestamp, EVENTS[m.label]) for m in rec.markers if m.label in EVENTS]
        ep = epochs_from_stream(rec.data, rec.times, rec.info.ch_names, rec.info.sfreq, cues,
                                pretrained_csp.classes, pretrained_csp.preprocessor)
        Xs.append(ep.X), ys.append(ep.y)
    return np.concatenate(Xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def s7_profile_result(s7_trials, pretrained_csp):
    X, y = s7_trials
    return calibrate(X, y, pretrained_csp, cross_validation=False)


@pytest.fixture
def profile(s7_profile_result, tmp_path):
    return save_profile(s7_profile_result, "alice", root=tmp_path)


def _rewrite_alignment(path, **arrays):
    stored = load_file(str(path / ALIGNMENT_NAME))
    stored.update(arrays)
    save_file(stored, str(path / ALIGNMENT_NAME))


def test_a_sound_profile_loads_with_the_alignment_calibration_fitted(profile, s7_profile_result,
                                                                     s7_trials):
    """The intact profile (and its unaligned tangent-space baseline, whose config says
    'alignment': null while its training record is the pretrained model's aligned one) loads
    and decodes as the calibration result in memory."""
    X, _ = s7_trials
    loaded = load_profile(profile)
    np.testing.assert_allclose(loaded.bundle.alignment.matrix_,
                               s7_profile_result.adapted.alignment.matrix_)
    np.testing.assert_allclose(loaded.bundle.predict_proba(X[:5]),
                               s7_profile_result.adapted.predict_proba(X[:5]), atol=1e-9)
    assert loaded.baseline is not None and not loaded.baseline.needs_alignment
    assert loaded.baseline.config["training"]["settings"]["align"] is True


_DAMAGED = [
    ("zero matrix", lambda C, M: {"matrix": np.zeros_like(M)},
     "not the inverse square root of its mean covariance"),
    ("non-symmetric matrix", lambda C, M: {"matrix": M + np.triu(M, 1)},
     "not the inverse square root of its mean covariance"),
    ("negative definite matrix", lambda C, M: {"matrix": -M},
     "not the inverse square root of its mean covariance"),
    ("NaN in the mean covariance", lambda C, M: {"mean_cov": np.where(np.eye(len(C)) > 0,
                                                                      np.nan, C)},
     "NaN or infinite values"),
    ("not positive semi-definite covariance", lambda C, M: {"mean_cov": -C},
     "not symmetric positive semi-definite"),
    ("no window seen", lambda C, M: {"n_seen": np.array([0])}, "fitted on no window"),
]


@pytest.mark.parametrize(("arrays", "problem"), [pytest.param(a, p, id=w) for w, a, p in _DAMAGED])
def test_a_damaged_stored_alignment_is_a_bundle_error(profile, arrays, problem):
    """Finite matrices of the right shape passed the old check and the profile loaded: a zero
    matrix gave NaN probabilities on every window (all of them 'unreliable'), a non-symmetric
    one re-mixed the channels into windows the model never saw (no error, other
    predictions); a broken mean covariance would be refined online from a wrong start."""
    stored = load_file(str(profile / ALIGNMENT_NAME))
    _rewrite_alignment(profile, **arrays(stored["mean_cov"], stored["matrix"]))
    with pytest.raises(BundleError, match=rf"profile: .*{ALIGNMENT_NAME} is damaged: .*{problem}"
                                          r".*Fix: calibrate again, or restore the previous"):
        load_profile(profile)


def test_an_alignment_file_beside_a_config_without_alignment_is_a_bundle_error(profile,
                                                                                 s7_trials):
    """A profile's bundle/config.json edited to 'alignment': null kept loading: the stored
    alignment was attached and then ignored, so the decoder ran on the user's unaligned
    windows (other probabilities than the ones the profile was scored with)."""
    import dataclasses

    X, _ = s7_trials
    sound = load_profile(profile).bundle
    good = sound.predict_proba(X[:5])
    # what the edited profile would have decoded: the same model without the user's alignment
    edited = dataclasses.replace(sound, alignment=None,
                                 config={**sound.config, "alignment": None})
    assert not np.allclose(edited.predict_proba(X[:5]), good, atol=1e-3)
    cfg_path = profile / "bundle" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["alignment"] = None
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match=rf"{ALIGNMENT_NAME} holds the user's Euclidean "
                                          r"alignment, but .*config\.json has 'alignment': "
                                          r"null.*Fix: set 'alignment' to \"euclidean\""):
        load_profile(profile)
