"""Bundles keep what the decoder needs to behave as in memory, and refuse inconsistent channels.

* csp_lda / ts_lr: ``partial_fit`` (calibration) refits the classifier on the pretraining
  features plus the user's trials; the features and labels are saved with the bundle, so a
  loaded bundle calibrates exactly like the decoder in memory. An older bundle without them
  still loads, with a warning.
* ``channels`` and ``preprocessing.channels`` must agree (same names, same order): the filter
  outputs its own order while the worker and the calibration read ``channels``.
"""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest

from bci_app.errors import BundleError
from decoders.bundle import CONFIG_NAME, WEIGHTS_NAME, load_bundle, save_bundle
from decoders.estimators import make_decoder
from decoders.preprocessing import EuclideanAlignment, Preprocessor


def _split(mi_small, k_per_class=5):
    """Pretraining trials (S002), calibration trials (first k per class of S001) and the rest
    of S001 as test trials, each subject Euclidean-aligned on its own trials."""
    X = np.empty_like(mi_small.X)
    for s in (1, 2):
        m = mi_small.subject == s
        X[m] = EuclideanAlignment().fit_transform(mi_small.X[m])
    src = np.flatnonzero(mi_small.subject == 2)
    s1 = np.flatnonzero(mi_small.subject == 1)
    cal = np.concatenate([s1[mi_small.y[s1] == c][:k_per_class] for c in (0, 1)])
    test = np.setdiff1d(s1, cal)
    return X, src, cal, test


def _meta(data, channels=None, pre_channels=None):
    pre = Preprocessor(sfreq=80.0, channels=pre_channels)
    return {"channels": list(channels or data.ch_names), "classes": ["left", "right"],
            "preprocessing": pre.to_dict(), "alignment": "euclidean"}


@pytest.mark.parametrize("model", ["csp_lda", "ts_lr"])
def test_round_trip_then_partial_fit_matches_memory(mi_small, tmp_path, model):
    X, src, cal, test = _split(mi_small)
    y = mi_small.y
    dec = make_decoder(model, X.shape[1], 2, mi_small.sfreq, mi_small.window_s)
    dec.fit(X[src], y[src])
    path = save_bundle(dec, tmp_path / model, _meta(mi_small))
    loaded = load_bundle(path).decoder

    mem = dec.clone().partial_fit(X[cal], y[cal])
    back = loaded.clone().partial_fit(X[cal], y[cal])
    np.testing.assert_allclose(back.predict_proba(X[test]), mem.predict_proba(X[test]),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(loaded.train_features_, dec.train_features_)
    np.testing.assert_array_equal(loaded.train_y_, dec.train_y_)
    # ... and that is not what refitting on the calibration trials alone gives
    alone = make_decoder(model, X.shape[1], 2, mi_small.sfreq, mi_small.window_s)
    alone.fit(X[src], y[src])
    alone.train_features_ = None
    alone.partial_fit(X[cal], y[cal])
    assert not np.allclose(alone.predict_proba(X[test]), mem.predict_proba(X[test]))


def test_bundle_without_training_features_loads_with_a_warning(mi_small, tmp_path, caplog):
    """A bundle written before the training features were saved (only the classifier and
    feature arrays) loads; calibration then refits on the user's trials only, and says so."""
    from safetensors.numpy import load_file, save_file

    X, src, cal, test = _split(mi_small)
    y = mi_small.y
    dec = make_decoder("csp_lda", X.shape[1], 2, mi_small.sfreq, mi_small.window_s)
    dec.fit(X[src], y[src])
    path = save_bundle(dec, tmp_path / "old", _meta(mi_small))
    arrays = load_file(str(path / WEIGHTS_NAME))
    save_file({k: v for k, v in arrays.items() if k not in ("train_features", "train_y")},
              str(path / WEIGHTS_NAME))
    with caplog.at_level(logging.WARNING, logger="decoders.models.baselines"):
        old = load_bundle(path).decoder
    assert any("no training features" in r.getMessage() and "user's trials only" in
               r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(old.predict_proba(X[test]), dec.predict_proba(X[test]),
                               rtol=1e-12)
    old.partial_fit(X[cal], y[cal])  # refits on the calibration trials alone
    assert old.predict_proba(X[test]).shape == (len(test), 2)


def test_damaged_training_features_are_a_bundle_error(mi_small, tmp_path):
    from safetensors.numpy import load_file, save_file

    X, src, _cal, _test = _split(mi_small)
    dec = make_decoder("csp_lda", X.shape[1], 2, mi_small.sfreq, mi_small.window_s)
    dec.fit(X[src], mi_small.y[src])
    path = save_bundle(dec, tmp_path / "bad", _meta(mi_small))
    arrays = load_file(str(path / WEIGHTS_NAME))
    arrays["train_y"] = arrays["train_y"][:-3]
    save_file(arrays, str(path / WEIGHTS_NAME))
    with pytest.raises(BundleError, match="train_features"):
        load_bundle(path)


def _fitted_ts(mi_small, n_chans=None):
    X = mi_small.X[:, :n_chans] if n_chans else mi_small.X
    dec = make_decoder("ts_lr", X.shape[1], 2, mi_small.sfreq, mi_small.window_s)
    return dec.fit(X, mi_small.y)


def test_save_refuses_channels_that_differ_from_preprocessing(mi_small, tmp_path):
    chans = list(mi_small.ch_names[:6])
    dec = _fitted_ts(mi_small, 6)
    with pytest.raises(BundleError, match=r"'channels' and 'preprocessing.channels' differ.*"
                       + re.escape(f"channels = {chans[::-1]}, preprocessing channels = {chans}")):
        save_bundle(dec, tmp_path / "rev", _meta(mi_small, chans[::-1], chans))
    assert not (tmp_path / "rev").exists()
    with pytest.raises(BundleError, match=re.escape(f"preprocessing channels = {chans[:5]}"[:-1])):
        save_bundle(dec, tmp_path / "other", _meta(mi_small, chans, chans[:5] + ["Oz"]))
    # same list, or preprocessing channels unset: fine
    save_bundle(dec, tmp_path / "same", _meta(mi_small, chans, chans))
    save_bundle(dec, tmp_path / "unset", _meta(mi_small, chans, None))
    assert load_bundle(tmp_path / "same").channels == chans
    assert load_bundle(tmp_path / "unset").preprocessor.channels == chans


def test_load_refuses_channels_that_differ_from_preprocessing(mi_small, tmp_path):
    """A bundle whose config was written (or edited) with another channel order than its
    preprocessing is refused at load, naming both lists."""
    chans = list(mi_small.ch_names[:6])
    path = save_bundle(_fitted_ts(mi_small, 6), tmp_path / "b", _meta(mi_small, chans, chans))
    cfg = json.loads((path / CONFIG_NAME).read_text())
    cfg["channels"] = chans[::-1]
    (path / CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match=re.escape(
            f"differ: channels = {chans[::-1]}, preprocessing channels = {chans}")):
        load_bundle(path)
