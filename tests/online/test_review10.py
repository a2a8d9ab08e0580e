"""Review of the online decoding path (timing, labels, bundle checks), each test failing on the
code before its fix: real EEGMMIDB recordings, the shipped pretrained bundles, ReplaySource."""

from __future__ import annotations

import dataclasses
import json
import shutil

import mne
import numpy as np
import pytest

from acquisition.replay import ReplaySource
from bci_app.errors import BundleError
from decoders.bundle import load_bundle
from decoders.online import DecoderWorker, offline_window_predictions

from .conftest import CSP_EA, PRETRAINED
from .conftest import cut as _cut


def _replay(rec, bundle, *, chunk=16, acquires_per_step=1, hop=0.1):
    src = ReplaySource(rec, speed="max", chunk_samples=chunk, buffer_seconds=300)
    src.connect(timeout=5, acquisition=False)
    worker = DecoderWorker(src, bundle, hop=hop, smoothing=None, kalman=False)
    preds = []
    while not src.finished:
        for _ in range(acquires_per_step):
            src.acquire()
        preds.extend(worker.step(catch_up=True))
    t0 = float(src.buffer.since(0).timestamps[0])
    src.disconnect()
    return src, worker, preds, t0


@pytest.mark.parametrize("sfreq", [250.0, 125.0])
def test_resampled_prediction_carries_its_window_last_sample_time_and_seq(
        s003_run4, csp_ea, sfreq):
    """A 250 / 125 Hz source into the 80 Hz pretrained bundle: each prediction is stamped with
    the time of its window's last (resampled) sample and ``seq`` is one past the last input
    sample that window depends on, whatever the source's chunk size. (The old code spread the
    outputs back from the chunk's last input time: up to 8.5 ms late and seq up to 3 samples
    past the window, changing with the chunking.)"""
    rec = _cut(s003_run4, 8000)
    frac = (mne.filter.resample(rec.data.T, up=sfreq / 160.0, axis=-1).T)
    info = dataclasses.replace(rec.info, sfreq=sfreq)
    src_rec = dataclasses.replace(rec, data=frac, times=np.arange(len(frac)) / sfreq, info=info)
    ends, probs = offline_window_predictions(frac, sfreq, list(info.ch_names), csp_ea, hop=0.1)
    assert len(ends) > 150
    step = sfreq / 80.0  # input samples per output sample
    for chunk in (5, 16, 37):
        _, _, preds, t0 = _replay(src_rec, csp_ea, chunk=chunk)
        assert len(preds) == len(ends)
        np.testing.assert_allclose([p.window_end - t0 for p in preds], (ends - 1) / 80.0,
                                   rtol=0, atol=1e-6, err_msg=f"chunk {chunk}")
        np.testing.assert_array_equal([p.seq for p in preds],
                                      np.floor((ends - 1) * step + 1e-9).astype(int) + 1)
        np.testing.assert_allclose(np.stack([p.probabilities for p in preds]), probs, atol=1e-9)


def test_gap_inside_what_a_lagging_worker_reads_marks_the_windows_that_span_it(
        s003_run4, ts_bundle):
    """A worker that fell behind reads several source chunks at once; a gap in the middle of
    them must mark the windows holding it, not windows counted from the read's first sample
    (the old code left up to a read's worth of windows across the gap reliable)."""
    rec = _cut(s003_run4, 8000)
    times = rec.times.copy()
    gap_row = 4040  # first sample after a 1 s hole: mid-read (reads start at 3968, 4096)
    times[gap_row:] += 1.0
    holed = dataclasses.replace(rec, times=times)
    src, _, preds, _ = _replay(holed, ts_bundle, chunk=16, acquires_per_step=8)
    assert len(src.gaps) == 1 and src.gaps[0].samples_missing == 160
    n = ts_bundle.n_times  # 160 Hz bundle: output samples are input samples
    spanning = [p for p in preds if p.seq - n < gap_row < p.seq]
    assert len(spanning) == n // 16
    assert [p.seq for p in spanning if p.reliable] == []
    assert all("gap" in p.reason for p in spanning)
    # the windows after it (entirely after the hole) are reliable again
    assert all(p.reliable for p in preds if p.seq - n >= gap_row + n)


def _tampered(tmp_path, bundle_dir, edit):
    out = tmp_path / "bundle"
    shutil.copytree(bundle_dir, out)
    config = json.loads((out / "config.json").read_text())
    edit(config)
    (out / "config.json").write_text(json.dumps(config))
    return out


def _rate_and_window(c):  # same samples per window (160), other rate: only the shape fits
    c["sfreq"], c["window_s"], c["preprocessing"]["sfreq"] = 160.0, 1.0, 160.0


def _three_classes(c):
    c["classes"] = ["left", "right", "feet"]


@pytest.mark.parametrize("bundle_name", ["mi_left_right_csp_lda_ea", "mi_left_right_eegnet_ea"])
@pytest.mark.parametrize("edit, match", [
    (_rate_and_window, r"'sfreq' gives 160 Hz but the model was built for 80; 'window_s' gives "
                       r"1 s but the model was built for 2"),
    (_three_classes, r"'classes' gives 3 names but the model was built for 2"),
])
def test_bundle_config_that_does_not_fit_its_model_is_refused_by_name(
        tmp_path, bundle_name, edit, match):
    """A config edited to another rate + window of the same sample count loaded and fed 160 Hz
    windows to a model trained on 80 Hz ones; class names for 3 outputs were reported as
    'weights are damaged'. Both now name the key, the model's value and the fix."""
    path = _tampered(tmp_path, PRETRAINED / bundle_name, edit)
    with pytest.raises(BundleError, match=match) as err:
        load_bundle(path)
    assert "Fix:" in str(err.value) and "damaged" not in str(err.value)
    load_bundle(PRETRAINED / bundle_name)  # the untouched bundle still loads


@pytest.mark.parametrize("hop", [0.15, 0.3])
def test_offline_reference_predicts_the_windows_the_worker_predicts_for_any_hop(
        s003_run4, csp_ea, hop):
    """With a hop whose 0.5 s alignment grid does not divide the 10 s alignment span, the
    worker fits the alignment at the last grid window and predicts from the next boundary; the
    offline reference skipped a further window or two, so the two disagreed on the same file."""
    rec = _cut(s003_run4, 8000)
    _, _, preds, _ = _replay(rec, csp_ea, hop=hop)
    ends, probs = offline_window_predictions(rec.data, 160.0, list(rec.info.ch_names), csp_ea,
                                             hop=hop)
    np.testing.assert_array_equal([p.seq for p in preds], 2 * (ends - 1) + 1)
    np.testing.assert_allclose(np.stack([p.probabilities for p in preds]), probs, atol=1e-9)


def test_nan_in_a_channel_the_model_does_not_read_changes_nothing(s003_run4, csp_ea):
    """NaN in a channel the bundle does not use (here Iz, or an aux column of a device) never
    reaches the model; the old code marked every window unreliable, so the EA bundle never
    fitted its alignment and gave no prediction at all."""
    rec = _cut(s003_run4, 6400)
    iz = list(rec.info.ch_names).index("Iz..")
    assert "Iz" not in csp_ea.channels
    data = rec.data.copy()
    data[:, iz] = np.nan
    _, _, clean, _ = _replay(rec, csp_ea)
    _, worker, preds, _ = _replay(dataclasses.replace(rec, data=data), csp_ea)
    assert len(preds) == len(clean) > 100
    assert all(p.reliable for p in preds) and worker.unreliable == 0
    np.testing.assert_allclose(np.stack([p.probabilities for p in preds]),
                               np.stack([p.probabilities for p in clean]), atol=1e-12)




@pytest.mark.parametrize("key", ["sfreq", "classes"])
def test_a_bundle_config_missing_a_key_says_which_is_missing(tmp_path, key):
    """It said "damaged or inconsistent (KeyError: 'sfreq')": now that the key is missing."""
    src = CSP_EA
    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    del cfg[key]
    (dst / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match=f"config.json lacks the key '{key}'"):
        load_bundle(dst)
