"""FBCNet: its filter bank, band checks, max-norm constraints, and that it learns a band-limited
power difference that a broadband model of the same data cannot see."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bci_app.errors import ConfigError
from decoders.estimators import make_decoder
from decoders.models.fbcnet import DEFAULT_BANDS, fir_bank
from decoders.registry import build_model


def _sine(freq, sfreq=80.0, n=160, n_chans=4):
    t = np.arange(n) / sfreq
    x = np.sin(2 * np.pi * freq * t).astype(np.float32)
    return torch.as_tensor(np.tile(x, (1, n_chans, 1)))


def test_each_band_passes_its_centre_and_stops_the_others():
    net = build_model("fbcnet", 4, 2, 80.0, 2.0).eval()
    for i, (lo, hi) in enumerate(DEFAULT_BANDS):
        centre = (lo + hi) / 2
        out = net.filter_bank(_sine(centre))[0, :, 0, 40:120]  # away from the window's edges
        power = (out ** 2).mean(-1)
        assert power[i] == pytest.approx(0.5, rel=0.05), (centre, power)  # a unit sine: 1/2
        others = np.delete(power.numpy(), i)
        assert others.max() < 0.5 * 10 ** (-20 / 10), (centre, power)  # >= 20 dB down


def test_filter_bank_is_zero_phase():
    """A zero-phase bank keeps a band's sine aligned with the input (no group delay)."""
    net = build_model("fbcnet", 1, 2, 80.0, 2.0).eval()
    x = _sine(10.0, n_chans=1)
    out = net.filter_bank(x)[0, 0, 0]
    np.testing.assert_allclose(out[40:120].numpy(), x[0, 0, 40:120].numpy(), atol=0.02)


def test_band_at_nyquist_is_a_highpass_and_above_is_refused():
    taps = fir_bank([(28.0, 32.0)], 64.0, 51)  # 32 Hz is Nyquist at 64 Hz
    gain = np.abs(np.fft.rfft(taps[0], 512))
    freqs = np.fft.rfftfreq(512, 1 / 64.0)
    assert gain[np.argmin(abs(freqs - 31.0))] > 0.9 and gain[np.argmin(abs(freqs - 20.0))] < 0.1
    with pytest.raises(ConfigError, match="Nyquist.*fix"):
        build_model("fbcnet", 4, 2, 50.0, 2.0, bands=[[8, 12], [26, 30]])
    with pytest.raises(ConfigError, match="0 < low < high"):
        build_model("fbcnet", 4, 2, 80.0, 2.0, bands=[[12, 8]])
    with pytest.raises(ConfigError, match="bands: expected"):
        build_model("fbcnet", 4, 2, 80.0, 2.0, bands=[[8, 12, 16]])


def test_training_keeps_the_max_norm_constraints():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 4, 160)).astype(np.float32)
    y = np.arange(32) % 2
    X[y == 1, 0] *= 3.0
    dec = make_decoder("fbcnet", 4, 2, 80.0, 2.0, max_epochs=30, batch_size=8, lr=1e-2,
                       val_fraction=0).fit(X, y)
    net = dec.net_
    assert net.spatial.weight.flatten(1).norm(dim=1).max() <= 2.0 + 1e-5
    assert net.classifier.weight.norm(dim=1).max() <= 0.5 + 1e-5
    # the constraints bind: without them the lr-1e-2 run grows the weights past the limits
    free = make_decoder("fbcnet", 4, 2, 80.0, 2.0, max_epochs=30, batch_size=8, lr=1e-2,
                        val_fraction=0, model_params=dict(spatial_max_norm=1e6,
                                                          linear_max_norm=1e6)).fit(X, y)
    assert free.net_.classifier.weight.norm(dim=1).max() > 0.5


def _band_power_data(n, seed):
    """Two classes with the same broadband power per channel: class 1 moves 10 Hz power
    (the 8–12 Hz band) from channel 0 into 22 Hz power (20–24 Hz) on the same channel."""
    rng = np.random.default_rng(seed)
    sfreq, n_t = 80.0, 160
    t = np.arange(n_t) / sfreq
    y = np.arange(n) % 2
    X = 0.5 * rng.standard_normal((n, 6, n_t))
    for i in range(n):
        freq = 10.0 if y[i] == 0 else 22.0
        X[i, 0] += 1.5 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    return X.astype(np.float32), y


def test_learns_a_band_specific_power_difference():
    Xtr, ytr = _band_power_data(48, seed=1)
    Xte, yte = _band_power_data(40, seed=2)
    dec = make_decoder("fbcnet", 6, 2, 80.0, 2.0, max_epochs=60, batch_size=16,
                       val_fraction=0, seed=0).fit(Xtr, ytr)
    assert dec.score(Xte, yte) >= 0.9
