"""Play a recorded file as if it came from a live device.

:class:`ReplaySource` is a real :class:`~acquisition.base.Source`: the same acquisition thread, ring
buffer, states and marker log as a BrainFlow board or an LSL inlet, so offline evaluation and the
GUI's replay go through the same code path as a live session.

Time
----
At connect the file's first sample is anchored at ``pylsl.local_clock()``; sample ``i`` then gets
``anchor + (times[i] - times[0])``: timestamps follow the recording's own time base (1/sfreq apart
for a regular file) whatever the replay speed, so at 20x the timestamps run ahead of the wall clock.
A gap in the file's timestamps (XDF) stays a gap and is reported by the base class. Pause, seek and
looping re-anchor so that the next sample follows the last delivered one by one period: no gap is
reported for them (a seek leaves a ``"bci_app/seek"`` marker, a wrap-around ``"bci_app/loop"``).

Pacing
------
The acquisition thread calls :meth:`_pull` every ``poll_interval``; the number of samples due is
``elapsed_monotonic * sfreq * speed`` since the last (re)start of pacing, delivered in whole chunks
of ``chunk_samples``. ``_pull`` never sleeps. With ``speed="max"`` (or ``math.inf``) every pull
returns the next chunk immediately, which is what manual mode (``connect(acquisition=False)`` +
``acquire()``) uses for fast, deterministic offline runs.

End of file
-----------
Once every sample has been delivered, :attr:`ReplaySource.finished` is ``True``. The next pull
moves the state to ``stopped`` (message ``"end of file"``) and ends the acquisition thread; this is
not an error. The buffer and the markers stay readable; ``disconnect()`` is still fine to call and
``connect()`` replays the file again from the start. With ``loop=True`` the file never finishes.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import replace

import numpy as np

from bci_app.errors import ConfigError

from .base import Source, SourceState
from .files import FileRecording, read_file
from .lsl_env import import_pylsl
from .stream_info import StreamInfo

logger = logging.getLogger(__name__)

#: Label of the marker left in the log by :meth:`ReplaySource.seek`.
SEEK_LABEL = "bci_app/seek"
#: Label of the marker left in the log when a looping replay wraps around.
LOOP_LABEL = "bci_app/loop"


def _parse_speed(speed: float | str) -> float:
    if isinstance(speed, str):
        if speed.strip().lower() in ("max", "inf", "infinite", "fastest"):
            return math.inf
        try:
            speed = float(speed)
        except ValueError:
            raise ConfigError(
                f"ReplaySource speed must be a positive number (1.0 = real time) or 'max', got "
                f"{speed!r}."
            ) from None
    try:
        value = float(speed)
    except (TypeError, ValueError):
        raise ConfigError(
            f"ReplaySource speed must be a positive number (1.0 = real time) or 'max', "
            f"got {speed!r}."
        ) from None
    if not value > 0:
        raise ConfigError(
            f"ReplaySource speed must be > 0 (1.0 = real time, 20 = twenty times faster, 'max' = "
            f"as fast as pulled), got {speed!r}."
        )
    return value


class ReplaySource(Source):
    """Replay a recording (a path or a :class:`~acquisition.files.FileRecording`) as a live source.

    Parameters
    ----------
    recording : str | PathLike | FileRecording
        File to play (read at :meth:`connect`, so the constructor does no I/O) or an already read
        recording.
    speed : float | "max"
        1.0 = real time, N = N times faster, ``"max"`` / ``math.inf`` = one chunk per pull.
    chunk_samples : int | None
        Samples per delivered chunk; default ``max(1, round(sfreq / 50))`` (20 ms of signal).
    loop : bool
        Start again from the beginning at the end of the file (never finishes).
    name : str | None
        Stream name in :attr:`info` (default: the file's stream name / file stem).
    stream, board_id
        Passed to :func:`~acquisition.files.read_file` (XDF stream name, BrainFlow board id).
    reconnect : bool
        Default ``False``: a file cannot be "lost". Other keyword arguments are those of
        :class:`~acquisition.base.Source`.

    Notes
    -----
    Threads: :meth:`pause`, :meth:`resume` and :meth:`seek` may be called from any thread (GUI,
    session); they take a short lock shared with :meth:`_pull` on the acquisition thread. File
    markers are appended to :attr:`markers` (source ``"file"``, timestamps mapped to the LSL clock)
    by the pull that delivers the sample at or after their time, just before that chunk is written
    to the buffer.

    While paused no samples come: after ``stall_timeout`` the state shows ``stalled`` (message
    ``"paused"``) but never ``lost``; :meth:`resume` returns it to ``streaming``.
    """

    kind = "replay"

    def __init__(
        self,
        recording: str | os.PathLike | FileRecording,
        *,
        speed: float | str = 1.0,
        chunk_samples: int | None = None,
        loop: bool = False,
        name: str | None = None,
        stream: str | None = None,
        board_id: int = -1,
        reconnect: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(reconnect=reconnect, **kwargs)
        if not isinstance(recording, (FileRecording, str, os.PathLike)):
            raise ConfigError(
                f"ReplaySource recording must be a file path or a FileRecording, got "
                f"{type(recording).__name__}."
            )
        self.recording_arg = recording
        self.speed = _parse_speed(speed)
        if chunk_samples is not None and (
            isinstance(chunk_samples, bool)
            or int(chunk_samples) != chunk_samples
            or chunk_samples < 1
        ):
            raise ConfigError(
                f"ReplaySource chunk_samples must be a positive integer (samples per chunk) or "
                f"None for 20 ms of signal, got {chunk_samples!r}."
            )
        self._chunk_arg = None if chunk_samples is None else int(chunk_samples)
        self.loop = bool(loop)
        self._name = name
        self._read_kwargs = {"stream": stream, "board_id": board_id}
        self.recording: FileRecording | None = (
            recording if isinstance(recording, FileRecording) else None
        )
        self._lock = threading.Lock()
        self._reset_replay()

    # ------------------------------------------------------------------ replay state
    def _reset_replay(self) -> None:
        self._idx = 0                   # next sample to deliver
        self._marker_idx = 0            # next file marker to emit
        self._ts_offset = 0.0           # LSL time = file time + offset
        self._anchor = 0.0              # LSL time given to the first delivered sample
        self._last_emitted: float | None = None
        self._pace_t0 = time.monotonic()
        self._pace_idx0 = 0
        self._paused = False
        self._finished = False
        self.loops = 0
        self.chunk_samples = self._chunk_arg or 1

    # ------------------------------------------------------------------ Source API
    def _open(self, timeout: float) -> StreamInfo:
        """Read the file (if a path was given) and anchor its first sample at ``local_clock()``."""
        if self.recording is None:  # read once; a later connect() replays from memory
            kwargs = {"board_id": self._read_kwargs["board_id"]}
            if self._read_kwargs["stream"] is not None:
                kwargs["stream"] = self._read_kwargs["stream"]
            self.recording = read_file(self.recording_arg, **kwargs)
        rec = self.recording
        if rec.sfreq <= 0:
            raise ConfigError(
                f"Cannot replay {rec.info.name!r}: it has no sampling rate (sfreq 0); only "
                "regularly sampled recordings can be replayed."
            )
        pylsl = import_pylsl()
        with self._lock:
            self._reset_replay()
            self.chunk_samples = self._chunk_arg or max(1, int(round(rec.sfreq / 50.0)))
            self._times = np.asarray(rec.times, dtype=np.float64)
            self._marker_times = np.array([m.timestamp for m in rec.markers], dtype=np.float64)
            self._anchor = float(pylsl.local_clock())
            self._ts_offset = self._anchor - float(self._times[0])
            self._pace_t0 = time.monotonic()
        if not math.isinf(self.speed):
            chunk_period = self.chunk_samples / (rec.sfreq * self.speed)
            if chunk_period >= self.stall_timeout:
                logger.warning(
                    "Replay of %s: a chunk of %d samples comes every %.2f s, longer than "
                    "stall_timeout (%.2f s); the source will look stalled between chunks. Use a "
                    "smaller chunk_samples or a higher speed.", rec.info.name, self.chunk_samples,
                    chunk_period, self.stall_timeout,
                )
        info = rec.info
        if info.source_kind != "replay" or (self._name and self._name != info.name):
            info = replace(info, name=self._name or info.name, source_kind="replay")
        logger.info(
            "Replay of %s: %d samples (%.1f s) at %s, chunks of %d, %d markers, anchor %.3f",
            info.name, rec.n_samples, rec.duration,
            "max speed" if math.isinf(self.speed) else f"{self.speed:g}x", self.chunk_samples,
            len(rec.markers), self._anchor,
        )
        return info

    def _close(self) -> None:
        """Nothing to release: the recording stays in memory for the next connect."""

    def _pull(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Deliver the samples (and markers) that are due; never blocks.

        Runs on the acquisition thread (or in the caller's thread in manual mode).
        """
        rec = self.recording
        if rec is None:
            return None
        end_reached = False
        with self._lock:
            if self._paused or self._finished:
                return None
            n = rec.n_samples
            if self._idx >= n:
                if self.loop:
                    self._wrap()
                else:
                    self._finished = True
                    end_reached = True
            if not end_reached:
                a = self._idx
                if math.isinf(self.speed):
                    b = min(n, a + self.chunk_samples)
                else:
                    elapsed = time.monotonic() - self._pace_t0
                    due = self._pace_idx0 + int(elapsed * rec.sfreq * self.speed)
                    if due >= n:
                        b = n
                    else:
                        b = a + ((due - a) // self.chunk_samples) * self.chunk_samples
                if b <= a:
                    return None
                b = self._cut_at_gap(a, b)
                ts = self._times[a:b] + self._ts_offset
                self._emit_markers(self._times[b] if b < n else math.inf)
                self._idx = b
                self._last_emitted = float(ts[-1])
                return rec.data[a:b], ts
        # end of file: outside the lock (state callbacks may call back into this object)
        logger.info("Replay of %s reached the end of the file", self.display_name)
        self._stop.set()  # the acquisition thread ends after this iteration
        self._set_state(SourceState.STOPPED, "end of file")
        return None

    def _cut_at_gap(self, a: int, b: int) -> int:
        """End a chunk just before a jump in the file's timestamps (XDF), so that the base class,
        which checks continuity between chunks, sees and reports the file's own gaps."""
        if b - a < 2:
            return b
        jumps = np.flatnonzero(np.diff(self._times[a:b]) > 2.5 / self.recording.sfreq)
        return a + int(jumps[0]) + 1 if jumps.size else b

    def _emit_markers(self, before: float) -> None:
        """Append file markers with file time < ``before`` (caller holds the lock)."""
        rec = self.recording
        stop = int(np.searchsorted(self._marker_times, before, side="left"))
        for m in rec.markers[self._marker_idx : stop]:
            self.markers.add(
                m.timestamp + self._ts_offset, m.label, m.duration, "file",
                file_time=m.timestamp, **m.extra,
            )
        self._marker_idx = max(self._marker_idx, stop)

    def _wrap(self) -> None:
        """Start again at sample 0 of a looping replay (caller holds the lock)."""
        n = self.recording.n_samples
        next_ts = self._next_ts()
        self._idx = 0
        self._marker_idx = 0
        self._ts_offset = next_ts - float(self._times[0])
        self._pace_idx0 -= n  # pacing continues seamlessly
        self.loops += 1
        self.markers.add(next_ts, LOOP_LABEL, 0.0, "replay", loop=self.loops)
        logger.info("Replay of %s: loop %d", self.display_name, self.loops)

    def _next_ts(self) -> float:
        if self._last_emitted is None:
            return self._anchor
        return self._last_emitted + 1.0 / self.recording.sfreq

    def check_health(self, now: float | None = None) -> SourceState:
        """Like the base class, but a paused replay is ``stalled`` (never ``lost``) and a finished
        one stays ``stopped``."""
        if self._finished:
            return self._state
        if self._paused:
            now = time.monotonic() if now is None else now
            if (
                self._last_arrival is not None
                and now - self._last_arrival >= self.stall_timeout
                and self._state == SourceState.STREAMING
            ):
                self._set_state(SourceState.STALLED, "paused")
            return self._state
        return super().check_health(now)

    # ------------------------------------------------------------------ controls
    def pause(self) -> None:
        """Stop delivering samples until :meth:`resume`. Any thread."""
        with self._lock:
            self._paused = True
        logger.info("Replay of %s paused at %.3f s", self.display_name, self.position)

    def resume(self) -> None:
        """Continue after :meth:`pause`; timestamps go on where they stopped. Any thread."""
        with self._lock:
            was = self._paused
            self._paused = False
            self._pace_t0 = time.monotonic()
            self._pace_idx0 = self._idx
        self._last_arrival = time.monotonic()  # the pause was not a silent device
        if was and self._state == SourceState.STALLED:
            self._set_state(SourceState.STREAMING, "resumed")
        logger.info("Replay of %s resumed at %.3f s", self.display_name, self.position)

    def set_speed(self, speed: float | str) -> None:
        """Change the replay speed (1.0 real time, N x, or ``"max"``) without a jump in pacing.
        Any thread."""
        new = _parse_speed(speed)
        with self._lock:
            self.speed = new
            self._pace_t0 = time.monotonic()
            self._pace_idx0 = self._idx
        logger.info("Replay of %s: speed %s", self.display_name, speed)

    def seek(self, seconds: float) -> None:
        """Jump to ``seconds`` from the start of the file. Any thread.

        Playback continues from the first sample at or after that time; its timestamp follows
        the last delivered one by one period (no gap), and a ``"bci_app/seek"`` marker with that
        timestamp records the jump. Markers from the new position on are replayed again.

        Raises
        ------
        RuntimeError
            If not connected, or the replay already finished (``connect()`` again to replay).
        ConfigError
            If ``seconds`` is negative or not a number.
        """
        try:
            target = float(seconds)
        except (TypeError, ValueError):
            raise ConfigError(
                f"seek(seconds) needs a number of seconds, got {seconds!r}."
            ) from None
        if not (target >= 0) or math.isinf(target):
            raise ConfigError(
                f"seek(seconds) needs a finite time >= 0 from the start of the file, "
                f"got {seconds!r}."
            )
        if self.recording is None or self.buffer is None:
            raise RuntimeError(f"{self.display_name}: connect() before seek().")
        with self._lock:
            if self._finished:
                raise RuntimeError(
                    f"Replay of {self.display_name} has finished; connect() again to replay it."
                )
            old = self._position_locked()
            rel = self._times - self._times[0]
            idx = int(np.searchsorted(rel, target - 0.5 / self.recording.sfreq, side="left"))
            idx = min(idx, self.recording.n_samples)
            next_ts = self._next_ts()
            self._idx = idx
            if idx < self.recording.n_samples:
                self._ts_offset = next_ts - float(self._times[idx])
                self._marker_idx = int(
                    np.searchsorted(self._marker_times, self._times[idx], "left")
                )
            else:
                self._marker_idx = len(self._marker_times)
            self._pace_t0 = time.monotonic()
            self._pace_idx0 = idx
            self.markers.add(next_ts, SEEK_LABEL, 0.0, "replay", from_s=old, to_s=target)
        logger.info("Replay of %s: seek %.3f s -> %.3f s", self.display_name, old, target)

    # ------------------------------------------------------------------ read-only state
    def _position_locked(self) -> float:
        rec = self.recording
        if rec is None:
            return 0.0
        if self._idx >= rec.n_samples:
            return rec.duration
        return float(self._times[self._idx] - self._times[0])

    @property
    def position(self) -> float:
        """Seconds from the start of the file of the next sample to deliver."""
        with self._lock:
            return self._position_locked()

    @property
    def duration(self) -> float:
        """Length of the recording in seconds (0 before the file is read)."""
        return 0.0 if self.recording is None else self.recording.duration

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def finished(self) -> bool:
        """True once every sample was delivered (never with ``loop=True``)."""
        rec = self.recording
        if rec is None or self.loop:
            return False
        return self._finished or (self.buffer is not None and self._idx >= rec.n_samples)

    @property
    def samples_delivered(self) -> int:
        """Index of the next sample of the file to deliver."""
        return self._idx


__all__ = ["LOOP_LABEL", "SEEK_LABEL", "ReplaySource"]
