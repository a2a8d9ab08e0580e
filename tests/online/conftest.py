"""A small real bundle for online tests: tangent space + LR trained on EEGMMIDB S001."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

PRETRAINED = Path(__file__).resolve().parents[2] / "decoders" / "pretrained"
#: The shipped CSP+LDA bundle: 21 motor channels, 80 Hz, 2 s windows, needs the user's EA.
CSP_EA = PRETRAINED / "mi_left_right_csp_lda_ea"

#: Channels both EEGMMIDB (standardized names) and BrainFlow's synthetic board have.
SYNTH_CHANNELS = ["Fz", "C3", "Cz", "C4", "Pz", "PO7", "Oz", "PO8",
                  "F5", "F7", "F3", "F1", "F2", "F4", "F6", "F8"]


def _train(tmp_path_factory, name: str, sfreq: float | None):
    from decoders.bundle import load_bundle, save_bundle
    from decoders.data import load_eegmmidb
    from decoders.estimators import make_decoder
    from decoders.preprocessing import Preprocessor

    pre = Preprocessor(channels=SYNTH_CHANNELS, car=True, l_freq=8.0, h_freq=30.0, sfreq=sfreq)
    data = load_eegmmidb([1], preprocessor=pre, tmin=0.5, tmax=2.5)
    dec = make_decoder("ts_lr", n_chans=len(SYNTH_CHANNELS), n_outputs=2, sfreq=data.sfreq,
                       window_s=2.0)
    dec.fit(data.X, data.y)
    path = tmp_path_factory.mktemp(name) / "bundle"
    save_bundle(dec, path, {"channels": SYNTH_CHANNELS, "classes": ["left", "right"],
                            "preprocessing": pre.to_dict(),
                            "training": {"subjects": [1], "protocol": "test"}})
    return load_bundle(path)


@pytest.fixture(scope="session")
def ts_bundle(tmp_path_factory):
    """160 Hz bundle without resampling (runs on EEGMMIDB replays only)."""
    return _train(tmp_path_factory, "ts160", None)


@pytest.fixture(scope="session")
def ts_bundle_resampling(tmp_path_factory):
    """Bundle whose preprocessing resamples any source to 160 Hz (runs on 250 Hz boards too)."""
    return _train(tmp_path_factory, "ts160r", 160.0)


@pytest.fixture(scope="session")
def s003_run4(eegmmidb_path):
    """EEGMMIDB S003 run 4 (64 ch at 160 Hz, 125 s, with its T0/T1/T2 markers)."""
    import mne

    from acquisition.files import read_file

    path = mne.datasets.eegbci.load_data(3, [4], path=str(eegmmidb_path), update_path=False)[0]
    return read_file(path)


@pytest.fixture(scope="session")
def csp_ea():
    from decoders.bundle import load_bundle

    return load_bundle(CSP_EA)


def cut(rec, n):
    """The first ``n`` samples of a FileRecording, without its markers."""
    return dataclasses.replace(rec, data=rec.data[:n], times=rec.times[:n], markers=[])
