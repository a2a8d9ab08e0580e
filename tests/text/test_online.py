"""The text bundle in the DecoderWorker: sliding windows of a replayed EEGMMIDB recording."""

from __future__ import annotations

import mne
import numpy as np

from acquisition.files import read_file
from acquisition.replay import ReplaySource
from decoders.online import DecoderWorker, offline_window_predictions
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
    assert len(preds) >= 20 and worker.errors == 0 and worker.skipped == 0
    assert worker.classes == tuple(tb.classes)
    # the offline reference: the whole file filtered causally by the same code, the windows
    # ending at every hop boundary (one per prediction, in order)
    ch = list(rec.info.ch_names)
    ends, probs = offline_window_predictions(rec.data, rec.info.sfreq, ch, tb, hop=1.0)
    filtered = tb.streaming_filter(rec.info.sfreq, ch).process(np.asarray(rec.data, float))
    assert len(ends) >= len(preds)
    n = tb.n_times
    reliable = 0
    for p, end, prob in zip(preds, ends, probs):
        window = filtered[end - n:end].T.astype(np.float32)
        np.testing.assert_allclose(p.probabilities, prob, atol=1e-5)
        if not p.reliable:
            assert p.text is None
            continue
        reliable += 1
        np.testing.assert_allclose(p.probabilities, tb.predict_proba(window), atol=1e-5)
        assert p.label == tb.classes[int(np.argmax(tb.predict_proba(window)))]
        (text, conf), = tb.decode_text(window)
        assert p.text == text
        assert abs(p.text_confidence - conf) < 1e-5
        # the comparison can tell windows apart: the window one hop later decodes otherwise
        later = filtered[end - n + 80:end + 80].T.astype(np.float32)
        assert abs(tb.decode_text(later)[0][1] - conf) > 1e-5 or \
            np.abs(tb.predict_proba(later) - p.probabilities).max() > 1e-4
    assert reliable >= 15
