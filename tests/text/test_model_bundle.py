"""The EEG-to-text model (registry contract) and its bundle (save / load like the MI models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bci_app.errors import BundleError, ConfigError, StreamMismatchError
from decoders.text.bundle import is_text_bundle, load_text_bundle, save_text_bundle
from decoders.text.model import EEGTextModel


def test_model_registered_and_checked():
    from decoders.registry import build_model

    m = build_model("eeg2text", n_chans=16, n_outputs=384, sfreq=80, window_s=2.0,
                    vocab_size=30, d_model=32)
    assert isinstance(m, EEGTextModel) and m.n_tokens == 15
    m.eval()
    x = torch.randn(3, 16, 160)
    with torch.inference_mode():
        e = m(x)
        mem, codes, _ = m.encode(x)
        logits = m.decode_logits(mem, torch.ones(3, 4, dtype=torch.long))
    assert e.shape == (3, 384) and torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert codes.shape == (3, 15, 4) and int(codes.max()) < 64
    assert logits.shape == (3, 4, 30)
    with torch.inference_mode():
        assert torch.equal(m(x), m(x))  # deterministic in eval mode
    with pytest.raises(ConfigError, match="window_s"):
        EEGTextModel(16, 384, 80, 0.1, vocab_size=30)


def test_decoder_causal():
    m = EEGTextModel(4, 384, 80, 1.0, vocab_size=20, d_model=32).eval()
    mem = m.encode(torch.randn(1, 4, 80))[0]
    a = torch.tensor([[1, 5, 6, 7]])
    b = torch.tensor([[1, 5, 9, 9]])
    with torch.inference_mode():
        la, lb = m.decode_logits(mem, a), m.decode_logits(mem, b)
    assert torch.allclose(la[:, :2], lb[:, :2], atol=1e-5)  # future tokens invisible


def test_bundle_roundtrip(fitted, tmp_path):
    ds, dec = fitted
    path = save_text_bundle(dec, tmp_path / "tb", {
        "channels": ds.ch_names, "preprocessing": ds.preprocessing,
        "validation": {"note": "smoke"}})
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "weights.safetensors"]
    assert is_text_bundle(path)
    tb = load_text_bundle(path)
    assert tb.channels == ds.ch_names and tb.sfreq == 80.0 and tb.window_s == 2.0
    assert tb.n_times == 160 and tb.classes == ds.corpus[:10]
    assert tb.needs_alignment is False and tb.alignment is None
    X = ds.X[:5]
    np.testing.assert_allclose(tb.predict_proba(X), dec.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(tb.decoder.predict_proba(X), dec.predict_proba(X), atol=1e-6)
    assert tb.predict_proba(X).shape == (5, 10)
    np.testing.assert_allclose(tb.predict_proba(X[0]), tb.predict_proba(X)[0], atol=1e-6)
    assert tb.decode_text(X) == dec.decode_text(X)
    (text, conf), = tb.decode_text(X[0])
    assert isinstance(text, str) and 0 < conf <= 1
    top = tb.top_sentences(X, k=3)
    assert len(top) == 5 and len(top[0]) == 3 and top[0][0][1] >= top[0][1][1]
    with pytest.raises(BundleError, match="window"):
        tb.predict_proba(np.zeros((16, 100)))


def test_bundle_streaming_filter(fitted, tmp_path):
    ds, dec = fitted
    tb = load_text_bundle(save_text_bundle(dec, tmp_path / "tb", {
        "channels": ds.ch_names, "preprocessing": ds.preprocessing}))
    src = ds.ch_names[::-1] + ["Fp1", "Fp2"]
    filt = tb.streaming_filter(160.0, src)
    out = filt.process(np.random.default_rng(0).standard_normal((1600, len(src))) * 1e-5)
    assert out.shape[1] == 16 and abs(out.shape[0] - 800) <= 2
    with pytest.raises(StreamMismatchError, match="Cz"):
        tb.streaming_filter(160.0, [c for c in src if c != "Cz"])


def test_bundle_errors(fitted, tmp_path):
    ds, dec = fitted
    with pytest.raises(BundleError, match="folder"):
        load_text_bundle(tmp_path / "nothing")
    path = save_text_bundle(dec, tmp_path / "tb", {"channels": ds.ch_names,
                                                   "preprocessing": ds.preprocessing})
    cfg = json.loads((path / "config.json").read_text())
    cfg["kind"] = "torch"
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="not a text bundle"):
        load_text_bundle(path)
    cfg["kind"], cfg["model_version"] = "text", 99
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="version"):
        load_text_bundle(path)
    with pytest.raises(BundleError, match="channels"):
        save_text_bundle(dec, tmp_path / "x", {"channels": ["Cz"],
                                               "preprocessing": ds.preprocessing})


def test_zero_shot_and_retrieval_shapes(fitted):
    ds, dec = fitted
    p = dec.zero_shot(ds.X[:4], ["a sentence about an animal", "a sentence about a city"])
    assert p.shape == (4, 2) and np.allclose(p.sum(1), 1)
    sims = dec.similarities(ds.X[:4])
    assert sims.shape == (4, 10) and np.all(np.abs(sims) <= 1 + 1e-5)
