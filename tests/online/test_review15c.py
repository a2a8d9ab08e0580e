"""Review 15c of the online decoding path: a source connected again by hand
(``source.disconnect(); source.connect()``) while a DecoderWorker runs on it.

``connect()`` gives the source a new ring buffer whose sample count starts at 0; the worker kept
reading at its old position, so every step failed with "since(k) is ahead of the buffer" (and,
once the new count passed that position, it would have skipped that many new samples and
filtered across the seam). Real EEGMMIDB replays and BrainFlow's synthetic board, real bundles;
each test fails on the code before its fix."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from acquisition.brainflow_source import BrainFlowSource
from acquisition.replay import ReplaySource
from bci_app.errors import StreamMismatchError
from decoders.online import DecoderWorker, offline_window_predictions

CHUNK = 16  # samples per replayed chunk: the hop (0.1 s at 160 Hz)


def _wait_for(cond, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_replay_connected_again_is_decoded_from_its_first_sample(s003_run4, ts_bundle):
    """10 s of EEGMMIDB S003 run 4, then ``disconnect(); connect()`` (the replay starts the file
    again, in a new buffer), then 10 s more. The worker finishes the old buffer, follows the new
    one from its first sample (filter restarted there, as after a gap), marks exactly the
    windows that hold the seam or start within the filter's settling time unreliable, and
    decodes every other window of the new connection as the offline reference decodes the
    file from its start. The old code raised "since(1600) is ahead of the buffer" at once."""
    rec = s003_run4
    src = ReplaySource(rec, speed="max", chunk_samples=CHUNK, buffer_seconds=300)
    src.connect(timeout=5, acquisition=False)
    try:
        worker = DecoderWorker(src, dataclasses.replace(ts_bundle), hop=0.1, smoothing=None,
                               kalman=False)
        assert worker.hop_samples == CHUNK
        before = []
        for _ in range(100):  # 1600 samples: a whole number of hops
            src.acquire()
            before.extend(worker.step(catch_up=True))
        src.disconnect()
        src.connect(timeout=5, acquisition=False)
        after = []
        for _ in range(100):
            src.acquire()
            after.extend(worker.step(catch_up=True))
    finally:
        src.disconnect()
    assert worker.errors == 0 and worker.source_restarts == 1
    assert len(before) == (1600 - ts_bundle.n_times) // CHUNK + 1
    assert list(worker.history) == before + after  # nothing decoded before is dropped
    assert worker.caught_up and src.buffer.counter == 1600
    n = ts_bundle.n_times
    settle = ts_bundle.streaming_filter(rec.sfreq, list(rec.info.ch_names)).settle_samples
    ends = np.array([p.seq for p in after])  # in the new buffer
    starts = ends - n
    assert np.array_equal(np.diff(ends), np.full(len(ends) - 1, CHUNK))  # every hop, in order
    assert ends[0] == CHUNK and ends[-1] == 1600  # the first window after the seam onwards
    reliable = np.array([p.reliable for p in after])
    np.testing.assert_array_equal(reliable, starts >= settle)
    assert {p.reason for p in after if not p.reliable} == {"source connected again"}
    off_ends, off_probs, off_reliable = offline_window_predictions(
        rec.data[:1600], rec.sfreq, list(rec.info.ch_names), ts_bundle, hop=0.1,
        times=rec.times[:1600], return_reliable=True)
    assert off_reliable.all()
    mine = dict(zip(ends[reliable].tolist(), [p.probabilities for p in np.array(after)[reliable]]))
    offline = dict(zip(off_ends.tolist(), off_probs))
    assert set(mine) == {e for e in offline if e - n >= settle}
    np.testing.assert_allclose(np.stack([mine[e] for e in sorted(mine)]),
                               np.stack([offline[e] for e in sorted(mine)]), atol=1e-9)


def test_the_worker_thread_follows_a_board_connected_again(ts_bundle_resampling):
    """BrainFlow's synthetic board, the worker's own thread in real time: after ``disconnect();
    connect()`` it decodes the new connection (first windows unreliable, then reliable ones)
    with no error. The old thread failed every 50 ms ("ahead of the buffer") and predicted
    nothing more."""
    src = BrainFlowSource("synthetic").connect(timeout=5)
    worker = DecoderWorker(src, dataclasses.replace(ts_bundle_resampling), hop=0.1,
                           smoothing=None, kalman=False)
    preds = []
    worker.add_callback(preds.append)
    try:
        worker.start()
        _wait_for(lambda: any(p.reliable for p in preds), 15, "a reliable prediction")
        src.disconnect()
        src.connect(timeout=5)
        seen = len(preds)
        try:
            _wait_for(lambda: any(p.reliable for p in preds[seen:])
                      and any(p.reason == "source connected again" for p in preds[seen:]), 15,
                      "reliable predictions after the new connection")
        finally:
            worker.stop()
    finally:
        src.disconnect()
    assert worker.errors == 0, worker.last_error
    assert worker.source_restarts == 1
    new = preds[seen:]
    first_ok = next(i for i, p in enumerate(new) if p.reliable)
    assert all(p.reason == "source connected again" for p in new[:first_ok] if not p.reliable)
    assert new[-1].seq <= src.buffer.counter  # counted in the new buffer


def test_a_source_connected_again_to_other_channels_stops_the_worker_clearly(
        ts_bundle_resampling, caplog):
    """The user's script names the electrodes anew (C3 and C4 were swapped) and connects the
    board again: the worker's channel mapping is for the old names, so it must not go on. Its
    thread stops at once with a StreamMismatchError in ``last_error`` that names the change and
    the fix, logged once. The old thread kept failing every 50 ms with "ahead of the buffer"."""
    src = BrainFlowSource("synthetic").connect(timeout=5)
    worker = DecoderWorker(src, dataclasses.replace(ts_bundle_resampling), hop=0.1,
                           smoothing=None, kalman=False)
    names = list(src.info.ch_names)
    i, j = names.index("C3"), names.index("C4")
    names[i], names[j] = names[j], names[i]
    try:
        worker.start()
        _wait_for(lambda: worker.n_predictions > 0, 15, "a prediction")
        src.disconnect()
        src.channel_names = tuple(names)
        src.connect(timeout=5)
        thread = worker._thread
        _wait_for(lambda: not thread.is_alive(), 5, "the worker thread to stop")
        time.sleep(0.3)  # the board goes on writing: nothing more may be attempted
        assert worker.errors == 1, worker.last_error
        assert "connected again" in worker.last_error
        assert "channels changed" in worker.last_error
        assert "build a new DecoderWorker(source, bundle)" in worker.last_error
        assert worker.source_restarts == 0
    finally:
        worker.stop()
        src.disconnect()
    with pytest.raises(StreamMismatchError, match="build a new DecoderWorker"):
        worker.step()  # the synchronous path raises the same error
