"""Two user-facing defects: the calibration wizard's new profile was not used by the main window
on Finish, and the main window did not fit a 1366×768 laptop screen once the speller was open.

The wizard runs as the main window opens it (Tools ▸ Calibration wizard…), on a simulated subject
(real EEGMMIDB EEG) at max speed. Waits use :func:`tests.ui.fakes.wait_until`: training runs on a
Python thread that ``QTest.qWait`` would starve.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.ui.fakes import process_events_for, record_cued_trials, wait_until

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED_CSP = ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"

#: A common laptop screen; the window must fit its width, whatever docks are open.
LAPTOP_WIDTH, LAPTOP_HEIGHT = 1366, 768


# --------------------------------------------------------------------------- 1: wizard profile
@pytest.fixture
def profiles_dir(tmp_path, monkeypatch):
    """Profiles the wizard saves go to a temporary folder (never the repository's)."""
    folder = tmp_path / "profiles"
    monkeypatch.setenv("BCI_APP_PROFILES_DIR", str(folder))
    return folder


def _wizard_to_saved_profile(win):
    """Open the wizard from the main window and go, as a user would, to a saved profile and the
    last page (simulated subject 2 at max speed, 3 trials per class, a short fine-tuning)."""
    from PySide6 import QtWidgets

    win.open_calibration_wizard()
    w, c = win.wizard, win.wizard.controller
    w.device.source.setCurrentText("simulated:2")
    w.device.speed.setCurrentText("max")
    w.device.user.setText("session9")
    record_cued_trials(w, 3)
    w.training.finetune_epochs = 1
    w.next()  # training
    wait_until(w.training.isComplete, 180)
    w.next()  # results
    w.results.save_btn.click()
    assert c.profile_path is not None and (c.profile_path / "profile.json").is_file()
    w.next()  # online feedback: the last page
    assert w.currentPage() is w.feedback
    assert w.button(QtWidgets.QWizard.WizardButton.FinishButton).isVisible()
    return w, c


def test_finish_loads_the_saved_profile_into_the_main_window(make_window, profiles_dir):
    from PySide6 import QtWidgets

    win = make_window("synthetic")
    assert win.bundle is None
    w, c = _wizard_to_saved_profile(win)
    profile = c.profile_path
    assert profile.parent == profiles_dir
    page = w.feedback
    offered = [(b.isVisible(), b.isEnabled(), b.isChecked(), b.text())
               for b in page.findChildren(QtWidgets.QCheckBox) if "main window" in b.text()]

    w.button(QtWidgets.QWizard.WizardButton.FinishButton).click()  # left as it was offered
    assert not w.isVisible() and c.closed
    wait_until(lambda: win.bundle is not None, 60)  # loaded on a background thread
    assert Path(win.settings.last_model) == profile
    assert win.bundle.classes == c.result.classes
    assert "profile session9" in (win.prediction.model_name or "")
    assert "profile session9" in win.controls.model_label.text()
    # the last page offered it, checked by default, with nothing to explain
    assert offered == [(True, True, True, "Use this profile in the main window when I finish")]
    assert not page.use_profile_note.isVisibleTo(page)


def test_cancel_leaves_the_main_window_model_alone(make_window, profiles_dir):
    from PySide6 import QtWidgets

    win = make_window("synthetic")
    assert win.load_model(str(PRETRAINED_CSP))
    before, last = win.bundle, win.settings.last_model
    w, c = _wizard_to_saved_profile(win)
    assert w.feedback.use_profile.isChecked()

    w.button(QtWidgets.QWizard.WizardButton.CancelButton).click()
    assert not w.isVisible() and c.closed
    process_events_for(1.5)  # a load would run on a background thread: give it time
    assert win.bundle is before and win.settings.last_model == last
    assert not any(call.name == "gui-load-model" for call in win._background)


def test_the_option_is_explained_or_hidden_when_it_cannot_apply(make_window, gui):
    """No saved profile: disabled, with the reason. A stand-alone wizard (no main window): not
    offered at all, and Finish hands nothing on."""
    from ui.wizard import CalibrationWizard

    win = make_window("synthetic", show=False)
    loaded = []
    wiz = CalibrationWizard(win, source_spec="simulated:2", pretrained=str(PRETRAINED_CSP),
                            use_profile=loaded.append)
    try:
        page = wiz.feedback  # (as the last page shows it; not driven there: nothing saved)
        page.refresh_use_profile()
        assert page.use_profile.isVisibleTo(page) and not page.use_profile.isEnabled()
        assert page.use_profile_note.isVisibleTo(page)
        assert "No profile saved" in page.use_profile_note.text()
        assert wiz.profile_to_use is None
        wiz.controller.profile_path = Path("/somewhere/profile")  # as if one had been saved
        page.refresh_use_profile()
        assert page.use_profile.isEnabled() and not page.use_profile_note.isVisibleTo(page)
        assert wiz.profile_to_use == Path("/somewhere/profile")
        page.use_profile.setChecked(False)  # the user does not want it
        assert wiz.profile_to_use is None
        wiz.accept()
        assert loaded == []
    finally:
        wiz.close()

    alone = CalibrationWizard(None, source_spec="simulated:2", pretrained=str(PRETRAINED_CSP))
    try:
        alone.feedback.refresh_use_profile()
        assert not alone.feedback.use_profile.isVisibleTo(alone.feedback)
        alone.controller.profile_path = Path("/somewhere/profile")  # as if one had been saved
        assert alone.profile_to_use is None
    finally:
        alone.close()
    with pytest.raises(TypeError, match="use_profile"):
        CalibrationWizard(None, use_profile="load it")


# --------------------------------------------------------------------------- 2: laptop screen
def _smallest_size(win) -> tuple[int, int]:
    """The size the window really takes when asked to be tiny (its effective minimum)."""
    win.resize(400, 300)
    process_events_for(0.3)
    return win.width(), win.height()


def _assert_fits_a_laptop(win) -> None:
    hint = win.minimumSizeHint()
    assert hint.width() <= LAPTOP_WIDTH and win.minimumSize().width() <= LAPTOP_WIDTH, hint
    width, height = _smallest_size(win)
    assert width <= LAPTOP_WIDTH and height <= LAPTOP_HEIGHT, (width, height)
    win.resize(1280, 720)
    process_events_for(0.3)
    assert (win.width(), win.height()) == (1280, 720)


def _assert_tool_row_whole(scope) -> None:
    """Every control of the scope's tool row lies inside the scope, above the plot."""
    plot_top = scope.plot_widget.geometry().top()
    for i in range(scope.tool_row.count()):
        group = scope.tool_row.itemAt(i).widget()
        g = group.geometry()
        assert scope.rect().contains(g) and g.bottom() < plot_top, (i, g, scope.rect(), plot_top)
        assert g.width() >= group.sizeHint().width()


def test_the_window_fits_a_laptop_screen_with_the_speller_open(make_window):
    from PySide6 import QtCore

    from ui.status import StatusSnapshot

    win = make_window("synthetic")
    wait_until(lambda: win.source is not None and win.source.connected, 20)
    process_events_for(0.3)
    _assert_fits_a_laptop(win)  # without the speller

    win.open_speller()
    wait_until(lambda: win.speller is not None, 90)  # the language model builds off-thread
    process_events_for(0.5)
    _assert_fits_a_laptop(win)  # was 1506 px wide (and 838 px high) at the least
    bottom = QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
    assert win.dockWidgetArea(win.speller_dock) == bottom  # under the plots, beside the spectrum
    assert win.spectrum_dock.isVisible() and win.dockWidgetArea(win.spectrum_dock) == bottom

    # the longest texts of the decoder panel and the status bar wrap or are shortened
    win.slow_timer.stop()  # (the 4 Hz status update would overwrite the snapshot below)
    win.prediction.set_model("profile alice (adapted eegnet)", ("left", "right"))
    win.prediction.set_alignment_progress(3, 20, 10.0)
    win.prediction.command.setText("(the model returned non-finite probabilities for this "
                                   "window (degenerate signal))")
    long_name = "calibration_alice_session3_run2_feet_hands.xdf"
    win.status.update(StatusSnapshot(
        state="streaming", rate=250.0, nominal_rate=250.0, decoding=True, decoder_p50_ms=12.3,
        decoder_p99_ms=45.6, skipped_windows=3, recording_bytes=123_456_789,
        recording_elapsed=3725.0, recording_path=f"/home/alice/recordings/{long_name}"))
    assert "…" in win.status.record_label.text()  # the full path is in the tooltip
    assert win.status.record_label.toolTip().endswith(long_name)
    _assert_fits_a_laptop(win)

    # at the smallest size nothing is cut: the scope's tools wrap, the speller scrolls
    _smallest_size(win)
    _assert_tool_row_whole(win.scope)
    view = win.speller
    assert view.content.width() <= view.scroll.viewport().width()
    assert view.content.minimumSizeHint().width() <= view.scroll.viewport().width()
    win.resize(1366, 768)
    process_events_for(0.3)
    _assert_tool_row_whole(win.scope)
    assert view.content.height() <= view.scroll.viewport().height()  # no scrolling needed here


def test_first_start_fits_the_screen_and_gives_the_scope_most_of_the_height(make_window,
                                                                            qtbot):
    """With no saved layout the window was 1500 x 950 whatever the screen (off the edges of a
    1366 x 768 laptop) and the spectrum dock took about half of the height, more than the
    scope's."""
    from tests.ui.fakes import SimulatedSource, wait_streaming

    win = make_window(source=SimulatedSource(8, 250.0))
    wait_streaming(qtbot, win)
    process_events_for(0.3)
    avail = win.screen().availableGeometry()
    assert win.width() <= avail.width() and win.height() <= avail.height(), \
        (win.size(), avail)
    spectrum = win.spectrum_dock.height()
    assert spectrum <= 0.3 * win.height() and win.scope.height() > 1.5 * spectrum, \
        (spectrum, win.scope.height(), win.height())
    assert win.default_size()[1] <= avail.height() - 40


def test_the_wizard_borrows_the_main_windows_board_and_gives_it_back(make_window, qtbot,
                                                                      profiles_dir,
                                                                      synthetic_pretrained):
    """An OpenBCI-style board open in the main window (BrainFlow's synthetic board by its
    brainflow: spec): the wizard's Connect failed with ANOTHER_BOARD_IS_CREATED (one session
    per board). The window now lets go of it for the wizard and connects it again afterwards."""
    from tests.ui.fakes import wait_streaming

    # the app's connect timeout: BrainFlow keys a session by board and parameters (the timeout
    # among them), so with the wizard's 10 s both open the very same board, as with a real port
    win = make_window("brainflow:synthetic", connect_timeout=10.0)
    wait_streaming(qtbot, win)
    win.open_calibration_wizard()
    wiz, ctrl = win.wizard, win.wizard.controller
    assert win.session is None and "calibration wizard" in win.banner.label.text()
    assert wiz.device.source.currentText() == "brainflow:synthetic"
    wiz.device.pretrained.setText(str(synthetic_pretrained))  # a bundle for its channels
    wiz.device.connect_btn.click()
    wait_until(lambda: wiz.device.connect_btn.isEnabled(), timeout=30)
    assert "could not connect" not in wiz.device.status.text(), wiz.device.status.text()
    assert ctrl.source is not None and ctrl.source.connected
    n0 = ctrl.source.n_samples
    wait_until(lambda: ctrl.source.n_samples > n0 + 100, timeout=5)  # the wizard's own stream
    wiz.reject()  # Cancel: the board comes back to the main window
    wait_until(lambda: win.source is not None and win.source.state.value == "streaming",
               timeout=30)
    assert win.source_spec == "brainflow:synthetic" and ctrl.source is None


def test_a_replay_handed_to_the_window_plays_at_its_own_speed(make_window, qtbot,
                                                               eegmmidb_path):
    """MainWindow(source=ReplaySource(..., speed=60)) played at the speed box's 1x (the GUI soak
    crawled at ~1.2x); a replay opened from a spec still plays at the box's value."""
    import mne

    from acquisition.files import read_file
    from acquisition.replay import ReplaySource
    from tests.ui.fakes import wait_streaming

    path = mne.datasets.eegbci.load_data(1, [4], path=str(eegmmidb_path), update_path=False,
                                         verbose="error")[0]
    src = ReplaySource(read_file(path), speed=60.0)
    win = make_window(source=src)
    wait_streaming(qtbot, win)
    assert src.speed == 60.0 and win.controls.speed_combo.currentData() == 60.0
    n0, t0 = src.n_samples, time.monotonic()
    wait_until(lambda: src.n_samples - n0 > 160 * 30, timeout=10)  # 30 s of signal
    assert time.monotonic() - t0 < 5.0  # far faster than real time


def test_the_speller_opens_where_the_user_left_it(make_window, qtbot):
    """The speller dock is created on demand, after the window restored its saved layout, so it
    always came back in its default place, wherever the user had put it."""
    from PySide6 import QtCore

    from tests.ui.fakes import SimulatedSource, wait_streaming

    left = QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
    win = make_window(source=SimulatedSource(4, 250.0))
    wait_streaming(qtbot, win)
    win.open_speller()
    assert win.dockWidgetArea(win.speller_dock) == QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
    win.addDockWidget(left, win.speller_dock)  # the user drags it to the left column
    wait_until(lambda: win.speller is not None, timeout=60)
    win.close()

    win2 = make_window(source=SimulatedSource(4, 250.0))
    wait_streaming(qtbot, win2)
    win2.open_speller()
    process_events_for(0.2)
    assert win2.dockWidgetArea(win2.speller_dock) == left
    assert win2.speller_dock.isVisible()
