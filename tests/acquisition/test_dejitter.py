"""OnlineDejitter: smooth timestamps like liblsl, but restart at gaps and clock resets."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.dejitter import OnlineDejitter

FS = 250.0
TRUE_FS = 249.876  # BrainFlow's synthetic board's real rate: a drifting device clock


def _run(raw, chunk=10, fs=FS):
    d = OnlineDejitter(fs)
    out = np.concatenate([d(raw[i:i + chunk]) for i in range(0, len(raw), chunk)])
    return out, d


@pytest.fixture
def true_ts():
    return 1000.0 + np.arange(int(FS * 60)) / TRUE_FS


def test_exact_timestamps_pass_through(true_ts):
    out, d = _run(true_ts)
    assert d.breaks == 0
    assert np.abs(out - true_ts).max() < 2e-4


@pytest.mark.parametrize("chunk", [1, 10])
def test_arrival_jitter_is_removed_without_false_gaps(true_ts, chunk):
    rng = np.random.default_rng(0)
    raw = true_ts + 0.002 + rng.exponential(0.005, len(true_ts))  # heavy-tailed latency
    out, d = _run(raw, chunk)
    assert d.breaks == 0
    err = out - true_ts
    settled = err[int(10 * FS):]
    assert np.ptp(settled) < 0.005 < np.ptp(raw - true_ts) / 5
    assert np.all(np.diff(out) > 0)


def test_burst_stamped_packets_do_not_break(true_ts):
    """12 samples per packet, all stamped at the packet's arrival (Bluetooth devices)."""
    rng = np.random.default_rng(1)
    n = len(true_ts)
    packet = np.arange(n) // 12
    last = np.minimum((packet + 1) * 12 - 1, n - 1)
    raw = true_ts[last] + rng.exponential(0.01, packet[-1] + 1)[packet]
    out, d = _run(raw, chunk=12)
    assert d.breaks == 0
    assert np.ptp((out - true_ts)[int(10 * FS):]) < 0.005
    assert np.all(np.diff(out) > 0)


@pytest.mark.parametrize("jitter", [0.0, 0.005])
def test_a_gap_starts_a_new_stretch_and_shifts_nothing(true_ts, jitter):
    rng = np.random.default_rng(2)
    keep = np.r_[np.arange(500), np.arange(625, len(true_ts))]  # 0.5 s never sent
    raw = true_ts[keep] + jitter * rng.random(len(keep))
    out, d = _run(raw)
    assert d.breaks == 1
    err = out - true_ts[keep]
    assert np.abs(err - np.median(err)).max() < 0.003 + jitter
    assert out[500] - out[499] == pytest.approx(126 / TRUE_FS, abs=0.003 + jitter)


def test_a_clock_reset_is_kept_not_smoothed(true_ts):
    raw = true_ts.copy()
    raw[5000:] -= 100.0
    out, d = _run(raw)
    assert d.breaks == 1
    assert out[5000] - out[4999] == pytest.approx(-100.0 + 1 / TRUE_FS, abs=1e-3)


def test_needs_a_regular_rate():
    with pytest.raises(ValueError, match="regular rate"):
        OnlineDejitter(0.0)
