from __future__ import annotations

import numpy as np
import pytest

from bci_app.errors import ConfigError, StreamMismatchError
from decoders.preprocessing import (
    ChannelMapping,
    EuclideanAlignment,
    Preprocessor,
    StreamingResampler,
)


@pytest.mark.parametrize("sfreq_out", [None, 80.0, 100.0])
@pytest.mark.parametrize("notch", [None, 50.0])
def test_chunked_filtering_equals_whole_signal(sfreq_out, notch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 6)) * 1e-5 + 2e-3  # with a DC offset, like raw EEG
    names = [f"ch{i}" for i in range(6)]
    pre = Preprocessor(l_freq=8, h_freq=30, notch=notch, sfreq=sfreq_out)
    whole = pre.process_offline(x, sfreq=160.0, ch_names=names)
    filt = pre.streaming(160.0, names)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 50))
        parts.append(filt.process(x[i:i + n]))
        i += n
    chunked = np.concatenate(parts)
    assert chunked.shape == whole.shape
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12 * np.abs(whole).max())
    if sfreq_out:
        assert abs(len(whole) - len(x) * sfreq_out / 160.0) <= 1


def test_offline_raw_matches_streaming(eegmmidb_path):
    from decoders.data import load_raws

    raw = load_raws(1, eegmmidb_path, runs=[4])[0]
    pre = Preprocessor(channels=["C3", "Cz", "C4"], sfreq=80.0)
    proc = pre.process_offline(raw)
    assert proc.ch_names == ["C3", "Cz", "C4"] and proc.info["sfreq"] == 80.0
    filt = pre.streaming(raw.info["sfreq"], raw.ch_names)
    data = raw.get_data().T
    online = np.concatenate([filt.process(data[i:i + 16]) for i in range(0, len(data), 16)])
    np.testing.assert_allclose(online.T, proc.get_data(), atol=1e-15)
    assert len(proc.annotations) == len(raw.annotations)


def test_resampler_passes_a_slow_sine():
    sf_in, sf_out = 250.0, 80.0
    t = np.arange(5000) / sf_in
    x = np.sin(2 * np.pi * 10 * t)[:, None]
    r = StreamingResampler(sf_in, sf_out, 1)
    y = r.process(x)[:, 0]
    t_out = np.arange(len(y)) / sf_out - r.delay_s
    ref = np.sin(2 * np.pi * 10 * t_out)
    assert np.abs(y[200:] - ref[200:]).max() < 0.02


def test_channel_mapping_and_mismatch():
    pre = Preprocessor(channels=["C3", "C4"], car=False, l_freq=None, h_freq=None)
    with pytest.raises(StreamMismatchError, match=r"lacks 1: C4.*ChannelMapping"):
        pre.streaming(250.0, ["c3", "EXG2"])
    filt = pre.streaming(250.0, ["c3", "EXG2"], ChannelMapping({"C4": "EXG2"}))
    out = filt.process(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(out, [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(StreamMismatchError, match="expected shape"):
        filt.process(np.zeros((3, 5)))


def test_bad_config_is_a_clear_error():
    with pytest.raises(ConfigError, match="h_freq.*Nyquist"):
        Preprocessor(h_freq=90).streaming(160.0, ["a"])
    with pytest.raises(ConfigError, match="unknown keys"):
        Preprocessor.from_dict({"lfreq": 1})
    assert Preprocessor.from_dict(Preprocessor(sfreq=80).to_dict()) == Preprocessor(sfreq=80)
    # a stream declaring an odd rate: the error names both rates and the fix on the device side
    # (it said "sfreq_out: ... got 160.0. Fix: pick a rate such as 125.15 or 128 Hz")
    with pytest.raises(ConfigError, match=r"250\.01 Hz \(the signal\) to 160 Hz \(the model's "
                                          r"rate\).*declare its true nominal rate"):
        Preprocessor(sfreq=160).streaming(250.01, ["a"])
    assert Preprocessor(sfreq=160).streaming(250.0, ["a"]).sfreq_out == 160.0


def test_alignment_makes_mean_covariance_identity(eegmmidb_path):
    from decoders.data import load_eegmmidb

    # CAR makes covariances rank-deficient, so check alignment on un-referenced data.
    data = load_eegmmidb([1, 2], eegmmidb_path, Preprocessor(car=False, sfreq=80.0))
    for s in (1, 2):
        X = data.X[data.subject == s].astype(np.float64)
        Z = EuclideanAlignment().fit_transform(X)
        mean_cov = np.einsum("nct,ndt->cd", Z, Z) / (Z.shape[0] * Z.shape[2])
        np.testing.assert_allclose(mean_cov, np.eye(X.shape[1]), atol=1e-6)
    # before alignment the two subjects' mean covariances differ
    ea = EuclideanAlignment()
    ea.partial_fit(X[:10]).partial_fit(X[10:])
    np.testing.assert_allclose(ea.matrix_, EuclideanAlignment().fit(X).matrix_, rtol=1e-6)


def test_span_loading_keeps_the_same_trials_and_windows(eegmmidb_path, mi_small, tmp_path):
    from bci_app.errors import ConfigError
    from decoders.data import EpochsData, load_eegmmidb

    d = load_eegmmidb([1, 2], eegmmidb_path, Preprocessor(sfreq=80.0), tmin=0.5, tmax=2.5,
                      span_tmax=4.0)
    assert d.X_span.shape == (len(mi_small), mi_small.X.shape[1], 280)  # 3.5 s at 80 Hz
    np.testing.assert_array_equal(d.X, mi_small.X)  # the window is the span's start
    np.testing.assert_array_equal(d.X_span[..., :160], mi_small.X)
    np.testing.assert_array_equal(d.y, mi_small.y)
    np.testing.assert_array_equal(d.onset, mi_small.onset)
    sub = d.subset(d.subject == 2)
    np.testing.assert_array_equal(sub.X_span, d.X_span[d.subject == 2])
    d.save_npz(tmp_path / "c.npz")
    back = EpochsData.load_npz(tmp_path / "c.npz")
    assert back.span_tmax == 4.0
    np.testing.assert_array_equal(back.X_span, d.X_span)
    with pytest.raises(ConfigError, match="span_tmax"):
        load_eegmmidb([1], eegmmidb_path, tmin=0.5, tmax=2.5, span_tmax=2.0)
