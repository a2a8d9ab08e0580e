"""epochs_from_stream locates each cue by its timestamp, on real EEGMMIDB EEG.

A source never shifts samples to hide a gap (the timestamps jump), and a device's real rate may
differ from its nominal one, so counting samples from the first timestamp cut every trial after a
gap late by the gap's length, and drifted with time. Windows that span a gap are dropped and
counted.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from acquisition.files import read_file
from acquisition.simulated import eegmmidb_files
from decoders.calibration import epochs_from_stream
from decoders.preprocessing import Preprocessor

CLASSES = ["left", "right"]
#: Sensorimotor subset (fast), as 10-05 names the EEGMMIDB labels map to.
CHANNELS = ["FC3", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3", "CP4"]
T0 = 1000.0  # a stream clock that does not start at zero


@pytest.fixture(scope="module")
def s1_run4(eegmmidb_path):
    """S001 run 4 (real EEG, 64 ch @ 160 Hz): data, timestamps on a stream clock, cues."""
    rec = read_file(eegmmidb_files(1, (4,), eegmmidb_path)[0])
    times = T0 + np.arange(rec.n_samples) / rec.sfreq
    k = [int(round((m.timestamp - rec.times[0]) * rec.sfreq)) for m in rec.markers
         if m.label in ("T1", "T2")]
    labels = [{"T1": "left", "T2": "right"}[m.label] for m in rec.markers
              if m.label in ("T1", "T2")]
    return rec, times, k, labels


PREPROCESSORS = {
    "160Hz": Preprocessor(channels=CHANNELS, car=True, l_freq=8.0, h_freq=30.0),
    "resampled-80Hz": Preprocessor(channels=CHANNELS, car=True, l_freq=8.0, h_freq=30.0,
                                   sfreq=80.0),
}


def _cut_by_counting(data, times, ch_names, sfreq, cues, pre, tmin=0.5, tmax=2.5,
                     ref_window=(-1.5, -0.5)):
    """The former cut: sample index = round((t - times[0] + offset) * sfreq_out)."""
    filt = pre.streaming(sfreq, list(ch_names))
    out = filt.process(data)
    sf = filt.sfreq_out
    n_win = int(round((tmax - tmin) * sf))
    X, R, on = [], [], []
    for t, _cls in cues:
        a = int(round((t - times[0] + tmin) * sf))
        if a < 0 or a + n_win > len(out):
            continue
        ra = int(round((t - times[0] + ref_window[0]) * sf))
        rb = ra + int(round((ref_window[1] - ref_window[0]) * sf))
        if ra < 0:
            continue
        R.append(out[ra:rb].T)
        X.append(out[a:a + n_win].T)
        on.append(t)
    return (np.asarray(X, dtype=np.float32), np.asarray(R, dtype=np.float32), np.asarray(on))


@pytest.mark.parametrize("pre_name", list(PREPROCESSORS))
def test_gap_free_stream_cut_as_before(s1_run4, pre_name):
    """Evenly spaced timestamps at the exact rate: identical to counting samples."""
    rec, times, k, labels = s1_run4
    pre = PREPROCESSORS[pre_name]
    # cues on the sample grid (as EEGMMIDB's) and between samples
    cues = [(float(times[i]), c) for i, c in zip(k, labels)]
    cues += [(float(times[i]) + 0.37 / rec.sfreq, c) for i, c in zip(k, labels)]
    ep = epochs_from_stream(rec.data, times, rec.info.ch_names, rec.sfreq, cues, CLASSES, pre)
    X, R, on = _cut_by_counting(rec.data, times, rec.info.ch_names, rec.sfreq, cues, pre)
    assert len(ep) == len(X) == 30
    np.testing.assert_array_equal(ep.onsets, on)
    np.testing.assert_array_equal(ep.X, X)
    np.testing.assert_array_equal(ep.X_ref, R)
    assert ep.dropped == {"outside": 0, "gap": 0, "clock": 0} and ep.no_reference == 0


@pytest.mark.parametrize("pre_name", list(PREPROCESSORS))
def test_gap_before_a_trial_does_not_shift_it(s1_run4, pre_name):
    """2 s of samples missing in the rest at 58-60 s: the later trials are still cut at their
    cues (before: 2 s late), and match the gap-free cut once the filter transient is over."""
    rec, times, k, labels = s1_run4
    pre = PREPROCESSORS[pre_name]
    sf = rec.sfreq
    cues = [(float(times[i]), c) for i, c in zip(k, labels)]
    ref = epochs_from_stream(rec.data, times, rec.info.ch_names, sf, cues, CLASSES, pre)
    keep = np.r_[0:int(58 * sf), int(60 * sf):rec.n_samples]
    gapped = epochs_from_stream(rec.data[keep], times[keep], rec.info.ch_names, sf, cues,
                                CLASSES, pre)
    assert len(gapped) == len(ref) == 15
    after = np.flatnonzero(gapped.onsets > T0 + 60 + 5.0)  # trials well after the gap
    assert len(after) >= 6
    rms = float(np.sqrt(np.mean(ref.X ** 2)))
    for j in after:
        np.testing.assert_allclose(gapped.X[j], ref.X[j], atol=1e-3 * rms)
        np.testing.assert_allclose(gapped.X_ref[j], ref.X_ref[j], atol=1e-3 * rms)
    assert gapped.dropped["gap"] == 0


def test_windows_spanning_a_gap_are_dropped_and_counted(s1_run4, caplog):
    rec, times, k, labels = s1_run4
    sf = rec.sfreq
    pre = PREPROCESSORS["resampled-80Hz"]
    cues = [(float(times[i]), c) for i, c in zip(k, labels)]
    onsets = np.array([t for t, _ in cues]) - T0  # 4.2, 12.5, ..., 62.3, 70.6, 78.9, ...
    assert np.allclose(onsets[7:10], [62.3, 70.6, 78.9])
    holes = [(63.0, 63.4),   # inside the task window of the 62.3 s cue (62.8-64.8 s)
             (69.4, 69.6),   # inside the pre-cue window of the 70.6 s cue (69.1-70.1 s)
             (79.2, 79.7)]   # the 78.9 s cue's task window starts (79.4 s) inside the hole
    drop = np.zeros(rec.n_samples, bool)
    for a, b in holes:
        drop[int(a * sf):int(b * sf)] = True
    with caplog.at_level(logging.WARNING, logger="decoders.calibration"):
        ep = epochs_from_stream(rec.data[~drop], times[~drop], rec.info.ch_names, sf, cues,
                                CLASSES, pre)
    # the 70.6 s cue's task window is clean: kept, only its ERD/ERS reference is missing
    assert len(ep) == 13
    on = np.round(ep.onsets - T0, 1)
    assert not np.isin(on, [62.3, 78.9]).any()
    j = int(np.flatnonzero(on == 70.6)[0])
    assert np.isnan(ep.X_ref[j]).all() and np.isfinite(np.delete(ep.X_ref, j, axis=0)).all()
    assert np.isfinite(ep.X).all()
    assert ep.dropped == {"outside": 0, "gap": 2, "clock": 0} and ep.n_dropped_gap == 2
    assert ep.no_reference == 1
    assert any("2 of 15 cued trials dropped" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


def test_device_rate_off_nominal_does_not_drift(s1_run4):
    """The device runs 0.25 % fast (its timestamps follow its true rate); the windows stay on
    the cue's sample (counting at the nominal rate was 306 ms early after 120 s)."""
    rec, _, k, labels = s1_run4
    sf_nom, sf_true = rec.sfreq, rec.sfreq * 1.0025
    times = T0 + np.arange(rec.n_samples) / sf_true
    cues = [(float(times[i]), c) for i, c in zip(k, labels)]
    pre = PREPROCESSORS["160Hz"]
    ep = epochs_from_stream(rec.data, times, rec.info.ch_names, sf_nom, cues, CLASSES, pre,
                            ref_window=None)
    assert len(ep) == 15
    out = pre.streaming(sf_nom, rec.info.ch_names).process(rec.data)
    for j, i in enumerate(k):
        a = int(np.argmin(np.abs(times - (times[i] + 0.5))))  # the sample nearest cue + 0.5 s
        np.testing.assert_array_equal(ep.X[j], out[a:a + 320].T.astype(np.float32))
    assert ep.dropped["gap"] == 0


def test_cue_times_must_match_a_stream(s1_run4):
    rec, times, k, labels = s1_run4
    cues = [(float(times[-1]) + 10.0, "left")]
    from bci_app.errors import ConfigError

    with pytest.raises(ConfigError, match="no complete trial.*1 outside the data"):
        epochs_from_stream(rec.data, times, rec.info.ch_names, rec.sfreq, cues, CLASSES,
                           PREPROCESSORS["160Hz"])


def test_first_trial_with_a_short_fixation_is_kept(s1_run4):
    """The stream starts 1.0 s before the first cue (a short fixation): the pre-cue window
    [-1.5, -0.5) s is not in the data. The trial was dropped although its task window is
    clean; it is kept, with a NaN reference that the ERD/ERS maps skip."""
    from decoders.calibration import band_power_maps

    rec, times, k, labels = s1_run4
    sf = rec.sfreq
    cues = [(float(times[i]), c) for i, c in zip(k, labels)]
    start = k[0] - int(1.0 * sf)
    ep = epochs_from_stream(rec.data[start:], times[start:], rec.info.ch_names, sf, cues,
                            CLASSES, PREPROCESSORS["160Hz"])
    assert len(ep) == 15 and ep.no_reference == 1 and sum(ep.dropped.values()) == 0
    assert np.isnan(ep.X_ref[0]).all() and np.isfinite(ep.X_ref[1:]).all()
    bp = band_power_maps(ep.X, ep.y, ep.X_ref, 2)
    assert np.isfinite(bp).all()
    np.testing.assert_allclose(bp, band_power_maps(ep.X[1:], ep.y[1:], ep.X_ref[1:], 2))


def test_clock_going_back_drops_only_the_trials_it_makes_ambiguous(s1_run4, caplog):
    """At 40 s the device restarts and its timestamps go back by 10 s (a clock reset the
    source reports as a backward jump). searchsorted on such times silently cut the two trials
    whose window time occurs twice from the wrong samples (and reported nothing dropped); they
    are now dropped as "clock", and the others are cut where their time occurs once."""
    rec, times, k, labels = s1_run4
    sf = rec.sfreq
    cues = [(float(times[i]), c) for i, c in zip(k, labels)]
    pre = PREPROCESSORS["160Hz"]
    ref = epochs_from_stream(rec.data, times, rec.info.ch_names, sf, cues, CLASSES, pre)
    i_reset = int(40 * sf)
    reset = times.copy()
    reset[i_reset:] -= 10.0  # samples after 40 s claim times from 30 s on
    # the cues as the stream's clock gives them: the same samples, the new times
    cues_reset = [(float(reset[i]), c) for i, c in zip(k, labels)]
    with caplog.at_level(logging.WARNING, logger="decoders.calibration"):
        ep = epochs_from_stream(rec.data, reset, rec.info.ch_names, sf, cues_reset, CLASSES,
                                pre)
    onsets = np.array([t for t, _ in cues]) - T0  # 4.2, 12.5, ..., 37.4, 45.7, 54.0, ...
    clock = np.where(onsets < 40, onsets, onsets - 10)  # the cues' times on the reset clock
    # the stretches hold times [0, 40) and [30, 110): a task window starting in [30, 40)
    # occurs twice (37.4 s and 45.7 s, now 35.7 s); its samples cannot be told
    twice = (clock + 0.5 >= 30) & (clock + 0.5 < 40)
    assert np.allclose(onsets[twice], [37.4, 45.7])
    assert ep.dropped == {"outside": 0, "gap": 0, "clock": 2} and len(ep) == 13
    # kept: a reference window in [30, 40) (the 54.0 s cue: 42.5-43.5 s, no) has no reference
    assert ep.no_reference == int(np.sum(~twice & (clock - 1.5 >= 30) & (clock - 1.5 < 40)))
    rms = float(np.sqrt(np.mean(ref.X ** 2)))
    for t, c in zip(onsets[~twice], clock[~twice]):  # the filter saw the same samples
        j_ref = int(np.flatnonzero(np.isclose(ref.onsets - T0, t))[0])
        j = int(np.flatnonzero(np.isclose(ep.onsets - T0, c))[0])
        np.testing.assert_allclose(ep.X[j], ref.X[j_ref], atol=1e-6 * rms)
    assert any("clock went back" in r.getMessage() for r in caplog.records)


def test_non_finite_timestamps_are_named(s1_run4):
    from bci_app.errors import ConfigError

    rec, times, k, labels = s1_run4
    bad = times.copy()
    bad[100] = np.nan
    with pytest.raises(ConfigError, match=r"times: timestamp 100 of .* is nan.*Fix"):
        epochs_from_stream(rec.data, bad, rec.info.ch_names, rec.sfreq,
                           [(float(times[k[0]]), "left")], CLASSES, PREPROCESSORS["160Hz"])
