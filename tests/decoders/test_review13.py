"""Review 13: a negative or non-finite resampling rate is named as such."""

from __future__ import annotations

import pytest

from bci_app.errors import ConfigError
from decoders.preprocessing import StreamingResampler


@pytest.mark.parametrize(("sfreq_in", "sfreq_out"), [(160.0, -5.0), (-160.0, 80.0),
                                                      (160.0, float("inf"))])
def test_a_rate_that_is_not_positive_is_named_not_called_an_odd_fraction(sfreq_in, sfreq_out):
    """``bci-app evaluate --sfreq -5`` said the ratio "is not a fraction with a denominator of
    at most 1000" and advised fixing the device's nominal rate."""
    with pytest.raises(ConfigError, match=r"rates must be finite and > 0 Hz.*--sfreq") as err:
        StreamingResampler(sfreq_in, sfreq_out, 4)
    assert "fraction" not in str(err.value)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--batch-size", "0", "batch_size (--batch-size): expected an integer >= 1"),  # range() error
    ("--lr", "-1", "lr (--lr): expected a finite number > 0"),  # torch's bare ValueError
    ("--epochs", "0", "max_epochs (--epochs): expected an integer >= 1"),  # untrained, scored
    ("--patience", "-1", "patience (--patience): expected an integer >= 1"),  # one epoch
    ("--finetune-lr", "0", "finetune_lr (--finetune-lr): expected a finite number > 0"),
])
def test_deep_training_settings_that_cannot_train_are_named_before_loading(
        capsys, option, value, message):
    """``evaluate --model eegnet --batch-size 0`` ended in ``ValueError: range() arg 3 must not
    be zero`` and ``--lr -1`` in torch's ``Invalid learning rate`` traceback, after loading the
    data; ``--epochs 0`` reported the accuracy of an untrained net as a result."""
    from bci_app.cli import main

    rc = main(["evaluate", "--model", "eegnet", "--subjects", "1", "--data-dir",
               "/nonexistent/eegmmidb", option, value])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_the_decoder_refuses_them_too():
    from decoders.estimators import DeepDecoder

    with pytest.raises(ConfigError, match=r"batch_size .*expected an integer >= 1"):
        DeepDecoder("eegnet", 8, 2, 160.0, 2.0, batch_size=0)
    DeepDecoder("eegnet", 8, 2, 160.0, 2.0, val_fraction=0.0)  # no validation split: allowed
