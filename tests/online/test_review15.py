"""Review 15 of the online decoding path: the offline reference treats a gap in the recording as
the DecoderWorker does. Real EEGMMIDB recordings, the shipped pretrained CSP+LDA bundle (which
resamples and fits the user's alignment), ReplaySource; each test fails on the code before its
fix."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from acquisition.replay import ReplaySource
from decoders.online import DecoderWorker, offline_window_predictions


def _with_gaps(rec, at_s, seconds=1.0):
    """``rec`` with ``seconds`` of samples missing at each time in ``at_s`` (times kept as
    recorded, so the hole is a step in them, as after a lost connection)."""
    n = int(round(seconds * rec.sfreq))
    drop = np.concatenate([np.arange(int(t * rec.sfreq), int(t * rec.sfreq) + n) for t in at_s])
    keep = np.setdiff1d(np.arange(rec.n_samples), drop)
    return dataclasses.replace(rec, data=rec.data[keep], times=rec.times[keep], markers=[])


def _worker_predictions(rec, bundle, chunk=16, hop=0.1):
    src = ReplaySource(rec, speed="max", chunk_samples=chunk, buffer_seconds=300)
    src.connect(timeout=5, acquisition=False)
    try:
        worker = DecoderWorker(src, dataclasses.replace(bundle), hop=hop, smoothing=None,
                               kalman=False)
        preds = []
        while not src.finished:
            src.acquire()
            preds.extend(worker.step(catch_up=True))
    finally:
        src.disconnect()
    return src, preds


def test_offline_reference_restarts_the_filter_at_a_gap_as_the_worker(s003_run4, csp_ea):
    """Two 1 s holes, one inside the span the user's alignment is fitted on (6 s) and one
    later (40 s). The worker restarts the band-pass at each and marks the windows over it and
    within the settling time unreliable (they do not take part in the alignment); the offline
    reference given the times does the same, so every window's probabilities and reliability
    are equal. The old reference filtered across the holes (and had no ``times``): up to 0.03
    apart in probability on the windows after each gap."""
    rec = _with_gaps(s003_run4, [6.0, 40.0])
    src, preds = _worker_predictions(rec, csp_ea)
    assert len(src.gaps) == 2
    ends, probs, reliable = offline_window_predictions(
        rec.data, rec.sfreq, list(rec.info.ch_names), csp_ea, hop=0.1, times=rec.times,
        return_reliable=True)
    assert len(preds) == len(ends) > 1000
    np.testing.assert_array_equal(reliable, [p.reliable for p in preds])
    assert 0 < (~reliable).sum() < 100
    np.testing.assert_allclose(np.stack([p.probabilities for p in preds]), probs, atol=1e-9)
    assert csp_ea.alignment is None  # the caller's bundle is not changed


def test_offline_reference_without_gaps_is_unchanged(s003_run4, csp_ea):
    """On a continuous recording ``times`` changes nothing, every window is reliable, and a bad
    ``times`` is refused with the fix."""
    rec = dataclasses.replace(s003_run4, data=s003_run4.data[:160 * 30],
                              times=s003_run4.times[:160 * 30], markers=[])
    args = (rec.data, rec.sfreq, list(rec.info.ch_names), csp_ea)
    ends0, probs0 = offline_window_predictions(*args)
    ends, probs, reliable = offline_window_predictions(*args, times=rec.times,
                                                       return_reliable=True)
    np.testing.assert_array_equal(ends, ends0)
    np.testing.assert_array_equal(probs, probs0)
    assert reliable.all()
    with pytest.raises(ValueError, match="times: expected one time per sample"):
        offline_window_predictions(*args, times=rec.times[:-1])
