"""Evaluation protocols: no test trial reaches fitting; shuffled labels give chance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from decoders.data import EpochsData
from decoders.estimators import Decoder, DeepDecoder, make_decoder, stratified_split
from decoders.evaluation import (
    calibration_trials,
    evaluate_calibration,
    evaluate_loso,
    evaluate_within,
    write_report,
)


def _synthetic(n_subjects=3, n_per_class=10, n_chans=4, n_times=32, seed=0) -> EpochsData:
    """Trials whose channel 0 holds the global trial id (readable after any fit/split)."""
    rng = np.random.default_rng(seed)
    n = n_subjects * 2 * n_per_class
    X = rng.standard_normal((n, n_chans, n_times)).astype(np.float32)
    X[:, 0, :] = np.arange(n)[:, None]
    y = np.tile(np.repeat([0, 1], n_per_class), n_subjects)
    subj = np.repeat(np.arange(1, n_subjects + 1), 2 * n_per_class)
    order = np.concatenate([rng.permutation(2 * n_per_class) for _ in range(n_subjects)])
    return EpochsData(X, y, subj, np.full(n, 4), order * 4.0, order, [f"c{i}" for i in
                      range(n_chans)], 16.0, 0.0, 2.0)


class SpyDecoder(Decoder):
    """Records the ids of every trial given to fit / partial_fit (training and validation)."""

    kind = "spy"
    log: list[tuple[str, set[int]]] = []

    def __init__(self):
        super().__init__(4, 2, 16.0, 2.0)

    def fit(self, X, y, X_val=None, y_val=None):
        ids = set(np.asarray(X)[:, 0, 0].astype(int).tolist())
        if X_val is not None:
            ids |= set(np.asarray(X_val)[:, 0, 0].astype(int).tolist())
        SpyDecoder.log.append(("fit", ids))
        self.fitted_ = True
        return self

    def partial_fit(self, X, y):
        SpyDecoder.log.append(("partial_fit", set(np.asarray(X)[:, 0, 0].astype(int).tolist())))
        return self

    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)


@pytest.fixture
def spy():
    SpyDecoder.log = []
    return SpyDecoder


def _all_fit_ids():
    out = set()
    for _, ids in SpyDecoder.log:
        out |= ids
    return out


def test_within_never_fits_on_test_fold(spy):
    data = _synthetic()
    res = evaluate_within(data, spy, n_folds=5, align=False)
    assert len(res.folds) == 15 and len(SpyDecoder.log) == 15
    for fold, (_, ids) in zip(res.folds, SpyDecoder.log):
        assert ids == set(fold.fit_idx.tolist())
        assert not ids & set(fold.test_idx.tolist())
        assert set(data.subject[list(ids)]) == {fold.subject}
    tested = np.concatenate([f.test_idx for f in res.folds])
    assert sorted(tested.tolist()) == list(range(len(data)))  # every trial tested once


def test_within_pretraining_keeps_the_folds_and_never_sees_the_test_fold(spy):
    data = _synthetic()
    plain = evaluate_within(data, spy, n_folds=5, seed=3, align=False)
    SpyDecoder.log = []
    res = evaluate_within(data, spy, n_folds=5, seed=3, align=False,
                          pretrain_subjects=[1, 2, 3])
    for a, b in zip(plain.folds, res.folds):  # the within protocol's test folds, unchanged
        np.testing.assert_array_equal(a.test_idx, b.test_idx)
    kinds = [kind for kind, _ in SpyDecoder.log]
    assert kinds == (["fit"] + ["partial_fit"] * 5) * 3  # one pretraining per target
    for i, t in enumerate([1, 2, 3]):
        (_, pre), *tunes = SpyDecoder.log[6 * i:6 * i + 6]
        assert set(data.subject[list(pre)]) == {1, 2, 3} - {t}  # the target is left out
        for fold, (_, ids) in zip(res.folds[5 * i:5 * i + 5], tunes):
            assert fold.subject == t and set(data.subject[list(ids)]) == {t}
            assert not ids & set(fold.test_idx.tolist())
            assert set(fold.fit_idx.tolist()) == pre | ids  # the record names both
    assert res.settings["pretrain_subjects"] == [1, 2, 3]


def test_within_pretraining_needs_another_subject(spy):
    from bci_app.errors import ConfigError

    with pytest.raises(ConfigError, match="no subject left"):
        evaluate_within(_synthetic(n_subjects=1), spy, pretrain_subjects=[1])


def test_loso_never_fits_on_held_out_subject(spy):
    data = _synthetic()
    res = evaluate_loso(data, spy, align=False)
    for fold, (_, ids) in zip(res.folds, SpyDecoder.log):
        assert fold.subject not in set(data.subject[list(ids)])
        assert not ids & set(fold.test_idx.tolist())


def test_calibration_uses_only_first_k_trials_per_class(spy):
    data = _synthetic()
    res = evaluate_calibration(data, spy, pretrain_subjects=[1, 2, 3], target_subjects=[1, 2],
                               calib_trials=[0, 3], align=False)
    for k in (0, 3):
        for fold in res[k].folds:
            calib, test = calibration_trials(data, fold.subject, k)
            assert len(calib) == 2 * k and not set(calib) & set(test)
            np.testing.assert_array_equal(fold.test_idx, test)
            # chronological: the calibration trials of each class come first in time
            for c in (0, 1):
                oc = data.order[calib[data.y[calib] == c]]
                rest = data.order[test[data.y[test] == c]]
                assert k == 0 or oc.max() < rest.min()
    pretrain_fits = [ids for kind, ids in SpyDecoder.log if kind == "fit"]
    assert len(pretrain_fits) == 2
    for t, ids in zip([1, 2], pretrain_fits):
        assert t not in set(data.subject[list(ids)])
    tune = [ids for kind, ids in SpyDecoder.log if kind == "partial_fit"]
    assert [len(ids) for ids in tune] == [6, 6]


def test_deep_decoder_statistics_come_from_training_part_only():
    data = _synthetic(n_subjects=1, n_per_class=12, n_chans=4, n_times=32)
    X, y = data.X, data.y
    dec = DeepDecoder("eegnet", 4, 2, 16.0, 2.0, max_epochs=1, val_fraction=0.25,
                      model_params=dict(kernel_s=0.25, pool1=2, pool2=2))
    dec.fit(X, y)
    tr, va = stratified_split(y, 0.25, seed=0)
    assert not set(tr) & set(va)
    assert dec.scale_ == pytest.approx(1.0 / np.std(X[tr]))
    assert dec.n_train_ == len(tr)


def test_shuffled_labels_give_chance_and_true_labels_do_not(mi_small):
    factory = lambda: make_decoder("csp_lda", 64, 2, mi_small.sfreq, mi_small.window_s)  # noqa
    true = evaluate_within(mi_small, factory, n_folds=5, seed=0)
    rng = np.random.default_rng(123)
    shuffled = mi_small.subset(np.arange(len(mi_small)))
    for s in shuffled.subjects:  # permute labels within each subject
        m = np.flatnonzero(shuffled.subject == s)
        shuffled.y[m] = rng.permutation(shuffled.y[m])
    null = evaluate_within(shuffled, factory, n_folds=5, seed=0)
    pooled_null = float(np.mean(null.proba.argmax(1) == null.y_true))
    assert abs(pooled_null - 0.5) < 0.12, pooled_null
    assert true.mean > 0.65 and true.mean > pooled_null + 0.1


def test_report_files(spy, tmp_path):
    data = _synthetic()
    res = evaluate_loso(data, spy, align=False, model="spy")
    write_report([res], tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "report.md" in names
    assert any(n.endswith("_confusion.png") for n in names)
    assert any(n.endswith("_calibration.png") for n in names)
    d = res.to_dict()
    assert d["chance_level"] == 0.5 and set(d["per_subject_accuracy"]) == {"1", "2", "3"}


def test_cli_train_then_evaluate_bundle(tmp_path, capsys, eegmmidb_path):
    from bci_app.cli import main

    common = ["--data-dir", str(eegmmidb_path), "--sfreq", "40", "--tmin", "0.5", "--tmax",
              "2.1"]
    assert main(["train", *common, "--subjects", "1-2", "--model", "eegnet", "--epochs", "2",
                 "--out", str(tmp_path / "b"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["subjects"] == [1, 2]
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["training"]["subjects"] == [1, 2] and cfg["alignment"] == "euclidean"
    assert cfg["sfreq"] == 40.0 and len(cfg["channels"]) == 64
    assert main(["evaluate", "--data-dir", str(eegmmidb_path), "--bundle", str(tmp_path / "b"),
                 "--protocol", "calibration", "--subjects", "3", "--calib-trials", "0,5",
                 "--json", "--report-dir", str(tmp_path / "rep")]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["settings"]["calib_trials"] for r in res["results"]] == [0, 5]
    assert all(r["chance_level"] == 0.5 for r in res["results"])
    # a target the bundle was trained on is refused
    assert main(["evaluate", "--data-dir", str(eegmmidb_path), "--bundle", str(tmp_path / "b"),
                 "--protocol", "calibration", "--subjects", "2", "--no-report"]) == 2
    assert "would leak" in capsys.readouterr().err


def test_cli_loso_json(tmp_path, capsys, eegmmidb_path):
    from bci_app.cli import main

    assert main(["evaluate", "--data-dir", str(eegmmidb_path), "--subjects", "1-2", "--model",
                 "ts_lr", "--protocol", "loso", "--sfreq", "40", "--json", "--report-dir",
                 str(tmp_path)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"][0]
    assert set(res["per_subject_accuracy"]) == {"1", "2"} and res["protocol"] == "loso"


def _with_span(data: EpochsData, extra: int = 16) -> EpochsData:
    """``data`` with a longer span per trial whose channel 0 still holds the trial id."""
    rng = np.random.default_rng(1)
    more = rng.standard_normal((len(data), data.X.shape[1], extra)).astype(np.float32)
    more[:, 0, :] = data.X[:, 0, :1]
    data.X_span = np.concatenate([data.X, more], axis=2)
    data.span_tmax = data.tmax + extra / data.sfreq
    return data


class CropSpy(SpyDecoder):
    augment = ("crop",)
    shapes: list = []

    def fit(self, X, y, X_val=None, y_val=None):
        CropSpy.shapes.append(np.asarray(X).shape)
        return super().fit(X, y, X_val, y_val)


@pytest.mark.parametrize("decoder", [SpyDecoder, CropSpy])
def test_within_train_span_never_fits_on_test_fold(spy, decoder):
    data = _with_span(_synthetic())
    CropSpy.shapes = []
    res = evaluate_within(data, decoder, n_folds=5, align=False, train_span=True)
    assert res.settings["train_span"] == [data.tmin, data.span_tmax]
    for fold, (_, ids) in zip(res.folds, SpyDecoder.log):
        assert ids == set(fold.fit_idx.tolist())
        assert not ids & set(fold.test_idx.tolist())
    if decoder is CropSpy:  # the whole span of each training trial, once
        assert [s[0] for s in CropSpy.shapes] == [len(f.fit_idx) for f in res.folds]
        assert {s[2] for s in CropSpy.shapes} == {data.X_span.shape[2]}


def test_span_crops_cover_the_span_at_a_fixed_step():
    from decoders.evaluation import _span_crops

    X_span = np.arange(2 * 1 * 20, dtype=float).reshape(2, 1, 20)
    Xc, yc = _span_crops(X_span, np.array([0, 1]), 8, 4)
    assert Xc.shape == (2 * 4, 1, 8)  # offsets 0, 4, 8, 12
    np.testing.assert_array_equal(yc, [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(Xc[5, 0], X_span[1, 0, 4:12])


def test_within_train_span_needs_a_span(spy):
    from bci_app.errors import ConfigError

    with pytest.raises(ConfigError, match="span_tmax"):
        evaluate_within(_synthetic(), spy, train_span=True)


def test_cli_crop_training_span(tmp_path, capsys, eegmmidb_path):
    from bci_app.cli import main

    common = ["--data-dir", str(eegmmidb_path), "--sfreq", "40", "--channels", "motor21",
              "--subjects", "1", "--model", "eegnet", "--epochs", "1"]
    # crop without a span (and a span without crop) is a clear error, not a silent no-op
    assert main(["train", *common, "--augment", "flip,crop", "--out", str(tmp_path / "x")]) == 2
    assert "--train-span" in capsys.readouterr().err
    assert main(["evaluate", *common, "--train-span", "4.0", "--protocol", "within",
                 "--no-report"]) == 2
    assert "add crop to --augment" in capsys.readouterr().err
    assert main(["evaluate", *common, "--augment", "crop", "--train-span", "4.0",
                 "--protocol", "loso", "--no-report"]) == 2
    assert "--protocol within" in capsys.readouterr().err
    assert main(["train", *common, "--augment", "crop", "--train-span", "4.0",
                 "--out", str(tmp_path / "b")]) == 0
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["training"]["train_span"] == {"tmin": 0.5, "tmax": 4.0}
    assert cfg["window_s"] == 2.0  # the bundle keeps the window
    assert main(["evaluate", *common, "--augment", "crop", "--train-span", "4.0",
                 "--protocol", "within", "--folds", "3", "--json", "--no-report"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"][0]
    assert res["settings"]["train_span"] == [0.5, 4.0] and len(res["per_subject_accuracy"]) == 1


def test_cli_within_with_pretraining(capsys, eegmmidb_path):
    """``evaluate --protocol within --pretrain-subjects``: real data, tangent space; the
    fine-tuned decoder is better than chance on S001-S002 with S001-S003 pretraining."""
    from bci_app.cli import main

    common = ["--data-dir", str(eegmmidb_path), "--sfreq", "80", "--channels", "motor21",
              "--subjects", "1,2", "--model", "ts_lr", "--protocol", "within", "--folds", "3",
              "--json", "--no-report"]
    assert main(["evaluate", *common, "--pretrain-subjects", "1-3"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"][0]
    assert res["settings"]["pretrain_subjects"] == [1, 2, 3] and res["settings"]["align"]
    assert sorted(res["per_subject_accuracy"]) == ["1", "2"] and res["n_test_trials"] == 90
    assert res["mean_accuracy"] > 0.5
    assert main(["evaluate", *common[:-8], "--bundle", "decoders/pretrained/"
                 "mi_left_right_csp_lda_ea", "--protocol", "within", "--pretrain-subjects",
                 "1-3", "--no-report"]) == 2
    assert "fix: use --model" in capsys.readouterr().err
    assert main(["evaluate", *common[:-8], "--model", "ts_lr", "--protocol", "loso",
                 "--pretrain-subjects", "1-3", "--no-report"]) == 2
    assert "loso trains on the other --subjects" in capsys.readouterr().err


def test_training_span_is_aligned_with_the_training_windows_reference():
    from decoders.evaluation import _training_span
    from decoders.preprocessing import EuclideanAlignment

    data = _with_span(_synthetic(n_subjects=1))
    fit_idx = np.arange(0, len(data), 2)
    ea = EuclideanAlignment().fit(data.X[fit_idx])
    n = data.X.shape[2]
    Xs, ys, Xv, _ = _training_span(data, CropSpy(), fit_idx, ea)
    assert Xv is None  # crop decoders carve their own split, by trial
    assert Xs.shape[2] == data.X_span.shape[2]  # crop decoders get the whole span
    np.testing.assert_allclose(Xs[..., :n], ea.transform(data.X[fit_idx]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Xs, ea.transform(data.X_span[fit_idx]), rtol=1e-5, atol=1e-5)
    Xc, yc, Xv, _ = _training_span(data, SpyDecoder(), fit_idx, ea)  # others: 0.25 s crops
    assert Xv is None  # no early stopping: no split
    step = int(round(0.25 * data.sfreq))
    n_off = len(range(0, data.X_span.shape[2] - n + 1, step))
    assert Xc.shape == (len(fit_idx) * n_off, data.X.shape[1], n)
    np.testing.assert_allclose(Xc[::n_off], Xs[..., :n], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(yc, np.repeat(data.y[fit_idx], n_off))
