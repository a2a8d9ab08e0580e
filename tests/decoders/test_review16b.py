"""Review 16b of the motor-imagery decoder layer, on real EEGMMIDB files: the pooled
significance threshold of an evaluation follows the class balance of its test trials, and a
damaged or truncated EDF file (or a window that fits no cue) is a clear error naming the file
and the fix, never a numpy traceback or a silently smaller data set. Each test fails on the
code before its fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from bci_app.cli import main
from bci_app.errors import DataFileError
from decoders.data import load_eegmmidb
from decoders.preprocessing import Preprocessor

RUNS = "MNE-eegbci-data/files/eegmmidb/1.0.0/S001"


def test_pooled_chance_threshold_follows_the_majority_class_of_the_test_trials(mi_small):
    """Calibration with K=15 leaves S001 and S002 (23 left / 22 right each) 8 left and 7
    right test trials: always answering 'left' scores 53 %, so the pooled threshold is the
    binomial around 16/30 (66.7 %), not around 50 % (was 63.3 %)."""
    import dataclasses

    from decoders.estimators import make_decoder
    from decoders.evaluation import evaluate_calibration

    pick = [mi_small.ch_names.index(c) for c in ("C3", "Cz", "C4", "FC3", "FC4", "CP3", "CP4")]
    data = dataclasses.replace(mi_small, X=mi_small.X[:, pick],
                               ch_names=[mi_small.ch_names[i] for i in pick])

    def factory():
        return make_decoder("csp_lda", len(pick), 2, data.sfreq, data.window_s)

    r = evaluate_calibration(data, factory, [1, 2], [1, 2], calib_trials=(15,))[15]
    n = len(r.y_true)
    assert n == 30 and r.majority == pytest.approx(16 / 30)
    assert r.chance_upper_95() == pytest.approx(binom.ppf(0.95, n, 16 / 30) / n)
    d = r.to_dict()
    assert d["chance_level"] == 0.5 and d["majority_share"] == pytest.approx(0.5333)
    assert d["chance_upper_95_pooled"] == pytest.approx(0.6667)


@pytest.fixture
def s1_copy(eegmmidb_path, tmp_path) -> Path:
    """A copy of S001's imagery runs in MNE's eegbci layout (the folder for --data-dir)."""
    dest = tmp_path / "eegmmidb"
    (dest / RUNS).mkdir(parents=True)
    for run in (4, 8, 12):
        name = f"S001R{run:02d}.edf"
        shutil.copyfile(eegmmidb_path / RUNS / name, dest / RUNS / name)
    return dest


def _load(path, **kw):
    return load_eegmmidb([1], path, Preprocessor(channels=["C3", "Cz", "C4"]), runs=(4, 8),
                         **kw)


def test_a_truncated_edf_is_named_not_silently_loaded_with_fewer_trials(s1_copy):
    f = s1_copy / RUNS / "S001R08.edf"
    full = len(_load(s1_copy))
    f.write_bytes(f.read_bytes()[:int(0.6 * f.stat().st_size)])  # e.g. an interrupted copy
    with pytest.raises(DataFileError, match=r"S001R08\.edf is truncated .*74 of the 125 data "
                                            r"records.*Fix: delete .*--download"):
        _load(s1_copy)  # was: 25 of the 30 trials, without a word
    assert full == 30


def test_a_truncated_edf_without_a_whole_trial_is_named_not_a_numpy_error(s1_copy, capsys):
    f = s1_copy / RUNS / "S001R08.edf"
    f.write_bytes(f.read_bytes()[:100_000])
    rc = main(["evaluate", "--data-dir", str(s1_copy), "--subjects", "1", "--model", "csp_lda",
               "--channels", "C3,Cz,C4", "--no-report"])
    err = capsys.readouterr().err
    assert rc != 0 and "S001R08.edf is truncated" in err and "--download" in err
    assert "Traceback" not in err


def test_an_unreadable_edf_is_named_with_the_fix(s1_copy):
    (s1_copy / RUNS / "S001R04.edf").write_bytes(b"")
    with pytest.raises(DataFileError, match=r"S001R04\.edf is not a readable EDF file "
                                            r"\(ValueError: Bad EDF.*Fix: delete"):
        _load(s1_copy)  # was: a bare "ValueError: Bad EDF file provided."


def test_a_window_that_fits_no_cue_is_named(s1_copy):
    with pytest.raises(DataFileError, match=r"subject 1 run 4: none of its 15 T1/T2 cues has "
                                            r"the window \[0.5, 130\) s inside the recording"):
        _load(s1_copy, tmax=130.0)  # was: X of shape (0,), failing later in scikit-learn


def test_epochs_from_a_run_without_trials_keep_their_shape(eegmmidb_path):
    from decoders.data import epochs_from_raw, load_raws

    raw = load_raws(1, eegmmidb_path, runs=[4])[0].pick(["C3", "Cz", "C4"])
    X, y, on = epochs_from_raw(raw, 0.5, 130.0)
    assert X.shape == (0, 3, int(round(129.5 * raw.info["sfreq"]))) and y.shape == (0,)
    assert on.shape == (0,) and np.asarray(on).dtype == float


def test_files_at_another_rate_are_named_not_a_numpy_error(s1_copy):
    """EEGMMIDB's S088, S092 and S100 are recorded at 128 Hz. Without resampling (``--sfreq
    0``) their windows have another length and stacking them failed in numpy; only the channel
    names were compared."""
    import mne

    f = s1_copy / RUNS / "S001R08.edf"
    raw = mne.io.read_raw_edf(f, preload=True, verbose="error").resample(128.0, verbose="error")
    mne.export.export_raw(f, raw, fmt="edf", overwrite=True, verbose="error")
    with pytest.raises(DataFileError, match=r"subject 1 run 8: 128 Hz after preprocessing, the "
                                            r"first file 160 Hz.*Fix: resample.*--sfreq"):
        _load(s1_copy)
    both = load_eegmmidb([1], s1_copy, Preprocessor(channels=["C3", "Cz", "C4"], sfreq=80.0),
                         runs=(4, 8))  # resampled to one rate, they load
    assert both.X.shape == (30, 3, 160) and both.sfreq == 80.0


def test_merged_calibration_runs_take_the_threshold_around_their_pooled_majority(tmp_path):
    """bench/merge_targets.py recomputed the pooled bound around chance only; it now sums the
    runs' test-class counts and applies the rule ``evaluate --json`` applies (55 / 45 of 100
    trials: 63 %, not 58 %), and keeps chance for JSON written before the counts existed."""
    import json
    import subprocess
    import sys

    from tests.helpers.processes import ROOT

    def run(name, targets, counts):
        res = {"model": "ts_lr", "settings": {"calib_trials": 20, "target_subjects": targets},
               "per_subject_accuracy": {str(t): 0.6 for t in targets},
               "n_test_trials": sum(counts), "chance_level": 0.5, "test_class_counts": counts}
        path = tmp_path / name
        path.write_text(json.dumps({"date": "d", "machine": "m", "command": "c",
                                    "results": [res]}))
        return str(path)

    def merged(*inputs):
        out = tmp_path / "merged.json"
        subprocess.run([sys.executable, str(ROOT / "bench" / "merge_targets.py"), str(out),
                        *inputs], check=True, capture_output=True)
        return json.loads(out.read_text())["results"][0]

    m = merged(run("a.json", [1, 2], [30, 20]), run("b.json", [3], [25, 25]))
    assert m["test_class_counts"] == [55, 45] and m["majority_share"] == 0.55
    assert m["chance_upper_95_pooled"] == pytest.approx(0.63)
    old = json.loads(Path(tmp_path / "b.json").read_text())
    del old["results"][0]["test_class_counts"]
    Path(tmp_path / "b.json").write_text(json.dumps(old))
    m = merged(run("a.json", [1, 2], [30, 20]), str(tmp_path / "b.json"))
    assert m["test_class_counts"] is None and m["chance_upper_95_pooled"] == pytest.approx(0.58)
