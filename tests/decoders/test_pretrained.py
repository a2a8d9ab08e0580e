"""The committed pretrained bundles load (no pickle), state their contract and predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from decoders.bundle import load_bundle
from decoders.training import MOTOR21

PRETRAINED = sorted(p for p in (Path(__file__).resolve().parents[2] / "decoders" /
                                "pretrained").iterdir() if (p / "config.json").is_file())


def test_there_are_pretrained_bundles():
    assert PRETRAINED


@pytest.mark.parametrize("path", PRETRAINED, ids=lambda p: p.name)
def test_pretrained_bundle_contract(path):
    b = load_bundle(path)
    assert b.channels == MOTOR21 and b.sfreq == 80.0 and b.window_s == 2.0
    assert b.classes == ["left", "right"] and b.needs_alignment
    assert b.config["training"]["subjects"] == list(range(1, 21))
    assert "command" in b.config["training"]
    size = sum(f.stat().st_size for f in path.iterdir())
    assert size < 5 * 2**20
    rng = np.random.default_rng(0)
    b.fit_alignment(rng.standard_normal((20, 21, 160)) * 1e-5)
    p = b.predict_proba(rng.standard_normal((21, 160)) * 1e-5)
    assert p.shape == (2,) and abs(p.sum() - 1) < 1e-5


@pytest.mark.parametrize("path", [p for p in PRETRAINED if
                                  '"kind": "sklearn"' in (p / "config.json").read_text()],
                         ids=lambda p: p.name)
def test_pretrained_baseline_bundle_calibrates_as_evaluated(path, caplog):
    """A shipped CSP+LDA bundle holds its training features, so calibration (``partial_fit``)
    refits on them plus the user's trials, as the evaluation in memory did, not on the user's
    trials alone."""
    import logging

    with caplog.at_level(logging.WARNING):
        b = load_bundle(path)
    assert not [r for r in caplog.records if "no training features" in r.getMessage()]
    n = b.config["training"]["n_trials"]
    dec = b.decoder
    assert dec.train_features_.shape == (n, dec.coef_.shape[1])
    assert dec.train_y_.shape == (n,) and set(np.unique(dec.train_y_)) == {0, 1}
