"""Thread → Qt adapters: callbacks that run on worker threads become queued Qt signals.

Sources call their state callbacks on the acquisition thread, the decoder worker calls its
prediction callbacks on the decoder thread. Neither may touch a widget. Each bridge here is a
``QObject`` that lives in the GUI thread; its callback only *emits* a signal, and Qt delivers the
signal to GUI-thread receivers through the event queue (``Qt.QueuedConnection``), so the worker
never waits on the GUI and the GUI never runs on a worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore

from bci_app.errors import BciAppError, OperationCancelled

logger = logging.getLogger(__name__)


class SourceStateBridge(QtCore.QObject):
    """Re-emits ``Source`` state changes as the queued signal :attr:`stateChanged`.

    Signals
    -------
    stateChanged(str, str)
        ``(state value, message)``, delivered in the GUI thread.
    """

    stateChanged = QtCore.Signal(str, str)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._source = None

    def attach(self, source) -> None:
        """Observe ``source`` (detaching from the previous one)."""
        self.detach()
        self._source = source
        source.add_state_callback(self._on_state)

    def detach(self) -> None:
        src, self._source = self._source, None
        if src is not None:
            try:
                src.remove_state_callback(self._on_state)
            except ValueError:
                pass

    def _on_state(self, source, state, message: str) -> None:
        # Acquisition thread: emit only (queued to the GUI thread); never touch widgets here.
        if source is self._source:
            self.stateChanged.emit(getattr(state, "value", str(state)), str(message))


class PredictionBridge(QtCore.QObject):
    """Re-emits predictions of a decoder worker (``add_callback(fn)``) as :attr:`predicted`.

    Signals
    -------
    predicted(object)
        The Prediction object, delivered in the GUI thread.
    """

    predicted = QtCore.Signal(object)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._worker = None

    def attach(self, worker) -> None:
        self.detach()
        self._worker = worker
        worker.add_callback(self._on_prediction)

    def detach(self) -> None:
        worker, self._worker = self._worker, None
        remove = getattr(worker, "remove_callback", None)
        if worker is not None and remove is not None:
            try:
                remove(self._on_prediction)
            except ValueError:
                pass

    def _on_prediction(self, prediction) -> None:
        # Decoder thread: emit only.
        if self._worker is not None:
            self.predicted.emit(prediction)


class BackgroundCall(QtCore.QObject):
    """Run a blocking call (connect a device, resolve LSL streams) on a plain daemon thread.

    The result or the exception text comes back as the queued signal :attr:`finished`
    ``(result, error)`` where ``error`` is ``""`` on success. The GUI keeps painting meanwhile.
    """

    finished = QtCore.Signal(object, str)

    def __init__(self, fn: Callable[[], Any], name: str = "gui-background",
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        #: The call's return value once it finished (also for owners that stopped listening).
        self.result: Any = None

    def start(self) -> BackgroundCall:
        self._thread.start()
        return self

    @property
    def worker_thread(self) -> threading.Thread:
        """The call's thread (another background call may wait for it: a plain Python object,
        safe to hold in a closure that runs on a worker thread, unlike this QObject)."""
        return self._thread

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            result, error = self._fn(), ""
        except Exception as err:  # surfaced to the GUI as a message, never swallowed
            if isinstance(err, OperationCancelled):  # the user closed what it was for
                logger.info("Background call %s cancelled: %s", self._thread.name, err)
            elif isinstance(err, BciAppError):  # an expected failure: its message says it all
                logger.warning("Background call %s failed: %s", self._thread.name, err)
            else:  # a bug: keep the traceback
                logger.exception("Background call %s failed", self._thread.name)
            result, error = None, f"{type(err).__name__}: {err}"
        self.result = result
        try:
            self.finished.emit(result, error)
        except RuntimeError:  # the receiver (e.g. a closed dialog) is gone: nobody to tell
            logger.debug("Background call finished after its owner was deleted")
