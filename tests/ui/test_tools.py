"""The main window's Tools menu: calibration wizard and speller, wired to the live decoder."""

from __future__ import annotations

import numpy as np

from decoders.online import Prediction
from tests.ui.fakes import wait_until


def test_tools_menu_opens_wizard_and_speller(make_window, qtbot):
    win = make_window("synthetic")
    titles = [a.text() for a in win.menuBar().actions()]
    assert "&Tools" in titles
    win.open_calibration_wizard()
    assert win.wizard is not None and win.wizard.isVisible()
    assert win.wizard.windowTitle().startswith("bci_app")
    win.wizard.close()

    win.open_speller()
    assert win.speller_dock.isVisible()
    wait_until(lambda: win.speller is not None, 30)  # the language model builds off-thread
    view = win.speller
    assert win.speller_dock.widget() is view
    before = view.engine.stats()
    # predictions arriving from the decoder thread reach the speller through the queued bridge
    for i in range(40):
        win.prediction_bridge.predicted.emit(Prediction(
            window_end=float(i) * 0.1, probabilities=np.array([0.95, 0.05]),
            classes=("left", "right"), label="left", seq=i,
            smoothed=np.array([0.95, 0.05])))
    qtbot.waitUntil(lambda: view.engine.stats() != before, timeout=5000)


def test_a_closed_speller_dock_writes_nothing(make_window, qtbot):
    """Closing the speller's dock only hides it: decoder predictions still drove the engine
    (a review wrote 'the the the ' with 600 predictions into a closed speller)."""
    win = make_window("synthetic")
    win.open_speller()
    wait_until(lambda: win.speller is not None, 30)
    view = win.speller

    def feed(n: int, t0: float) -> None:
        for i in range(n):
            win.prediction_bridge.predicted.emit(Prediction(
                window_end=t0 + i * 0.1, probabilities=np.array([0.95, 0.05]),
                classes=("left", "right"), label="left", seq=i,
                smoothed=np.array([0.95, 0.05])))

    win.speller_dock.close()
    qtbot.waitUntil(lambda: not view.active, timeout=5000)
    feed(200, 0.0)
    qtbot.wait(300)  # (the queued bridge delivers in the event loop)
    assert view.engine.n_commands == 0 and view.engine.text == ""
    win.open_speller()
    qtbot.waitUntil(lambda: view.active, timeout=5000)
    feed(60, 100.0)
    qtbot.waitUntil(lambda: view.engine.n_commands > 0, timeout=5000)
