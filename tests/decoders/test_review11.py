"""Review 11 of the offline decoder layer: regression tests (each failed on the code before).

* a scikit-learn baseline given deep-model options (``--epochs``, ``--ensemble`` ...) ran and
  silently ignored them; now a clear error before any data is loaded;
* a mistyped ``--model-param`` of a baseline was a TypeError/ValueError traceback after the data
  were loaded (and, for ``make_decoder``, a TypeError); now a ConfigError naming it, up front;
* ``evaluate --bundle ... --seed S`` trained its fresh decoders with the bundle's seed, not S;
* re-saving a bundle into a folder that held one exported to ONNX kept the old ``model.onnx``
  (another model's graph) beside the new weights;
* ``--subjects 1,5-3`` silently evaluated subject 1 only (a backwards range gave no subject).
"""

from __future__ import annotations

import numpy as np
import pytest

from bci_app.cli import main
from bci_app.errors import ConfigError

from tests.helpers.cli import fails as _fails

from .conftest import TOY_CHANS, TOY_SFREQ, TOY_WINDOW

NO_DATA = "/nonexistent/eegmmidb"  # an option checked up front is reported before this is read




@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_baseline_with_deep_model_options_is_refused_before_loading(capsys, tmp_path, command):
    extra = ["--out", str(tmp_path / "b")] if command == "train" else ["--no-report"]
    err = _fails(capsys, command, "--model", "csp_lda", "--subjects", "1", "--data-dir",
                 NO_DATA, "--epochs", "50", "--ensemble", "3", *extra)
    assert "--epochs, --ensemble: only used by deep models" in err and "'csp_lda'" in err
    assert NO_DATA not in err  # refused before the data folder was looked at
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("model", "param", "message"), [
    ("csp_lda", "n_comp=4", "csp_lda does not take ['n_comp']"),
    ("ts_lr", "estimator=foo", "ts_lr rejected {'estimator': 'foo'}"),
    ("ts_lr", "C=abc", "ts_lr rejected {'C': 'abc'}"),
])
def test_bad_baseline_model_param_is_named_before_loading(capsys, model, param, message):
    err = _fails(capsys, "evaluate", "--model", model, "--model-param", param, "--subjects", "1",
                 "--data-dir", NO_DATA, "--no-report")
    assert message in err and "fix:" in err and NO_DATA not in err


def test_bad_baseline_model_param_on_real_data_is_not_a_traceback(capsys, eegmmidb_path):
    """With data present the old code loaded it, then died with a TypeError traceback."""
    err = _fails(capsys, "evaluate", "--model", "csp_lda", "--model-param", "n_comp=4",
                 "--subjects", "1-2", "--sfreq", "40", "--channels", "motor21",
                 "--protocol", "loso", "--data-dir", str(eegmmidb_path), "--no-report")
    assert "does not take ['n_comp']" in err and "n_components" in err


def test_make_decoder_unknown_baseline_param_is_config_error():
    from decoders.estimators import make_decoder

    with pytest.raises(ConfigError, match=r"csp_lda does not take \['n_comp'\]"):
        make_decoder("csp_lda", TOY_CHANS, 2, TOY_SFREQ, TOY_WINDOW, n_comp=4)
    # valid parameters still build
    assert make_decoder("ts_lr", TOY_CHANS, 2, TOY_SFREQ, TOY_WINDOW, C=0.5).C == 0.5


def test_evaluate_bundle_trains_with_the_given_seed(tmp_path, capsys, monkeypatch,
                                                    eegmmidb_path):
    """``evaluate --bundle B --protocol loso --seed 7``: the fresh decoders are seeded with 7
    (the bundle's parameters carry its own training seed, 3, which used to win)."""
    import decoders.evaluation as ev

    common = ["--data-dir", str(eegmmidb_path), "--sfreq", "40", "--channels", "motor21"]
    assert main(["train", *common, "--subjects", "1", "--model", "eegnet", "--epochs", "1",
                 "--seed", "3", "--out", str(tmp_path / "b"), "--json"]) == 0
    capsys.readouterr()
    seeds, real = [], ev.evaluate_loso

    def spy(data, factory, **kw):
        def make():
            dec = factory()
            seeds.append(dec.seed)
            return dec
        return real(data, make, **kw)

    monkeypatch.setattr(ev, "evaluate_loso", spy)
    assert main(["evaluate", "--data-dir", str(eegmmidb_path), "--bundle", str(tmp_path / "b"),
                 "--protocol", "loso", "--subjects", "2-3", "--seed", "7", "--no-report"]) == 0
    assert seeds == [7, 7]


def test_train_settings_seed_wins_over_decoder_params(mi_small):
    from decoders.training import TrainSettings

    st = TrainSettings(model="eegnet", decoder_params={"seed": 3, "max_epochs": 1}, seed=7)
    assert st.factory(mi_small)().seed == 7


def test_resaved_bundle_drops_the_old_onnx_graph(toy, tmp_path):
    from decoders.bundle import ONNX_NAME, load_bundle, save_bundle
    from decoders.estimators import make_decoder

    X, y = toy
    meta = dict(channels=[f"E{i}" for i in range(TOY_CHANS)], classes=["left", "right"],
                preprocessing={})
    net = make_decoder("eegnet", TOY_CHANS, 2, TOY_SFREQ, TOY_WINDOW, max_epochs=1,
                       batch_size=8).fit(X, y)
    save_bundle(net, tmp_path / "b", meta, export_onnx=True)
    assert (tmp_path / "b" / ONNX_NAME).is_file()
    base = make_decoder("csp_lda", TOY_CHANS, 2, TOY_SFREQ, TOY_WINDOW).fit(X, y)
    save_bundle(base, tmp_path / "b", meta)  # same folder, no ONNX this time
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["config.json",
                                                                   "weights.safetensors"]
    np.testing.assert_array_equal(load_bundle(tmp_path / "b").predict_proba(X),
                                  base.predict_proba(X))


@pytest.mark.parametrize(("spec", "message"), [
    ("1,5-3", "the range '5-3' in '1,5-3' runs backwards; fix: write it as '3-5'"),
    ("3-1", "write it as '1-3'"),
    ("5,1--3", "expected subject ids >= 1"),
])
def test_backwards_subject_range_is_an_error(spec, message):
    from decoders.data import parse_subjects

    with pytest.raises(ConfigError) as info:
        parse_subjects(spec)
    assert message in str(info.value)
    assert parse_subjects(" 2 - 4 ,9") == [2, 3, 4, 9]


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_an_unknown_channel_is_named_in_the_commands_terms(capsys, tmp_path, command):
    """--channels C3,Cz,XX9 failed after loading with 'the source lacks 1: XX9 ... Fix: map
    each to a source channel (bci-app live --map ...)', advice for another command."""
    err = _fails(capsys, command, "--model", "csp_lda", "--subjects", "1", "--data-dir",
                 str(tmp_path / "nothing-here"), "--channels", "C3,Cz,XX9",
                 *(["--out", str(tmp_path / "b")] if command == "train" else ["--no-report"]))
    assert "--channels: XX9 not among EEGMMIDB's 64 channels" in err and "live --map" not in err
