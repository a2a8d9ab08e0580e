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
