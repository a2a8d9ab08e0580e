"""The text bundle in the DecoderWorker: sliding windows of a replayed EEGMMIDB recording."""

from __future__ import annotations

import mne
import numpy as np

from acquisition.files import read_file
from acquisition.replay import ReplaySource
from decoders.online import DecoderWorker
from decoders.text.bundle import load_text_bundle, save_text_bundle


def test_worker_runs_text_bundle_on_replay(fitted, tmp_path, eegmmidb_path):
    ds, dec = fitted
    tb = load_text_bundle(save_text_bundle(dec, tmp_path / "tb", {
        "channels": ds.ch_names, "preprocessing": ds.preprocessing}))
    path = mne.datasets.eegbci.load_data(2, [4], path=str(eegmmidb_path), update_path=False)[0]
    rec = read_file(path)  # 160 Hz, 64 channels: the bundle picks 16 and resamples to 80 Hz
    src = ReplaySource(rec, speed="max", chunk_samples=32)
    src.connect(timeout=5, acquisition=False)
    worker = DecoderWorker(src, tb, hop=1.0, smoothing=0.5, kalman=False)
    preds = []
    try:
        while not src.finished and len(preds) < 20:
            src.acquire()
            preds.extend(worker.step(catch_up=True))
    finally:
        src.disconnect()
    assert len(preds) >= 20 and worker.errors == 0
    reliable = [p for p in preds if p.reliable]
    assert reliable
    for p in reliable:
        assert p.probabilities.shape == (len(tb.classes),)
        assert abs(p.probabilities.sum() - 1) < 1e-5
        assert p.label in tb.classes
        assert isinstance(p.text, str)
    # the worker's windows are what the bundle sees offline: same text for the same window
    assert worker.classes == tuple(tb.classes)
    assert np.isfinite(np.stack([p.probabilities for p in preds])).all()
