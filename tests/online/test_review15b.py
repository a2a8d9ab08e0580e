"""Review 15b of the online decoding path: after a gap, the windows that start before the
band-pass has settled (``StreamingFilter.settle_samples`` outputs from the first sample after
the gap) are unreliable, and the first one that starts at the settled sample is reliable again.
Real EEGMMIDB recording with a real 1 s hole, ReplaySource, a real tangent-space bundle; the
test fails on the code before its fix (which marked that first settled window unreliable)."""

from __future__ import annotations

import dataclasses

import numpy as np

from decoders.online import offline_window_predictions

from .test_review15 import _worker_predictions

GAP_AT_S = 12.0


def _with_hole(rec, at_s=GAP_AT_S, seconds=1.0, total_s=22.0):
    """The first ``total_s`` of ``rec`` with ``seconds`` of samples missing at ``at_s`` (times
    kept as recorded, so the hole is a step in them, as after a lost connection)."""
    n_total, a = int(total_s * rec.sfreq), int(at_s * rec.sfreq)
    keep = np.r_[0:a, a + int(seconds * rec.sfreq):n_total]
    return dataclasses.replace(rec, data=rec.data[keep], times=rec.times[keep], markers=[])


def test_the_first_window_starting_on_the_settled_filter_is_reliable(s003_run4, ts_bundle):
    """Every window (hop: one sample) after a 1 s hole. The bundle does not resample, so an
    output sample is an input sample: the first sample after the hole is ``q``, and a window
    is unreliable exactly when it holds the hole (it ends after ``q`` and starts before it) or
    starts less than ``settle_samples`` after ``q`` — ``StreamingFilter.settle_samples``,
    DecoderWorker's and the calibration's rule. The old code also marked the window starting
    at ``q + settle_samples`` (one past the settling time: the filter's transient is below
    1e-4 of its energy there). The offline reference agrees window for window."""
    rec = _with_hole(s003_run4)
    q = int(GAP_AT_S * rec.sfreq)  # row of the first sample after the hole
    src, preds = _worker_predictions(rec, ts_bundle, hop=1 / rec.sfreq)
    # the worker's own chain (same channels, same rate)
    settle = ts_bundle.streaming_filter(rec.sfreq, list(rec.info.ch_names)).settle_samples
    assert len(src.gaps) == 1 and 0 < settle < ts_bundle.n_times
    n = ts_bundle.n_times
    ends = np.array([p.seq for p in preds])  # one past each window's last input row
    assert np.array_equal(np.diff(ends), np.ones(len(ends) - 1))  # every window, in order
    starts = ends - n
    reliable = np.array([p.reliable for p in preds])
    expected = ~((ends > q) & (starts < q + settle))
    np.testing.assert_array_equal(np.flatnonzero(~reliable), np.flatnonzero(~expected))
    by_start = dict(zip(starts.tolist(), reliable.tolist()))
    assert by_start[q + settle - 1] is False  # the last window on the settling filter
    assert by_start[q + settle] is True  # the first on the settled one
    reasons = {p.reason for p in preds if not p.reliable}
    assert reasons == {"gap in the signal"}, reasons
    off_ends, _, off_reliable = offline_window_predictions(
        rec.data, rec.sfreq, list(rec.info.ch_names), ts_bundle, hop=1 / rec.sfreq,
        times=rec.times, return_reliable=True)
    np.testing.assert_array_equal(off_ends, ends)
    np.testing.assert_array_equal(off_reliable, reliable)
