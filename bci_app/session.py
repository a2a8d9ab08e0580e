"""A session wires a source, its ring buffer, marker inlets, a recorder and decoders.

The same :class:`Session` runs headless (``bci-app live --headless``, tests, offline replay) and
under the GUI, which only observes it. Nothing here imports Qt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from acquisition.base import Source, SourceState
from acquisition.markers import Marker, MarkerLog

logger = logging.getLogger(__name__)


class Component(Protocol):
    """Something that runs beside the source (recorder, decoder worker, marker inlet)."""

    def start(self) -> Any: ...

    def stop(self) -> Any: ...


@dataclass(frozen=True)
class SessionStatus:
    """A snapshot for status lines and the GUI's status bar."""

    elapsed: float
    state: SourceState
    samples: int
    rate: float
    nominal_rate: float
    gaps: int
    samples_missing: int
    markers: int
    last_error: str = ""
    extra: dict = field(default_factory=dict)

    def line(self) -> str:
        txt = (
            f"[{self.elapsed:7.1f} s] {self.state.value:<12} rate {self.rate:7.1f}/{self.nominal_rate:g} Hz  "
            f"samples {self.samples:>9}  gaps {self.gaps} ({self.samples_missing} lost)  "
            f"markers {self.markers}"
        )
        for k, v in self.extra.items():
            txt += f"  {k} {v}"
        return txt


class Session:
    """Owns one source and the components that consume it.

    Parameters
    ----------
    source : Source
        Not yet connected; :meth:`start` connects it.
    components : list
        Objects with ``start()``/``stop()`` started after the source is connected and stopped
        after it is disconnected (recorder, decoder workers, marker inlets).
    """

    def __init__(self, source: Source, components: list[Component] | None = None) -> None:
        self.source = source
        self.components: list[Component] = list(components or [])
        self.user_markers: MarkerLog = source.markers
        self._t_start: float | None = None
        self._t_stop: float | None = None  # elapsed stops at stop(): the summary's mean rate
        self._status_hooks: list[Callable[[], dict]] = []
        self._start_last: set[int] = set()
        self.recorder = None  # the session recording, when one is attached (bci-app live)
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 10.0) -> Session:
        if not self.source.connected:
            self.source.connect(timeout=timeout)
        self._t_start = time.monotonic()  # samples are counted from the connection on
        self._t_stop = None
        started = []
        last = [c for c in self.components if id(c) in self._start_last]
        try:
            for comp in [c for c in self.components if id(c) not in self._start_last] + last:
                comp.start()
                started.append(comp)
        except BaseException:
            for comp in reversed(started):
                _safe_stop(comp)
            self.source.disconnect()
            raise
        logger.info("Session started on %s", self.source.display_name)
        return self

    def stop(self) -> None:
        # The source first: its buffer stays readable, so the recorder and decoders drain every
        # sample that arrived before they stop.
        self.source.disconnect()
        if self._t_start is not None and self._t_stop is None:
            self._t_stop = time.monotonic()  # no sample arrives after this
        # reverse order of addition, the ``start_last`` components (the recorder) last: they
        # consume what the others produce, and a marker inlet's last pull or a decoder's last
        # predictions must reach the recording before it writes its footers
        last = [c for c in reversed(self.components) if id(c) in self._start_last]
        for comp in [c for c in reversed(self.components) if id(c) not in self._start_last] + last:
            _safe_stop(comp)
        logger.info("Session stopped")

    def add_component(self, comp: Component, *, start: bool = False,
                      start_last: bool = False) -> None:
        """Add ``comp``; components stop in reverse order of addition.

        ``start_last``: :meth:`start` starts it after all the others (a recorder, so that a
        decoder that cannot run on this source fails before a recording file is created; with
        its history it still records from the source's first sample), and :meth:`stop` stops it
        after all the others (what a marker inlet pulls as it stops is still recorded).
        """
        self.components.append(comp)
        if start_last:
            self._start_last.add(id(comp))
        if start:
            comp.start()

    def add_status_hook(self, hook: Callable[[], dict]) -> None:
        """``hook()`` returns extra ``{name: value}`` pairs shown in the status line."""
        self._status_hooks.append(hook)

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- markers
    def add_marker(self, label: str, timestamp: float | None = None, source: str = "user") -> Marker:
        """Add a user marker (now, on the LSL clock, unless a timestamp is given)."""
        if timestamp is None:
            from acquisition.lsl_env import import_pylsl

            timestamp = import_pylsl().local_clock()
        return self.source.markers.add(timestamp, label, 0.0, source)

    # ---------------------------------------------------------------- status
    def status(self) -> SessionStatus:
        src = self.source
        extra: dict = {}
        for hook in self._status_hooks:
            try:
                extra.update(hook())
            except Exception:
                logger.exception("status hook failed")
        return SessionStatus(
            elapsed=(0.0 if self._t_start is None
                     else (self._t_stop or time.monotonic()) - self._t_start),
            state=src.state,
            samples=src.n_samples,
            rate=src.effective_rate(),
            nominal_rate=src.info.sfreq if src.info else 0.0,
            gaps=len(src.gaps),
            samples_missing=src.samples_missing,
            markers=len(src.markers),
            last_error=src.last_error,
            extra=extra,
        )

    def run_headless(
        self,
        duration: float | None,
        *,
        interval: float = 1.0,
        out: Callable[[str], None] = print,
        stop_event: threading.Event | None = None,
    ) -> SessionStatus:
        """Print a status line every ``interval`` seconds until ``duration`` (None: until stopped).

        Scheduled on a monotonic clock (target += interval). Returns the final status.
        """
        stop_event = stop_event or threading.Event()
        t0 = time.monotonic()
        target = t0
        while not stop_event.is_set():
            target += interval
            end = None if duration is None else t0 + duration
            wake = target if end is None else min(target, end)
            stop_event.wait(max(0.0, wake - time.monotonic()))
            out(self.status().line())
            if end is not None and time.monotonic() >= end - 1e-3:
                break
            finished = getattr(self.source, "finished", False)
            if finished:
                out("source finished")
                break
        return self.status()


def _safe_stop(comp: Component) -> None:
    try:
        comp.stop()
    except Exception:
        logger.exception("Stopping %r failed", comp)


class DecoderComponent:
    """Runs a :class:`decoders.online.DecoderWorker` as a session component.

    The worker is built in :meth:`start`, after the session connected its source (the bundle's
    channels and rate are checked against the source there).
    """

    def __init__(self, session: Session, bundle, **worker_kwargs) -> None:
        self.session = session
        self.bundle = bundle
        self.worker_kwargs = worker_kwargs
        self.worker = None
        self._callbacks: list = []

    def add_callback(self, callback) -> None:
        self._callbacks.append(callback)
        if self.worker is not None:
            self.worker.add_callback(callback)

    def start(self):
        from decoders.online import DecoderWorker

        self.worker = DecoderWorker(self.session.source, self.bundle, **self.worker_kwargs)
        for cb in self._callbacks:
            self.worker.add_callback(cb)
        self.worker.start()
        return self

    def stop(self):
        if self.worker is not None:
            self.worker.stop()

    def status(self) -> dict:
        if self.worker is None:
            return {}
        st = self.worker.stats()
        last = self.worker.history[-1] if self.worker.history else None
        out = {"decoder": "aligning" if st["aligning"] else (last.label if last else "-")}
        if st["predictions"]:
            out["latency"] = f"p50 {st['latency_p50'] * 1e3:.1f}/p99 {st['latency_p99'] * 1e3:.1f} ms"
            out["skipped"] = st["skipped"]
        if st["unreliable"]:
            out["unreliable"] = st["unreliable"]
        if st["errors"]:  # the model failed on windows: say so, not only the last label
            out["errors"] = f"{st['errors']} (last: {self.worker.last_error[:80]})"
        return out
