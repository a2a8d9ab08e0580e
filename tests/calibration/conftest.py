"""Shared pieces of the calibration tests: simulated subjects from real EEGMMIDB runs."""

from __future__ import annotations

import pytest

from acquisition.files import read_file
from acquisition.simulated import eegmmidb_files


@pytest.fixture(scope="session")
def s7_recordings(eegmmidb_path):
    """Subject 7, runs 4/8/12, read once per test session (real EEG, 64 ch @ 160 Hz)."""
    return [read_file(p) for p in eegmmidb_files(7, (4, 8, 12), eegmmidb_path)]


#: Subjects the test decoders are pretrained on; the simulated subjects come from the others.
PRETRAIN_SUBJECTS = list(range(11, 21))
#: Held-out subjects played by the simulated subject in the closed-loop tests.
TARGET_SUBJECTS = [1, 2, 7]


def _motor21_pre():
    import dataclasses

    from decoders.training import DEFAULT_PREPROCESSING, MOTOR21

    return dataclasses.replace(DEFAULT_PREPROCESSING, channels=list(MOTOR21))


@pytest.fixture(scope="session")
def pretrain_data(eegmmidb_path):
    """EEGMMIDB subjects 11-20, motor21 @ 80 Hz, 8-30 Hz (as the shipped pretrained bundles)."""
    from decoders.training import DEFAULT_TMAX, DEFAULT_TMIN, load_data

    return load_data(PRETRAIN_SUBJECTS, eegmmidb_path, _motor21_pre(), DEFAULT_TMIN, DEFAULT_TMAX)


@pytest.fixture(scope="session")
def pretrained_csp(pretrain_data, tmp_path_factory):
    """A cross-subject CSP+LDA bundle (Euclidean-aligned) pretrained on subjects 11-20 only.

    decoders/pretrained/ ships bundles trained on all 20 subjects, so none can be tested on a
    subject it never saw; this one is trained here in a second."""
    from decoders.bundle import load_bundle
    from decoders.training import TrainSettings, train_cross_subject

    out = tmp_path_factory.mktemp("pretrained") / "csp_lda_s11-20"
    train_cross_subject(pretrain_data, TrainSettings(model="csp_lda"), out)
    return load_bundle(out)


@pytest.fixture(scope="session")
def pretrained_eegnet_tiny(pretrain_data, tmp_path_factory):
    """A deliberately under-trained EEGNet (2 epochs): exercises the deep fine-tuning path only."""
    import torch

    from decoders.bundle import load_bundle
    from decoders.training import TrainSettings, train_cross_subject

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("pretrained") / "eegnet_tiny"
    settings = TrainSettings(model="eegnet", decoder_params=dict(max_epochs=2, patience=2))
    train_cross_subject(pretrain_data.subset(pretrain_data.subject <= 12), settings, out)
    return load_bundle(out)
