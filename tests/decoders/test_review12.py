"""Review 12 of the offline decoder layer: regression tests (each failed on the code before).

* a bundle loaded and saved again lost the number of training trials (``fit_info.n_train``
  became null): ``DeepDecoder.from_state`` did not restore it;
* ``bci-app train --model tsmnet --onnx`` trained the net, then failed at the export: TSMNet
  uses operators ONNX lacks, which is known before any data are loaded;
* ``evaluate_within(train_span=True)`` with a deep decoder without ``crop`` cut each training
  trial's span into overlapping crops and let the decoder carve its early-stopping split from
  the crops: crops of one trial landed on both sides, so early stopping judged on near-copies of
  training windows. The split is now by trial, made before the crops are cut.
"""

from __future__ import annotations

import json

import numpy as np

from bci_app.cli import main

from .conftest import TOY_CHANS, TOY_SFREQ, TOY_WINDOW

NO_DATA = "/nonexistent/eegmmidb"


def test_resaved_bundle_keeps_the_number_of_training_trials(toy, tmp_path):
    from decoders.bundle import load_bundle, save_bundle
    from decoders.estimators import make_decoder

    X, y = toy
    meta = dict(channels=[f"E{i}" for i in range(TOY_CHANS)], classes=["left", "right"],
                preprocessing={})
    net = make_decoder("eegnet", TOY_CHANS, 2, TOY_SFREQ, TOY_WINDOW, max_epochs=1,
                       batch_size=8, val_fraction=0.25).fit(X, y)
    save_bundle(net, tmp_path / "a", meta)
    first = json.loads((tmp_path / "a" / "config.json").read_text())["decoder"]["fit_info"]
    assert first["n_train"] == net.n_train_ > 0
    save_bundle(load_bundle(tmp_path / "a").decoder, tmp_path / "b", meta)
    again = json.loads((tmp_path / "b" / "config.json").read_text())["decoder"]["fit_info"]
    assert again == first


def test_train_tsmnet_with_onnx_is_refused_before_loading(capsys, tmp_path):
    rc = main(["train", "--model", "tsmnet", "--onnx", "--subjects", "1", "--data-dir", NO_DATA,
               "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "--onnx: 'tsmnet' uses operators ONNX does not have" in err
    assert "drop --onnx" in err
    assert NO_DATA not in err  # refused before the data folder was looked at
    assert not (tmp_path / "b").exists()


def test_train_span_early_stopping_split_is_by_trial():
    from decoders.data import EpochsData
    from decoders.estimators import DeepDecoder, stratified_split
    from decoders.evaluation import evaluate_within

    rng = np.random.default_rng(0)
    n, n_chans, sf = 40, 4, 32.0
    X = rng.standard_normal((n, n_chans, 64)).astype(np.float32)
    X[:, 0, :] = np.arange(n)[:, None]  # channel 0 holds the trial id, in every crop
    y = np.tile([0, 1], n // 2)
    data = EpochsData(X[..., :32], y, np.ones(n, int), np.full(n, 4), np.arange(n) * 4.0,
                      np.arange(n), [f"c{i}" for i in range(n_chans)], sf, 0.0, 1.0,
                      X_span=X, span_tmax=2.0)
    seen = []

    class Spy(DeepDecoder):
        def fit(self, X, y, X_val=None, y_val=None):
            Xt, Xv = X, X_val
            if Xv is None:  # what DeepDecoder.fit does then: split the rows given
                tr, va = stratified_split(np.asarray(y), self.val_fraction, self.seed)
                Xt, Xv = X[tr], X[va]
            seen.append((set(Xt[:, 0, 0].astype(int)), set(Xv[:, 0, 0].astype(int)),
                         Xv.shape[2]))
            return super().fit(X, y, X_val, y_val)

    res = evaluate_within(data, lambda: Spy("eegnet", n_chans, 2, sf, 1.0, val_fraction=0.25,
                                                 max_epochs=1),
                          n_folds=2, train_span=True)
    assert len(seen) == 2
    for (train_ids, val_ids, width), fold in zip(seen, res.folds):
        assert not train_ids & val_ids  # no trial on both sides of the early-stopping split
        assert train_ids | val_ids == set(fold.fit_idx.tolist())
        assert width == 32  # validated on the windows the evaluation tests on
