"""Review 12: calibration cuts trials as the online worker now decodes them around a gap (real
EEGMMIDB S001 run 4 with holes cut into it).

``epochs_from_stream`` filtered straight across a gap and kept every trial whose window did not
span it, so a trial starting 0.1 s after a hole was trained on with the band-pass still ringing
from the jump over it. The filter now restarts at each gap (as online) and a window starting
within its settling time (0.36 s for 8-30 Hz) is dropped as ``"gap"``; a pre-cue reference
there is NaN.
"""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.files import read_file
from acquisition.simulated import eegmmidb_files
from decoders.calibration import epochs_from_stream
from decoders.preprocessing import Preprocessor

CLASSES = ["left", "right"]
CHANNELS = ["FC3", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3", "CP4"]
T0 = 1000.0


@pytest.fixture(scope="module")
def s1_run4(eegmmidb_path):
    rec = read_file(eegmmidb_files(1, (4,), eegmmidb_path)[0])
    times = T0 + np.arange(rec.n_samples) / rec.sfreq
    cues = [(T0 + m.timestamp - rec.times[0], {"T1": "left", "T2": "right"}[m.label])
            for m in rec.markers if m.label in ("T1", "T2")]
    return rec, times, cues


@pytest.mark.parametrize("sfreq", [None, 80.0])
def test_trials_starting_before_the_filter_settled_after_a_gap_are_dropped(s1_run4, sfreq):
    rec, times, cues = s1_run4
    sf = rec.sfreq
    pre = Preprocessor(channels=CHANNELS, car=True, l_freq=8.0, h_freq=30.0, sfreq=sfreq)
    onsets = np.array([t for t, _ in cues]) - T0
    assert np.allclose(onsets[7:10], [62.3, 70.6, 78.9])
    holes = [(62.5, 62.7),   # the 62.3 s cue's task window (62.8-64.8 s) starts 0.1 s after
             (70.0, 70.2),   # across the 70.6 s cue's reference; its task window 0.9 s after
             (77.0, 77.3)]   # the 78.9 s cue's reference (77.4-78.4 s) starts 0.1 s after
    drop = np.zeros(rec.n_samples, bool)
    for a, b in holes:
        drop[int(round(a * sf)):int(round(b * sf))] = True
    ep = epochs_from_stream(rec.data[~drop], times[~drop], rec.info.ch_names, sf, cues,
                            CLASSES, pre)
    on = np.round(ep.onsets - T0, 1)
    assert 62.3 not in on and len(ep) == 14
    assert ep.dropped == {"outside": 0, "gap": 1, "clock": 0}
    no_ref = sorted(on[np.isnan(ep.X_ref).all(axis=(1, 2))])
    assert no_ref == [70.6, 78.9] and ep.no_reference == 2
    assert np.isfinite(ep.X).all()


def test_after_a_gap_trials_are_the_signal_filtered_from_a_fresh_start(s1_run4):
    """As online: the band-pass restarts on the first sample after the hole."""
    rec, times, cues = s1_run4
    sf = rec.sfreq
    pre = Preprocessor(channels=CHANNELS, car=True, l_freq=8.0, h_freq=30.0)
    a, b = int(round(70.0 * sf)), int(round(70.2 * sf))
    keep = np.r_[0:a, b:rec.n_samples]
    ep = epochs_from_stream(rec.data[keep], times[keep], rec.info.ch_names, sf, cues,
                            CLASSES, pre)
    fresh = pre.streaming(sf, list(rec.info.ch_names)).process(rec.data[b:])
    later = [(j, t) for j, t in enumerate(ep.onsets) if t - T0 > 70.2]
    assert len(later) == 7
    for j, t in later:
        start = int(round((t - T0 + 0.5) * sf)) - b
        np.testing.assert_array_equal(ep.X[j], fresh[start:start + 320].T.astype(np.float32))
