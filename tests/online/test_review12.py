"""Review 12 of the online decoding path: what the worker does at a gap in the signal (real
EEGMMIDB S003 run 4 replayed with holes cut into its timestamps, a real 160 Hz bundle).

The old worker filtered straight across a gap and marked only the windows holding the first
sample after it. The band-pass then rang with the jump over the hole (the DC drift of a raw
amplifier, the signal's phase): on the OpenBCI GUI sample the 2 s window starting 0.1 s after a
hole of 0.04, 0.5 or 5 s had 6, 0.9 or 29 % of its energy wrong (median over 8 places of the
hole; up to 345 %), and such windows were predicted as reliable. Now the filter restarts at the gap (as at the start of a stream) and the
windows starting within its settling time are unreliable too.
"""

from __future__ import annotations

import dataclasses

import mne
import numpy as np
import pytest

from acquisition.files import read_file
from acquisition.replay import ReplaySource
from decoders.online import DecoderWorker


@pytest.fixture(scope="module")
def s003_head(eegmmidb_path):
    path = mne.datasets.eegbci.load_data(3, [4], path=str(eegmmidb_path), update_path=False)[0]
    rec = read_file(path)
    n = 8000
    return dataclasses.replace(rec, data=rec.data[:n], times=rec.times[:n], markers=[])


def _replay(rec, bundle, chunk, acquires_per_step=1):
    src = ReplaySource(rec, speed="max", chunk_samples=chunk, buffer_seconds=300)
    src.connect(timeout=5, acquisition=False)
    worker = DecoderWorker(src, bundle, hop=0.1, smoothing=None, kalman=False)
    preds = []
    while not src.finished:
        for _ in range(acquires_per_step):
            src.acquire()
        preds.extend(worker.step(catch_up=True))
    src.disconnect()
    return src, worker, preds


def _holed(rec, rows, hole_s):
    times = rec.times.copy()
    for row, dt in zip(rows, hole_s):
        times[row:] += dt
    return dataclasses.replace(rec, times=times)


@pytest.mark.parametrize(("chunk", "per_step"), [(16, 1), (16, 8), (37, 1)])
def test_after_a_gap_the_filter_restarts_and_settling_windows_are_unreliable(
        s003_head, ts_bundle, chunk, per_step):
    gap_row = 4000  # first sample after a 2 s hole; a multiple of the 16-sample hop
    rec = _holed(s003_head, [gap_row], [2.0])
    src, worker, preds = _replay(rec, ts_bundle, chunk, per_step)
    assert len(src.gaps) == 1
    n = ts_bundle.n_times  # 160 Hz bundle: output samples are input samples
    settle = worker._filter.settle_samples
    assert 40 < settle < 80  # 8-30 Hz, order 4, at 160 Hz: 0.36 s
    after = [p for p in preds if p.seq - n >= gap_row]  # windows starting at/after the gap
    settling = [p for p in after if p.seq - n < gap_row + settle]
    assert settling and not any(p.reliable for p in settling)
    assert all("gap" in p.reason for p in settling)
    settled = [p for p in after if p.seq - n >= gap_row + settle]
    assert len(settled) > 20 and all(p.reliable for p in settled)
    # what the worker predicts there is the post-gap signal filtered from a fresh start
    filt = ts_bundle.streaming_filter(160.0, list(rec.info.ch_names))
    post = filt.process(rec.data[gap_row:])
    X = np.stack([post[p.seq - gap_row - n:p.seq - gap_row].T for p in settled])
    expected = ts_bundle.decoder.predict_proba(X.astype(np.float32))
    np.testing.assert_allclose(np.stack([p.probabilities for p in settled]), expected,
                               atol=1e-6)
    # before the gap nothing changed: windows ending before it are reliable once settled
    assert all(p.reliable for p in preds if p.seq <= gap_row)


def test_two_gaps_inside_one_read_each_restart_the_filter(s003_head, ts_bundle):
    """A worker that fell behind reads 128 samples at once; both holes in that read count."""
    rows = [4000, 4064]
    rec = _holed(s003_head, rows, [0.5, 0.25])
    src, worker, preds = _replay(rec, ts_bundle, 16, acquires_per_step=8)
    assert len(src.gaps) == 2
    n, settle = ts_bundle.n_times, worker._filter.settle_samples
    for row in rows:
        near = [p for p in preds if row <= p.seq - n < row + settle]
        assert near and not any(p.reliable for p in near)
    settled = [p for p in preds if p.seq - n >= rows[1] + settle]
    assert settled and all(p.reliable for p in settled)
    filt = ts_bundle.streaming_filter(160.0, list(rec.info.ch_names))
    post = filt.process(rec.data[rows[1]:])
    X = np.stack([post[p.seq - rows[1] - n:p.seq - rows[1]].T for p in settled])
    np.testing.assert_allclose(np.stack([p.probabilities for p in settled]),
                               ts_bundle.decoder.predict_proba(X.astype(np.float32)), atol=1e-6)


def test_a_gap_in_a_resampled_stream_restarts_the_band_pass_only(s003_head,
                                                                 ts_bundle_resampling):
    """250 Hz into a 160 Hz bundle: at the gap the band-pass restarts and the resampler goes on
    (its output grid stays on the sample count), so every window the worker predicts is the
    one ``StreamingFilter`` gives with ``restart()`` at the gap, whatever the chunking."""
    bundle = ts_bundle_resampling
    data = mne.filter.resample(s003_head.data.T, up=250.0 / 160.0, axis=-1).T
    gap_row = 6000
    times = np.arange(len(data)) / 250.0
    times[gap_row:] += 1.5
    info = dataclasses.replace(s003_head.info, sfreq=250.0)
    rec = dataclasses.replace(s003_head, data=data, times=times, info=info)
    filt = bundle.streaming_filter(250.0, list(info.ch_names))
    out = np.concatenate([filt.process(data[:gap_row]), (filt.restart(),
                                                          filt.process(data[gap_row:]))[1]])
    n, hop = bundle.n_times, 16
    ends = np.arange(n, len(out) + 1, hop)
    expected = bundle.decoder.predict_proba(
        np.stack([out[e - n:e].T for e in ends]).astype(np.float32))
    settle = filt.settle_samples
    gap_out = int(np.ceil(gap_row * 160.0 / 250.0))
    for chunk in (16, 37):
        src, _, preds = _replay(rec, bundle, chunk)
        assert len(src.gaps) == 1 and len(preds) == len(ends)
        np.testing.assert_allclose(np.stack([p.probabilities for p in preds]), expected,
                                   atol=1e-6, err_msg=f"chunk {chunk}")
        unreliable = ends[[not p.reliable for p in preds]]
        # the windows holding the gap's first output or starting before the filter settled
        assert set(unreliable) == set(ends[(ends > gap_out) & (ends - n < gap_out + settle)])
