"""Pseudo-online evaluation (bci-app replay), smoothing and command rules, headless live decoding."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import mne
import numpy as np
import pytest

from acquisition.files import read_file
from bci_app.commands.replay import replay_file
from bci_app.errors import ConfigError
from decoders.online import offline_window_predictions
from decoders.pseudo_online import (
    Trial,
    parse_cue_map,
    score_trials,
    trials_from_markers,
    wolpaw_itr,
)
from decoders.smoothing import DiscriminativeKalmanFilter, DwellCommander, EMASmoother
from tests.helpers.processes import ROOT


def test_wolpaw_itr_known_values():
    assert wolpaw_itr(1.0, 2, 60.0) == pytest.approx(1.0)
    assert wolpaw_itr(1.0, 4, 30.0) == pytest.approx(4.0)
    assert wolpaw_itr(0.5, 2, 4.0) == 0.0
    assert wolpaw_itr(0.4, 2, 4.0) == 0.0
    b = 1 + 0.8 * math.log2(0.8) + 0.2 * math.log2(0.2)
    assert wolpaw_itr(0.8, 2, 6.0) == pytest.approx(b * 10)


def test_score_trials_mean_and_majority():
    ends = np.arange(0, 20, 0.1)
    P = np.tile([0.4, 0.6], (len(ends), 1))  # always "right"
    P[(ends > 10.5) & (ends < 14)] = [0.9, 0.1]  # "left" during the second trial
    trials = [Trial(1.0, 1, "T2"), Trial(10.0, 0, "T1"), Trial(15.0, 0, "T1")]
    r = score_trials(ends, P, trials, window_s=2.0, trial_start=0.5, trial_end=4.0)
    assert r.correct.tolist() == [True, True, False]
    assert r.trial_accuracy == pytest.approx(2 / 3)
    assert r.chance == 0.5
    rm = score_trials(ends, P, trials, window_s=2.0, decision="majority")
    assert rm.correct.tolist() == [True, True, False]
    with pytest.raises(ConfigError, match="decision"):
        score_trials(ends, P, trials, window_s=2.0, decision="vote")


def test_replay_report_names_the_binomial_chance_threshold():
    """20 trials at chance 50 %: more than 14 correct (70 %) has P = 0.021 under guessing, 14 has
    P = 0.058, so 70 % is the threshold. With 15 of 20 trials of one class, always answering it
    gets 75 %: the threshold moves to 18/20 = 90 %."""
    onsets = np.arange(20) * 10.0
    ends = np.arange(0, 205, 0.5)
    balanced = [Trial(t, i % 2, "T1" if i % 2 == 0 else "T2") for i, t in enumerate(onsets)]
    P = np.tile([0.3, 0.7], (len(ends), 1))  # always "right"
    r = score_trials(ends, P, balanced, window_s=2.0)
    assert r.trial_accuracy == 0.5 and r.majority == 0.5
    assert r.chance_upper_95 == pytest.approx(0.70)
    lo, hi = r.ci95
    assert lo < 0.5 < hi and hi - lo > 0.3  # 20 trials: a wide interval
    text = r.text()
    assert "above 70.0% is significant on 20 trials" in text and "95 % CI" in text
    assert "majority class" not in text

    unbalanced = [Trial(t, 1 if i < 15 else 0, "T2" if i < 15 else "T1")
                  for i, t in enumerate(onsets)]
    r = score_trials(ends, P, unbalanced, window_s=2.0)
    assert r.trial_accuracy == 0.75 and r.majority == 0.75
    assert r.chance_upper_95 == pytest.approx(0.90)
    assert "majority class 75%" in r.text() and "above 90.0% is significant" in r.text()
    d = r.to_dict()
    assert d["chance_upper_95"] == pytest.approx(0.90) and d["majority"] == 0.75
    assert d["ci95"][0] < 0.75 < d["ci95"][1]
    json.dumps(d)

    none = score_trials(np.array([]), np.zeros((0, 2)), balanced, window_s=2.0)
    assert none.n_trials == 0 and none.to_dict()["chance_upper_95"] is None
    assert "significant" not in none.text()


def test_cue_map_defaults_and_errors():
    assert parse_cue_map(None, ["left", "right"])["T1"] == "left"
    assert parse_cue_map(["769=left", "770=right"], ["left", "right"]) == {"769": "left",
                                                                            "770": "right"}
    with pytest.raises(ConfigError, match="MARKER=CLASS"):
        parse_cue_map(["T1"], ["left", "right"])
    with pytest.raises(ConfigError, match="does not know"):
        trials_from_markers([], {"T1": "feet"}, ["left", "right"])


def test_ema_follows_time_constant():
    ema = EMASmoother(1.0)
    ema.update(np.array([1.0, 0.0]), 0.0)
    v = ema.update(np.array([0.0, 1.0]), 1.0)
    assert v[1] == pytest.approx(1 - math.exp(-1))


def test_dkf_confident_windows_move_uncertain_ones_do_not():
    dkf = DiscriminativeKalmanFilter(a=0.95, gamma=0.1)
    for _ in range(30):
        x = dkf.update_from_proba(np.array([0.1, 0.9]))
    assert x > 0.6
    for _ in range(200):
        y = dkf.update_from_proba(np.array([0.5, 0.5]))
    assert abs(y) < 0.05  # uninformative windows let the state relax to 0
    dkf.reset()
    assert dkf.update_from_proba(np.array([0.45, 0.55])) == 0.0  # no sharper than the prior
    dkf.reset()
    a = dkf.update_from_proba(np.array([0.2, 0.8]))
    dkf.reset()
    b = dkf.update_from_proba(np.array([0.05, 0.95]))
    assert 0 < a < b
    with pytest.raises(ConfigError, match="2-class"):
        dkf.update_from_proba(np.array([0.2, 0.3, 0.5]))


def test_dwell_commander_threshold_dwell_refractory():
    cmd = DwellCommander(["left", "right"], threshold=0.7, dwell=0.5, refractory=1.0)
    got = []
    for i in range(40):  # 4 s of "right" at 0.8
        c = cmd.update(np.array([0.2, 0.8]), i * 0.1)
        if c:
            got.append((round(c.t, 2), c.label))
    # first after 0.5 s dwell, then refractory 1 s + dwell 0.5 s again
    assert got == [(0.5, "right"), (2.0, "right"), (3.5, "right")]
    assert cmd.update(np.array([0.35, 0.65]), 10.0) is None
    with pytest.raises(ConfigError, match="threshold"):
        DwellCommander(["a", "b"], threshold=0.4)


@pytest.mark.parametrize(("subject", "run"), [(5, 8), (6, 12)])
def test_replay_report_equals_offline_evaluation_on_the_same_trials(ts_bundle, eegmmidb_path,
                                                                     subject, run):
    path = mne.datasets.eegbci.load_data(subject, [run], path=str(eegmmidb_path),
                                         update_path=False)[0]
    cue_map = parse_cue_map(None, ts_bundle.classes)
    src, worker, preds, _ = replay_file(path, ts_bundle, speed="max")
    online = score_trials(
        np.array([p.window_end for p in preds]), np.stack([p.probabilities for p in preds]),
        trials_from_markers(src.markers.all(), cue_map, ts_bundle.classes),
        window_s=ts_bundle.window_s)
    rec = read_file(path)
    ends, probs = offline_window_predictions(rec.data, rec.info.sfreq, list(rec.info.ch_names),
                                             ts_bundle)
    offline = score_trials(rec.times[ends - 1], probs,
                           trials_from_markers(rec.markers, cue_map, ts_bundle.classes),
                           window_s=ts_bundle.window_s)
    assert online.n_trials == offline.n_trials == 15
    np.testing.assert_array_equal(online.correct, offline.correct)
    assert online.trial_accuracy == offline.trial_accuracy
    np.testing.assert_allclose(online.accuracy_over_time, offline.accuracy_over_time)


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "bci_app.cli", *args], cwd=ROOT,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=timeout)


def test_replay_cli_json(ts_bundle, eegmmidb_path):
    path = mne.datasets.eegbci.load_data(7, [4], path=str(eegmmidb_path), update_path=False)[0]
    r = _cli("replay", path, "--model", str(ts_bundle.path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n_trials"] == 15 and out["chance"] == 0.5
    assert 0.0 <= out["trial_accuracy"] <= 1.0
    assert out["chance_upper_95"] > 0.6 and out["ci95"][0] <= out["trial_accuracy"] <= out["ci95"][1]
    assert out["signal_seconds"] == pytest.approx(125.0, abs=1.0)
    assert out["realtime_factor"] > 5
    assert out["skipped_windows"] == 0
    assert set(out["accuracy_over_time"]) >= {"0.00", "2.00", "4.00"}
    assert "warning" not in out  # S007 is not among this bundle's training subjects


def test_replay_says_when_the_file_is_the_bundles_training_data(eegmmidb_path):
    """The shipped bundles saw S001-S020: replaying one of their files must say the accuracy is
    on training data; a bundle trained on other subjects gives no such note."""
    from bci_app.commands.replay import training_overlap
    from decoders.bundle import load_bundle

    path = mne.datasets.eegbci.load_data(7, [4], path=str(eegmmidb_path), update_path=False)[0]
    r = _cli("replay", path, "--model", "decoders/pretrained/mi_left_right_csp_lda_ea")
    assert r.returncode == 0, r.stderr
    note = r.stdout.splitlines()[0]
    assert note.startswith("note: S007R04.edf is EEGMMIDB subject 7") and "optimistic" in note
    bundle = load_bundle(ROOT / "decoders/pretrained/mi_left_right_csp_lda_ea")
    bundle.config["training"]["subjects"] = [1, 2]
    assert training_overlap(path, bundle) is None
    assert training_overlap(str(path).replace("S007R04", "S001R04"), bundle) is not None


def test_replay_cli_file_without_cues_says_so(ts_bundle, data_dir):
    path = data_dir / "eegmmidb/MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R01.edf"
    r = _cli("replay", str(path), "--model", str(ts_bundle.path))
    assert r.returncode == 0, r.stderr
    assert "no cue markers matching" in r.stdout


def test_live_headless_with_model_prints_predictions_and_records_them(ts_bundle_resampling,
                                                                      tmp_path):
    import pyxdf

    out = tmp_path / "live.xdf"
    r = _cli("live", "--headless", "--duration", "4", "--model", str(ts_bundle_resampling.path),
             "--record", str(out), "--print-predictions")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("t=")]
    assert len(lines) >= 10  # hop 0.1 s, first window after 2 s
    for ln in lines:
        lat = float(re.search(r"latency=([\d.]+) ms", ln).group(1))
        assert 0 <= lat < 1000
    status = [ln for ln in r.stdout.splitlines() if ln.startswith("[")]
    assert any("latency p50" in ln for ln in status)
    streams, _ = pyxdf.load_xdf(str(out))
    by_type = {s["info"]["type"][0]: s for s in streams}
    assert "Predictions" in by_type and "EEG" in by_type
    n_rec = len(by_type["Predictions"]["time_stamps"])
    assert n_rec == len(lines)
