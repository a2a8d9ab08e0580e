"""Simulated users for the speller: a confusion matrix, or real EEG through the real decoder.

:class:`SimulatedUser` intends a target sentence. At every step it looks at the engine (the text,
the current node) and chooses the command that leads, by the shortest path, to an item keeping
the text a prefix of the target (a word completion when one fits, else the next letter); when the
text went wrong it heads for undo (the undo leaf, or the undo command when one is mapped); when an
error took it into a subtree without what it wants it finishes the selection by the shortest way
and undoes it next. It never looks ahead at future errors.

:func:`simulate` issues the intended command through a confusion matrix (rows: intended class,
columns: decoded class; e.g. the cross-validated confusion matrix of a calibrated decoder).

:func:`closed_loop` replaces the confusion matrix by the real thing: for each intended command it
cues a :class:`~acquisition.simulated.SimulatedSubjectSource` (which splices in a real recorded
EEGMMIDB trial of that class) and runs the source through a real
:class:`~decoders.online.DecoderWorker` with its :class:`~decoders.smoothing.DwellCommander`; the
first command the commander issues during the trial is applied to the speller. The loop is
*paced* (synchronous, as the Graz paradigm and the trials the decoders were trained on): a
command counts only inside a trial window; when the commander issues none, ``forced=True`` takes
the class with the highest mean smoothed probability over the imagery period (else the trial is
a miss and is repeated). Runs in the caller's thread at the source's max speed (manual
``acquire()``), so minutes of EEG are spelled in seconds; all times are on the stream clock.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bci_app.errors import ConfigError

from .engine import UNDO, Item, SpellerEngine
from .lm import LanguageModel

logger = logging.getLogger(__name__)


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def confusion_from_accuracy(accuracy: float, n_classes: int = 2) -> np.ndarray:
    """Symmetric confusion matrix: ``accuracy`` on the diagonal, the rest spread evenly."""
    if not 0 <= accuracy <= 1 or n_classes < 2:
        raise ConfigError(f"accuracy: expected in [0, 1] with >= 2 classes, got {accuracy}, "
                          f"{n_classes}.")
    off = (1 - accuracy) / (n_classes - 1)
    return np.full((n_classes, n_classes), off) + np.eye(n_classes) * (accuracy - off)


class SimulatedUser:
    """A user who wants to write ``target`` and knows the layout perfectly.

    Parameters
    ----------
    target : str
        What the user means to write (lower-case symbols of the engine's alphabet).
    use_completions : bool
        Select a fitting word completion when one is offered.
    """

    def __init__(self, target: str, use_completions: bool = True) -> None:
        self.target = target
        self.use_completions = use_completions

    def done(self, engine: SpellerEngine) -> bool:
        return engine.text == self.target

    def _goal(self, engine: SpellerEngine):
        text, target = engine.text, self.target
        if not target.startswith(text):
            return lambda it: it.kind == "undo"
        nxt = target[len(text)]
        word = LanguageModel.current_word(text)
        rest = target[len(text):]

        def fits(it: Item) -> bool:
            if it.kind == "char":
                return it.value == nxt
            if it.kind == "word" and self.use_completions:
                return rest.startswith(it.value[len(word):] + " ")
            return False

        return fits

    def intend(self, engine: SpellerEngine) -> int | str | None:
        """The command index (or ``"undo"``) the user issues next; None when done."""
        if self.done(engine):
            return None
        goal = self._goal(engine)
        wrong = not self.target.startswith(engine.text)
        if wrong and engine.undo_command:
            return UNDO  # cancels a selection in progress, or undoes at the root
        # prefer a completion over a letter when both are reachable
        path = None
        if not wrong and self.use_completions:
            text, word = engine.text, LanguageModel.current_word(engine.text)
            rest = self.target[len(text):]
            path = engine.path_to(lambda it: it.kind == "word"
                                  and rest.startswith(it.value[len(word):] + " "))
        if path is None:
            path = engine.path_to(goal)
        if path is None:  # an error led into a subtree without the goal
            if engine.undo_command:
                return UNDO
            path = engine.path_to(lambda it: it.kind != "undo") or engine.path_to(lambda it: True)
        return path[0]


@dataclass
class SimulationResult:
    """Outcome of one simulated sentence."""

    target: str
    text: str
    commands: int
    selections: int
    undos: int
    seconds: float
    command_accuracy: float  # fraction of issued commands equal to the intended ones
    n_classes: int
    finished: bool
    extra: dict = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return levenshtein(self.text, self.target)

    @property
    def error_rate(self) -> float:
        """Character error rate of the final text against the target."""
        return self.errors / max(1, len(self.target))

    @property
    def chars_per_min(self) -> float:
        """Correct characters per minute: ``(len(target) - edit distance) / minutes``."""
        if self.seconds <= 0:
            return float("nan")
        return max(0, len(self.target) - self.errors) / (self.seconds / 60.0)

    @property
    def itr_bits_per_min(self) -> float:
        """Wolpaw ITR of the command channel at the measured accuracy and command rate."""
        from decoders.pseudo_online import wolpaw_itr

        if self.commands == 0 or self.seconds <= 0:
            return 0.0
        return wolpaw_itr(min(1.0, self.command_accuracy), self.n_classes,
                          self.seconds / self.commands)

    def summary(self) -> dict:
        return {"target": self.target, "text": self.text, "finished": self.finished,
                "commands": self.commands, "selections": self.selections, "undos": self.undos,
                "seconds": round(self.seconds, 2),
                "commands_per_char": round(self.commands / max(1, len(self.target)), 3),
                "command_accuracy": round(self.command_accuracy, 4),
                "chars_per_min": round(self.chars_per_min, 3),
                "error_rate": round(self.error_rate, 4),
                "itr_bits_per_min": round(self.itr_bits_per_min, 3), **self.extra}


def _labels(engine: SpellerEngine, classes: Sequence[str] | None) -> list[str]:
    classes = list(classes) if classes is not None else list(engine.command_map)
    missing = [c for c in classes if c not in engine.command_map]
    if missing:
        raise ConfigError(f"classes {missing} are not in the engine's command_map "
                          f"{engine.command_map}.")
    return classes


def _label_for(engine: SpellerEngine, action: int | str) -> str:
    for label, a in engine.command_map.items():
        if a == action:
            return label
    raise ConfigError(f"No class is mapped to command {action!r} in {engine.command_map}.")


def simulate(engine: SpellerEngine, user: SimulatedUser, *,
             confusion: np.ndarray | Sequence[Sequence[float]] | None = None,
             classes: Sequence[str] | None = None, seconds_per_command: float = 4.0,
             max_commands: int = 2000, rng: np.random.Generator | int | None = 0
             ) -> SimulationResult:
    """Let ``user`` write its target on ``engine`` through a noisy command channel.

    Parameters
    ----------
    confusion : array (n_classes, n_classes) | None
        Row i: probabilities of decoding each class when class i is intended (rows are
        normalised). None: perfect commands.
    classes : sequence of str | None
        Class order of ``confusion`` (default: the engine's command_map keys).
    seconds_per_command : float
        Time per command for chars/min and ITR.
    max_commands : int
        Give up after this many commands (``finished`` False).
    """
    classes = _labels(engine, classes)
    if confusion is None:
        conf = np.eye(len(classes))
    else:
        conf = np.asarray(confusion, dtype=float)
        if conf.shape != (len(classes), len(classes)) or (conf < 0).any():
            raise ConfigError(f"confusion: expected a non-negative {len(classes)}x{len(classes)} "
                              f"matrix for classes {classes}, got shape {conf.shape}.")
        conf = conf / conf.sum(axis=1, keepdims=True)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    engine.reset()
    correct = 0
    for _ in range(max_commands):
        action = user.intend(engine)
        if action is None:
            break
        intended = classes.index(_label_for(engine, action))
        issued = int(rng.choice(len(classes), p=conf[intended])) if confusion is not None \
            else intended
        correct += issued == intended
        engine.command(classes[issued])
    n = engine.n_commands
    return SimulationResult(
        target=user.target, text=engine.text, commands=n, selections=engine.n_selections,
        undos=engine.n_undos, seconds=n * seconds_per_command,
        command_accuracy=correct / n if n else 1.0, n_classes=len(classes),
        finished=user.done(engine),
    )


# ---------------------------------------------------------------------- closed loop with EEG
@dataclass
class ClosedLoopTrial:
    """One cued command in the closed loop."""

    intended: str
    decoded: str | None  # None: no command within the trial (miss)
    onset: float  # stream time of the cue
    forced: bool  # decided by the mean probabilities, not by the dwell rule


def closed_loop(engine: SpellerEngine, user: SimulatedUser, source, worker, *,
                trial_s: float = 4.0, iti_s: float = 1.0, decision_start_s: float = 0.5,
                forced: bool = True, max_commands: int = 200, lead_in_s: float | None = None,
                wall_timeout_s: float = 300.0) -> tuple[SimulationResult, list[ClosedLoopTrial]]:
    """Spell ``user.target`` with real EEG: cue the simulated subject, decode, apply commands.

    Parameters
    ----------
    source : SimulatedSubjectSource
        Connected in manual mode (``connect(acquisition=False)``, ``speed="max"``).
    worker : DecoderWorker
        On ``source``, with a ``commander`` (DwellCommander) over the bundle's classes; stepped
        here with ``catch_up=True`` (every window decoded, as offline).
    trial_s : float
        Imagery period per command (EEGMMIDB trials last 4.1 s; a command every
        ``trial_s + iti_s`` seconds).
    iti_s : float
        Rest EEG between trials.
    decision_start_s : float
        Commands and forced decisions use windows ending at least this long after the cue.
    forced : bool
        Without a dwell command in the trial, decide by the mean smoothed probabilities.
    lead_in_s : float | None
        Rest EEG streamed before the first cue (default: the worker's alignment time + 1 s, so
        a bundle that aligns to the user has fitted its alignment).
    wall_timeout_s : float
        Bound on the wall-clock time of the whole loop.

    Returns
    -------
    (SimulationResult, list of ClosedLoopTrial)
        ``seconds`` is stream time from the first cue to the end of the last trial.
    """
    if worker.commander is None:
        raise ConfigError("closed_loop: the DecoderWorker needs a commander (DwellCommander).")
    classes = list(worker.classes)
    missing = [c for c in engine.command_map if c not in classes]
    if missing:
        raise ConfigError(f"command_map classes {missing} are not decoded by the bundle "
                          f"(classes {classes}).")
    preds: list = []
    worker.add_callback(preds.append)
    engine.reset()
    trials: list[ClosedLoopTrial] = []
    deadline = time.monotonic() + wall_timeout_s

    def advance_to(t_stream: float) -> None:
        while source.next_timestamp <= t_stream:
            if time.monotonic() > deadline:
                raise TimeoutError(f"closed_loop: not done within {wall_timeout_s} s wall time.")
            source.acquire()
            worker.step(catch_up=True)

    try:
        if lead_in_s is None:
            lead_in_s = (worker.alignment_seconds if worker.aligning else 0.0) + 1.0
        advance_to(source.next_timestamp + lead_in_s)
        t_start = None
        for _ in range(max_commands):
            action = user.intend(engine)
            if action is None:
                break
            label = _label_for(engine, action)
            onset = source.next_timestamp + 0.05
            t_start = onset if t_start is None else t_start
            preds.clear()
            source.cue(label, at=onset)
            advance_to(onset + trial_s)
            window = [p for p in preds if p.window_end >= onset + decision_start_s
                      and p.window_end <= onset + trial_s]
            decoded = next((p.command for p in window if p.command), None)
            was_forced = False
            if decoded is None and forced:
                rows = [p.smoothed if p.smoothed is not None else p.probabilities
                        for p in window if p.reliable]
                if rows:
                    decoded = classes[int(np.argmax(np.mean(rows, axis=0)))]
                    was_forced = True
            trials.append(ClosedLoopTrial(label, decoded, onset, was_forced))
            if decoded is not None and decoded in engine.command_map:
                engine.command(decoded, t=onset + trial_s)
            advance_to(onset + trial_s + iti_s)
            worker.commander.reset()
        t_end = source.next_timestamp
    finally:
        worker.remove_callback(preds.append)
    seconds = (t_end - t_start) if t_start is not None else 0.0
    hits = sum(t.decoded == t.intended for t in trials)
    n = len(trials)
    res = SimulationResult(
        target=user.target, text=engine.text, commands=n, selections=engine.n_selections,
        undos=engine.n_undos, seconds=seconds, command_accuracy=hits / n if n else 1.0,
        n_classes=len(classes), finished=user.done(engine),
        extra={"misses": sum(t.decoded is None for t in trials),
               "forced": sum(t.forced for t in trials),
               "seconds_per_command": round(seconds / n, 3) if n else math.nan},
    )
    return res, trials


def confusion_of(trials: Sequence[ClosedLoopTrial], classes: Sequence[str]) -> np.ndarray:
    """Measured confusion counts (rows intended, columns decoded; misses left out)."""
    m = np.zeros((len(classes), len(classes)), dtype=int)
    for t in trials:
        if t.decoded in classes:
            m[list(classes).index(t.intended), list(classes).index(t.decoded)] += 1
    return m


def command_map_for(classes: Sequence[str], mapping: Mapping[str, int | str] | None = None
                    ) -> dict[str, int | str]:
    """Default class -> command map: classes in order to 0, 1, ... (``mapping`` overrides)."""
    if mapping:
        return dict(mapping)
    return {c: i for i, c in enumerate(classes)}


__all__ = ["ClosedLoopTrial", "SimulatedUser", "SimulationResult", "closed_loop",
           "command_map_for", "confusion_from_accuracy", "confusion_of", "levenshtein",
           "simulate"]
