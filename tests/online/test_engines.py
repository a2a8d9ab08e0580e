"""Inference engines: the fused rewrites and ONNX Runtime give the trained net's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decoders.estimators import make_decoder
from decoders.fused import fuse_for_inference


@pytest.fixture(scope="module")
def eegnet_decoder():
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((40, 16, 160)) * 1e-5).astype(np.float32)
    y = np.r_[np.zeros(20), np.ones(20)].astype(np.int64)
    X[y == 1, 3] *= 3  # something to learn, so BatchNorm statistics are not trivial
    dec = make_decoder("eegnet", n_chans=16, n_outputs=2, sfreq=80.0, window_s=2.0,
                       max_epochs=2, seed=0)
    return dec.fit(X, y)


def test_fused_eegnet_is_exact_and_smaller(eegnet_decoder):
    net = eegnet_decoder.net_.eval()
    fused = fuse_for_inference(net, 16, 160)
    assert fused is not None
    x = torch.randn(5, 16, 160)
    with torch.inference_mode():
        np.testing.assert_allclose(fused(x).numpy(), net(x).numpy(), atol=1e-5)


def test_seed_ensemble_engines_agree_with_the_reference():
    from decoders.online import _fast_engines

    rng = np.random.default_rng(2)
    X = (rng.standard_normal((20, 8, 160)) * 1e-5).astype(np.float32)
    y = np.arange(20) % 2
    ens = make_decoder("eegnet", n_chans=8, n_outputs=2, sfreq=80.0, window_s=2.0,
                       max_epochs=2, n_ensemble=2, seed=0).fit(X, y)
    engines = _fast_engines(ens, "auto")
    assert "torch-fused" in engines and "onnxruntime" in engines  # every member rewritten
    ref = ens.predict_proba(X[:4])
    for name, fn in engines.items():
        np.testing.assert_allclose(fn(X[:4]), ref, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("model", ["shallowconvnet", "eeg_conformer"])
def test_fused_temporal_spatial_fold_is_exact(model):
    """ShallowConvNet / Conformer: temporal conv, spatial conv and BatchNorm folded into one conv."""
    from decoders.online import _fast_engines

    rng = np.random.default_rng(3)
    X = (rng.standard_normal((40, 16, 160)) * 1e-5).astype(np.float32)
    y = np.arange(40) % 2
    X[y == 1, 5] *= 3
    dec = make_decoder(model, n_chans=16, n_outputs=2, sfreq=80.0, window_s=2.0, max_epochs=2,
                       seed=0).fit(X, y)
    net = dec.net_.eval()
    fused = fuse_for_inference(net, 16, 160)
    assert fused is not None and not any(isinstance(m, torch.nn.BatchNorm2d)
                                         for m in fused.modules())
    x = torch.from_numpy(X[:6] * np.float32(dec.scale_))
    with torch.inference_mode():
        np.testing.assert_allclose(fused(x).numpy(), net(x).numpy(), atol=1e-5)
    engines = _fast_engines(dec, "auto")
    assert "torch-fused" in engines and "onnxruntime" in engines
    ref = dec.predict_proba(X[:6])
    for name, fn in engines.items():
        np.testing.assert_allclose(fn(X[:6]), ref, atol=1e-5, err_msg=name)


def test_fuse_refuses_models_without_a_rewrite():
    from decoders.registry import build_model

    net = build_model("eeg_simpleconv", n_chans=8, n_outputs=2, sfreq=160.0, window_s=2.0)
    assert fuse_for_inference(net, 8, 320) is None


def test_worker_engines_agree_with_the_reference(eegnet_decoder, tmp_path):
    from decoders.online import _fast_engines

    engines = _fast_engines(eegnet_decoder, "auto")
    assert "torch-fused" in engines and "onnxruntime" in engines
    X = (np.random.default_rng(1).standard_normal((6, 16, 160)) * 1e-5).astype(np.float32)
    ref = eegnet_decoder.predict_proba(X)
    for name, fn in engines.items():
        np.testing.assert_allclose(fn(X), ref, atol=1e-5, err_msg=name)
