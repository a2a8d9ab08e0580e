"""Guidance the GUI gives: speller hint, profile labels, signal-check note, feedback target."""

from __future__ import annotations

import pytest


def test_speller_hint_comes_from_the_rule(gui, qtbot):
    from bci_app.speller.engine import SpellerEngine
    from bci_app.speller.lm import LanguageModel
    from ui.speller_view import SpellerView

    view = SpellerView(SpellerEngine(LanguageModel("en", n_words=2000)), threshold=0.8, dwell=1.5,
                       refractory=1.0)
    qtbot.addWidget(view)
    hint = view.hint.text()
    assert "LEFT or RIGHT" in hint
    assert "≥ 80 %" in hint and "1.5 s" in hint
    assert view.dwell_bar.text() == "dwell: ≥ 80 % for 1.5 s"


def _fake_profile(root, bundle_path, user="alice"):
    """A profile folder as bci_app.profiles lays it out (profile.json + bundle/)."""
    import json
    import shutil

    folder = root / user
    shutil.copytree(bundle_path, folder / "bundle")
    (folder / "profile.json").write_text(json.dumps(
        {"format_version": 1, "user": user, "chosen": "adapted", "classes": ["left", "right"]}))
    return folder


def test_loaded_profile_is_named_as_a_profile(make_window, gui_bundle_path, tmp_path,
                                              monkeypatch):
    monkeypatch.setenv("BCI_APP_PROFILES_DIR", str(tmp_path / "profiles"))
    folder = _fake_profile(tmp_path / "profiles", gui_bundle_path)
    win = make_window(show=False)
    assert win.load_model(str(gui_bundle_path))
    assert not win.prediction.model_label.text().count("profile")
    assert win.load_model(str(folder))
    assert "profile alice (adapted " in win.prediction.model_label.text()
    assert win.controls.model_label.text().startswith("profile alice (adapted ")


def test_model_dialog_offers_profiles(make_window, tmp_path, monkeypatch):
    from pathlib import Path

    profiles = tmp_path / "profiles"
    monkeypatch.setenv("BCI_APP_PROFILES_DIR", str(profiles))
    (profiles / "bob").mkdir(parents=True)
    (profiles / "bob" / "profile.json").write_text("{}")
    win = make_window(show=False)
    win.settings.last_model = ""
    dlg = win.model_dialog()
    sidebar = [Path(u.toLocalFile()) for u in dlg.sidebarUrls()]
    assert profiles.resolve() in sidebar
    assert Path(dlg.directory().absolutePath()) == profiles.resolve()
    dlg.deleteLater()


class _Ctrl:
    """The controller surface SignalCheckPage uses, without a source (refresh draws nothing)."""

    source = None

    def __init__(self, spec: str) -> None:
        self.source_spec = spec

    def start_signal(self) -> None:
        pass


@pytest.mark.parametrize("spec, shown", [("simulated:7", True), ("file:/tmp/s1.xdf", True),
                                         ("simulated", True), ("synthetic", False),
                                         ("brainflow:cyton:/dev/ttyUSB0", False)])
def test_signal_check_says_recorded_data_is_not_contact(gui, qtbot, spec, shown):
    from ui.wizard.pages import SignalCheckPage

    page = SignalCheckPage(_Ctrl(spec))
    qtbot.addWidget(page)
    page.show()
    page.initializePage()
    assert page.recorded_note.isVisible() is shown
    assert "not electrode contact" in page.recorded_note.text()
    page.cleanupPage()


def test_feedback_label_stays_visible_over_the_ball(gui, qtbot):
    import numpy as np

    from ui.prediction import FeedbackView

    view = FeedbackView()
    qtbot.addWidget(view)
    view.resize(300, 200)
    view.set_targets(("left", "right"), np.array([[-1.0, 0.0], [1.0, 0.0]]))
    for name, pos in (("left", [-1.0, 0.0]), ("right", [1.0, 0.0])):
        view.set_position(np.array(pos))
        label = view.label_rect(name)
        assert view.rect().toRectF().contains(label)
        assert not label.intersects(view.ball_rect())
    view.grab()  # paints without error


def test_feedback_ball_greys_when_the_run_ends(gui, qtbot):
    import numpy as np
    from PySide6 import QtCore

    from ui.wizard.pages import FeedbackPage

    class Ctrl(QtCore.QObject):
        prediction = QtCore.Signal(object)
        protocolState = QtCore.Signal(str, int)
        cue = QtCore.Signal(str, int)
        feedbackTrial = QtCore.Signal(str, str, bool)
        feedbackFinished = QtCore.Signal(float)
        coadapted = QtCore.Signal(object, str)
        feedback_hits: list = []

        def start_feedback(self, n: int) -> None:
            pass

    page = FeedbackPage(Ctrl())
    qtbot.addWidget(page)
    page.view.set_targets(("left", "right"), np.array([[-1.0, 0.0], [1.0, 0.0]]))
    page.active = True
    page.view.set_position(np.array([0.9, 0.0]), True)
    assert page.view.active
    page._finished(0.8)
    assert not page.view.active
    assert "run 1 done" in page.status.text()
