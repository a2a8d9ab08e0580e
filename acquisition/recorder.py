"""Crash-safe session recording to XDF.

A :class:`Recorder` owns one :class:`~acquisition.xdf_writer.XDFWriter` and one thread. Every
``poll_interval`` (0.25 s) the thread reads each registered ring buffer "since k", each marker log
"since k" and every pushed stream (predictions), appends them as XDF chunks with one ``write``
and fsyncs at least every ``fsync_interval`` (0.5 s). A ``kill -9`` or a power cut therefore loses
at most about half a second; :func:`~acquisition.xdf_writer.repair_xdf` cuts a torn last chunk.

Gaps are explicit: the source's gap markers (label :data:`~acquisition.markers.GAP_LABEL`) are
recorded unchanged in the source's marker stream, and when the recorder itself fell behind the
ring buffer (``Chunk.lost > 0``) it records a gap marker with reason ``recorder_overrun``. Samples
are written with their own timestamps, never shifted.

On a write error (disk full, file-size limit, I/O error) the recorder stops cleanly: the file is
cut back to its last whole chunk (so it loads), the state becomes ``failed`` with a
:class:`~bci_app.errors.RecordingError` in :attr:`Recorder.error`, and nothing is raised into the
acquisition thread or the session: the live session keeps running.

Stream layout in the XDF file
-----------------------------
- one stream per source: its :class:`StreamInfo` (channel labels, types, units, rate, source id,
  metadata as JSON under ``desc/bci_app/stream_info``), samples in the ring buffer's dtype
  (``double64`` for float64: bit-identical);
- one string marker stream per source / marker log (type ``Markers``, 1 channel: the label), and
  its twin ``<name>-details`` (type ``MarkerDetails``) holding, sample for sample, JSON with
  ``duration``, ``source`` and extras such as ``samples_missing`` (``{}`` for plain markers);
- streams added with :meth:`Recorder.add_stream` (predictions), irregular or regular;
- ClockOffset chunks (offset 0: every timestamp in bci_app is already on the local LSL clock);
- the session metadata in the FileHeader (``<session>`` elements and ``<session_json>``).
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from bci_app.errors import RecordingError, StreamMismatchError

from .markers import GAP_LABEL, Marker, MarkerLog
from .ring_buffer import RingBuffer
from .stream_info import StreamInfo
from .xdf_writer import FORMATS, XDFWriter, xdf_format
from .xdf_writer import xdf_value as _xfirst

logger = logging.getLogger(__name__)

#: Every marker stream ``NAME`` (1 channel: the label, what every XDF tool expects) has a twin
#: stream ``NAME + DETAILS_SUFFIX`` of type :data:`DETAILS_TYPE` with, sample for sample, a JSON
#: object: ``duration``, ``source`` and extras (``samples_missing``, ``reason`` for gaps).
DETAILS_SUFFIX = "-details"
DETAILS_TYPE = "MarkerDetails"

_UNITS_LSL = {
    "V": "volts",
    "mV": "millivolts",
    "uV": "microvolts",
    "µV": "microvolts",
    "nV": "nanovolts",
}


class RecorderState(str, Enum):
    """Observable state of a :class:`Recorder`."""

    IDLE = "idle"
    RECORDING = "recording"
    STOPPED = "stopped"
    FAILED = "failed"


RecorderCallback = Callable[["Recorder", RecorderState, str], None]


def _lsl_clock() -> float:
    from .lsl_env import import_pylsl

    return float(import_pylsl().local_clock())


def _xml_name(key: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(key)) or "_"
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


def _json(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False, sort_keys=True)


def _el(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
    e = ET.SubElement(parent, tag)
    if text is not None:
        e.text = str(text)
    return e


def stream_header(
    name: str,
    stream_type: str,
    ch_names,
    ch_types,
    units,
    sfreq: float,
    fmt: str,
    source_id: str,
    *,
    extra_desc: dict | None = None,
    can_drop_samples: bool = False,
) -> ET.Element:
    """LSL-style ``<info>`` element of a stream (what LabRecorder writes as StreamHeader)."""
    info = ET.Element("info")
    _el(info, "name", name)
    _el(info, "type", stream_type)
    _el(info, "channel_count", len(ch_names))
    _el(info, "nominal_srate", repr(float(sfreq)))
    _el(info, "channel_format", fmt)
    _el(info, "source_id", source_id)
    _el(info, "version", "1.1")
    _el(info, "created_at", repr(_lsl_clock()))
    _el(info, "uid", str(uuid.uuid4()))
    _el(info, "session_id", "default")
    _el(info, "hostname", socket.gethostname())
    desc = _el(info, "desc")
    chans = _el(desc, "channels")
    for label, typ, unit in zip(ch_names, ch_types, units):
        ch = _el(chans, "channel")
        _el(ch, "label", label)
        _el(ch, "unit", _UNITS_LSL.get(unit, unit))
        _el(ch, "type", str(typ).upper())
    if can_drop_samples:
        # pyxdf: do not "dejitter" (linearly refit) the timestamps of this stream, which would
        # spread a gap over its neighbours; our timestamps are already on the local clock.
        sync = _el(desc, "synchronization")
        _el(sync, "can_drop_samples", "true")
    app = _el(desc, "bci_app")
    for k, v in (extra_desc or {}).items():
        _el(app, _xml_name(k), v if isinstance(v, str) else _json(v))
    return info


class RecordedStream:
    """Handle of a stream added with :meth:`Recorder.add_stream` (e.g. predictions).

    :meth:`push` and :meth:`push_chunk` may be called from any thread; samples are queued and
    written by the recorder thread.
    """

    def __init__(
        self,
        name: str,
        stream_type: str,
        ch_names: tuple[str, ...],
        sfreq: float,
        fmt: str,
        header: ET.Element,
    ) -> None:
        self.name = name
        self.stream_type = stream_type
        self.ch_names = ch_names
        self.sfreq = sfreq
        self.fmt = fmt
        self.header = header
        self.stream_id = -1
        self._queue: collections.deque = collections.deque()
        self.n_pushed = 0

    @property
    def n_channels(self) -> int:
        return len(self.ch_names)

    def push(self, values, timestamp: float) -> None:
        """Queue one sample: ``values`` has one entry per channel (str for string streams)."""
        if self.fmt == "string":
            row = [str(v) for v in (values if isinstance(values, (list, tuple)) else [values])]
            if len(row) != self.n_channels:
                raise ValueError(
                    f"Stream {self.name!r} expects {self.n_channels} values, got {len(row)}."
                )
            self._queue.append((np.array([float(timestamp)]), [row]))
        else:
            v = np.asarray(values, dtype=FORMATS[self.fmt]).reshape(1, -1)
            if v.shape[1] != self.n_channels:
                raise ValueError(
                    f"Stream {self.name!r} expects {self.n_channels} values, got {v.shape[1]}."
                )
            self._queue.append((np.array([float(timestamp)]), v))
        self.n_pushed += 1

    def push_chunk(self, values, timestamps) -> None:
        """Queue several samples: ``values`` shape (n, n_channels), ``timestamps`` shape (n,)."""
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        if self.fmt == "string":
            rows = [[str(x) for x in r] for r in values]
            if len(rows) != ts.size or any(len(r) != self.n_channels for r in rows):
                raise ValueError(
                    f"Stream {self.name!r}: need {ts.size} rows of {self.n_channels} strings."
                )
            self._queue.append((ts, rows))
        else:
            v = np.asarray(values, dtype=FORMATS[self.fmt]).reshape(ts.size, -1)
            if v.shape[1] != self.n_channels:
                raise ValueError(
                    f"Stream {self.name!r} expects {self.n_channels} channels, got {v.shape[1]}."
                )
            self._queue.append((ts, v.copy()))
        self.n_pushed += ts.size

    def _drain(self) -> list:
        out = []
        while True:
            try:
                out.append(self._queue.popleft())
            except IndexError:
                return out


class _MarkerEntry:
    def __init__(self, log: MarkerLog, name: str, stream_type: str, start: int) -> None:
        self.log = log
        self.name = name
        self.stream_type = stream_type
        self.k = start
        self.stream_id = -1
        self.details_id = -1
        self.own: collections.deque[Marker] = collections.deque()  # recorder-made markers
        self.n_written = 0


class _SignalEntry:
    def __init__(
        self,
        source,
        info: StreamInfo | None,
        buffer: RingBuffer | None,
        name: str | None,
        markers: _MarkerEntry | None,
        *,
        markers_name: str | None = None,
    ) -> None:
        self.source = source
        self.markers_name = markers_name
        self.info = info
        self.buffer = buffer
        self.name = name
        self.markers = markers
        self.stream_id = -1
        self.k: int | None = None
        self.first_k: int | None = None
        self.last_ts: float | None = None
        self.n_written = 0
        self.lost = 0
        self.dead = False
        self.pending_restart = False

    def current(self) -> tuple[StreamInfo | None, RingBuffer | None]:
        if self.source is not None:
            return self.source.info, self.source.buffer
        return self.info, self.buffer


class Recorder:
    """Record sources, marker logs and pushed streams of a session to one XDF file.

    Parameters
    ----------
    path : path-like
        The ``.xdf`` file to create. An existing file is an error unless ``overwrite``.
    session_meta : dict
        Session metadata for the file header: ``subject``, ``app_version`` (default: this
        version), ``model_bundle``, ``settings``, ... Nested values are stored as JSON.
    poll_interval : float
        Seconds between reads of the buffers (at most 0.25 s is sensible).
    fsync_interval : float
        Seconds between fsyncs (at most 1 s per the crash-safety promise).
    offset_interval, boundary_interval : float
        Seconds between ClockOffset chunks and between Boundary chunks.
    history : bool
        ``True`` records what the ring buffers already hold when recording starts; ``False``
        (default) starts at the newest sample.
    overwrite : bool
        Replace an existing file.
    byte_quota : int | None
        Test hook, see :class:`~acquisition.xdf_writer.XDFWriter`.

    Threads
    -------
    ``add_*`` may be called before or after :meth:`start` from any thread; the recorder thread
    does all file I/O. State callbacks run on the recorder thread (or the caller of ``start``/
    ``stop``) and must return quickly.

    Examples
    --------
    >>> rec = Recorder("recordings/s01.xdf", session_meta={"subject": "01"})  # doctest: +SKIP
    >>> rec.add_source(source)                                              # doctest: +SKIP
    >>> rec.start(); ...; rec.stop()                                        # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        session_meta: dict | None = None,
        poll_interval: float = 0.25,
        fsync_interval: float = 0.5,
        offset_interval: float = 5.0,
        boundary_interval: float = 5.0,
        history: bool = False,
        overwrite: bool = False,
        byte_quota: int | None = None,
    ) -> None:
        if not 0 < poll_interval <= 1.0:
            raise ValueError(f"poll_interval must be in (0, 1] seconds, got {poll_interval}.")
        if not 0 < fsync_interval <= 1.0:
            raise ValueError(
                f"fsync_interval must be in (0, 1] seconds (a crash may lose up to that much), "
                f"got {fsync_interval}."
            )
        self.path = Path(path)
        self.session_meta = dict(session_meta or {})
        self.poll_interval = float(poll_interval)
        self.fsync_interval = float(fsync_interval)
        self.offset_interval = float(offset_interval)
        self.boundary_interval = float(boundary_interval)
        self.history = bool(history)
        self.overwrite = bool(overwrite)
        self.byte_quota = byte_quota

        self._signals: list[_SignalEntry] = []
        self._marker_entries: list[_MarkerEntry] = []
        self._pushed: list[RecordedStream] = []
        self._lock = threading.RLock()
        self._writer: XDFWriter | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._next_id = 1
        self._state = RecorderState.IDLE
        self._callbacks: list[RecorderCallback] = []
        self.error: RecordingError | None = None
        self.started_at: float | None = None  # LSL clock
        self.cpu_time = 0.0  # thread CPU seconds spent in step()
        self.warnings: list[str] = []
        self._last_fsync = self._last_offset = self._last_boundary = 0.0
        self._names: set[str] = set()  # names of the streams in the file (recorder thread)

    # ------------------------------------------------------------------ registration
    def add_source(
        self,
        source,
        *,
        name: str | None = None,
        markers: bool = True,
        markers_name: str | None = None,
    ) -> None:
        """Record a :class:`~acquisition.base.Source`: its ring buffer and its marker log.

        The source may connect later: its stream header is written once ``source.info`` and
        ``source.buffer`` exist. A source that reconnects with a fresh buffer is followed (a gap
        marker records the break).

        Parameters
        ----------
        name : str | None
            XDF name of the signal stream; default the source's ``info.name``.
        markers : bool
            Record the source's marker log. With ``False`` the recorder's own markers (gaps,
            restarts) still get a marker stream when it needs one.
        markers_name : str | None
            XDF name of the marker stream (its twin is ``<markers_name>-details``); default
            ``<name>-markers``. A name already taken by another stream of the file gets
            ``-2``, ``-3``, ... (with a warning).
        """
        if not hasattr(source, "buffer") or not hasattr(source, "markers"):
            raise TypeError(
                f"add_source expects an acquisition Source (with .info, .buffer, .markers), "
                f"got {type(source).__name__}."
            )
        with self._lock:
            mk = None
            if markers:
                base = name or (source.info.name if source.info is not None else None)
                mk = self._new_marker_entry(
                    source.markers,
                    markers_name or (f"{base}-markers" if base else None),
                    "Markers",
                )
            self._signals.append(
                _SignalEntry(source, None, None, name, mk, markers_name=markers_name)
            )

    def add_buffer(
        self,
        info: StreamInfo,
        buffer: RingBuffer,
        *,
        marker_log: MarkerLog | None = None,
        markers_name: str | None = None,
    ) -> None:
        """Record a bare ring buffer described by ``info`` (and optionally a marker log, as
        ``markers_name``, default ``<info.name>-markers``)."""
        if buffer.n_channels != info.n_channels:
            raise ValueError(
                f"Buffer has {buffer.n_channels} channels but StreamInfo {info.name!r} describes "
                f"{info.n_channels}."
            )
        with self._lock:
            mk = None
            if marker_log is not None:
                mk = self._new_marker_entry(
                    marker_log, markers_name or f"{info.name}-markers", "Markers"
                )
            self._signals.append(
                _SignalEntry(None, info, buffer, info.name, mk, markers_name=markers_name)
            )

    def add_marker_log(self, log: MarkerLog, name: str, *, stream_type: str = "Markers") -> None:
        """Record a marker log (cues, user markers, protocol events) as a string marker stream."""
        if not isinstance(log, MarkerLog):
            raise TypeError(f"add_marker_log expects a MarkerLog, got {type(log).__name__}.")
        with self._lock:
            if any(m.log is log for m in self._marker_entries):
                logger.warning(
                    "Marker log %r is already recorded (as a source's markers?); "
                    "not adding it twice",
                    name,
                )
                return
            self._new_marker_entry(log, name, stream_type)

    def _new_marker_entry(self, log: MarkerLog, name: str | None, stream_type: str) -> _MarkerEntry:
        if self.history:
            start = 0
        elif self._state == RecorderState.IDLE:
            start = -1  # resolved at start(): the log's counter then
        else:
            start = log.counter
        entry = _MarkerEntry(log, name or "", stream_type, start)
        self._marker_entries.append(entry)
        return entry

    def add_stream(
        self,
        name: str,
        stream_type: str,
        ch_names,
        sfreq: float = 0.0,
        fmt: str = "float32",
        *,
        units=None,
        ch_types=None,
        meta: dict | None = None,
    ) -> RecordedStream:
        """Add a stream whose samples are pushed by the caller (e.g. predictions).

        Parameters
        ----------
        name, stream_type : str
            XDF stream name and type (``"Predictions"``).
        ch_names : sequence of str
            One label per channel (e.g. class names).
        sfreq : float
            Nominal rate; 0 for irregular streams.
        fmt : str
            ``"float32"``, ``"double64"``, ``"int32"``, ... or ``"string"``.

        Returns
        -------
        RecordedStream
            Call ``.push(values, timestamp)`` from any thread.
        """
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {list(FORMATS)}, got {fmt!r}.")
        ch_names = tuple(str(c) for c in ch_names)
        if not ch_names:
            raise ValueError(f"Stream {name!r} needs at least one channel name.")
        n = len(ch_names)
        header = stream_header(
            name,
            stream_type,
            ch_names,
            ch_types or ["MISC"] * n,
            units or [""] * n,
            sfreq,
            fmt,
            f"bci_app:{name}",
            extra_desc={"role": "pushed", **(meta or {})},
        )
        rs = RecordedStream(name, stream_type, ch_names, float(sfreq), fmt, header)
        with self._lock:
            self._pushed.append(rs)
        return rs

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> RecorderState:
        return self._state

    @property
    def bytes_written(self) -> int:
        return self._writer.bytes_written if self._writer is not None else 0

    def add_state_callback(self, callback: RecorderCallback) -> None:
        """Call ``callback(recorder, state, message)`` on every state change."""
        self._callbacks.append(callback)

    def _set_state(self, state: RecorderState, message: str = "") -> None:
        if state == self._state:
            return
        self._state = state
        log = logger.error if state == RecorderState.FAILED else logger.info
        log("Recorder %s: %s%s", self.path, state.value, f" ({message})" if message else "")
        for cb in list(self._callbacks):
            try:
                cb(self, state, message)
            except Exception:
                logger.exception("Recorder state callback %r failed", cb)

    def status_text(self) -> str:
        """Short text for status lines: ``"12.3 MB"``, ``"FAILED (disk full...)"``."""
        if self._state == RecorderState.FAILED:
            return f"FAILED ({self.error})"
        return f"{self.bytes_written / 1e6:.2f} MB {self._state.value}"

    def stats(self) -> dict[str, Any]:
        """Samples and markers written per stream, bytes on disk, state."""
        with self._lock:
            return {
                "path": str(self.path),
                "state": self._state.value,
                "bytes": self.bytes_written,
                "signals": {
                    (e.current()[0].name if e.current()[0] else "?"): {
                        "samples": e.n_written,
                        "lost": e.lost,
                        "first_sample": e.first_k,
                    }
                    for e in self._signals
                },
                "markers": {m.name: m.n_written for m in self._marker_entries},
                "pushed": {p.name: p.n_pushed for p in self._pushed},
                "error": str(self.error) if self.error else "",
            }

    # ------------------------------------------------------------------ lifecycle
    def _file_header(self) -> ET.Element:
        from bci_app import __version__

        meta = {"app_version": __version__, **self.session_meta}
        info = ET.Element("info")
        _el(info, "version", "1.0")
        _el(info, "datetime", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"))
        _el(info, "recorder", f"bci_app {__version__}")
        clock = _el(info, "clock_reference")
        _el(clock, "lsl_time", repr(self.started_at))
        _el(clock, "unix_time", repr(time.time()))
        sess = _el(info, "session")
        for k, v in meta.items():
            _el(sess, _xml_name(k), v if isinstance(v, (str, int, float)) else _json(v))
        _el(info, "session_json", _json(meta))
        return info

    def start(self) -> Recorder:
        """Create the file, write the headers and start the recorder thread.

        Raises
        ------
        RecordingError
            The file cannot be created (exists, folder not writable).
        RuntimeError
            Already started.
        """
        if self._state != RecorderState.IDLE:
            raise RuntimeError(
                f"Recorder for {self.path} was already started (state {self._state.value})."
            )
        self.started_at = _lsl_clock()
        self._writer = XDFWriter(
            self.path,
            file_header=self._file_header(),
            overwrite=self.overwrite,
            byte_quota=self.byte_quota,
        )
        with self._lock:
            for m in self._marker_entries:
                if m.k < 0:
                    m.k = m.log.counter
            now = time.monotonic()
            self._last_fsync = self._last_offset = self._last_boundary = now
        self._set_state(RecorderState.RECORDING, str(self.path))
        self._stop.clear()
        try:
            self.step()  # headers of what is already known, synchronously
        except RecordingError as err:
            self._failed(err)
            return self
        self._thread = threading.Thread(
            target=self._run, name=f"recorder-{self.path.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> Path:
        """Write what is left, the footers, close the file. Never raises on write errors
        (see :attr:`error`). Returns the path."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.error(
                    "Recorder thread for %s did not stop within %.1f s", self.path, timeout
                )
                return self.path
        if self._state == RecorderState.RECORDING:
            self._finish()
        return self.path

    def _finish(self) -> None:
        try:
            self.step()
            self._writer.close(footers=True)
        except RecordingError as err:
            self._failed(err)
            return
        except Exception as err:  # pragma: no cover - a bug; still close the file
            logger.exception("Recorder for %s failed while closing", self.path)
            self._failed(RecordingError(f"Recording to {self.path} failed while closing: {err!r}."))
            return
        self._set_state(RecorderState.STOPPED, f"{self.bytes_written} bytes")

    def _failed(self, err: RecordingError) -> None:
        self.error = err
        if self._writer is not None and not self._writer.closed:
            try:
                self._writer.close(footers=True)
            except RecordingError:
                pass
        self._set_state(RecorderState.FAILED, str(err))

    def __enter__(self) -> Recorder:
        if self._state == RecorderState.IDLE:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            next_t += self.poll_interval
            delay = next_t - time.monotonic()
            if delay > 0:
                if self._stop.wait(delay):
                    break
            else:
                next_t = time.monotonic()
            try:
                self.step()
            except RecordingError as err:
                self._failed(err)
                return
            except Exception as err:  # never die silently
                logger.exception("Recorder for %s failed", self.path)
                self._failed(
                    RecordingError(
                        f"Recording to {self.path} stopped after an internal error: {err!r}. "
                        "The file so far is readable; please report this bug."
                    )
                )
                return
        if self._state == RecorderState.RECORDING:
            self._finish()

    # ------------------------------------------------------------------ the work
    def step(self) -> int:
        """Write everything new, flush, fsync when due. Returns bytes appended.

        Called by the recorder thread (and once by :meth:`start`, once by the final
        :meth:`stop`). Not reentrant: never call it while the thread runs.
        """
        w = self._writer
        if w is None or w.closed:
            return 0
        t_cpu = time.thread_time()
        with self._lock:
            signals = list(self._signals)
            marker_entries = list(self._marker_entries)
            pushed = list(self._pushed)
        for e in signals:
            self._step_signal(w, e)
        for m in marker_entries:
            self._step_markers(w, m)
        for p in pushed:
            if p.stream_id < 0:
                p.stream_id = self._new_id()
                w.add_stream(p.stream_id, p.header)
                self._names.add(p.name)
                self._initial_offsets(w, p.stream_id)
            for ts, values in p._drain():
                if p.fmt == "string":
                    w.write_strings(p.stream_id, ts, values)
                else:
                    w.write_samples(p.stream_id, ts, values)
        now = time.monotonic()
        if now - self._last_offset >= self.offset_interval:
            self._last_offset = now
            self._write_offsets(w, signals, marker_entries, pushed)
        if now - self._last_boundary >= self.boundary_interval:
            self._last_boundary = now
            w.write_boundary()
        fsync = now - self._last_fsync >= self.fsync_interval
        if fsync:
            self._last_fsync = now
        n = w.flush(fsync=fsync)
        if w.path != self.path:  # the file was deleted under us and rescued elsewhere
            old, self.path = self.path, w.path
            msg = (f"the recording file {old} disappeared; everything was saved to {w.path} "
                   "and recording continues there")
            self.warnings.append(msg)
            for cb in list(self._callbacks):
                try:
                    cb(self, self._state, msg)
                except Exception:
                    logger.exception("Recorder state callback failed")
        self.cpu_time += time.thread_time() - t_cpu
        return n

    def _new_id(self) -> int:
        sid = self._next_id
        self._next_id += 1
        return sid

    @staticmethod
    def _initial_offsets(w: XDFWriter, stream_id: int) -> None:
        # two points right away, so pyxdf has a clock fit (and clock segments) for every stream
        for _ in range(2):
            w.write_clock_offset(stream_id, _lsl_clock(), 0.0)

    def _write_offsets(self, w, signals, marker_entries, pushed) -> None:
        t = _lsl_clock()
        ids = [e.stream_id for e in signals] + [m.stream_id for m in marker_entries]
        ids += [m.details_id for m in marker_entries]
        ids += [p.stream_id for p in pushed]
        for sid in ids:
            if sid >= 0:
                w.write_clock_offset(sid, t, 0.0)

    def _step_signal(self, w: XDFWriter, e: _SignalEntry) -> None:
        if e.dead:
            return
        info, buf = e.current()
        if info is None or buf is None:
            return  # source not connected yet
        if e.stream_id < 0:
            e.info, e.buffer = info, buf
            e.stream_id = self._new_id()
            w.add_stream(e.stream_id, self._signal_header(info, buf, e.name))
            self._names.add(e.name or info.name)
            if e.markers is not None and not e.markers.name:
                e.markers.name = f"{e.name or info.name}-markers"
            e.k = max(0, buf.counter - len(buf)) if self.history else buf.counter
            e.first_k = e.k
            self._initial_offsets(w, e.stream_id)
        elif buf is not e.buffer:  # the source reconnected with a fresh buffer
            try:
                e.info.check_compatible(info)
            except StreamMismatchError as err:
                logger.error("Recorder: %s; no longer recording it.", err)
                self._gap_marker(e, e.last_ts or 0.0, 0.0, 0, f"stream changed: {err}")
                e.dead = True
                return
            e.buffer, e.k = buf, 0
            e.pending_restart = True
        chunk = e.buffer.since(e.k)
        if chunk.n_samples == 0:
            return
        period = 1.0 / e.info.sfreq if e.info.sfreq > 0 else 0.0
        if e.pending_restart:
            e.pending_restart = False
            if e.last_ts is not None:
                start = e.last_ts + period
                self._gap_marker(e, start, max(0.0, chunk.timestamps[0] - start), 0, "restart")
        if chunk.lost:
            e.lost += chunk.lost
            start = (
                (e.last_ts + period)
                if e.last_ts is not None
                else (chunk.timestamps[0] - chunk.lost * period)
            )
            self._gap_marker(
                e, start, max(0.0, chunk.timestamps[0] - start), chunk.lost, "recorder_overrun"
            )
            logger.warning("Recorder fell behind %s: %d samples lost", e.info.name, chunk.lost)
        w.write_samples(e.stream_id, chunk.timestamps, chunk.data)
        e.k = chunk.stop
        e.n_written += chunk.n_samples
        e.last_ts = float(chunk.timestamps[-1])

    def _gap_marker(
        self, e: _SignalEntry, start: float, duration: float, missing: int, reason: str
    ) -> None:
        m = Marker(
            float(start),
            GAP_LABEL,
            float(duration),
            "recorder",
            {"samples_missing": int(missing), "reason": reason},
        )
        if e.markers is not None:
            e.markers.own.append(m)
        else:  # no marker stream for this source: make one for the recorder's markers
            with self._lock:
                name = e.markers_name or f"{e.name or e.info.name}-markers"
                e.markers = _MarkerEntry(MarkerLog(), name, "Markers", 0)
                e.markers.own.append(m)
                self._marker_entries.append(e.markers)
            self._step_markers(self._writer, e.markers)

    @staticmethod
    def _signal_header(info: StreamInfo, buf: RingBuffer, name: str | None) -> ET.Element:
        stype = str(
            info.metadata.get("lsl_type") or ("EEG" if "eeg" in info.ch_types else "Signal")
        )
        return stream_header(
            name or info.name,
            stype,
            info.ch_names,
            info.ch_types,
            info.units,
            info.sfreq,
            xdf_format(buf.dtype),
            info.source_id,
            extra_desc={
                "role": "signal",
                "source_kind": info.source_kind,
                "stream_info": info.to_dict(),
            },
            can_drop_samples=True,
        )

    def _unique_marker_name(self, m: _MarkerEntry) -> None:
        """Give ``m`` a stream name no other stream of the file has (readers pair a marker
        stream with its ``-details`` twin by name: two streams of one name mix their markers)."""
        taken = self._names
        base, i = m.name, 1
        while m.name in taken or f"{m.name}{DETAILS_SUFFIX}" in taken:
            i += 1
            m.name = f"{base}-{i}"
        if m.name != base:
            msg = (f"a stream named {base!r} is already in the recording; its markers are "
                   f"recorded as {m.name!r} (pass markers_name= to choose the name)")
            logger.warning("Recorder %s: %s", self.path, msg)
            self.warnings.append(msg)
        taken.update((m.name, f"{m.name}{DETAILS_SUFFIX}"))

    def _step_markers(self, w: XDFWriter, m: _MarkerEntry) -> None:
        if m.stream_id < 0:
            if not m.name:
                return  # its source is not connected yet (name unknown)
            self._unique_marker_name(m)
            m.stream_id = self._new_id()
            w.add_stream(
                m.stream_id,
                stream_header(
                    m.name,
                    m.stream_type,
                    ["label"],
                    ["MISC"],
                    [""],
                    0.0,
                    "string",
                    f"bci_app:{m.name}",
                    extra_desc={"role": "markers", "details_stream": f"{m.name}{DETAILS_SUFFIX}"},
                ),
            )
            self._initial_offsets(w, m.stream_id)
            m.details_id = self._new_id()
            w.add_stream(
                m.details_id,
                stream_header(
                    f"{m.name}{DETAILS_SUFFIX}",
                    DETAILS_TYPE,
                    ["details"],
                    ["MISC"],
                    [""],
                    0.0,
                    "string",
                    f"bci_app:{m.name}{DETAILS_SUFFIX}",
                    extra_desc={"role": "marker_details", "markers_stream": m.name},
                ),
            )
            self._initial_offsets(w, m.details_id)
        if m.k < 0:
            m.k = m.log.counter
        new = m.log.since(m.k)
        m.k += len(new)
        while m.own:
            new.append(m.own.popleft())
        if not new:
            return
        ts = [mk.timestamp for mk in new]
        w.write_strings(m.stream_id, ts, [[mk.label] for mk in new])
        w.write_strings(m.details_id, ts, [[marker_details(mk)] for mk in new])
        m.n_written += len(new)


def marker_details(m: Marker) -> str:
    """The ``details`` channel of a recorded marker: JSON of duration, source and extras."""
    d: dict[str, Any] = {}
    if m.duration:
        d["duration"] = m.duration
    if m.source:
        d["source"] = m.source
    d.update(m.extra or {})
    return _json(d) if d else "{}"


def xdf_markers(streams: list[dict], *, skip=()) -> list[Marker]:
    """Markers of every string stream of a file loaded with ``pyxdf.load_xdf``.

    Works for any XDF file; for bci_app recordings it reads each marker's duration and extras
    from the ``-details`` twin stream and ignores the twins themselves and the prediction-label
    streams. Multi-channel string samples are joined with ``","``. Each marker has
    ``source="xdf"`` and ``extra["stream"]`` = the stream's name. Not sorted.

    Parameters
    ----------
    streams : list of dict
        As returned by ``pyxdf.load_xdf``.
    skip : sequence of dict
        Streams to leave out (e.g. the signal stream).
    """
    skip_ids = {id(s) for s in skip}
    by_name = {str(_xfirst(s["info"], "name", "")): s for s in streams}
    out: list[Marker] = []
    for s in streams:
        info = s["info"]
        n = len(s.get("time_stamps", []))
        if id(s) in skip_ids or n == 0 or str(_xfirst(info, "channel_format")) != "string":
            continue
        app = _xfirst(_xfirst(info, "desc"), "bci_app")
        role = _xfirst(app, "role")
        if role in ("marker_details",) or _xfirst(info, "type") in (
            DETAILS_TYPE,
            "PredictionLabels",
        ):
            continue
        name = str(_xfirst(info, "name", ""))
        twin_name = _xfirst(app, "details_stream")
        twin = by_name.get(twin_name) if twin_name else None
        details: list = [None] * n
        if twin is not None and len(twin["time_stamps"]) == n:
            details = [r[0] if r else "" for r in twin["time_series"]]
        elif twin_name:
            logger.warning("Marker details of %s missing or incomplete; durations set to 0", name)
        for t, value, det in zip(s["time_stamps"], s["time_series"], details):
            vals = value if isinstance(value, (list, tuple)) else [value]
            label = str(vals[0]) if len(vals) == 1 else ",".join(str(v) for v in vals)
            extra: dict[str, Any] = {}
            if det:
                try:
                    extra = dict(json.loads(det))
                except (ValueError, TypeError):
                    extra = {}
            try:
                duration = float(extra.pop("duration", 0.0) or 0.0)
            except (TypeError, ValueError):
                duration = 0.0
            orig = extra.pop("source", None)
            if orig:
                extra["recorded_source"] = orig
            extra["stream"] = name
            out.append(Marker(float(t), label, duration, "xdf", extra))
    return out


def default_recording_path(
    prefix: str = "session", folder: str | os.PathLike | None = None
) -> Path:
    """``<folder>/<prefix>_YYYYmmdd-HHMMSS.xdf`` (UTC); folder defaults to ``recordings_dir()``."""
    if folder is None:
        from bci_app.config import recordings_dir

        folder = recordings_dir()
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = Path(folder) / f"{_xml_name(prefix)}_{stamp}.xdf"
    path, i = base, 1
    while path.exists():
        path = base.with_name(f"{base.stem}-{i}.xdf")
        i += 1
    return path
