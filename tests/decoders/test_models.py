"""Every registered model: shape, eval determinism, bundle round trip, ONNX export."""

from __future__ import annotations

import numpy as np
import pytest

from bci_app.errors import BundleError, ConfigError
from decoders.bundle import load_bundle, save_bundle
from decoders.estimators import make_decoder
from decoders.registry import build_model, list_models

from .conftest import TOY_CHANS, TOY_SFREQ, TOY_WINDOW

ALL = list_models()
TORCH = list_models("torch")
N_CHANS, SFREQ, WINDOW = TOY_CHANS, TOY_SFREQ, TOY_WINDOW  # the conftest's toy data


def _fit(name, X, y):
    extra = {} if name in list_models("sklearn") else dict(max_epochs=2, batch_size=8)
    return make_decoder(name, N_CHANS, 2, SFREQ, WINDOW, **extra).fit(X, y)


def test_registry_lists_required_models():
    assert {"eegnet", "shallowconvnet", "eeg_simpleconv", "eeg_conformer", "tsmnet",
            "csp_lda", "ts_lr"} <= set(ALL)


@pytest.mark.parametrize("name", TORCH)
@pytest.mark.parametrize("n_chans,sfreq", [(64, 160.0), (8, 250.0)])
def test_output_shape_and_eval_determinism(name, n_chans, sfreq):
    import torch

    net = build_model(name, n_chans, 3, sfreq, 2.0).eval()
    x = torch.randn(5, n_chans, int(2.0 * sfreq))
    with torch.inference_mode():
        a, b = net(x), net(x)
    assert a.shape == (5, 3)
    assert torch.equal(a, b)
    assert net.n_times == int(2.0 * sfreq) and net.hparams


@pytest.mark.parametrize("name", TORCH)
def test_too_short_window_is_config_error(name):
    with pytest.raises(ConfigError, match="window_s.*too short"):
        build_model(name, 8, 2, 64.0, 0.05)


def test_braindecode_peer_is_a_clear_error_when_missing():
    pytest.importorskip  # braindecode is optional; here it is absent
    try:
        import braindecode  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install"):
            build_model("braindecode:EEGNetv4", 8, 2, 128.0, 2.0)


def test_unknown_model_is_config_error():
    with pytest.raises(ConfigError, match="unknown name 'nope'"):
        build_model("nope", 8, 2, 128.0, 2.0)


@pytest.mark.parametrize("name", ALL)
def test_fit_predict_and_bundle_round_trip(name, toy, tmp_path):
    X, y = toy
    dec = _fit(name, X, y)
    p = dec.predict_proba(X)
    assert p.shape == (len(X), 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(dec.predict_proba(X), p)  # deterministic
    chans = [f"E{i}" for i in range(N_CHANS)]
    save_bundle(dec, tmp_path / "b", dict(channels=chans, classes=["left", "right"],
                                          preprocessing={"sfreq": SFREQ}))
    b = load_bundle(tmp_path / "b")
    np.testing.assert_array_equal(b.predict_proba(X), p)
    np.testing.assert_allclose(b.predict_proba(X[0]), p[0], atol=1e-6)  # batch-1 numerics
    assert b.channels == chans and b.sfreq == SFREQ and b.window_s == WINDOW
    assert b.model_version == dec.model_version
    # no pickle anywhere in a bundle
    assert sorted(f.name for f in (tmp_path / "b").iterdir()) == ["config.json",
                                                                   "weights.safetensors"]


def test_bundle_version_mismatch_and_missing(toy, tmp_path):
    import json

    X, y = toy
    save_bundle(_fit("eegnet", X, y), tmp_path / "b",
                dict(channels=[f"E{i}" for i in range(N_CHANS)], classes=["l", "r"],
                     preprocessing={}))
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    cfg["model_version"] = 999
    (tmp_path / "b" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="version 999.*this code builds version 1"):
        load_bundle(tmp_path / "b")
    with pytest.raises(BundleError, match="expected a folder with config.json"):
        load_bundle(tmp_path / "nothing")


def test_bundle_alignment_required(toy, tmp_path):
    X, y = toy
    save_bundle(_fit("ts_lr", X, y), tmp_path / "b",
                dict(channels=[f"E{i}" for i in range(N_CHANS)], classes=["l", "r"],
                     preprocessing={}, alignment="euclidean"))
    b = load_bundle(tmp_path / "b")
    with pytest.raises(RuntimeError, match="fit_alignment"):
        b.predict_proba(X)
    assert b.fit_alignment(X).predict_proba(X).shape == (len(X), 2)
    with pytest.raises(BundleError, match="window: expected shape"):
        b.predict_proba(X[:, :, :10])


@pytest.mark.parametrize("name", TORCH)
def test_onnx_export_matches_torch(name, toy, tmp_path):
    from decoders.export import export_onnx, onnx_predict_proba, onnx_session

    X, y = toy
    dec = _fit(name, X, y)
    if not getattr(dec.net_, "onnx_exportable", True):
        with pytest.raises(ConfigError, match="ONNX export.*fix: run it with PyTorch"):
            export_onnx(dec, tmp_path / "m.onnx")
        return  # "where supported": ONNX has no symmetric eigen-decomposition (TSMNet)
    export_onnx(dec, tmp_path / "m.onnx")
    sess = onnx_session(tmp_path / "m.onnx")
    np.testing.assert_allclose(onnx_predict_proba(sess, X[:3]), dec.predict_proba(X[:3]),
                               atol=1e-5)


def test_training_is_seeded(toy):
    X, y = toy
    a = _fit("eegnet", X, y).predict_proba(X)
    b = _fit("eegnet", X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["csp_lda", "ts_lr"])
def test_baseline_features_match_reference_pipeline(name, toy):
    """Our array-only inference equals mne's CSP / pyriemann's TangentSpace on the same fit."""
    X, y = toy
    dec = _fit(name, X, y)
    if name == "csp_lda":
        ref = dec._csp.transform(X.astype(np.float64))
    else:
        from pyriemann.estimation import Covariances
        from pyriemann.tangentspace import TangentSpace

        C = Covariances("oas").fit_transform(X.astype(np.float64))
        ref = TangentSpace(metric="riemann").fit(C).transform(C)
    np.testing.assert_allclose(dec._features(X.astype(np.float64)), ref, rtol=1e-6, atol=1e-8)
