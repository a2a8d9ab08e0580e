"""From decoder predictions to speller commands: confidence threshold, dwell and refractory time.

:class:`SpellerInput` owns a :class:`~decoders.smoothing.DwellCommander` over the bundle's classes
and feeds the commands it issues to a :class:`~.engine.SpellerEngine`. It reads the smoothed
probabilities of each :class:`~decoders.online.Prediction` (the DecoderWorker's EMA), so the
threshold and dwell are the speller's own settings, independent of any commander the worker may
run for other consumers; ``use_worker_commands=True`` takes the worker's commands instead.

Threads: call :meth:`SpellerInput.on_prediction` from one thread only (the engine is not
thread-safe). Headless: the decoder thread (a worker callback). GUI: the Qt thread, after the
prediction crossed over as a queued signal (``ui.speller_view.SpellerView.on_prediction``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from bci_app.errors import ConfigError
from decoders.smoothing import DwellCommander

from .engine import SpellerEngine, SpellerEvent

logger = logging.getLogger(__name__)


class SpellerInput:
    """Turn a stream of predictions into speller commands.

    Parameters
    ----------
    engine : SpellerEngine
    classes : sequence of str
        The decoder's class names, in the order of ``Prediction.probabilities``.
    threshold : float
        Smoothed probability a class must reach, in (1/n_classes, 1].
    dwell : float
        Seconds it must stay there.
    refractory : float
        Seconds without commands after one.
    use_worker_commands : bool
        Use ``Prediction.command`` (the worker's own commander) instead.
    max_gap : float
        A dwell needs unbroken evidence: when more than this many seconds of signal pass between
        two predictions (decoding stopped and started again, the source stalled), the dwell
        starts over at the new prediction instead of completing on it. When the stream clock
        goes backwards (another source), the input starts over as in a new session.
    """

    def __init__(self, engine: SpellerEngine, classes: Sequence[str], *, threshold: float = 0.7,
                 dwell: float = 1.0, refractory: float = 1.5,
                 use_worker_commands: bool = False, max_gap: float = 0.5) -> None:
        if not max_gap > 0:
            raise ConfigError(f"max_gap: expected > 0 s (the longest pause between predictions "
                              f"a dwell survives), got {max_gap}.")
        self.engine = engine
        self.max_gap = float(max_gap)
        self._last_t: float | None = None
        self.classes = tuple(classes)
        unknown = [c for c in engine.command_map if c not in self.classes]
        if unknown:
            raise ConfigError(
                f"command_map: classes {unknown} are not among the decoder's classes "
                f"{list(self.classes)}; map the decoder's class names to speller commands."
            )
        self.commander = DwellCommander(self.classes, threshold=threshold, dwell=dwell,
                                        refractory=refractory)
        self.use_worker_commands = bool(use_worker_commands)
        self.progress = 0.0
        self.candidate: str | None = None
        self.n_predictions = 0

    def reset(self) -> None:
        """Start over (a new session): dwell, refractory period and past commands cleared."""
        self.commander.reset()
        self.progress = 0.0
        self.candidate = None
        self._last_t = None

    def interrupt(self) -> None:
        """An unreliable window broke the dwell: the candidate is forgotten, but the refractory
        period after the last command still holds (as in the DecoderWorker's own commander)."""
        self.commander.interrupt()
        self.progress = 0.0
        self.candidate = None

    def on_prediction(self, pred) -> SpellerEvent | None:
        """Feed one :class:`~decoders.online.Prediction`; returns the engine's event when the
        prediction completed a command."""
        classes = tuple(getattr(pred, "classes", self.classes))
        if classes != self.classes:
            raise ConfigError(f"prediction classes {list(pred.classes)} differ from the "
                              f"speller input's {list(self.classes)}.")
        self.n_predictions += 1
        t = float(pred.window_end)
        if self._last_t is not None and t < self._last_t:
            logger.info("speller: the stream clock went back %.3f s (another source?): dwell "
                        "and refractory period start over", self._last_t - t)
            self.reset()
        elif self._last_t is not None and t - self._last_t > self.max_gap:
            self.interrupt()  # decoding paused: what came before is not evidence for now
        self._last_t = t
        if not getattr(pred, "reliable", True):
            self.interrupt()  # not reset(): an artifact must not cancel the refractory period
            return None
        if self.use_worker_commands:
            label = getattr(pred, "command", None)
            self.progress = 0.0
        else:
            smoothed = getattr(pred, "smoothed", None)
            basis = smoothed if smoothed is not None else pred.probabilities
            cmd = self.commander.update(np.asarray(basis, dtype=float), pred.window_end)
            self.progress = self.commander.progress(pred.window_end)
            c = self.commander._candidate
            self.candidate = self.classes[c] if c is not None else None
            label = cmd.label if cmd is not None else None
        if label is None or label not in self.engine.command_map:
            return None
        return self.engine.command(label, t=pred.window_end)


__all__ = ["SpellerInput"]
