"""Pseudo-online replay of every EEGMMIDB imagery run with the pretrained cross-subject bundle
equals the offline evaluation of the same model on the same trials (slow: 60 runs)."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest

from acquisition.files import read_file
from bci_app.commands.replay import replay_file
from decoders.bundle import load_bundle
from decoders.online import offline_window_predictions
from decoders.pseudo_online import parse_cue_map, score_trials, trials_from_markers

PRETRAINED = Path(__file__).resolve().parents[2] / "decoders/pretrained/mi_left_right_eegnet_ea"


def compare_run(path, bundle_path=PRETRAINED):
    """(online report, offline report) for one run; the bundle is loaded fresh (alignment on
    this run's first 10 s, unsupervised, as in live use)."""
    bundle = load_bundle(bundle_path)
    cue_map = parse_cue_map(None, bundle.classes)
    src, worker, preds, wall = replay_file(str(path), bundle, speed="max")
    online = score_trials(
        np.array([p.window_end for p in preds]), np.stack([p.probabilities for p in preds]),
        trials_from_markers(src.markers.all(), cue_map, bundle.classes), window_s=bundle.window_s)
    rec = read_file(path)
    ends, probs = offline_window_predictions(rec.data, rec.info.sfreq, list(rec.info.ch_names),
                                             bundle)
    # output sample e (80 Hz) ends at input sample 2e (160 Hz)
    ratio = rec.info.sfreq / bundle.sfreq
    t_end = rec.times[np.round(ends * ratio).astype(int) - 1]
    offline = score_trials(t_end, probs, trials_from_markers(rec.markers, cue_map, bundle.classes),
                           window_s=bundle.window_s)
    return online, offline, preds, probs, wall, src


def test_one_run_with_alignment_matches_offline(eegmmidb_path):
    path = mne.datasets.eegbci.load_data(9, [8], path=str(eegmmidb_path), update_path=False)[0]
    online, offline, preds, probs, _, _ = compare_run(path)
    assert len(preds) == len(probs)
    np.testing.assert_allclose(np.stack([p.probabilities for p in preds]), probs, atol=1e-4)
    np.testing.assert_array_equal(online.correct, offline.correct)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_all_twenty_subjects_replay_equals_offline(eegmmidb_path):
    total_on, total_off = [], []
    for subject in range(1, 21):
        for run in (4, 8, 12):
            path = mne.datasets.eegbci.load_data(subject, [run], path=str(eegmmidb_path),
                                                 update_path=False)[0]
            online, offline, *_ = compare_run(path)
            np.testing.assert_array_equal(online.correct, offline.correct,
                                          err_msg=f"S{subject:03d}R{run:02d}")
            total_on.extend(online.correct)
            total_off.extend(offline.correct)
    assert len(total_on) == len(total_off) > 700
    assert np.mean(total_on) == np.mean(total_off)
