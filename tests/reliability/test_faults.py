"""Fault injection with real components where they can run: the session survives, the state shown
is right, nothing recorded is lost or shifted.

The one fake here is a scripted transport (``ScriptedSource``) that delivers exactly the chunks a
test needs — duplicated, out of order, with clock jumps — which no real device does on demand.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import mne
import numpy as np
import pytest

from acquisition.base import Source, SourceState
from acquisition.brainflow_source import BrainFlowSource
from acquisition.files import read_file
from acquisition.markers import GAP_LABEL
from acquisition.recorder import Recorder, RecorderState
from acquisition.replay import ReplaySource
from acquisition.stream_info import StreamInfo
from decoders.online import DecoderWorker
from tests.helpers.processes import wait_until


class ScriptedSource(Source):
    """Delivers a fixed list of (data, timestamps) chunks, one per pull."""

    kind = "scripted"

    def __init__(self, chunks, sfreq=100.0, n_ch=2, **kw):
        super().__init__(reconnect=False, **kw)
        self.script = list(chunks)
        self.sfreq, self.n_ch = sfreq, n_ch

    def _open(self, timeout):
        return StreamInfo("scripted", "scripted", tuple(f"C{i}" for i in range(self.n_ch)),
                          ("eeg",) * self.n_ch, ("V",) * self.n_ch, self.sfreq)

    def _pull(self):
        return self.script.pop(0) if self.script else None

    def _close(self):
        pass


def _chunk(start, n, sfreq=100.0, t0=1000.0, n_ch=2, offset=0.0):
    idx = np.arange(start, start + n)
    return (np.repeat(idx[:, None].astype(float), n_ch, axis=1) + offset,
            t0 + idx / sfreq)


def _run(src):
    src.connect(timeout=1, acquisition=False)
    while src.script:
        src.acquire()
    return src.buffer.since(0)


def test_duplicated_chunk_is_dropped_not_doubled():
    a, b, c = _chunk(0, 10), _chunk(10, 10), _chunk(20, 10)
    src = ScriptedSource([a, b, b, c])
    got = _run(src)
    np.testing.assert_array_equal(got.data[:, 0], np.arange(30))
    assert src.duplicates_dropped == 10 and src.gaps == [] and src.backward_jumps == 0


def test_out_of_order_chunk_leaves_a_registered_gap_and_is_dropped():
    a, b, c = _chunk(0, 10), _chunk(10, 10), _chunk(20, 10)
    src = ScriptedSource([a, c, b])
    got = _run(src)
    np.testing.assert_array_equal(got.data[:, 0], np.r_[np.arange(10), np.arange(20, 30)])
    assert len(src.gaps) == 1 and src.gaps[0].samples_missing == 10
    assert src.out_of_order_dropped == 10
    labels = [m.label for m in src.markers.all()]
    assert GAP_LABEL in labels and "bci_app/out_of_order" in labels


def test_clock_reset_keeps_data_and_marks_the_jump():
    a = _chunk(0, 10)
    reset = _chunk(0, 10, t0=5.0, offset=100.0)  # the device clock restarted near 0
    src = ScriptedSource([a, reset])
    got = _run(src)
    assert got.n_samples == 20  # nothing dropped: new values after a reset are real data
    assert src.backward_jumps == 1
    assert any(m.label == "bci_app/clock_jump" for m in src.markers.all())


def test_forward_timestamp_jump_is_a_gap_with_its_length():
    src = ScriptedSource([_chunk(0, 10), _chunk(60, 10)])
    _run(src)
    assert [g.samples_missing for g in src.gaps] == [50]
    assert src.gaps[0].duration == pytest.approx(0.5)


def test_clock_reset_fixture_replays_without_losing_the_stream(data_dir):
    rec = read_file(data_dir / "xdf-example-files/clock_resets.xdf")
    src = ReplaySource(rec, speed="max", buffer_seconds=rec.duration + 10)
    src.connect(timeout=5, acquisition=False)
    while not src.finished:
        src.acquire()
    assert src.n_samples == rec.n_samples
    assert src.state != SourceState.LOST
    got = src.buffer.since(0)
    assert got.lost == 0
    np.testing.assert_array_equal(got.data, rec.data)


def test_brainflow_board_that_goes_silent_goes_stalled_then_lost():
    """A board that stops sending (a dongle pulled mid-stream): stalled, then lost."""
    src = BrainFlowSource("synthetic", reconnect=False, stall_timeout=0.3, lost_timeout=1.0)
    with src.connect(timeout=5):
        wait_until(lambda: src.n_samples > 0, 5, what="first samples")
        src._board.stop_stream()  # the device goes silent; the session stays open
        wait_until(lambda: src.state == SourceState.LOST, 10, what="lost after the silence")
        states = [s for _, s, _ in src.state_history]
        assert states.index(SourceState.STALLED) < states.index(SourceState.LOST)


def test_brainflow_playback_that_ends_stops_with_every_sample(tmp_path):
    """The end of a playback file is not a loss: stopped ("end of file"), all of it delivered."""
    from brainflow.data_filter import DataFilter

    from tests.reliability.fuzzing import _brainflow_csv

    f = _brainflow_csv(tmp_path / "short.csv")  # one second of the synthetic board
    data = DataFilter.read_file(str(f))
    src = BrainFlowSource("playback", file=str(f), master_board="synthetic", reconnect=False)
    with src.connect(timeout=5):
        wait_until(lambda: src.state == SourceState.STOPPED, 10, what="end of file")
        assert src.state_history[-1][2] == "end of file" and src.finished
        states = [s for _, s, _ in src.state_history]
        assert SourceState.LOST not in states
        assert src.n_samples == data.shape[1]  # everything that was sent arrived


@pytest.fixture(scope="module")
def s003(eegmmidb_path):
    return read_file(mne.datasets.eegbci.load_data(3, [4], path=str(eegmmidb_path),
                                                   update_path=False)[0])


def _decode(rec, bundle, chunk=32, **kw):
    src = ReplaySource(rec, speed="max", chunk_samples=chunk)
    src.connect(timeout=5, acquisition=False)
    worker = DecoderWorker(src, bundle, hop=0.1, **kw)
    preds = []
    while not src.finished:
        src.acquire()
        preds.extend(worker.step(catch_up=True))
    return worker, preds


def test_railed_samples_make_windows_unreliable(ts_bundle_any, s003):
    data = s003.data.copy()
    ch = s003.info.ch_names.index(next(c for c in s003.info.ch_names if c.lower().startswith("c3")))
    data[4000:4100, ch] = 0.187  # a Cyton railed at +187.5 mV for 100 samples
    worker, preds = _decode(dataclasses.replace(s003, data=data), ts_bundle_any)
    bad = [p for p in preds if not p.reliable]
    assert bad and all("railed" in p.reason for p in bad)
    assert all(p.reliable for p in preds if p.seq <= 4000 or p.seq - 320 >= 4100 + 320)


def _c3(rec):
    return rec.info.ch_names.index(next(c for c in rec.info.ch_names if c.lower().startswith("c3")))


def test_flat_channel_makes_windows_unreliable(ts_bundle_any, s003):
    data = s003.data.copy()
    data[4000:4800, _c3(s003)] = 0.0  # C3 electrode off (a device sending zeros) for 5 s
    worker, preds = _decode(dataclasses.replace(s003, data=data), ts_bundle_any)
    bad = [p for p in preds if not p.reliable]
    assert bad and all("flat channel(s) C3" in p.reason for p in bad)
    # every window holding a flat second is unreliable; those well clear of it are reliable
    assert all(not p.reliable for p in preds if 4160 + 320 <= p.seq <= 4800)
    assert all(p.reliable for p in preds if p.seq <= 4000 or p.seq - 320 >= 4800 + 320)
    assert all(np.isfinite(p.smoothed).all() for p in preds if p.reliable)


def test_non_finite_model_output_never_reaches_smoothing(ts_bundle_any, s003):
    calls = {"n": 0, "armed": False}

    class Degenerate:  # a model that returns NaN on some windows (as TS does on singular ones)
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def predict_proba(self, X):
            p = self.inner.predict_proba(X)
            if calls["armed"]:
                calls["n"] += 1
                if calls["n"] % 5 == 0:
                    p = np.full_like(p, np.nan)
            return p

    bundle = dataclasses.replace(ts_bundle_any, decoder=Degenerate(ts_bundle_any.decoder))
    src = ReplaySource(s003, speed="max", chunk_samples=32)
    src.connect(timeout=5, acquisition=False)
    worker = DecoderWorker(src, bundle, hop=0.1, engine="torch")
    calls["armed"] = True
    preds = []
    while not src.finished:
        src.acquire()
        preds.extend(worker.step(catch_up=True))
    nan = [p for p in preds if not np.isfinite(p.probabilities).all()]
    assert nan and len(nan) < len(preds)
    assert all(not p.reliable and p.label == "unreliable" and "non-finite probabilities" in p.reason
               for p in nan)
    assert all(np.isfinite(p.smoothed).all() and np.isfinite(p.control)
               for p in preds if p.reliable)


def test_alignment_is_fitted_on_live_windows_only(s003):
    from decoders.bundle import load_bundle

    bundle = load_bundle(Path(__file__).resolve().parents[2]
                         / "decoders/pretrained/mi_left_right_csp_lda_ea")
    data = s003.data.copy()
    data[:1600] = 0.0  # the session starts with 10 s of nothing on every channel
    worker, preds = _decode(dataclasses.replace(s003, data=data), bundle, alignment_seconds=5.0)
    assert not worker.aligning and bundle.alignment is None  # fitted on the worker's copy
    assert np.isfinite(worker.bundle.alignment.transform(
        np.ones((1, len(bundle.channels), bundle.n_times), np.float32))).all()
    # the first prediction comes after 5 s of live signal, not 5 s after the start
    assert preds and preds[0].seq > 1600 + 5 * 160
    assert all(np.isfinite(p.probabilities).all() for p in preds if p.reliable)


@pytest.mark.parametrize("fault", ["nan", "railed", "flat"])
def test_bad_samples_in_a_long_chunk_mark_every_window_holding_them(ts_bundle_any, s003, fault):
    """512-sample chunks (bci-app replay's size; a worker catching up reads as much): the bad
    samples sit late in a chunk, and every window that holds them is still unreliable."""
    data = s003.data.copy()
    lo, hi = 3562, (3572 if fault != "flat" else 3562 + 200)  # flat: 1.25 s of zeros
    data[lo:hi, _c3(s003)] = {"nan": np.nan, "railed": 0.187, "flat": 0.0}[fault]
    worker, preds = _decode(dataclasses.replace(s003, data=data), ts_bundle_any, chunk=512)
    n = worker.n_times
    assert [p.seq for p in preds[:3]] == [n, n + 16, n + 32]  # seq = one past the window's end
    # a flat stretch is known once it has lasted 1 s (160 samples): windows cut before that
    # cannot know it yet
    known = lo + (160 if fault == "flat" else 0)
    holding = [p for p in preds if known < p.seq <= hi - 1 + n]
    assert holding and not any(p.reliable for p in holding)
    assert all(p.reliable for p in preds if p.seq <= lo - 32 or p.seq > hi + 3 * n)


def test_a_dwell_needs_unbroken_reliable_windows(ts_bundle_any, s003):
    from decoders.smoothing import DwellCommander

    class Sure:  # always 90 % "right": every reliable window is above the threshold
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def predict_proba(self, X):
            return np.tile([0.1, 0.9], (len(X), 1))

    bundle = dataclasses.replace(ts_bundle_any, decoder=Sure(ts_bundle_any.decoder))
    data = s003.data.copy()
    for start in range(2000, 9000, 700):  # a short artefact every 4.4 s
        data[start:start + 3, _c3(s003)] = np.nan
    commander = DwellCommander(("left", "right"), threshold=0.8, dwell=1.0, refractory=0.0)
    worker, preds = _decode(dataclasses.replace(s003, data=data), bundle, commander=commander,
                            smoothing=None)
    assert commander.commands
    ends = np.array([p.window_end for p in preds])
    for cmd in commander.commands:
        span = [p for p, t in zip(preds, ends) if cmd.t - 1.0 - 1e-6 <= t <= cmd.t]
        assert all(p.reliable for p in span), f"command at {cmd.t} spans unreliable windows"


def test_each_source_gets_its_own_alignment(s003, eegmmidb_path):
    """Decoding one person, then another with the same loaded bundle: the second worker fits
    its own alignment instead of reusing the first person's."""
    from decoders.bundle import load_bundle

    bundle = load_bundle(Path(__file__).resolve().parents[2]
                         / "decoders/pretrained/mi_left_right_csp_lda_ea")
    w1, p1 = _decode(s003, bundle, alignment_seconds=5.0)
    s004 = read_file(mne.datasets.eegbci.load_data(4, [4], path=str(eegmmidb_path),
                                                   update_path=False)[0])
    w2, p2 = _decode(s004, bundle, alignment_seconds=5.0)
    assert bundle.alignment is None
    assert p1 and p2 and p2[0].seq > 5 * 160  # the second one aligned first, too
    assert not np.allclose(w1.bundle.alignment.transform(np.ones((1, 21, 320), np.float32)),
                           w2.bundle.alignment.transform(np.ones((1, 21, 320), np.float32)))


def test_decoder_exceptions_are_counted_and_the_session_lives(ts_bundle_any):
    calls = {"n": 0, "armed": False}

    class Flaky:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def predict_proba(self, X):
            if not calls["armed"]:  # warm-up calls at construction pass
                return self.inner.predict_proba(X)
            calls["n"] += 1
            if calls["n"] % 3 == 0:  # every third live call fails
                raise RuntimeError("injected model failure")
            return self.inner.predict_proba(X)

    bundle = dataclasses.replace(ts_bundle_any, decoder=Flaky(ts_bundle_any.decoder))
    src = BrainFlowSource("synthetic")
    with src.connect(timeout=5):
        mapping = {c: c for c in bundle.channels}
        worker = DecoderWorker(src, bundle, hop=0.1, mapping=mapping)
        calls["armed"] = True
        with worker:
            wait_until(lambda: worker.errors >= 3 and worker.n_predictions >= 6, 30,
                       what="errors and predictions")
            assert worker._thread is not None and worker._thread.is_alive()
        assert "injected model failure" in worker.last_error
        assert src.state == SourceState.STREAMING or src.state == SourceState.STOPPED
        assert src.samples_missing == 0


def test_recording_file_deleted_mid_session_is_rescued(tmp_path):
    src = BrainFlowSource("synthetic")
    path = tmp_path / "session" / "rec.xdf"
    with src.connect(timeout=5):
        rec = Recorder(path, session_meta={"subject": "t"}, history=True)
        rec.add_source(src)
        rec.start()
        wait_until(lambda: rec.bytes_written > 20_000, 10, what="some data written")
        os.remove(path)  # a user (or a cleanup script) deletes the file while recording
        wait_until(lambda: rec.path != path, 5, what="rescue")
        time.sleep(0.5)
        n_source = src.n_samples
        final = rec.stop()
    assert rec.state != RecorderState.FAILED
    assert final.exists() and final.parent == path.parent and "rescued" in final.name
    assert rec.warnings and "disappeared" in rec.warnings[0]
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(final))
    eeg = next(s for s in streams if s["info"]["type"][0] == "EEG")
    n = len(eeg["time_stamps"])
    assert n >= n_source - 5  # nothing recorded before or after the deletion was lost
    stamps = np.asarray(eeg["time_stamps"])
    np.testing.assert_allclose(np.diff(stamps), 1 / 250, atol=1e-6)


def test_arrival_time_names_the_write_that_held_a_sample():
    from collections import deque

    src = ScriptedSource([_chunk(0, 10), _chunk(10, 10), _chunk(20, 10)])
    src.connect(timeout=1, acquisition=False)
    src._arrivals = deque(maxlen=2)  # a short record, so the oldest write falls out of it
    for _ in range(3):
        src.acquire()
    times = [t for t, _ in src._arrivals]  # writes 2 and 3 remain
    assert src.arrival_time(5) is None  # its write is no longer on record
    assert src.arrival_time(10) == times[0] and src.arrival_time(19) == times[0]
    assert src.arrival_time(20) == times[1] and src.arrival_time(30) is None
