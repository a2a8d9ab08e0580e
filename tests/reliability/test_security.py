"""Security: nothing executes code on load, nothing writes outside the chosen folder, and the only
network listener is LSL's (confined to machine-scope discovery)."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import psutil
import pytest

from bci_app.errors import BundleError


class _Payload:
    """Unpickling this runs code: it creates the file named in ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def good_bundle(tmp_path):
    from decoders.bundle import save_bundle
    from decoders.estimators import make_decoder
    from decoders.preprocessing import Preprocessor

    rng = np.random.default_rng(0)
    X = (rng.standard_normal((20, 4, 160)) * 1e-5).astype(np.float32)
    y = np.r_[np.zeros(10), np.ones(10)].astype(np.int64)
    dec = make_decoder("ts_lr", n_chans=4, n_outputs=2, sfreq=80.0, window_s=2.0).fit(X, y)
    path = tmp_path / "good"
    save_bundle(dec, path, {"channels": ["C3", "C4", "Cz", "Pz"], "classes": ["l", "r"],
                            "preprocessing": Preprocessor().to_dict()})
    return path


def test_bundle_weights_replaced_by_a_pickle_do_not_execute(good_bundle, tmp_path):
    from decoders.bundle import load_bundle

    evil = tmp_path / "evil"
    shutil.copytree(good_bundle, evil)
    marker = tmp_path / "PWNED"
    (evil / "weights.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(BundleError, match="cannot read"):
        load_bundle(evil)
    assert not marker.exists()


def test_extra_pickles_in_a_bundle_folder_are_ignored(good_bundle, tmp_path):
    from decoders.bundle import load_bundle

    marker = tmp_path / "PWNED"
    for name in ("model.pt", "model.pkl", "weights.pt"):
        (good_bundle / name).write_bytes(pickle.dumps(_Payload(marker)))
    b = load_bundle(good_bundle)
    assert b.predict_proba(np.zeros((4, 160), np.float32)).shape == (2,)
    assert not marker.exists()


def test_torch_load_in_the_code_base_is_weights_only():
    """No call site may unpickle arbitrary objects (torch.load without weights_only=True,
    pickle.load, joblib.load)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for py in list(root.glob("acquisition/**/*.py")) + list(root.glob("decoders/**/*.py")) + \
            list(root.glob("bci_app/**/*.py")) + list(root.glob("ui/**/*.py")):
        text = py.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in m.group(1):
                offenders.append(f"{py.relative_to(root)}: torch.load({m.group(1)})")
        for bad in ("pickle.load(", "pickle.loads(", "joblib.load(", "np.load(", "numpy.load("):
            if bad in text and (bad.startswith("pickle") or bad.startswith("joblib")
                                or "allow_pickle=True" in text):
                offenders.append(f"{py.relative_to(root)}: {bad}")
    assert not offenders, offenders


def test_recording_names_from_untrusted_text_stay_in_the_folder(tmp_path):
    from acquisition.recorder import default_recording_path

    for name in ("../../etc/passwd", "/abs/path", "..", "a/../../b", "C:\\evil"):
        p = default_recording_path(name, folder=tmp_path)
        assert p.parent == tmp_path, (name, p)


def test_bids_export_labels_from_the_file_cannot_escape(tmp_path):
    from bci_app.recording import _bids_label

    assert _bids_label("../../x", "subject") == "x"
    assert "/" not in _bids_label("a/b\\c", "task")


def test_only_lsl_listens_on_the_network(tmp_path):
    """A full session (synthetic board, recorder, LSL prediction + marker outlets) opens no
    socket outside liblsl's port range (16571 multicast, 16572-16603 data)."""
    from acquisition.brainflow_source import BrainFlowSource
    from acquisition.lsl_outlet import MarkerOutlet
    from acquisition.lsl_source import list_lsl_streams
    from acquisition.recorder import Recorder

    src = BrainFlowSource("synthetic")
    with src.connect(timeout=5):
        rec = Recorder(tmp_path / "r.xdf")
        rec.add_source(src)
        rec.start()
        out = MarkerOutlet("security-test-markers")
        list_lsl_streams(0.3)
        conns = psutil.Process().net_connections(kind="inet")
        rec.stop()
        out.close()
    listening = [c for c in conns if c.status in ("LISTEN", "NONE")]
    assert listening, "expected LSL's own sockets"
    for c in listening:
        assert 16571 <= c.laddr.port <= 16603, f"unexpected listener {c}"
