"""Review 15b of model bundles: a config's ``alignment`` must be ``"euclidean"`` or null and
must say what the training did. The shipped pretrained bundles, a bundle trained here by the
real training code on EEGMMIDB, real EEG windows; each refusal test fails on the code before its
fix (the bundle loaded and decoded the user's windows with the wrong alignment)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bci_app.errors import BundleError
from decoders.bundle import CONFIG_NAME, load_bundle, save_bundle

PRETRAINED = Path(__file__).resolve().parents[2] / "decoders" / "pretrained"
CSP_EA = PRETRAINED / "mi_left_right_csp_lda_ea"


def _edited(tmp_path: Path, edit) -> Path:
    """A copy of the shipped CSP+LDA bundle (trained with Euclidean alignment) with its
    config edited by ``edit(config)``."""
    path = tmp_path / "bundle"
    shutil.copytree(CSP_EA, path)
    cfg = json.loads((path / CONFIG_NAME).read_text())
    edit(cfg)
    (path / CONFIG_NAME).write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def s1_windows(eegmmidb_path):
    """Preprocessed 2 s windows of EEGMMIDB S001 in the shipped bundle's channels and rate."""
    from decoders.data import load_eegmmidb

    bundle = load_bundle(CSP_EA)
    return load_eegmmidb([1], eegmmidb_path, bundle.preprocessor, tmin=0.5, tmax=2.5).X


@pytest.mark.parametrize("value", ["Euclidean", True, "riemannian", [[1.0, 0.0], [0.0, 1.0]]],
                         ids=["capitalised", "true", "other-method", "a-matrix"])
def test_an_alignment_that_is_neither_euclidean_nor_null_is_refused(tmp_path, value):
    """Anything but "euclidean" was read as "no alignment": the model, trained on aligned
    windows, decoded the user's unaligned ones without a word."""
    path = _edited(tmp_path, lambda c: c.update(alignment=value))
    with pytest.raises(BundleError, match=rf"bundle: {tmp_path}/bundle/config\.json has "
                                          r"'alignment': .*expected \"euclidean\" .* or null "
                                          r".*Fix: write one of these"):
        load_bundle(path)


@pytest.mark.parametrize(("alignment", "align"), [(None, True), ("euclidean", False)],
                         ids=["null-but-trained-aligned", "euclidean-but-trained-unaligned"])
def test_an_alignment_that_contradicts_the_training_is_refused(tmp_path, s1_windows, alignment,
                                                                align):
    """``alignment`` and ``training.settings.align`` (what ``bci-app train`` did) disagree: the
    model would read windows of another mix and scale than it learnt. Null on the shipped
    (aligned) bundle decodes the unaligned windows to other probabilities than the aligned
    ones, with no error."""
    def edit(cfg):
        cfg["alignment"] = alignment
        cfg["training"]["settings"]["align"] = align

    path = _edited(tmp_path, edit)
    fix = json.dumps("euclidean" if align else None)
    with pytest.raises(BundleError, match=rf"config\.json has 'alignment': "
                                          rf"{json.dumps(alignment)}, but 'training' > "
                                          rf"'settings' > 'align' is {json.dumps(align)}.*"
                                          rf"Fix: set 'alignment' to {fix}"):
        wrong = load_bundle(path)
        if alignment is None:  # what the old code decoded: not what the aligned model says
            right = load_bundle(CSP_EA).fit_alignment(s1_windows)
            assert not np.allclose(wrong.predict_proba(s1_windows),
                                   right.predict_proba(s1_windows), atol=0.05)


def test_legitimate_bundles_still_load(tmp_path, eegmmidb_path, s1_windows):
    """The shipped bundles align on the user's data at start (no alignment stored yet); a
    bundle trained without alignment loads as unaligned and decodes raw windows; save_bundle
    refuses to write an alignment value load_bundle would refuse."""
    from decoders.training import TrainSettings, load_data, train_cross_subject

    for name in ("mi_left_right_csp_lda_ea", "mi_left_right_eegnet_ea"):
        b = load_bundle(PRETRAINED / name)
        assert b.needs_alignment and b.alignment is None
    pre = load_bundle(CSP_EA).preprocessor
    data = load_data([2, 3], eegmmidb_path, pre, 0.5, 2.5)
    dec, path = train_cross_subject(data, TrainSettings(model="csp_lda", align=False),
                                    tmp_path / "unaligned")
    b = load_bundle(path)
    assert b.config["alignment"] is None and not b.needs_alignment
    np.testing.assert_allclose(b.predict_proba(s1_windows),
                               dec.predict_proba(s1_windows.astype(np.float32)), atol=1e-9)
    meta = {"channels": b.channels, "classes": b.classes,
            "preprocessing": dataclasses.asdict(pre), "alignment": "Euclidean"}
    with pytest.raises(BundleError, match=r"meta\['alignment'\]: expected \"euclidean\" or None, "
                                          r"got 'Euclidean'"):
        save_bundle(dec, tmp_path / "bad", meta)
