"""DecoderWorker: offline == online, stale-window skipping, channel/rate checks, unreliable windows,
prediction outlet."""

from __future__ import annotations

import dataclasses
import time

import mne
import numpy as np
import pytest

from acquisition.brainflow_source import BrainFlowSource
from acquisition.files import read_file
from acquisition.replay import ReplaySource
from bci_app.errors import StreamMismatchError
from decoders.online import DecoderWorker, offline_window_predictions
from tests.helpers.processes import wait_until


@pytest.fixture(scope="module")
def s002_run4(eegmmidb_path):
    path = mne.datasets.eegbci.load_data(2, [4], path=str(eegmmidb_path), update_path=False)[0]
    return read_file(path)


def _replay_decode(rec, bundle, hop=0.1, chunk=16):
    src = ReplaySource(rec, speed="max", chunk_samples=chunk, buffer_seconds=200)
    src.connect(timeout=5, acquisition=False)
    worker = DecoderWorker(src, bundle, hop=hop, smoothing=None, kalman=False)
    preds = []
    while not src.finished:
        src.acquire()
        preds.extend(worker.step(catch_up=True))
    src.disconnect()
    return src, worker, preds


def test_replay_through_worker_equals_offline_causal_decoding(ts_bundle, s002_run4):
    rec = s002_run4
    src, worker, preds = _replay_decode(rec, ts_bundle)
    ends, probs = offline_window_predictions(rec.data, rec.info.sfreq, list(rec.info.ch_names),
                                             ts_bundle, hop=0.1)
    assert len(preds) == len(ends) > 1000
    np.testing.assert_array_equal([p.seq for p in preds], ends)
    np.testing.assert_allclose(np.stack([p.probabilities for p in preds]), probs, atol=1e-9)
    assert worker.skipped == 0 and worker.lost_samples == 0
    # window ends are the replayed samples' timestamps
    assert src.buffer.counter <= src.buffer.capacity  # the whole run is still held
    t0 = src.buffer.since(0).timestamps[0]
    np.testing.assert_allclose([p.window_end for p in preds], t0 + (ends - 1) / 160.0, atol=1e-6)


def test_slow_model_skips_stale_windows_and_acquisition_loses_nothing(ts_bundle_resampling):
    bundle = ts_bundle_resampling

    class SlowModel:  # the model itself is slow: 0.3 s per call, three hops
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def predict_proba(self, X):
            time.sleep(0.3)
            return self.inner.predict_proba(X)

    slow = dataclasses.replace(bundle, decoder=SlowModel(bundle.decoder))
    src = BrainFlowSource("synthetic")
    seen = []
    with src.connect(timeout=5):
        worker = DecoderWorker(src, slow, hop=0.1, smoothing=0.5)
        worker.add_callback(lambda p: seen.append((p.seq, src.buffer.counter)))
        with worker:
            wait_until(lambda: len(seen) >= 8, 20, what="8 slow predictions")
            n0, t0 = src.n_samples, time.monotonic()
            time.sleep(1.0)
            rate = (src.n_samples - n0) / (time.monotonic() - t0)
        st = worker.stats()
    assert rate == pytest.approx(250, rel=0.05)  # acquisition kept its pace
    assert src.samples_missing == 0 and src.gaps == []
    assert st["skipped"] >= 2 * (st["predictions"] - 2)  # ~2 of every 3 windows are stale
    assert st["lost_samples"] == 0 and st["errors"] == 0
    seqs = np.array([s for s, _ in seen])
    # each prediction decodes the newest boundary: consecutive windows are >= 2 hops apart
    assert np.all(np.diff(seqs[1:]) >= 2 * 25)
    # and the window is never staler than one slow inference + one hop
    assert max(c - s for s, c in seen[1:]) <= int(0.3 * 250) + 25 + 16


def test_missing_channels_without_mapping_is_a_clear_error(ts_bundle, s002_run4):
    rec = s002_run4
    renamed = dataclasses.replace(
        rec, info=dataclasses.replace(
            rec.info, ch_names=tuple(f"EEG{i:03d}" for i in range(rec.info.n_channels))))
    src = ReplaySource(renamed, speed="max")
    src.connect(timeout=5, acquisition=False)
    with pytest.raises(StreamMismatchError, match="source lacks 16: Fz, C3") as err:
        DecoderWorker(src, ts_bundle)
    assert "--map MODEL_CH=SOURCE_CH" in str(err.value)  # the fix a CLI user can apply
    # an explicit mapping makes it work, and gives the same decisions as the original names
    idx = {ch.rstrip(".").lower(): i for i, ch in enumerate(rec.info.ch_names)}
    mapping = {ch: f"EEG{idx[ch.lower()]:03d}" for ch in ts_bundle.channels}
    worker = DecoderWorker(src, ts_bundle, mapping=mapping, smoothing=None, kalman=False)
    while src.n_samples < 800:
        src.acquire()
    preds = worker.step()
    assert len(preds) == 1 + (800 - 320) // 16
    ends, probs = offline_window_predictions(rec.data[: src.n_samples], 160.0,
                                             list(rec.info.ch_names), ts_bundle)
    np.testing.assert_allclose(np.stack([p.probabilities for p in preds]), probs, atol=1e-9)


def test_rate_mismatch_without_resampling_is_a_clear_error(ts_bundle):
    src = BrainFlowSource("synthetic")
    with src.connect(timeout=5):
        with pytest.raises(StreamMismatchError, match="needs 160.0 Hz windows .* 250.0 Hz source"):
            DecoderWorker(src, ts_bundle)


def test_nonfinite_samples_make_windows_unreliable_not_confident(ts_bundle, s002_run4):
    from decoders.preprocessing import ChannelMapping

    rec = s002_run4
    data = rec.data.copy()
    bad = slice(3200, 3210)  # 20 s in
    # in channels the model reads (NaN elsewhere changes nothing it sees: test_review10)
    c0, c1 = ChannelMapping().indices(ts_bundle.channels[:2], list(rec.info.ch_names))
    data[bad, c0] = np.nan
    data[3205, c1] = np.inf
    broken = dataclasses.replace(rec, data=data)
    src, worker, preds = _replay_decode(broken, ts_bundle)
    unreliable = [p for p in preds if not p.reliable]
    assert unreliable, "windows with NaN must be flagged"
    assert all(p.label == "unreliable" and "non-finite" in p.reason for p in unreliable)
    # every window that contains a bad sample is flagged; windows well after are reliable again
    for p in preds:
        contains_bad = p.seq - 320 < 3210 and p.seq > 3200
        if contains_bad:
            assert not p.reliable
    assert preds[-1].reliable
    assert all(np.all(np.isfinite(p.probabilities)) for p in preds)
    assert worker.stats()["unreliable"] == len(unreliable)


def test_predictions_are_published_on_lsl(ts_bundle, s002_run4, stream_name):
    from acquisition.lsl_env import import_pylsl
    from acquisition.lsl_source import _continuous_resolve

    pylsl = import_pylsl()
    data = s002_run4.data.copy()
    data[500:510] = np.nan  # windows holding these are unreliable, with finite probabilities
    src = ReplaySource(dataclasses.replace(s002_run4, data=data), speed="max", chunk_samples=16)
    src.connect(timeout=5, acquisition=False)
    worker = DecoderWorker(src, ts_bundle, publish=stream_name)
    worker._open_outlets()
    found = _continuous_resolve(pylsl, f"name='{stream_name}'", 10, True)
    inlet = pylsl.StreamInlet(found[0])
    inlet.open_stream(5)
    worker._outlet.wait_for_consumers(5)
    preds = []
    for _ in range(60):
        src.acquire()
        preds.extend(worker.step())
    got, ts = [], []
    wait_until(lambda: (lambda s: (got.extend(s[0]), ts.extend(s[1]), len(got))[-1])(
        inlet.pull_chunk(timeout=0.0)) >= len(preds), 10, what="published predictions")
    worker.stop()
    src.disconnect()
    got = np.asarray(got)
    assert got.shape == (len(preds), 4)  # left, right, control, reliable
    np.testing.assert_allclose(got[:, :2], np.stack([p.probabilities for p in preds]), atol=1e-6)
    reliable = [p.reliable for p in preds]
    assert any(reliable) and not all(reliable)
    assert got[:, 3].tolist() == [1.0 if r else 0.0 for r in reliable]
    np.testing.assert_allclose(ts, [p.window_end for p in preds], atol=1e-6)
    info = inlet.info()
    assert info.type() == "Predictions" and info.nominal_srate() == 0


@pytest.mark.parametrize("n", [5, 160])
def test_running_ptp_equals_the_peak_to_peak_of_each_stretch(n):
    from decoders.online import _running_ptp

    rng = np.random.default_rng(n)
    for held in (0, 3, n - 1):
        for m in (1, 2, 7, n - 1, n, n + 1, 3 * n):
            x = rng.standard_normal((held + m, 3))
            if len(x) < n:
                continue
            first_end = max(n - 1, held)
            ref = [np.ptp(x[e - n + 1:e + 1], axis=0) for e in range(first_end, len(x))]
            np.testing.assert_allclose(_running_ptp(x, n, first_end), ref)
