"""The one source abstraction: lifecycle, acquisition thread, ring buffer, stall/gap detection.

Each transport (BrainFlow board, LSL inlet, file replay, simulated subject) implements only
:meth:`Source._open`, :meth:`Source._pull` and :meth:`Source._close` (and optionally
:meth:`Source._reopen`). Everything else — the thread, the lock, the buffer, the states, the
gap markers, reconnection — lives here once.

Threads
-------
``connect()`` starts one acquisition thread (unless ``acquisition=False``). That thread is the
single writer of :attr:`Source.buffer`; any thread may read the buffer. State callbacks run on the
acquisition thread and must return quickly (the GUI re-emits them as queued Qt signals).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from bci_app.errors import ConfigError, SourceError, StreamMismatchError

from .markers import CLOCK_JUMP_LABEL, GAP_LABEL, MarkerLog
from .ring_buffer import RingBuffer
from .stream_info import StreamInfo, check_channel_names, with_channel_names

logger = logging.getLogger(__name__)


class SourceState(str, Enum):
    """Observable state of a source."""

    STOPPED = "stopped"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    STALLED = "stalled"
    LOST = "lost"
    RECONNECTING = "reconnecting"


class SourceLostError(SourceError):
    """Raised by a transport's ``_pull`` when it knows the device is gone."""


def gap_threshold(sfreq: float) -> float:
    """Seconds between two consecutive timestamps above which samples are missing: 2.5 sample
    periods (dejittered timestamps step by one period), at least 4 ms (the LSL clock's jitter
    at kHz rates). The sources, the export and calibration all cut gaps by this rule."""
    return max(2.5 / float(sfreq), 0.004)


@dataclass(frozen=True)
class Gap:
    """A stretch of time with no samples.

    Attributes
    ----------
    start : float
        LSL time just after the last sample before the gap.
    duration : float
        Seconds between the last sample before and the first sample after, minus one period.
    samples_missing : int
        Estimated number of samples the device should have sent in that time.
    reason : str
        ``"reconnect"`` (device lost and back), ``"dropped"`` (timestamp or packet jump).
    """

    start: float
    duration: float
    samples_missing: int
    reason: str


StateCallback = Callable[["Source", SourceState, str], None]


class Source(ABC):
    """Base class of every EEG source.

    Parameters
    ----------
    buffer_seconds : float
        Length of the ring buffer in seconds of signal.
    stall_timeout : float
        Seconds without new samples before the state becomes ``stalled``.
    lost_timeout : float
        Seconds without new samples before the state becomes ``lost`` (and reconnection starts).
    reconnect : bool
        Try to reopen the device after it was lost.
    reconnect_timeout : float
        Timeout of each reopening attempt.
    poll_interval : float
        Target period of the acquisition loop in seconds (scheduled on a monotonic clock).

    Notes
    -----
    The constructor does no I/O. Use :meth:`connect` (or ``with source:``) to open the device.
    """

    #: Short name of the transport, used in StreamInfo.source_kind.
    kind: str = "abstract"
    #: True for transports that register dropped-sample gaps themselves (e.g. from packet
    #: counters); the base class then only adds gaps for reconnections.
    registers_own_gaps: bool = False

    def __init__(
        self,
        *,
        buffer_seconds: float = 60.0,
        stall_timeout: float = 0.5,
        lost_timeout: float = 1.5,
        reconnect: bool = True,
        reconnect_timeout: float = 0.5,
        poll_interval: float = 0.005,
        channel_names=None,
    ) -> None:
        if buffer_seconds <= 0:
            raise ValueError(f"buffer_seconds must be > 0, got {buffer_seconds}.")
        if not 0 < stall_timeout <= lost_timeout:
            raise ValueError(
                f"Need 0 < stall_timeout <= lost_timeout, got {stall_timeout} and {lost_timeout}."
            )
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval}.")
        self.buffer_seconds = float(buffer_seconds)
        self.stall_timeout = float(stall_timeout)
        self.lost_timeout = float(lost_timeout)
        self.reconnect = bool(reconnect)
        self.reconnect_timeout = float(reconnect_timeout)
        self.poll_interval = float(poll_interval)
        #: The user's name for each channel (electrode positions), replacing the device's
        #: (``None``: the device's); a ``str`` is split at commas.
        self.channel_names = check_channel_names(channel_names)

        self.markers = MarkerLog()
        self.info: StreamInfo | None = None
        self.buffer: RingBuffer | None = None
        self._state = SourceState.STOPPED
        self._state_lock = threading.Lock()
        self._callbacks: list[StateCallback] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: Notified (``notify_all``) after every write to the buffer; readers that want to react
        #: to new data at once (the DecoderWorker) wait on it with a timeout.
        self.new_data = threading.Condition()
        self.last_error: str = ""
        self._reset_variables()

    # ------------------------------------------------------------------ transport API
    @abstractmethod
    def _open(self, timeout: float) -> StreamInfo:
        """Open the device within ``timeout`` seconds and describe the stream."""

    @abstractmethod
    def _pull(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Return new samples without blocking.

        Returns
        -------
        (data, timestamps) or None
            ``data`` of shape (n_samples, n_channels) in the units of :attr:`info`, ``timestamps``
            of shape (n_samples,) on the LSL clock; ``None`` or empty arrays when nothing is new.

        Raises
        ------
        SourceLostError
            When the transport knows the device is gone.
        """

    @abstractmethod
    def _close(self) -> None:
        """Release the device. Must not raise if already closed."""

    def _reopen(self, timeout: float) -> StreamInfo:
        """Reopen after a loss; default closes and opens again."""
        self._close()
        return self._open(timeout)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> SourceState:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state not in (SourceState.STOPPED, SourceState.CONNECTING)

    def add_state_callback(self, callback: StateCallback) -> None:
        """Call ``callback(source, state, message)`` on every state change.

        Runs on the thread that changed the state (usually the acquisition thread).
        """
        self._callbacks.append(callback)

    def remove_state_callback(self, callback: StateCallback) -> None:
        self._callbacks.remove(callback)

    def _set_state(self, state: SourceState, message: str = "") -> None:
        with self._state_lock:
            if state == self._state:
                return
            old, self._state = self._state, state
            self.state_history.append((time.monotonic(), state, message))
        # a stall the user asked for (a paused replay) is not a fault
        fault = state in (SourceState.STALLED, SourceState.LOST) and message != "paused"
        log = logger.warning if fault else logger.info
        log("%s: %s -> %s%s", self.display_name, old.value, state.value, f" ({message})" if message else "")
        for cb in list(self._callbacks):
            try:
                cb(self, state, message)
            except Exception:  # a broken observer must not kill acquisition
                logger.exception("State callback %r failed", cb)

    @property
    def display_name(self) -> str:
        return self.info.name if self.info is not None else type(self).__name__

    # ------------------------------------------------------------------ lifecycle
    def _reset_variables(self) -> None:
        """The one reset path: used at construction, disconnect and after a failed connect."""
        self.gaps: list[Gap] = []
        self.samples_missing = 0
        self.backward_jumps = 0
        self.duplicates_dropped = 0
        self.out_of_order_dropped = 0
        self.chunks = 0
        self.state_history: list[tuple[float, SourceState, str]] = []
        self._last_ts: float | None = None
        self._last_arrival: float | None = None
        self._connect_time: float | None = None
        self._pending_gap_reason: str | None = None
        self._arrivals: deque[tuple[float, int]] = deque(maxlen=4096)
        self._arrivals_start = 0  # buffer counter before the oldest write on record

    def connect(self, timeout: float = 10.0, *, acquisition: bool = True) -> Source:
        """Open the device and start acquiring.

        Parameters
        ----------
        timeout : float
            Seconds to wait for the device or stream.
        acquisition : bool
            Start the acquisition thread. ``False`` leaves acquisition to manual :meth:`acquire`
            calls (tests, synchronous replay).

        Returns
        -------
        self
        """
        if self.connected or self._state == SourceState.CONNECTING:
            raise RuntimeError(f"{self.display_name} is already connected; call disconnect() first.")
        if timeout <= 0:
            raise ConfigError(
                f"timeout: expected > 0 seconds to wait for the device or stream, got {timeout}; "
                "fix: pass e.g. --timeout 10."
            )
        self._reset_variables()
        self._set_state(SourceState.CONNECTING)
        try:
            info = with_channel_names(self._open(timeout), self.channel_names)
        except BaseException:
            self._safe_close()
            self._reset_variables()
            self._set_state(SourceState.STOPPED, "connect failed")
            raise
        self.info = info
        capacity = max(1, int(round(self.buffer_seconds * (info.sfreq or 100.0))))
        self.buffer = RingBuffer(capacity, info.n_channels)
        self._connect_time = time.monotonic()
        self._last_arrival = self._connect_time
        self._set_state(SourceState.STREAMING, f"{info.n_channels} ch @ {info.sfreq:g} Hz")
        logger.info("Connected %s: %s", info.name, info.to_dict() | {"metadata": "..."})
        if acquisition:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"acquisition-{info.name}", daemon=True
            )
            self._thread.start()
        return self

    def disconnect(self, timeout: float = 5.0) -> None:
        """Stop the acquisition thread and release the device. The buffer stays readable."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.error("Acquisition thread of %s did not stop within %.1f s", self.display_name, timeout)
        self._safe_close()
        self._set_state(SourceState.STOPPED)

    def _safe_close(self) -> None:
        try:
            self._close()
        except Exception:
            logger.exception("Closing %s failed", self.display_name)

    def __enter__(self) -> Source:
        if not self.connected:
            self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if self._thread is not None:
                self._stop.set()
        except Exception:
            pass

    # ------------------------------------------------------------------ acquisition
    def acquire(self) -> int:
        """Pull what the transport has and publish it to the buffer. Returns the sample count.

        Called by the acquisition thread, or directly in manual mode.
        """
        if self.buffer is None or self.info is None:
            raise RuntimeError(f"{self.display_name} is not connected; call connect() first.")
        got = self._pull()
        if got is None:
            return 0
        data, ts = got
        n = len(ts)
        if n == 0:
            return 0
        data = np.asarray(data)
        ts = np.asarray(ts, dtype=np.float64)
        if data.ndim != 2 or data.shape != (n, self.info.n_channels):
            raise SourceLostError(
                f"{self.display_name} delivered a chunk of shape {data.shape}; expected "
                f"({n}, {self.info.n_channels}). The device changed its layout: reconnecting."
            )
        data, ts = self._drop_duplicates(data, ts)
        n = len(ts)
        if n == 0:
            return 0
        self._check_continuity(ts)
        self.buffer.write(data, ts)
        self.chunks += 1
        self._last_ts = float(ts[-1])
        self._last_arrival = time.monotonic()
        if len(self._arrivals) == self._arrivals.maxlen:
            self._arrivals_start = self._arrivals[0][1]  # the oldest record is about to drop
        self._arrivals.append((self._last_arrival, self.buffer.counter))
        with self.new_data:
            self.new_data.notify_all()
        logger.debug("%s: +%d samples (total %d)", self.info.name, n, self.buffer.counter)
        return n

    def _drop_duplicates(self, data: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Drop samples that repeat ones already in the buffer (same timestamp, same values).

        A transport that re-sends a chunk (a retransmission, a buggy driver) must not make the
        signal longer. Samples that go back in time with *new* values are kept: that is a clock
        reset, handled as a backward jump by :meth:`_check_continuity`.
        """
        if self._last_ts is None or ts[0] > self._last_ts:
            return data, ts
        stale = ts <= self._last_ts
        k = int(stale.sum())
        held = self.buffer.latest(min(len(self.buffer), max(k * 4, 64)))
        if held.n_samples == 0:
            return data, ts
        idx = np.searchsorted(held.timestamps, ts[stale])
        idx = np.clip(idx, 0, held.n_samples - 1)
        same = (held.timestamps[idx] == ts[stale]) & np.all(held.data[idx] == data[stale], axis=1)
        keep = np.ones(len(ts), bool)
        if same.any():
            keep[np.nonzero(stale)[0][same]] = False
            dropped = int((~keep).sum())
            self.duplicates_dropped += dropped
            logger.warning("%s: dropped %d duplicated samples (already received)",
                           self.display_name, dropped)
        late = stale & keep
        if late.any() and self._last_ts - ts[late][0] < 1.0:
            # new values stamped shortly before what we already have: a chunk that arrived out
            # of order. It cannot be put back in the past of the buffer; the hole it left was
            # already registered as a gap when the later chunk arrived.
            n_late = int(late.sum())
            self.out_of_order_dropped += n_late
            self.markers.add(float(ts[late][0]), "bci_app/out_of_order", 0.0, "source",
                             samples=n_late)
            logger.warning("%s: dropped %d samples that arrived out of order",
                           self.display_name, n_late)
            keep &= ~late
        return data[keep], ts[keep]

    def _check_continuity(self, ts: np.ndarray) -> None:
        """Detect gaps (jumps forward) and backward jumps in the timestamps of a new chunk:
        between the previous chunk and this one, and between samples inside this chunk (a
        transport may deliver the samples before and after a hole in one chunk, e.g. an LSL
        sender pushing chunks, or a pull that comes late)."""
        sfreq = self.info.sfreq if self.info else 0.0
        reason = self._pending_gap_reason
        self._pending_gap_reason = None
        if sfreq <= 0:
            return
        period = 1.0 / sfreq
        if self._last_ts is not None:
            self._check_step(self._last_ts, float(ts[0]), reason, sfreq)
        if len(ts) > 1:
            steps = np.diff(ts)
            jumps = (steps > gap_threshold(sfreq)) | (steps < -0.5 * period)
            for i in np.flatnonzero(jumps):
                self._check_step(float(ts[i]), float(ts[i + 1]), None, sfreq)

    def _check_step(self, before: float, after: float, reason: str | None, sfreq: float) -> None:
        """Register what lies between two consecutive samples stamped ``before`` and ``after``."""
        period = 1.0 / sfreq
        dt = after - before
        if dt < -0.5 * period:
            self.backward_jumps += 1
            logger.warning("%s: timestamps jumped back by %.4f s", self.display_name, -dt)
            self.markers.add(after, CLOCK_JUMP_LABEL, 0.0, "source", jump=float(dt))
            return
        if reason is None and self.registers_own_gaps:
            return
        threshold = gap_threshold(sfreq) if reason is None else 1.5 * period
        if dt > threshold:
            missing = max(0, int(round(dt * sfreq)) - 1)
            self.register_gap(before + period, dt - period, missing, reason or "dropped")

    def register_gap(self, start: float, duration: float, samples_missing: int, reason: str) -> Gap:
        """Record a gap, count its samples and put a gap marker in :attr:`markers`."""
        gap = Gap(float(start), float(duration), int(samples_missing), reason)
        self.gaps.append(gap)
        self.samples_missing += gap.samples_missing
        self.markers.add(
            gap.start, GAP_LABEL, gap.duration, "source",
            samples_missing=gap.samples_missing, reason=reason,
        )
        logger.warning(
            "%s: gap of %.3f s (%d samples) [%s]", self.display_name, gap.duration,
            gap.samples_missing, reason,
        )
        return gap

    def check_health(self, now: float | None = None) -> SourceState:
        """Update stalled / lost / streaming from the time since the last sample."""
        now = time.monotonic() if now is None else now
        if self._last_arrival is None or self._state in (SourceState.STOPPED, SourceState.RECONNECTING):
            return self._state
        silent = now - self._last_arrival
        if silent >= self.lost_timeout:
            self._set_state(SourceState.LOST, f"no data for {silent:.2f} s")
        elif silent >= self.stall_timeout:
            if self._state != SourceState.LOST:
                self._set_state(SourceState.STALLED, f"no data for {silent:.2f} s")
        elif self._state in (SourceState.STALLED, SourceState.LOST):
            self._set_state(SourceState.STREAMING, "data resumed")
        return self._state

    def _run(self) -> None:
        """Acquisition thread: pull on a fixed schedule, supervise, reconnect."""
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                if self._state == SourceState.RECONNECTING:
                    self._try_reconnect()
                else:
                    n = self.acquire()
                    if n == 0:
                        self.check_health()
                    elif self._state != SourceState.STREAMING:
                        self._set_state(SourceState.STREAMING, "data resumed")
                    if self._state == SourceState.LOST and self.reconnect:
                        self._set_state(SourceState.RECONNECTING)
            except SourceLostError as err:
                self.last_error = str(err)
                if self._state == SourceState.STREAMING:  # data stopped; the transport says why
                    self._set_state(SourceState.STALLED, "no data: transport reports the stream lost")
                self._set_state(SourceState.LOST, str(err))
                if self.reconnect:
                    self._set_state(SourceState.RECONNECTING)
            except Exception as err:  # never die silently
                logger.exception("Acquisition of %s failed", self.display_name)
                self.last_error = f"{type(err).__name__}: {err}"
                self._set_state(SourceState.LOST, self.last_error)
                if self.reconnect:
                    self._set_state(SourceState.RECONNECTING)
                else:
                    break
            next_t += self.poll_interval
            delay = next_t - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_t = time.monotonic()  # fell behind: do not try to catch up with a burst

    def _try_reconnect(self) -> None:
        try:
            device = self._reopen(self.reconnect_timeout)
            info = with_channel_names(device, self.channel_names)
            self.info.check_compatible(info)
            named = self.info.metadata.get("device_ch_names")
            if self.channel_names is not None and named is not None:
                # the user's names hide the device's own: a device back with other channels
                # (of the same count) is refused as it is without names
                replace(self.info, ch_names=tuple(named)).check_compatible(device)
        except (StreamMismatchError, ConfigError) as err:  # back with another layout: refuse it
            self.last_error = str(err)
            logger.error("%s", err)
            self._safe_close()
            self._stop.wait(self.reconnect_timeout)
            return
        except Exception as err:
            self.last_error = f"{type(err).__name__}: {err}"
            logger.debug("Reconnect of %s failed: %s", self.display_name, err)
            self._stop.wait(min(self.reconnect_timeout, 0.2))
            return
        self._pending_gap_reason = "reconnect"
        self._last_arrival = time.monotonic()
        self._set_state(SourceState.STREAMING, "reconnected")

    # ------------------------------------------------------------------ statistics
    @property
    def n_samples(self) -> int:
        return 0 if self.buffer is None else self.buffer.counter

    def arrival_time(self, seq: int) -> float | None:
        """Monotonic time at which sample ``seq`` was written to the buffer.

        Looked up in the record of the last 4096 writes; ``None`` if not (or no longer) known.
        Any thread: the record is copied first (the acquisition thread appends to it, and
        iterating over the deque itself while it does raises "deque mutated during iteration").
        """
        arrivals = list(self._arrivals)  # one C-level copy: atomic under the GIL
        start = self._arrivals_start  # read after the copy: updated before each append
        found = None
        for t, counter_after in reversed(arrivals):
            if counter_after <= seq:
                return found
            found = t
        # seq is in the oldest write on record only if that write started at or before it
        return found if seq >= start else None

    def effective_rate(self, seconds: float = 2.0) -> float:
        """Samples received per second of wall time over the last ``seconds`` (0 if unknown).

        Measured from arrival times on the monotonic clock, not from the timestamps, so a device
        that delivers fewer samples than its nominal rate shows it.
        """
        arrivals = list(self._arrivals)
        if len(arrivals) < 2:
            return 0.0
        now = time.monotonic()
        recent = [a for a in arrivals if a[0] >= now - seconds] or arrivals[-2:]
        first = next((a for a in reversed(arrivals) if a[0] < recent[0][0]), recent[0])
        t_span = recent[-1][0] - first[0]
        n = recent[-1][1] - first[1]
        return n / t_span if t_span > 0 else 0.0
