"""GUI tests: offscreen Qt, a temporary settings file per test, windows closed after each test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED_CSP = ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


@pytest.fixture(autouse=True)
def temp_settings(tmp_path, monkeypatch):
    """Never read or write the real user's settings: every test gets its own INI file."""
    path = tmp_path / "bci_app_settings.ini"
    monkeypatch.setenv("BCI_APP_SETTINGS", str(path))
    monkeypatch.setenv("BCI_APP_RECORDINGS_DIR", str(tmp_path / "recordings"))
    return path


@pytest.fixture(autouse=True)
def no_modal_question(monkeypatch):
    """A modal question box waits offscreen for a click that never comes: the test hung. It
    fails instead; tests answer through the widget's ``confirm`` attribute (the main window,
    the calibration wizard, its Results page)."""
    from PySide6 import QtWidgets

    def refuse(parent, title, text, *args, **kwargs):
        raise AssertionError(f"a modal question box was opened in a test ({title!r}: {text!r}); "
                             "answer through the widget's `confirm` attribute instead")

    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(refuse))


@pytest.fixture
def gui(qapp):
    """The QApplication configured like the app (pyqtgraph options)."""
    assert os.environ.get("QT_QPA_PLATFORM") in ("offscreen", "xcb", None)
    from ui.app import configure_pyqtgraph

    configure_pyqtgraph()
    return qapp


@pytest.fixture
def make_window(gui, qtbot):
    """Create MainWindows that are closed (sources stopped) at the end of the test."""
    from ui.main_window import MainWindow

    windows = []

    def factory(*args, show: bool = True, **kwargs) -> MainWindow:
        kwargs.setdefault("connect_timeout", 5.0)
        win = MainWindow(*args, **kwargs)
        qtbot.addWidget(win)
        windows.append(win)
        if show:
            win.show()
        return win

    yield factory
    for win in windows:
        win.close()


#: Channels both EEGMMIDB and BrainFlow's synthetic board have (as in tests/online).
SYNTH_CHANNELS = ["Fz", "C3", "Cz", "C4", "Pz", "PO7", "Oz", "PO8",
                  "F5", "F7", "F3", "F1", "F2", "F4", "F6", "F8"]


@pytest.fixture(scope="session")
def gui_bundle_path(tmp_path_factory):
    """A small real bundle (tangent space + LR on EEGMMIDB S001, resampled to 160 Hz) that runs
    on the synthetic board."""
    from decoders.bundle import save_bundle
    from decoders.data import load_eegmmidb
    from decoders.estimators import make_decoder
    from decoders.preprocessing import Preprocessor

    pre = Preprocessor(channels=SYNTH_CHANNELS, car=True, l_freq=8.0, h_freq=30.0, sfreq=160.0)
    data = load_eegmmidb([1], preprocessor=pre, tmin=0.5, tmax=2.5)
    dec = make_decoder("ts_lr", n_chans=len(SYNTH_CHANNELS), n_outputs=2, sfreq=data.sfreq,
                       window_s=2.0)
    dec.fit(data.X, data.y)
    path = tmp_path_factory.mktemp("gui_bundle") / "ts_lr_synth"
    save_bundle(dec, path, {"channels": SYNTH_CHANNELS, "classes": ["left", "right"],
                            "preprocessing": pre.to_dict(),
                            "training": {"subjects": [1], "protocol": "gui test"}})
    return path


@pytest.fixture
def make_wizard(gui, qtbot, tmp_path):
    """CalibrationWizards on ``simulated:2`` at max speed, shut down after the test (their
    training threads joined, so no test leaves one behind).

    Closing a wizard while a run or a training is going asks first: these wizards answer Yes
    (``confirm``), as a user ending the calibration would, so that tests and the teardown can
    close them at any point; a test about the question sets its own ``confirm``."""
    from ui.wizard import CalibrationWizard

    made = []

    def factory(pretrained=PRETRAINED_CSP, trials_per_class: int = 3, finetune_epochs: int = 1):
        wiz = CalibrationWizard(source_spec="simulated:2", pretrained=str(pretrained),
                                speed="max", user="nav", trials_per_class=trials_per_class,
                                finetune_epochs=finetune_epochs,
                                profiles_root=tmp_path / "profiles", record_dir=tmp_path / "rec")
        wiz.confirm = lambda title, question: True
        qtbot.addWidget(wiz)
        wiz.show()
        made.append(wiz)
        return wiz

    yield factory
    for wiz in made:
        wiz.confirm = lambda title, question: True  # (a test may have left a No)
        wiz.close()
        assert wiz.controller.wait_training(30.0), "a training thread outlived its wizard"


def to_cued_recording(w) -> None:
    """From the first page to the cued recording (source connected)."""
    from tests.ui.fakes import wait_until

    w.device.connect_source()
    wait_until(lambda: w.device.isComplete() and w.device.connect_btn.isEnabled(), 60)
    w.next()  # signal check
    w.next()  # instructions
    w.next()  # cued recording
    assert w.currentPage() is w.acquisition
