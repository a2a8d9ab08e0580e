"""LSL inlets as sources: EEG streams from any LSL device, and marker streams.

Streams are resolved by name / type / source id with a timeout; LSL time correction
(``proc_clocksync``) puts timestamps on this machine's LSL clock, and
:class:`~acquisition.dejitter.OnlineDejitter` smooths them per gap-free stretch (liblsl's own
``proc_dejitter`` would smear a real gap over the following seconds and hide it).
Channel labels, types and units come from the stream's XML description (``desc/channels``).
A stream that describes no channels (OpenBCI GUI's) is typed by its stream type, except for a
packet counter, found in its first samples by its values as the XDF reader finds it in a file.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from bci_app.errors import ConfigError, SourceError, StreamNotFoundError

from .base import Source, SourceLostError
from .dejitter import OnlineDejitter
from .files import _looks_like_counter, _number_label
from .lsl_env import import_pylsl, lsl_scope
from .markers import MarkerLog
from .stream_info import VOLT_SCALE, StreamInfo, mne_channel_type, unique_channel_names

logger = logging.getLogger(__name__)


#: Samples read at connect from a stream that describes no channels, to find a packet counter
#: among them (the counter rule needs at least 100), and the longest wait for them (seconds).
PROBE_SAMPLES = 128
PROBE_MAX_S = 3.0
_COUNTER_MIN_SAMPLES = 100


def _lost_error() -> type[Exception]:
    from pylsl.util import LostError

    return LostError


def _predicate(name: str | None, stream_type: str | None, source_id: str | None) -> str:
    parts = []
    for key, value in (("name", name), ("type", stream_type), ("source_id", source_id)):
        if value:
            if "'" in value:
                raise ConfigError(f"LSL {key} {value!r} must not contain a single quote.")
            parts.append(f"{key}='{value}'")
    if not parts:
        raise ConfigError(
            "An LSL source needs a stream name, type or source id to look for "
            "(e.g. LSLSource(name='OpenBCI_EEG') or --source lsl:OpenBCI_EEG)."
        )
    return " and ".join(parts)


def _continuous_resolve(pylsl, pred: str | None, timeout: float, stop_at_first: bool) -> list:
    """Resolve with a ContinuousResolver polled until ``timeout``.

    liblsl's one-shot resolve (``resolve_bypred``/``resolve_streams``) waits about 5 s beyond
    its timeout under a machine-scope configuration (measured with liblsl 1.16–1.18 here); the
    continuous resolver answers as soon as a stream is seen and honours the timeout.
    """
    resolver = pylsl.ContinuousResolver(pred=pred) if pred else pylsl.ContinuousResolver()
    deadline = time.monotonic() + timeout
    try:
        while True:
            found = resolver.results()
            if (found and stop_at_first) or time.monotonic() >= deadline:
                return list(found)
            time.sleep(0.02)
    finally:
        del resolver


def list_lsl_streams(timeout: float = 1.0) -> list[dict]:
    """Describe the LSL streams visible within ``timeout`` seconds."""
    pylsl = import_pylsl()
    out = []
    for info in _continuous_resolve(pylsl, None, timeout, stop_at_first=False):
        out.append({
            "name": info.name(), "type": info.type(), "channels": info.channel_count(),
            "sfreq": info.nominal_srate(), "source_id": info.source_id(),
            "hostname": info.hostname(), "format": info.channel_format(),
        })
    return out


def _resolve(pylsl, pred: str, timeout: float, list_visible: bool = True):
    """The first stream matching ``pred`` within ``timeout``, else StreamNotFoundError, naming
    the visible streams when ``list_visible`` (that listing takes 1 s more: a reconnection
    attempt, which retries every ``reconnect_timeout``, skips it)."""
    found = _continuous_resolve(pylsl, pred, timeout, stop_at_first=True)
    if not found:
        if list_visible:
            visible = list_lsl_streams(1.0)
            names = ", ".join(f"{s['name']!r} ({s['type']})" for s in visible) or "none"
            names = f" Visible streams: {names}."
        else:
            names = ""
        raise StreamNotFoundError(
            f"No LSL stream matching {pred} was found within {timeout:g} s.{names} Check that the device software is streaming, the name is spelled right, "
            f"and both sides use the same LSL scope (bci_app uses '{lsl_scope()}'; "
            "pass --lsl-scope lan to see other computers)."
        )
    return found[0]


def _warn_undescribed(name: str, n: int, labels: list[str], counters: list[int] | None,
                      n_read: int, named: bool = False) -> None:
    """Say how the channels of a stream that describes none were typed, and the fix (at INFO
    level when the user already names the channels: they took the fix)."""
    shown_names, electrodes = [], ["C3", "Cz", "C4"]  # the names shift past a counter
    for j in range(n):
        if j in (counters or ()):
            shown_names.append("counter")
        elif electrodes:
            shown_names.append(electrodes.pop(0))
        else:
            break
    example = ",".join(shown_names)
    warn = logger.info if named else logger.warning
    fix = ("Fix: have the sending program describe its channels (label, type and unit of each "
           "in the stream's <desc><channels>) and send aux data as a stream of its own; name "
           "the electrodes, one per channel in stream order, with SOURCE?channels=..., e.g. "
           f"--source 'lsl:{name}?channels={example},...'.")
    if counters is None:
        warn(
            "LSL %s describes no channels and sent %d samples at connect, too few (< %d) to "
            "tell a packet counter from EEG: all %d channels are taken as EEG in microvolts (a "
            "counter or aux channel would be scaled, drawn, checked and recorded as EEG). "
            "Start the device's stream before connecting so bci_app can check. %s",
            name, n_read, _COUNTER_MIN_SAMPLES, n, fix)
        return
    eeg = [lab for j, lab in enumerate(labels) if j not in counters]
    shown = ", ".join(eeg[:6]) + (f" ... {eeg[-1]}" if len(eeg) > 6 else "")
    found = (f"channel {', '.join(str(j + 1) for j in counters)} holds a packet counter (whole "
             f"numbers 0-255 rising by a constant step), typed misc and kept as counts; the "
             f"other {len(eeg)}" if counters
             else f"no channel holds a packet counter; all {len(eeg)}")
    warn(
        "LSL %s describes no channels (no <desc><channels>): %s are taken as EEG in microvolts "
        "(%s). An accelerometer or other aux channel in the same stream cannot be told from "
        "EEG by its values and is taken as EEG. %s", name, found, shown, fix)


class LSLSource(Source):
    """An LSL stream (EEG or any regular-rate signal) as a :class:`Source`.

    Parameters
    ----------
    name, stream_type, source_id : str | None
        What to resolve; at least one. On reconnection the same query is used.
    units : "auto" | "V" | "uV"
        ``"auto"`` scales EEG channels from the units in the stream description; EEG channels
        without a unit are taken as microvolts (the LSL convention of OpenBCI GUI and most EEG
        apps) and the assumption is logged.
    max_buflen : int
        Seconds liblsl buffers on our side if we fall behind.
    **kwargs
        Passed to :class:`Source`.
    """

    kind = "lsl"

    def __init__(
        self,
        name: str | None = None,
        *,
        stream_type: str | None = None,
        source_id: str | None = None,
        units: str = "auto",
        max_buflen: int = 360,
        **kwargs,
    ) -> None:
        # 1 ms polling: liblsl's pull is cheap (~10 us when empty) and latency is what LSL
        # users care about (bench/bench_lsl_latency.py).
        kwargs.setdefault("poll_interval", 0.001)
        super().__init__(**kwargs)
        self.predicate = _predicate(name, stream_type, source_id)
        if units not in ("auto", "V", "uV"):
            raise ConfigError(f"units must be 'auto', 'V' or 'uV', got {units!r}.")
        self.query_name = name
        self.units = units
        self.max_buflen = int(max_buflen)
        self._inlet = None
        self._pylsl = None
        self._scale: np.ndarray | None = None
        self._buf: np.ndarray | None = None
        self._dejitter: OnlineDejitter | None = None
        self.clock_offsets: list[tuple[float, float]] = []
        # samples read at connect to type a stream without channel description (raw, stamps),
        # handed out by the first _pull; the counter columns found then, kept for reconnection
        self._pending: tuple[np.ndarray, np.ndarray] | None = None
        self._counters: list[int] | None = None

    def _reopen(self, timeout: float) -> StreamInfo:
        self._close()
        return self._open(timeout, list_visible=False, reopen=True)

    def _open(self, timeout: float, list_visible: bool = True,
              reopen: bool = False) -> StreamInfo:
        pylsl = self._pylsl = import_pylsl()
        found = _resolve(pylsl, self.predicate, timeout, list_visible)
        if found.nominal_srate() <= 0:
            raise SourceError(
                f"LSL stream {found.name()!r} has an irregular rate; it is a marker or event "
                "stream, not a signal. Use it as a marker inlet (LSLMarkerInlet)."
            )
        if found.channel_format() == pylsl.cf_string:
            raise SourceError(f"LSL stream {found.name()!r} carries strings; it is not a signal.")
        inlet = pylsl.StreamInlet(
            found,
            max_buflen=self.max_buflen,
            recover=False,
            processing_flags=pylsl.proc_clocksync,
        )
        # Resolution proved the stream is there; opening it (XML header, data connection,
        # first clock-offset estimate) takes up to about a second on its own.
        open_timeout = max(3.0, timeout)
        try:
            full = inlet.info(timeout=open_timeout)
            inlet.open_stream(timeout=open_timeout)
            offset = inlet.time_correction(timeout=open_timeout)
        except Exception as err:
            inlet.close_stream()
            raise SourceError(f"Could not open LSL stream {found.name()!r}: {err}") from err
        self.clock_offsets.append((pylsl.local_clock(), offset))
        logger.info("LSL %s: clock offset %.6f s", found.name(), offset)
        self._inlet = inlet
        # pull_chunk writes the stream's own sample type into this buffer
        dtypes = {pylsl.cf_float32: np.float32, pylsl.cf_double64: np.float64,
                  pylsl.cf_int8: np.int8, pylsl.cf_int16: np.int16, pylsl.cf_int32: np.int32,
                  pylsl.cf_int64: np.int64}
        fmt = found.channel_format()
        if fmt not in dtypes:
            inlet.close_stream()
            raise SourceError(f"LSL stream {found.name()!r} has channel format {fmt}, which "
                              "bci_app cannot read as a signal.")
        self._buf = np.empty((max(1, int(full.nominal_srate())), full.channel_count()),
                             dtype=dtypes[fmt])
        self._pending = None
        info = self._describe(full, reopen)
        self._dejitter = OnlineDejitter(info.sfreq)
        return info

    def _probe_counters(self, full) -> list[int] | None:
        """Read the first samples of a stream that describes no channels (kept for the first
        :meth:`_pull`: none is lost) and return the columns holding a packet counter (whole
        numbers 0-255 rising by a constant step, the rule ``read_file`` applies to such a stream
        in an XDF file); None when too few samples came within the wait to tell."""
        sfreq = full.nominal_srate()
        deadline = time.monotonic() + min(PROBE_MAX_S, max(1.0, 1.5 * PROBE_SAMPLES / sfreq))
        parts, stamps = [], []
        while sum(map(len, parts)) < PROBE_SAMPLES and time.monotonic() < deadline:
            try:
                _, ts = self._inlet.pull_chunk(timeout=0.05, max_samples=self._buf.shape[0],
                                               dest_obj=self._buf)
            except _lost_error() as err:
                raise SourceError(f"LSL stream {full.name()!r} was lost while its first "
                                  f"samples were read: {err}") from err
            if ts:
                parts.append(self._buf[:len(ts)].copy())
                stamps.extend(ts)
        if parts:
            self._pending = (np.concatenate(parts), np.asarray(stamps, dtype=np.float64))
        if len(stamps) < _COUNTER_MIN_SAMPLES:
            return None
        raw = self._pending[0].astype(np.float64)
        return [j for j in range(raw.shape[1]) if _looks_like_counter(raw[:, j])]

    def _describe(self, full, reopen: bool = False) -> StreamInfo:
        n = full.channel_count()
        labels, types, units = [], [], []
        ch = full.desc().child("channels").child("channel")
        stream_type = full.type().strip().lower()
        described = not ch.empty()
        counters: list[int] | None = []
        if not described and mne_channel_type(stream_type) == "eeg":
            # every channel would be EEG in microvolts: look for a packet counter (OpenBCI GUI
            # streams one in column 0 of its EEG stream); a reconnection keeps the first answer
            counters = self._counters if reopen else self._probe_counters(full)
            self._counters = counters
        for i in range(n):
            if ch.empty():
                counter = i in (counters or ())
                labels.append("counter" if counter else f"Ch{i + 1}")
                types.append("misc" if counter else mne_channel_type(stream_type))
                units.append("")
                continue
            labels.append(ch.child_value("label") or f"Ch{i + 1}")
            types.append(mne_channel_type(ch.child_value("type") or stream_type))
            units.append((ch.child_value("unit") or "").strip())
            ch = ch.next_sibling()
        labels = unique_channel_names(labels)  # some devices send identical labels
        scale = np.ones(n)
        out_units = []
        assumed = False
        unknown: set[str] = set()
        for i, (t, u) in enumerate(zip(types, units)):
            if t in ("eeg", "eog", "emg", "ecg"):
                if self.units == "V":
                    factor = 1.0
                elif self.units == "uV":
                    factor = 1e-6
                elif u.lower() in VOLT_SCALE:
                    factor = VOLT_SCALE[u.lower()]
                else:
                    factor, assumed = 1e-6, True
                    if u:
                        unknown.add(u)
                scale[i] = factor
                out_units.append("V")
            else:
                out_units.append(u or "n/a")
        if unknown:
            logger.warning(
                "LSL %s: unit(s) %s are not voltage units bci_app knows (V, mV, uV, nV); those "
                "channels are taken as microvolts. If that is wrong, open the stream with "
                "LSLSource(..., units='V') or units='uV'.", full.name(), sorted(unknown))
        elif assumed:
            logger.info("LSL %s: EEG channels without a unit are taken as microvolts.", full.name())
        if not described and mne_channel_type(stream_type) == "eeg" and not reopen:
            _warn_undescribed(full.name(), n, labels, counters,
                              0 if self._pending is None else len(self._pending[1]),
                              named=self.channel_names is not None)
        self._scale = scale
        return StreamInfo(
            name=full.name(),
            source_kind=self.kind,
            ch_names=tuple(labels),
            ch_types=tuple(types),
            units=tuple(out_units),
            sfreq=float(full.nominal_srate()),
            source_id=full.source_id() or "",
            metadata={"lsl_type": full.type(), "hostname": full.hostname(),
                      "created_at": full.created_at(), "uid": full.uid(),
                      "original_units": units, "units_assumed": assumed,
                      "channels_described": described,
                      "counter_channels": [labels[j] for j in counters or ()],
                      "counter_checked": described or counters is not None},
        )

    def _close(self) -> None:
        self._pending = None
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            try:
                inlet.close_stream()
            except Exception:
                pass
            del inlet

    def _pull(self) -> tuple[np.ndarray, np.ndarray] | None:
        inlet = self._inlet
        if inlet is None:
            raise SourceLostError(f"LSL stream {self.display_name!r} is closed.")
        if self._pending is not None:  # the samples read at connect to type the channels
            raw, ts = self._pending
            self._pending = None
            return raw.astype(np.float64) * self._scale, self._dejitter(ts)
        try:
            _, ts = inlet.pull_chunk(timeout=0.0, max_samples=self._buf.shape[0], dest_obj=self._buf)
        except _lost_error() as err:
            raise SourceLostError(f"LSL stream {self.display_name!r} was lost: {err}") from err
        n = len(ts)
        if n == 0:
            return None
        data = self._buf[:n].astype(np.float64) * self._scale
        return data, self._dejitter(np.asarray(ts, dtype=np.float64))

    def time_correction(self, timeout: float = 1.0) -> float:
        """Current clock offset of the stream (seconds to add to remote timestamps)."""
        if self._inlet is None:
            raise RuntimeError("Not connected.")
        return self._inlet.time_correction(timeout=timeout)


class LSLMarkerInlet:
    """Reads an LSL marker stream (irregular, usually strings) into a :class:`MarkerLog`.

    Runs its own thread; marker timestamps are corrected onto the local LSL clock. When the
    stream is lost (its sender quit or restarted) the thread says so once and looks for a
    stream matching the same query every ``reconnect_interval`` seconds, so a restarted sender
    is read again whatever its source id (liblsl's own recovery only finds a sender with the
    same non-empty source id; without one it raised ``LostError`` on every poll).

    Parameters
    ----------
    marker_log : MarkerLog
        Where markers go (usually the session's or the source's log).
    name, stream_type, source_id : str | None
        What to resolve (default: any stream of type ``Markers``); also what a lost stream is
        looked for by.
    poll_interval : float
        Seconds between two pulls.
    reconnect_interval : float
        Seconds between two searches for a lost stream.
    """

    def __init__(self, marker_log: MarkerLog, name: str | None = None, *,
                 stream_type: str | None = None, source_id: str | None = None,
                 poll_interval: float = 0.01, reconnect_interval: float = 0.5) -> None:
        if name is None and stream_type is None and source_id is None:
            stream_type = "Markers"
        self.predicate = _predicate(name, stream_type, source_id)
        self.marker_log = marker_log
        self.poll_interval = poll_interval
        self.reconnect_interval = float(reconnect_interval)
        self.stream_name = name or ""
        self._inlet = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.count = 0
        self.losses = 0  # times the stream was lost (and looked for again)
        self.error = ""

    def _open_inlet(self, found, timeout: float):
        pylsl = import_pylsl()
        inlet = pylsl.StreamInlet(found, recover=False, processing_flags=pylsl.proc_clocksync)
        try:
            inlet.open_stream(timeout=timeout)
            # the first clock offset now: until it is known nothing can be pulled (about 0.6 s),
            # and a sender that quit in that time took the markers it had sent with it
            inlet.time_correction(timeout=timeout)
        except BaseException:
            inlet.close_stream()
            raise
        self.stream_name = found.name()
        return inlet

    def connect(self, timeout: float = 5.0) -> LSLMarkerInlet:
        pylsl = import_pylsl()
        found = _resolve(pylsl, self.predicate, timeout)
        try:
            self._inlet = self._open_inlet(found, max(3.0, timeout))
        except Exception as err:
            raise SourceError(f"Could not open LSL marker stream {found.name()!r}: {err}") from err
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"markers-{self.stream_name}",
                                        daemon=True)
        self._thread.start()
        return self

    def pull(self) -> int:
        """Move available markers into the log; returns how many."""
        samples, ts = self._inlet.pull_chunk(timeout=0.0)
        for sample, t in zip(samples, ts):
            # numbers as read_file labels them from a recording of this stream: 4.0 -> "4"
            label = ",".join(str(v) if isinstance(v, str) else _number_label(v) for v in sample)
            self.marker_log.add(t, str(label), 0.0, f"lsl:{self.stream_name}")
        self.count += len(ts)
        return len(ts)

    def _lost(self, err: Exception) -> None:
        inlet, self._inlet = self._inlet, None
        try:
            inlet.close_stream()
        except Exception:
            pass
        self.losses += 1
        self.error = (f"LSL marker stream {self.stream_name!r} was lost ({err}); markers sent "
                      "until it comes back are not received")
        logger.warning("%s; looking for %s again every %.1f s", self.error, self.predicate,
                       self.reconnect_interval)

    def _try_reconnect(self) -> None:
        found = _continuous_resolve(import_pylsl(), self.predicate, self.reconnect_interval,
                                    stop_at_first=True)
        if not found or self._stop.is_set():
            return
        try:
            self._inlet = self._open_inlet(found[0], 2.0)  # (time correction: ~0.65 s)
        except Exception as err:
            logger.debug("Marker stream %s found but not opened: %s", self.predicate, err)
            return
        self.error = ""
        logger.warning("LSL marker stream %r is back (source id %r): reading its markers again",
                       self.stream_name, found[0].source_id())

    def _run(self) -> None:
        lost_error = _lost_error()
        while not self._stop.is_set():
            if self._inlet is None:
                self._try_reconnect()
            else:
                try:
                    self.pull()
                except lost_error as err:
                    self._lost(err)
                except Exception as err:
                    logger.exception("Marker inlet %s failed", self.stream_name)
                    self.error = str(err)
            self._stop.wait(self.poll_interval)

    def disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)  # a reconnection attempt takes at most about 4.5 s
            self._thread = None
        if self._inlet is not None:
            try:
                self.pull()
            except Exception:
                pass
            self._inlet.close_stream()
            self._inlet = None

    def __enter__(self) -> LSLMarkerInlet:
        if self._inlet is None:
            self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()
