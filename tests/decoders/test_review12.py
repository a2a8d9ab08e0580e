"""Review 12 of the offline decoder layer: regression tests (each failed on the code before).

* a bundle loaded and saved again lost the number of training trials (``fit_info.n_train``
  became null): ``DeepDecoder.from_state`` did not restore it;
* ``bci-app train --model tsmnet --onnx`` trained the net, then failed at the export: TSMNet
  uses operators ONNX lacks, which is known before any data are loaded.
"""

from __future__ import annotations

import json

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
