"""Speller view (offscreen Qt): predictions -> dwell -> commands -> text, layout and chars/min."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from bci_app.speller.engine import SpellerEngine
from bci_app.speller.simulation import SimulatedUser
from decoders.online import Prediction


def _pred(cls: str, t: float, classes=("left", "right")) -> Prediction:
    p = np.array([0.9, 0.1]) if cls == "left" else np.array([0.1, 0.9])
    return Prediction(window_end=t, probabilities=p, classes=tuple(classes), label=cls, seq=0,
                      smoothed=p)


def test_speller_view_follows_predictions(qtbot, lm):
    from ui.speller_view import SpellerView

    engine = SpellerEngine(lm, scheme="huffman")
    view = SpellerView(engine, dwell=0.5, refractory=0.5)
    qtbot.addWidget(view)
    view.show()
    texts = []
    view.textChanged.connect(texts.append)
    boxes = view.option_texts()
    assert len(boxes) == 2 and boxes[0][0].startswith("left") and boxes[1][0].startswith("right")
    assert "t" in boxes[0][1] + boxes[1][1]  # the likeliest first letter is on show
    # the simulated user writes "hi" through predictions: 0.1 s hop, dwell 0.5 s, refractory
    user = SimulatedUser("hi", use_completions=False)
    t = 0.0
    for _ in range(200):
        action = user.intend(engine)
        if action is None:
            break
        cls = "left" if action == 0 else "right"
        n = engine.n_commands
        while engine.n_commands == n:
            t += 0.1
            view.on_prediction(_pred(cls, t))
            assert 0 <= view.dwell_bar.value() <= 1000
        # rest between commands: below threshold, the dwell restarts
        for _ in range(6):
            t += 0.1
            view.on_prediction(Prediction(window_end=t, probabilities=np.array([0.5, 0.5]),
                                          classes=("left", "right"), label="left", seq=0,
                                          smoothed=np.array([0.5, 0.5])))
    assert engine.text == "hi"
    assert texts[-1] == "hi" and view.text_label.text().startswith("hi")
    assert view.chars_per_min > 0 and "chars/min" in view.status.text()
    assert f"{engine.n_commands} commands" in view.status.text()
    view.undo_button.click()
    assert engine.text == "h" and view.text_label.text().startswith("h")
    # the selection bar moves during a selection
    view.command("left")
    assert view.selection_bar.value() > 0


def test_speller_view_scan_and_posterior(qtbot, lm):
    from ui.speller_view import SpellerView

    for scheme in ("scan", "posterior"):
        engine = SpellerEngine(lm, scheme=scheme, accuracy=0.8)
        view = SpellerView(engine, classes=("left", "right"))
        qtbot.addWidget(view)
        before = view.option_texts()
        titles = [title for title, _ in before]
        assert len(titles) == 2
        if scheme == "scan":
            assert "next" in titles[0] and "select" in titles[1]
        assert view.selection_bar.value() == 0  # no command yet in this selection
        ev = view.command("right")
        # the command reached the engine: one level down (scan: into the ring; posterior: the
        # groups re-split around the new posterior), shown in the boxes and the bars
        assert ev.kind == "move" and ev.command == "right" and engine.n_commands == 1
        assert engine.path == [1] and engine.text == ""
        assert view.option_texts() != before
        assert 0 < view.selection_bar.value() < 1000
        assert view.selection_bar.value() == int(1000 * engine.selection_progress)
        assert "1 commands" in view.status.text()


def test_speller_view_follows_a_model_change(qtbot, lm):
    """Another bundle loaded while the speller is open: a model with other classes used to make
    every prediction raise ConfigError inside the slot; one the command map does not fit is now
    explained on the hint line and ignored, and a fitting one is used from a fresh dwell."""
    from ui.speller_view import SpellerView

    engine = SpellerEngine(lm, scheme="huffman")
    view = SpellerView(engine, dwell=0.3, refractory=0.5)
    qtbot.addWidget(view)
    for k in range(3):  # 0.2 s of a left dwell from the first model
        view.on_prediction(_pred("left", 10.0 + 0.1 * k))
    assert view.input.candidate == "left" and engine.n_commands == 0

    three = ("left", "right", "feet")  # the map (left, right) fits: a new input
    p3 = Prediction(window_end=10.3, probabilities=np.array([0.9, 0.05, 0.05]), classes=three,
                    label="left", seq=0, smoothed=np.array([0.9, 0.05, 0.05]))
    view.on_prediction(p3)
    assert view.input.classes == three and engine.n_commands == 0  # the dwell started over

    other = ("rest", "move")  # the map does not fit: said once, predictions ignored
    for k in range(5):
        view.on_prediction(_pred("left", 11.0 + 0.1 * k, classes=other))
    assert view.input is None and engine.n_commands == 0
    assert "cannot use this model" in view.hint.text() and "left" in view.hint.text()

    for k in range(5):  # back to a left/right model: the usual hint, commands again
        view.on_prediction(_pred("left", 12.0 + 0.1 * k))
    assert view.hint.text() == view.hint_text() and engine.n_commands == 1
