"""GUI review 13b, each with a test that fails on the code before the fix: an invalid upper
frequency of the spectrum in the settings, a new model showing the previous model's decoded
text, and a failed calibration training (its error garbled as rich text, no hint, and no way
to record the run again)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.ui.fakes import ScriptedSource, wait_until

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED_CSP = ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"


# --------------------------------------------------------------------------- 1: spectrum
@pytest.fixture
def streamed_source():
    """Two seconds of a 10 Hz sine on three EEG channels, in the source's buffer."""
    src = ScriptedSource(sfreq=100.0)
    src.connect(acquisition=False)
    t = np.arange(200) / 100.0
    src.push(np.stack([20e-6 * np.sin(2 * np.pi * 10 * t)] * 3, axis=1), 1000.0 + t)
    src.acquire()
    yield src
    src.disconnect()


@pytest.mark.parametrize("stored", [math.nan, 0, -10.0, "NaN", "-3", "lots", True, 1.0, [40]])
def test_an_invalid_stored_max_freq_is_ignored(gui, qtbot, streamed_source, stored):
    """A NaN, zero or negative ``max_freq`` (an edited settings file) was taken: every refresh,
    four times a second, then raised on empty arrays and the spectrum stayed blank."""
    from ui.settings import AppSettings
    from ui.spectrum import SpectrumWidget

    settings = AppSettings()  # the real storage path (JSON in the INI file)
    settings.spectrum = {"max_freq": stored}
    settings.sync()
    state = AppSettings().spectrum
    w = SpectrumWidget()
    qtbot.addWidget(w)
    w.restore(state)
    w.set_source(streamed_source)
    w.show()
    w.refresh()  # (raised on empty arrays)
    assert w.updates == 1 and w.n_curves == 3
    assert w.max_freq == 60.0  # the default is kept
    assert w.freqs[-1] == pytest.approx(50.0)  # up to Nyquist (below 60 Hz)


def test_a_valid_stored_max_freq_still_applies_even_as_a_string(gui, qtbot, streamed_source):
    from ui.spectrum import SpectrumWidget

    for stored in ("40", 40, 25.5):
        w = SpectrumWidget()
        qtbot.addWidget(w)
        w.restore({"max_freq": stored})
        assert w.max_freq == float(stored)
        w.set_source(streamed_source)
        w.show()
        w.refresh()
        assert w.updates == 1 and w.freqs[-1] <= float(stored)
    w.restore({})  # nothing stored: unchanged
    assert w.max_freq == 25.5


# --------------------------------------------------------------------------- 2: decoded text
def test_loading_another_model_clears_the_decoded_text(gui, qtbot):
    """The decoded-text box and the last sentence were kept across models: a new text model
    showed the old model's sentences, and its own first sentence was hidden when it happened
    to equal the old model's last one."""
    from ui.prediction import Prediction, PredictionPanel

    def pred(text):
        return Prediction(window_end=0.0, probabilities=np.array([0.2, 0.8]),
                          classes=("a", "b"), label="b", text=text)

    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_model("text model one", ("a", "b"), text_decoder=True)
    panel.on_prediction(pred("the cat sat"))
    assert panel.text_box.toPlainText() == "the cat sat"
    panel.set_model("text model two", ("a", "b"), text_decoder=True)
    assert panel.text_box.toPlainText() == ""
    panel.set_decoding(True)
    panel.on_prediction(pred("the cat sat"))  # the new model's first sentence is shown
    assert panel.text_box.toPlainText() == "the cat sat"


# --------------------------------------------------------------------------- 3: wizard
def _plain(rich: str) -> str:
    from PySide6 import QtGui

    doc = QtGui.QTextDocument()
    doc.setHtml(rich)
    return doc.toPlainText()


def test_a_training_error_is_shown_as_written_with_a_hint(gui, qtbot):
    """The error went into rich text as it was: ``<``, ``>`` and ``&`` garbled it (a part in
    angle brackets vanished), and nothing said what to do about too few trials."""
    from ui.wizard.controller import CalibrationController
    from ui.wizard.pages import TrainingPage

    ctrl = CalibrationController(None)
    page = TrainingPage(ctrl)
    qtbot.addWidget(page)
    error = "ConfigError: y: every class needs at least 2 trials, got {'left': <1>} & co"
    ctrl.trained.emit(None, error)
    shown = _plain(page.msg.text())
    assert error in shown
    assert "go Back to the cued recording and press Start again" in shown
    assert not page.isComplete()
    other = "RuntimeError: CUDA <device> out of memory & more"
    ctrl.trained.emit(None, other)
    shown = _plain(page.msg.text())
    assert other in shown and "Back" not in shown  # no hint where recording again won't help


@pytest.fixture
def wizard(gui, qtbot, tmp_path):
    from ui.wizard import CalibrationWizard

    wiz = CalibrationWizard(source_spec="simulated:2", pretrained=str(PRETRAINED_CSP),
                            speed="max", user="nav", trials_per_class=3, finetune_epochs=1,
                            profiles_root=tmp_path / "profiles", record_dir=tmp_path / "rec")
    qtbot.addWidget(wiz)
    wiz.show()
    yield wiz
    wiz.close()
    assert wiz.controller.wait_training(30.0), "a training thread outlived its wizard"


def test_back_after_a_failed_training_can_record_again(wizard):
    """Training failed (the trials were dropped: here the run's samples after its first cue
    are lost). Back showed the finished run with Start disabled: Next only retried the same
    failing training, and the only way on was to change the trial count."""
    from PySide6 import QtWidgets

    w, c, page = wizard, wizard.controller, wizard.acquisition
    w.device.connect_source()
    wait_until(lambda: w.device.isComplete() and w.device.connect_btn.isEnabled(), 60)
    w.next()  # signal check
    w.next()  # instructions
    w.next()  # cued recording
    page.start_btn.click()
    wait_until(page.isComplete, 60)
    assert not page.start_btn.isEnabled()  # a finished run: nothing to start
    first_file = c.recording_path
    data, ts = c.calib_data
    keep = ts < c.calib_cues[0][0]  # samples lost: no trial window is left in the data
    c.calib_data = (data[keep], ts[keep])

    w.next()  # training
    wait_until(lambda: "training failed" in w.training.msg.text(), 60)
    shown = _plain(w.training.msg.text())
    assert "no complete trial" in shown and "press Start again" in shown
    assert not w.training.isComplete()

    w.back()  # as the hint says
    assert w.currentPage() is page
    assert page.start_btn.isEnabled() and page.start_btn.text() == "Start again", \
        "Back after a failed training left no way to record again"
    assert "training on this run failed" in page.info.text()
    page.start_btn.click()
    assert not page.start_btn.isEnabled() and not page.isComplete()  # Next waits for this run
    assert not w.button(QtWidgets.QWizard.WizardButton.NextButton).isEnabled()
    assert not w.button(QtWidgets.QWizard.WizardButton.BackButton).isEnabled()  # while it runs
    wait_until(page.isComplete, 60)
    assert page.finished == "done" and c.counts() == {"left": 3, "right": 3}
    assert first_file.is_file() and c.recording_path != first_file  # the first file is kept
    w.next()  # training on the new run
    wait_until(w.training.isComplete, 60)
    assert c.epochs.X.shape[0] == 6
