"""The calibration wizard when the user goes Back, Cancels or closes the main window while
something runs: a simulated subject (real EEGMMIDB EEG) at max speed and the shipped pretrained
bundles, driven offscreen.

Waits use :func:`tests.ui.fakes.wait_until` (events + sleeps with the GIL released): training
runs on a Python thread that ``QTest.qWait`` would starve.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.ui.fakes import process_events_for, wait_until

from .conftest import to_cued_recording as _to_cued_recording

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED_EEGNET = ROOT / "decoders" / "pretrained" / "mi_left_right_eegnet_ea"


def _record(w, timeout: float = 60) -> None:
    w.acquisition.start_btn.click()
    wait_until(w.acquisition.isComplete, timeout)


def _back_button(w):
    from PySide6 import QtWidgets

    return w.button(QtWidgets.QWizard.WizardButton.BackButton)


def test_back_during_cued_recording_aborts_the_run_and_resets_the_page(make_wizard):
    w = make_wizard(trials_per_class=3)
    c = w.controller
    _to_cued_recording(w)
    cues = []
    c.cue.connect(lambda cls, i: cues.append((cls, i)))
    w.acquisition.start_btn.click()
    assert not _back_button(w).isEnabled()  # Back is off while the run goes
    wait_until(lambda: c.protocol.n_done >= 1, 30)
    w.back()  # (programmatic, as a keyboard shortcut would)
    assert w.currentPage() is w.instructions
    assert c.protocol.state.value == "aborted" and c.mode == "idle"
    n_cues = len(cues)
    process_events_for(0.5)
    assert len(cues) == n_cues, "cues kept firing on the Instructions page"
    assert c.calib_cues == [] and c.calib_data is None
    assert c.recorder is None  # the aborted run's file is closed

    w.next()  # back on the cued recording: a fresh start is possible
    page = w.acquisition
    assert page.start_btn.isEnabled() and not page.pause_btn.isEnabled()
    assert not page.isComplete() and page.info.text() == "not started"
    _record(w)
    assert page.finished == "done" and c.counts() == {"left": 3, "right": 3}
    assert _back_button(w).isEnabled()  # once finished, Back works again


def test_back_after_recording_keeps_the_run_unless_the_trial_count_changes(make_wizard):
    w = make_wizard(trials_per_class=3)
    c = w.controller
    _to_cued_recording(w)
    _record(w)
    first = c.calib_data
    w.back()
    w.next()  # nothing changed: the finished run stays
    assert w.acquisition.isComplete() and c.calib_data is first
    assert c.counts() == {"left": 3, "right": 3}
    w.back()
    w.instructions.trials.setValue(4)
    w.next()  # another trial count: the earlier run no longer applies
    page = w.acquisition
    assert not page.isComplete() and page.start_btn.isEnabled()
    assert c.calib_data is None and c.counts() == {"left": 0, "right": 0}
    _record(w)
    assert c.counts() == {"left": 4, "right": 4}


def test_back_then_next_during_training_restarts_it_without_an_error(make_wizard):
    """Back from Training and Next again while the first job runs: no 'training already
    running' from initializePage; the first job is cancelled and the second one reports."""
    w = make_wizard(pretrained=PRETRAINED_EEGNET, trials_per_class=3, finetune_epochs=2000)
    c = w.controller
    _to_cued_recording(w)
    _record(w)
    reports = []
    c.trained.connect(lambda res, err: reports.append((res, err)))
    w.next()  # training (a long fine-tuning)
    wait_until(lambda: c._train_thread is not None and c._train_thread.is_alive(), 10)
    first = c._train_thread
    w.back()
    assert w.currentPage() is w.acquisition
    w.training.finetune_epochs = 1
    w.next()  # raised "training already running" before the fix
    assert w.currentPage() is w.training and not w.training.isComplete()
    wait_until(w.training.isComplete, 120)
    assert not first.is_alive()
    assert len(reports) == 1 and reports[0][1] == ""  # only the second job reported
    assert reports[0][0].settings["finetune_epochs"] == 1
    assert c.result is reports[0][0]


def test_cancel_during_training_returns_at_once_and_the_thread_ends(make_wizard):
    """Cancel used to join the training thread on the GUI thread for 10 s, then the process
    aborted at exit ('terminate called without an active exception')."""
    w = make_wizard(pretrained=PRETRAINED_EEGNET, trials_per_class=3, finetune_epochs=5000)
    c = w.controller
    _to_cued_recording(w)
    _record(w)
    reports = []
    c.trained.connect(lambda res, err: reports.append(err))
    w.next()
    wait_until(lambda: c._train_thread is not None and c._train_thread.is_alive(), 10)
    process_events_for(1.0)  # well inside the fine-tuning
    thread = c._train_thread
    assert thread.is_alive() and not thread.daemon  # the interpreter waits for it at exit
    t0 = time.perf_counter()
    w.reject()  # Cancel
    assert time.perf_counter() - t0 < 1.0, "Cancel blocked the GUI thread"
    thread.join(10.0)  # a cancelled job ends within one training batch
    assert not thread.is_alive()
    process_events_for(0.2)
    assert reports == []  # a cancelled job reports nothing
    assert c.closed and c.source is None
    assert [t for t in threading.enumerate() if t.name == "calibration-training"] == []


def test_calibrate_stops_when_its_cancel_flag_is_set():
    """The flag the wizard sets: decoders.calibration.calibrate checks it between steps and
    before every forward pass of a deep model's fine-tuning."""
    import numpy as np

    from decoders.bundle import load_bundle
    from decoders.calibration import CalibrationCancelled, calibrate

    b = load_bundle(PRETRAINED_EEGNET)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, len(b.channels), b.n_times)).astype(np.float32) * 1e-5
    y = np.array([0, 1] * 4)
    cancel = threading.Event()
    steps = []

    def progress(f, msg):
        steps.append(msg)
        if msg == "starting":  # set from another thread, in the middle of the fine-tuning
            threading.Timer(0.5, cancel.set).start()

    t0 = time.perf_counter()
    with pytest.raises(CalibrationCancelled, match="cancelled"):
        calibrate(X, y, b, finetune_epochs=100_000, cv_folds=2, progress=progress,
                  cancel=cancel)
    assert time.perf_counter() - t0 < 10.0
    assert steps == ["starting"]  # stopped inside the first fold's fine-tuning
    # the pretrained decoder keeps no hook: calibrating again without a flag works
    cancel.clear()
    res = calibrate(X, y, b, finetune_epochs=1, cv_folds=2, cancel=cancel)
    assert res.n_trials == 8
    assert all(not m._forward_pre_hooks for m in res.adapted.decoder.net_.modules())


def test_closing_the_main_window_asks_before_ending_a_calibration(make_window):
    """The wizard is a child of the main window: closing the window used to end a running
    calibration silently. Now it asks (answer injected here) and shuts the wizard down."""
    win = make_window("synthetic")
    win.open_calibration_wizard()
    w, c = win.wizard, win.wizard.controller
    asked = []
    win.confirm = lambda title, text: asked.append(text) or False
    _to_cued_recording(w)
    w.acquisition.start_btn.click()
    assert c.mode == "acquisition"
    win.close()  # the user says no
    assert asked and "calibration" in asked[0].lower()
    assert win.isVisible() and w.isVisible() and c.mode == "acquisition"
    win.confirm = lambda title, text: True
    win.close()  # the user says yes
    assert not win.isVisible() and not w.isVisible()
    assert c.closed and c.source is None and c.recorder is None


def test_next_waits_while_the_source_reconnects(make_wizard):
    """Connect pressed again on the device page: Next stayed enabled on the old source while the
    new one connected (and Next then ran the signal check on a source being closed)."""
    from PySide6 import QtWidgets

    w = make_wizard()
    next_btn = w.button(QtWidgets.QWizard.WizardButton.NextButton)
    w.device.connect_source()
    wait_until(lambda: w.device.connect_btn.isEnabled(), 60)
    assert w.device.isComplete() and next_btn.isEnabled()
    w.device.connect_source()  # again (another source or speed)
    assert not w.device.isComplete() and not next_btn.isEnabled()
    wait_until(lambda: w.device.connect_btn.isEnabled(), 60)
    assert w.device.isComplete() and next_btn.isEnabled()
