"""Regression tests of review 9 (speller): refractory kept across unreliable windows, custom
command maps with ``spell --simulate``, layout weights validated at construction."""

from __future__ import annotations

import numpy as np
import pytest

from bci_app.errors import ConfigError
from bci_app.speller.control import SpellerInput
from bci_app.speller.engine import SpellerEngine
from decoders.online import Prediction


def _pred(t: float, p_left: float, reliable: bool = True) -> Prediction:
    p = np.array([p_left, 1 - p_left])
    return Prediction(window_end=t, probabilities=p, classes=("left", "right"),
                      label="left" if reliable else "unreliable", seq=0,
                      smoothed=p if reliable else None, reliable=reliable,
                      reason="" if reliable else "flat-line")


def test_unreliable_window_does_not_cancel_the_refractory_period(lm):
    engine = SpellerEngine(lm, scheme="huffman")
    inp = SpellerInput(engine, ["left", "right"], threshold=0.7, dwell=0.3, refractory=1.5)
    times = []
    for k in range(40):  # "left" held for 4 s, one artifact window just after the 1st command
        t = round(-0.3 + 0.1 * k, 3)
        if inp.on_prediction(_pred(t, 0.9, reliable=not 0.25 < t < 0.35)) is not None:
            times.append(t)
    assert times[0] == pytest.approx(0.0)
    # refractory 1.5 s, then a fresh 0.3 s dwell: never closer than 1.8 s
    assert np.diff(times) == pytest.approx([1.8] * (len(times) - 1))
    assert engine.n_commands == len(times)


def test_unreliable_window_still_breaks_the_dwell(lm):
    engine = SpellerEngine(lm, scheme="huffman")
    inp = SpellerInput(engine, ["left", "right"], threshold=0.7, dwell=0.5, refractory=1.0)
    for k in range(4):
        assert inp.on_prediction(_pred(0.1 * k, 0.9)) is None
    assert inp.candidate == "left" and inp.progress > 0
    inp.on_prediction(_pred(0.4, 0.9, reliable=False))
    assert inp.candidate is None and inp.progress == 0.0
    for k in range(5, 9):  # 0.5..0.8: the dwell restarts at 0.5, not at 0.0
        assert inp.on_prediction(_pred(0.1 * k, 0.9)) is None
    assert inp.on_prediction(_pred(1.0, 0.9)) is not None


def _spell_args(*argv: str):
    from bci_app.cli import build_parser

    return build_parser().parse_args(["spell", *argv])


def test_spell_simulate_accepts_a_custom_command_map():
    from bci_app.commands.spell import build_engine

    args = _spell_args("--simulate", "0.9", "--target", "hi", "--no-lm",
                       "--commands", "left=0,right=1,feet=undo")
    engine = build_engine(args, None, 0.9)
    assert engine.command_map == {"left": 0, "right": 1, "feet": "undo"}
    assert engine.undo_command and engine.arity == 2
    args = _spell_args("--simulate", "0.9", "--target", "hi", "--no-lm",
                       "--commands", "up=0,down=1")
    assert build_engine(args, None, 0.9).command_map == {"up": 0, "down": 1}
    # with a model, --commands must still name its classes
    with pytest.raises(ConfigError, match="not classes of the model"):
        build_engine(args, ["left", "right"], 0.9)


def test_spell_command_map_without_two_choices_is_a_config_error():
    from bci_app.commands.spell import build_engine

    args = _spell_args("--simulate", "0.9", "--target", "hi", "--no-lm",
                       "--commands", "left=undo,right=undo")
    with pytest.raises(ConfigError, match="--commands: at least two classes"):
        build_engine(args, None, 0.9)


def test_completion_and_undo_mass_must_leave_room_for_letters(lm):
    with pytest.raises(ConfigError, match="max_completion_mass \\+ undo_weight"):
        SpellerEngine(lm, max_completion_mass=0.8, undo_weight=0.3)
    # with an undo command there is no undo leaf: the same numbers are fine
    eng = SpellerEngine(lm, command_map={"left": 0, "right": 1, "feet": "undo"},
                        max_completion_mass=0.8, undo_weight=0.3, completion_weight=3.0,
                        text="t")
    _, w = eng.layout_weights()
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0)


def test_a_pause_in_the_predictions_restarts_the_dwell(lm):
    """Decoding stopped 0.4 s into a 1 s dwell and restarted minutes later: the first prediction
    of the new run used to complete the dwell at once (1 command from a single window)."""
    engine = SpellerEngine(lm, scheme="huffman")
    inp = SpellerInput(engine, ["left", "right"], threshold=0.7, dwell=1.0, refractory=1.5)
    for k in range(5):
        assert inp.on_prediction(_pred(100.0 + 0.1 * k, 0.9)) is None
    assert inp.on_prediction(_pred(400.0, 0.9)) is None  # a new run: the dwell starts here
    assert engine.n_commands == 0 and inp.progress == 0.0
    for k in range(1, 10):
        assert inp.on_prediction(_pred(400.0 + 0.1 * k, 0.9)) is None
    assert inp.on_prediction(_pred(401.0, 0.9)) is not None  # a full second of evidence
    # pauses up to max_gap keep the dwell (a worker skipping a window under load)
    inp2 = SpellerInput(engine, ["left", "right"], dwell=1.0, refractory=1.5, max_gap=0.5)
    for t in (10.0, 10.3, 10.7):
        assert inp2.on_prediction(_pred(t, 0.9)) is None
    assert inp2.on_prediction(_pred(11.0, 0.9)) is not None
    with pytest.raises(ConfigError, match="max_gap"):
        SpellerInput(engine, ["left", "right"], max_gap=0)


def test_a_clock_going_back_starts_the_input_over(lm):
    """After a command at stream time 5000 s (say a replayed file), a source whose clock reads
    10 s must not wait ~5000 s for the refractory period to end."""
    engine = SpellerEngine(lm, scheme="huffman")
    inp = SpellerInput(engine, ["left", "right"], threshold=0.7, dwell=0.3, refractory=1.5)
    fired = [t for t in (5000.0, 5000.1, 5000.2, 5000.3)
             if inp.on_prediction(_pred(t, 0.9)) is not None]
    assert fired == [5000.3]
    fired = [t for t in np.round(np.arange(10.0, 10.45, 0.1), 2)
             if inp.on_prediction(_pred(float(t), 0.9)) is not None]
    assert fired == [10.3]
