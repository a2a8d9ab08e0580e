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
