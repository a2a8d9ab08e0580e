"""GUI review 14, the calibration wizard, each with a test that fails on the code before the fix:
closing the wizard (Cancel, Esc, the window's close button) ended a cued run, a feedback run or
a training without a word; and the co-adaptive update cut the feedback run from the source's
ring buffer at its end, so a run longer than the buffer lost its first trials (both runs are
now copied out chunk by chunk: at max speed one pump made more signal than a 20 s buffer holds,
and the cued run's copy, taken once per pump, lost samples too).

Real components: the simulated subject (EEGMMIDB S002) at max speed, the shipped pretrained
bundles. The questions are answered through the wizard's ``confirm`` (a modal box otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.ui.fakes import wait_until

from .conftest import to_cued_recording

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED_EEGNET = ROOT / "decoders" / "pretrained" / "mi_left_right_eegnet_ea"


def _answering(w, answer: bool) -> list[tuple[str, str]]:
    """Answer every close question of ``w`` with ``answer``; the questions asked, in order."""
    asked: list[tuple[str, str]] = []
    w.confirm = lambda title, question: asked.append((title, question)) or answer
    return asked


def _close(w, how: str) -> None:
    """Close ``w`` as a user would: the Cancel button, the Esc key, the window's close button
    (a close event, as the window manager sends), or Finish."""
    from PySide6 import QtCore, QtWidgets
    from PySide6.QtTest import QTest

    buttons = QtWidgets.QWizard.WizardButton
    if how == "cancel":
        w.button(buttons.CancelButton).click()
    elif how == "escape":
        QTest.keyClick(w, QtCore.Qt.Key.Key_Escape)
    elif how == "close button":
        w.close()
    elif how == "finish":
        w.button(buttons.FinishButton).click()
    else:
        raise ValueError(f"how: unknown way to close {how!r}")


def _to_feedback(w, record: bool = True) -> None:
    """A cued run (its trial count from the wizard; recorded to a file or not), training, the
    profile saved, the feedback page."""
    w.device.connect_source()
    wait_until(lambda: w.device.isComplete() and w.device.connect_btn.isEnabled(), 60)
    w.next()  # signal check
    w.next()  # instructions
    w.instructions.record.setChecked(record)
    w.next()  # cued recording
    w.acquisition.start_btn.click()
    wait_until(w.acquisition.isComplete, 60)
    w.next()  # training
    wait_until(lambda: w.training.isComplete() or "failed" in w.training.msg.text(), 120)
    assert w.training.isComplete(), w.training.msg.text()
    w.next()  # results
    w.results.save_btn.click()
    assert w.results.isComplete(), w.results.saved.text()
    w.next()  # feedback
    assert w.currentPage() is w.feedback


# --------------------------------------------------------------------------- 1: ask first
@pytest.mark.parametrize("how", ["cancel", "escape", "close button"])
def test_closing_during_a_cued_run_asks_first(make_wizard, how):
    """Cancel, Esc or the close button in the middle of the cued run ended it at once: the
    trials so far were lost. Now the wizard asks, naming them and the recording file that is
    kept; No leaves the run going, Yes stops it as before (the file closed, the source
    released)."""
    w = make_wizard(trials_per_class=10)  # a run long enough to still be going
    c = w.controller
    asked = _answering(w, False)
    to_cued_recording(w)
    w.acquisition.start_btn.click()
    wait_until(lambda: c.protocol.n_done >= 2, 60)
    n, rec = c.protocol.n_done, c.recording_path
    assert c.acquiring and rec is not None

    _close(w, how)  # the user says No
    assert len(asked) == 1, asked
    title, question = asked[0]
    assert title == "Cued run in progress"
    assert f"A cued run is in progress: {n} trials so far would be lost" in question
    assert f"the recording file {rec} is kept" in question and "Close anyway?" in question
    assert w.isVisible() and not c.closed and c.acquiring and c.recorder is not None
    wait_until(lambda: c.protocol.n_done > n, 60)  # the run goes on

    asked_yes = _answering(w, True)
    _close(w, how)  # the user says Yes
    assert len(asked_yes) == 1 and asked_yes[0][0] == "Cued run in progress"
    assert not w.isVisible() and c.closed and c.source is None and c.recorder is None
    assert rec.is_file() and rec.stat().st_size > 0  # the recording is kept


def test_closing_with_nothing_running_asks_nothing(make_wizard):
    """A finished cued run (not saved as a profile yet) is not a run in progress: the close
    button closes at once, as before."""
    w = make_wizard(trials_per_class=2)
    c = w.controller
    asked = _answering(w, False)
    to_cued_recording(w)
    w.acquisition.start_btn.click()
    wait_until(w.acquisition.isComplete, 60)
    _close(w, "close button")
    assert asked == [] and not w.isVisible() and c.closed and c.source is None


def test_closing_during_training_asks_first(make_wizard):
    """Esc while the model trains cancelled the training without a word. Now the wizard asks
    (the run's trials and the training would be lost, the recording file is kept); No lets it
    train on, Yes cancels it as before."""
    w = make_wizard(pretrained=PRETRAINED_EEGNET, trials_per_class=3, finetune_epochs=5000)
    c = w.controller
    asked = _answering(w, False)
    to_cued_recording(w)
    w.acquisition.start_btn.click()
    wait_until(w.acquisition.isComplete, 60)
    reports = []
    c.trained.connect(lambda res, err: reports.append(err))
    w.next()  # training (a long fine-tuning)
    wait_until(lambda: c._train_thread is not None and c._train_thread.is_alive(), 10)
    thread = c._train_thread

    _close(w, "escape")  # No
    assert len(asked) == 1, asked
    title, question = asked[0]
    assert title == "Training in progress"
    assert "trained on the cued run's 6 trials: the training would be lost" in question
    assert f"the recording file {c.recording_path} is kept, with the trials" in question
    assert w.isVisible() and not c.closed and w.currentPage() is w.training
    assert thread.is_alive() and c.running_job == "calibration-training"

    _answering(w, True)
    _close(w, "close button")  # Yes
    assert not w.isVisible() and c.closed
    thread.join(10.0)  # a cancelled job ends within one training batch
    assert not thread.is_alive() and reports == []  # and reports nothing


def test_closing_during_a_feedback_run_or_its_model_update_asks_first(make_wizard):
    """The close button or Finish during a feedback run, and Esc while the co-adaptive update
    trains, ended them without a word. Now the wizard asks, naming the run's trials (and the
    update planned with them) and the saved profile that is kept."""
    from bci_app.profiles import PROFILE_JSON

    w = make_wizard(pretrained=PRETRAINED_EEGNET, trials_per_class=3, finetune_epochs=1)
    c, fb = w.controller, w.feedback
    _to_feedback(w)
    profile = c.profile_path
    n_saved = json.loads((profile / PROFILE_JSON).read_text())["n_trials"]
    fb.trials.setValue(3)
    fb.coadapt.setChecked(True)
    asked = _answering(w, False)
    fb.start_btn.click()
    wait_until(lambda: c.protocol.n_done >= 1, 60)
    n = c.protocol.n_done
    assert c.mode in ("feedback", "tail-feedback")

    _close(w, "close button")  # No
    _close(w, "finish")  # No
    assert len(asked) == 2 and asked[0] == asked[1], asked
    title, question = asked[0]
    assert title == "Feedback run in progress"
    assert (f"A feedback run is in progress: {n} trial{'s' if n > 1 else ''} so far and the "
            "co-adaptive update of your model with them would be lost") in question
    assert f"the saved profile {profile} is kept as it is" in question
    assert w.isVisible() and not c.closed and c.mode in ("feedback", "tail-feedback")

    fb.coadapt.setChecked(False)  # (the update is started below, a long one)
    wait_until(lambda: fb.runs_done == 1, 60)  # the run went on to its end
    assert len(c.feedback_hits) == 6
    c.coadapt(finetune_epochs=5000)
    thread = c._train_thread
    _close(w, "escape")  # No
    assert len(asked) == 3 and asked[2][0] == "Model update in progress", asked
    assert "being updated with the feedback run's trials: the update would be lost" in asked[2][1]
    assert f"the saved profile {profile} is kept without it" in asked[2][1]
    assert w.isVisible() and thread.is_alive() and c.running_job == "coadapt"

    asked = _answering(w, True)
    _close(w, "cancel")  # Yes
    assert len(asked) == 1 and not w.isVisible() and c.closed
    thread.join(10.0)
    assert not thread.is_alive()
    assert json.loads((profile / PROFILE_JSON).read_text())["n_trials"] == n_saved  # unchanged


# --------------------------------------------------------------------------- 2: feedback data
def test_a_feedback_run_longer_than_the_buffer_keeps_its_first_trials(make_wizard):
    """The co-adaptive update cut the feedback run from the source's ring buffer once it had
    ended: a run longer than the buffer (900 s) lost its first trials, and the update used only
    the last ones without a word. Here the buffer holds 20 s and the run lasts about 50 s."""
    from bci_app.profiles import PROFILE_JSON

    w = make_wizard(trials_per_class=3)
    c, fb = w.controller, w.feedback
    c.buffer_seconds = 20.0
    _to_feedback(w, record=False)  # (the XDF recorder has its own reader)
    assert c.source.buffer.capacity <= 20 * c.source.info.sfreq + 1
    cued_ts = c.calib_data[1]  # (copied chunk by chunk: one pump at max speed made > 20 s)
    assert cued_ts[0] <= c.calib_cues[0][0] - 2.0 and (np.diff(cued_ts) < 1.0).all()
    assert c.epochs.X.shape[0] == 6
    fb.trials.setValue(3)
    fb.coadapt.setChecked(True)
    fb.start_btn.click()
    wait_until(lambda: fb.runs_done == 1, 90)
    assert len(c.feedback_hits) == 6
    wait_until(lambda: fb.updates_done == 1 or "failed" in fb.status.text(), 120)
    assert fb.updates_done == 1, fb.status.text()
    assert c.result.n_trials == 6 + 6, "the update lost feedback trials"
    assert "model updated with 12 trials" in fb.status.text()
    meta = json.loads((c.profile_path / PROFILE_JSON).read_text())
    assert meta["n_trials"] == 12 and meta["feedback_runs"] == 1

    data, ts = c.feedback_data
    cues = [m.timestamp for m in c.source.markers.since(c._fb_m0) if m.label.startswith("cue/")]
    assert len(cues) == 6
    assert ts[-1] - ts[0] > 40.0 and ts[0] <= cues[0] - 2.0  # the whole run, from its start
    assert len(data) == len(ts) and (np.abs(np.diff(ts)) < 1.0).all()  # no sample missing
