"""Recordings for analysis: XDF → ``mne.io.Raw``, export to FIF / EDF / BIDS, recorder wiring.

``load_recording`` reads any XDF file (bci_app's own recordings, LabRecorder files): one signal
stream becomes a :class:`mne.io.RawArray` in volts, every string marker stream becomes
annotations with onsets relative to the first sample of that stream (placed on the sample whose
timestamp matches, so they stay right even when the device clock drifts). Gaps stay visible:

- gap markers (:data:`acquisition.markers.GAP_LABEL`) become ``BAD_gap`` annotations with the
  gap's length;
- when the timestamps jump (a stall, a reconnection), the missing samples are filled with zeros
  and annotated ``BAD_ACQ_SKIP`` (MNE's own convention for acquisition skips: ``raw.filter``
  filters the pieces on either side separately and epochs overlapping it are rejected), so every
  later sample stays at its true time. ``fill_gaps=False`` concatenates instead.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.base import gap_threshold
from acquisition.stream_info import VOLT_SCALE, mne_channel_type, unique_channel_names
from acquisition.xdf_writer import xdf_value as _first

from .errors import ConfigError, DataFileError, RecordingError

logger = logging.getLogger(__name__)

#: Annotation description of a recorded gap marker.
GAP_ANNOTATION = "BAD_gap"
#: Key in ``raw.annotations.extras`` of a marker whose time occurs in more than one stretch of a
#: reset clock and whose stream does not say which: placed in the first, all onsets listed.
AMBIGUOUS_KEY = "bci_app_time_base_ambiguous"
#: Annotation description of zero-filled samples where the timestamps jump.
SKIP_ANNOTATION = "BAD_ACQ_SKIP"
EXPORT_FORMATS = ("fif", "edf", "bids")
#: XDF type of the string stream with predicted labels (not annotated by load_recording).
PREDICTION_LABELS_TYPE = "PredictionLabels"

_BIOSIGNAL = {"eeg", "eog", "emg", "ecg", "seeg", "ecog"}


# ---------------------------------------------------------------------------- output checks
def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """Check, before any long work, that ``path`` is (or can become) a folder this process can
    write into.

    Creates the missing folders, writes and deletes a probe file, then removes the folders it
    created (the real writer creates them again), so a later failure leaves nothing behind.

    Parameters
    ----------
    path : path-like
        The output folder.
    option : str
        The command-line option that named it (``"--out"``), for the message.

    Returns
    -------
    Path
        ``path`` with ``~`` expanded.

    Raises
    ------
    ConfigError
        ``path`` is an existing file, or cannot be created or written (read-only, no permission,
        a virtual file system such as ``/proc``); the message names ``option`` and the fix.
    """
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"{option}: {folder} is an existing file, expected a folder; fix: pass a folder path "
            f"(e.g. {folder.parent / (folder.stem + '_out')})."
        )
    err = _write_probe(folder)
    if err is not None:
        raise ConfigError(
            f"{option}: cannot write into {folder} ({err.strerror or err}); fix: pass a folder "
            "you can write to."
        )
    return folder


def _write_probe(folder: Path) -> OSError | None:
    """Create the missing folders, write and delete a probe file in ``folder``, remove the
    folders it created; the OSError that stopped it, or None."""
    import tempfile

    created = []
    try:
        for d in [*reversed(folder.parents), folder]:  # outermost first
            if not d.exists():
                d.mkdir()
                created.append(d)
        fd, probe = tempfile.mkstemp(prefix=".bci-app-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        return err
    finally:
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:
                pass
    return None


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """Like :func:`check_output_dir` for a file to be written (its content is not touched).

    Raises ConfigError naming ``option`` when ``path`` is a folder, or when its folder cannot be
    written, or an existing file cannot be opened for writing.
    """
    file = Path(path).expanduser()
    if file.is_dir():
        raise ConfigError(
            f"{option}: {file} is a folder, expected a file path; fix: pass e.g. "
            f"{file / 'results.json'}."
        )
    err = _write_probe(file.parent)
    if err is None and file.exists():
        try:
            with open(file, "ab"):  # opens for writing, changes nothing
                pass
        except OSError as e:
            err = e
    if err is not None:
        raise ConfigError(
            f"{option}: cannot write {file} ({err.strerror or err}); fix: pass a file path you "
            "can write to."
        )
    return file


# ---------------------------------------------------------------------------- wiring
def attach_recorder(
    session,
    path: str | os.PathLike | None = None,
    *,
    subject: str = "anonymous",
    settings: dict | None = None,
    model_bundle: str | None = None,
    prefix: str | None = None,
    history: bool = True,
    **meta,
):
    """Create a :class:`~acquisition.recorder.Recorder` for ``session`` and add it as a component.

    Records the session's source (EEG + its marker log). The session starts and stops it;
    with ``history=True`` (default) the file starts at the source's first sample and first
    marker (what the ring buffer still holds when the recorder starts, which is everything when
    it starts right after the connect, as ``Session.start`` does).
    ``path`` ``None`` or ``""`` gives ``recordings/<prefix or subject>_<UTC time>.xdf``; an
    existing folder (or a path ending in ``/``) gets that file name inside it.
    Adds a ``rec`` entry to the session's status line. Returns the recorder (e.g. to
    ``add_stream`` the predictions or ``add_marker_log`` the cue generator).
    """
    from acquisition.recorder import Recorder

    from . import __version__

    path = recording_path(path, prefix or subject or "session")
    session_meta = {
        "subject": subject,
        "app_version": __version__,
        "model_bundle": model_bundle or "",
        "settings": settings or {},
        **meta,
    }
    rec = Recorder(path, session_meta=session_meta, history=history)
    rec.add_source(session.source)
    session.add_component(rec, start_last=True)
    session.add_status_hook(lambda: {"rec": rec.status_text()})
    return rec


def check_recording_target(path, option: str) -> None:
    """Before the source connects: ConfigError naming ``option`` when the recording file
    ``path`` cannot be created: it exists (a recording never replaces a file), or its folder
    cannot be created or written. The recorder starts only after the source has connected, and
    a folder it cannot create was a traceback there."""
    path = Path(path)
    if os.path.lexists(path):
        raise ConfigError(f"{option}: {path} already exists; a recording never replaces a file. "
                          "Fix: choose another path (or a folder: the file is then named by the "
                          "time), or delete the old file yourself.")
    check_output_dir(path.parent, option)


def recording_path(path, prefix: str = "session") -> Path:
    """The file a recording given ``path`` goes to: ``None`` or ``""`` gives
    ``recordings/<prefix>_<UTC time>.xdf``; an existing folder (or a path ending in ``/``) gets
    that file name inside it; anything else is the file itself."""
    from acquisition.recorder import default_recording_path

    if not path:
        return Path(default_recording_path(prefix))
    if Path(path).is_dir() or str(path).endswith(("/", os.sep)):
        return Path(default_recording_path(prefix, folder=path))
    return Path(path)


def prediction_recorder(recorder, classes, *, name: str = "predictions"):
    """Record a decoder's predictions; returns the callback for ``DecoderWorker.add_callback``.

    Adds two irregular streams to ``recorder``, one sample per prediction, stamped with the
    prediction's ``window_end`` (LSL time of the window's last sample):

    - ``<name>`` (type ``Predictions``, float32): ``p_<class>`` for each class, then
      ``smoothed_<class>`` and ``control`` (NaN when the decoder has none);
    - ``<name>-labels`` (type ``PredictionLabels``, string): ``label``, ``command`` (``""`` when
      none), ``reliable`` (``"1"``/``"0"``) and ``details`` (JSON: ``seq``, ``reason``, ``text``,
      ``text_confidence`` (the text decoder's confidence in ``text``, null when none),
      ``latency`` in seconds). :func:`load_recording` does not turn these into annotations.

    The callback runs on the decoder's thread; it only queues (no I/O).
    """
    classes = [str(c) for c in classes]
    n = len(classes)
    if n == 0:
        raise ConfigError("prediction_recorder needs the decoder's class names; got none.")
    probs = recorder.add_stream(
        name,
        "Predictions",
        [f"p_{c}" for c in classes] + [f"smoothed_{c}" for c in classes] + ["control"],
        fmt="float32",
        meta={"classes": classes},
    )
    labels = recorder.add_stream(
        f"{name}-labels",
        PREDICTION_LABELS_TYPE,
        ["label", "command", "reliable", "details"],
        fmt="string",
        meta={"classes": classes},
    )

    def on_prediction(pred) -> None:
        row = np.full(2 * n + 1, np.nan, dtype=np.float32)
        p = np.asarray(pred.probabilities, dtype=np.float32).reshape(-1)
        row[: min(n, p.size)] = p[:n]
        if getattr(pred, "smoothed", None) is not None:
            sm = np.asarray(pred.smoothed, dtype=np.float32).reshape(-1)
            row[n : n + min(n, sm.size)] = sm[:n]
        if getattr(pred, "control", None) is not None:
            row[2 * n] = float(pred.control)
        t = float(pred.window_end)
        probs.push(row, t)
        details = {
            "seq": int(getattr(pred, "seq", -1)),
            "reason": getattr(pred, "reason", ""),
            "text": getattr(pred, "text", None),
            "text_confidence": getattr(pred, "text_confidence", None),  # (numpy: default=float)
            "latency": dict(getattr(pred, "latency", {}) or {}),
        }
        labels.push(
            [
                str(pred.label),
                str(getattr(pred, "command", None) or ""),
                "1" if getattr(pred, "reliable", True) else "0",
                json.dumps(details, default=float, sort_keys=True),
            ],
            t,
        )

    return on_prediction


# ---------------------------------------------------------------------------- helpers
def _stream_name(s: dict) -> str:
    return str(_first(s["info"], "name", ""))


def _stream_type(s: dict) -> str:
    return str(_first(s["info"], "type", "") or "")


def _n(s: dict) -> int:
    return len(s.get("time_stamps", []))


def _is_string(s: dict) -> bool:
    return str(_first(s["info"], "channel_format", "")).lower() == "string"


def _bci_desc(s: dict) -> dict:
    desc = _first(s["info"], "desc")
    app = _first(desc, "bci_app")
    return app if isinstance(app, dict) else {}


def _describe(s: dict) -> str:
    return f"{_stream_name(s)!r} (type {_stream_type(s)!r}, {_n(s)} samples)"


def read_session_meta(path: str | os.PathLike) -> dict:
    """The session metadata a bci_app recording stores in its file header ({} for others)."""
    return _read_file_header(Path(path))


def _read_file_header(path: Path) -> dict:
    """Parse only the FileHeader chunk (cheap) and return its session JSON, if any."""
    import struct
    from xml.etree import ElementTree as ET

    with open(path, "rb") as f:
        if f.read(4) != b"XDF:":
            return {}
        nb = f.read(1)
        if not nb or nb[0] not in (1, 4, 8):
            return {}
        length = int.from_bytes(f.read(nb[0]), "little")
        tag = struct.unpack("<H", f.read(2))[0]
        if tag != 1 or length > 1 << 24:
            return {}
        try:
            root = ET.fromstring(f.read(length - 2))
        except ET.ParseError:
            return {}
    txt = root.findtext("session_json")
    try:
        return json.loads(txt) if txt else {}
    except ValueError:
        return {}


def _meas_date(header: dict | None, t0: float) -> _dt.datetime | None:
    info = header.get("info") if isinstance(header, dict) else None
    if not isinstance(info, dict):
        return None
    clock = _first(info, "clock_reference")
    try:
        lsl, unix = float(_first(clock, "lsl_time")), float(_first(clock, "unix_time"))
        return _dt.datetime.fromtimestamp(unix + (t0 - lsl), tz=_dt.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        pass
    txt = _first(info, "datetime")
    if not txt:
        return None
    txt = str(txt).strip()
    txt = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", txt)  # LabRecorder: +0300
    try:
        d = _dt.datetime.fromisoformat(txt)
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.astimezone(_dt.timezone.utc)


def _pick_stream(streams: list[dict], stream, path: Path) -> dict:
    found = ", ".join(_describe(s) for s in streams) or "no streams at all"
    numeric = [s for s in streams if not _is_string(s) and _n(s) > 0]
    if stream is not None:
        if isinstance(stream, int):
            cands = [s for s in streams if s["info"].get("stream_id") == stream]
        else:
            cands = [s for s in streams if _stream_name(s) == str(stream)]
        if not cands:
            raise ConfigError(
                f"load_recording(stream={stream!r}): no such stream in {path}; the file has "
                f"{found}. Pass one of those names (or stream=None for the EEG stream)."
            )
        cands = [s for s in cands if s in numeric]
        if not cands:
            raise DataFileError(
                f"Stream {stream!r} in {path} has no numeric samples to read as a signal (the "
                f"file has {found}). Pick a non-empty numeric stream."
            )
        return cands[0]
    eeg = [s for s in numeric if mne_channel_type(_stream_type(s)) == "eeg"]  # EEG, ExG
    if eeg:
        return max(eeg, key=_n)
    regular = [s for s in numeric if float(_first(s["info"], "nominal_srate", 0) or 0) > 0]
    if not regular:
        raise DataFileError(
            f"{path} has no non-empty, regularly sampled numeric stream to read as a signal; it "
            f"has {found}. Pass stream=<name> to pick a stream."
        )
    best = max(regular, key=_n)
    logger.info("%s: no EEG stream; reading %s", path.name, _describe(best))
    return best


def _channels(s: dict, n_ch: int, path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Channel names, MNE types and the factor to volts of each channel."""
    app = _bci_desc(s)
    si = _first(app, "stream_info")
    if si:
        try:
            d = json.loads(si)
            names, types, units = list(d["ch_names"]), list(d["ch_types"]), list(d["units"])
            if len(names) == n_ch:
                scale = np.array([VOLT_SCALE.get(u.strip().lower(), 1.0) for u in units])
                return names, [mne_channel_type(t, "misc") for t in types], scale
        except (ValueError, KeyError, TypeError):
            logger.warning("%s: unreadable bci_app stream_info; using the channel list", path.name)
    is_eeg = mne_channel_type(_stream_type(s)) == "eeg"
    chans = _first(_first(s["info"], "desc"), "channels")
    lst = chans.get("channel") if isinstance(chans, dict) else None
    lst = list(lst) if isinstance(lst, list) else []
    if len(lst) != n_ch:
        if lst:
            logger.warning(
                "%s: stream %s describes %d channels but has %d; ignoring the labels",
                path.name,
                _stream_name(s),
                len(lst),
                n_ch,
            )
        lst = [{} for _ in range(n_ch)]
    names, types, scale, assumed = [], [], np.ones(n_ch), 0
    for j, ch in enumerate(lst):
        label = _first(ch, "label") or (f"EEG{j + 1:03d}" if is_eeg else f"ch{j + 1}")
        ctype = mne_channel_type(_first(ch, "type"), "eeg" if is_eeg else "misc")
        unit = _first(ch, "unit")
        if unit is None and ctype in _BIOSIGNAL:
            unit = "microvolts"  # the LSL/XDF convention for biosignals
            assumed += 1
        scale[j] = VOLT_SCALE.get(str(unit or "").strip().lower(), 1.0)
        names.append(str(label))
        types.append(ctype)
    if assumed:
        logger.info(
            "%s: %d channel(s) of %s without unit; assumed microvolts (LSL convention)",
            path.name,
            assumed,
            _stream_name(s),
        )
    return unique_channel_names(names), types, scale  # MNE needs unique names


def _fill_gaps(data: np.ndarray, ts: np.ndarray, sfreq: float, max_fill: float):
    """Insert zero samples where timestamps jump forward by more than 2.5 periods.

    Jumps longer than ``max_fill`` seconds and backward jumps (clock resets) are not filled: they
    become boundaries. Returns (data, timestamps, skips, boundaries): skips as (first filled index,
    n filled), boundaries as indices of the first sample after a break.
    """
    period = 1.0 / sfreq
    dt = np.diff(ts)
    breaks = np.flatnonzero((dt > gap_threshold(sfreq)) | (dt < -0.5 * period))
    if breaks.size == 0:
        return data, ts, [], []
    pieces_d, pieces_t, skips, bounds = [], [], [], []
    prev = offset = 0
    for j in breaks:
        pieces_d.append(data[prev : j + 1])
        pieces_t.append(ts[prev : j + 1])
        offset += j + 1 - prev
        missing = int(round(dt[j] * sfreq)) - 1
        if dt[j] > 0 and missing > 0 and dt[j] <= max_fill:
            pieces_d.append(np.zeros((missing, data.shape[1]), dtype=data.dtype))
            pieces_t.append(np.linspace(ts[j], ts[j + 1], missing + 2)[1:-1])
            skips.append((offset, missing))
            offset += missing
        elif missing > 0 or dt[j] < 0:
            bounds.append(offset)
        prev = j + 1
    pieces_d.append(data[prev:])
    pieces_t.append(ts[prev:])
    return np.concatenate(pieces_d), np.concatenate(pieces_t), skips, bounds


def _onsets(t: np.ndarray, ts: np.ndarray, sfreq: float, bounds: list[int],
            jumps: list | None = None) -> tuple[np.ndarray, dict[int, list[float]]]:
    """Seconds from the first sample, following the samples' own timestamps.

    Within each piece between boundaries (clock resets, unfilled jumps) the sample position is
    interpolated from the timestamps; a time outside every piece is extrapolated from the first
    sample with the nominal rate (and left out later if outside the signal).

    After a clock reset a time can occur in several pieces. ``jumps[i]`` (see
    :func:`_marker_rows`) then says on which clock marker ``i`` was made: the pieces after the
    last reset recorded before it in its stream, up to the next reset. Returns the onsets and,
    for each marker that remains in several pieces (placed in the first), the onsets of all.
    """
    t = np.asarray(t, dtype=np.float64)
    edges = [0, *bounds, ts.size]
    pieces = [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    resets = [b for b in bounds if 0 < b < ts.size and ts[b] < ts[b - 1]]
    half = 0.5 / sfreq
    # one vectorised pass per piece: a marker's onset in the first piece that holds its time,
    # and every piece's onset for the few whose time occurs more than once (a clock reset)
    out = np.full(t.shape, np.nan)
    n_in = np.zeros(t.size, dtype=int)
    hits = []
    for k, (a, b) in enumerate(pieces):
        seg = ts[a:b]
        idx = np.flatnonzero((t >= seg[0] - half) & (t <= seg[-1] + half))
        if idx.size:
            p = a + np.interp(t[idx], seg, np.arange(seg.size, dtype=np.float64))
            first = n_in[idx] == 0
            out[idx[first]] = p[first]
            n_in[idx] += 1
            hits.append((k, idx, p))
    multi = np.flatnonzero(n_in > 1)
    where: dict[int, list[tuple[int, float]]] = {int(i): [] for i in multi}
    for k, idx, p in hits if multi.size else ():
        sel = np.isin(idx, multi)
        for i, pi in zip(idx[sel], p[sel]):
            where[int(i)].append((k, float(pi)))
    ambiguous: dict[int, list[float]] = {}
    spans: dict[tuple, tuple[int, int]] = {}
    for i, cands in where.items():
        if jumps is not None and jumps[i] is not None:
            if jumps[i] not in spans:
                spans[jumps[i]] = _clock_span(jumps[i], resets, ts, half)
            lo, hi = spans[jumps[i]]
            cands = [c for c in cands if lo <= pieces[c[0]][0] and pieces[c[0]][1] <= hi] \
                or cands
        out[i] = cands[0][1]
        if len(cands) > 1:
            ambiguous[i] = [pi / sfreq for _, pi in cands]
    rest = np.isnan(out)
    if len(edges) == 2:  # one piece: extrapolate before / after it with the nominal rate
        before, after = rest & (t < ts[0]), rest & (t > ts[-1])
        out[before] = (t[before] - ts[0]) * sfreq
        out[after] = ts.size - 1 + (t[after] - ts[-1]) * sfreq
    else:
        out[rest] = -1e9  # in no piece of a broken time base: left out
    return out / sfreq, ambiguous


def _clock_span(jumps: tuple, resets: list[int], ts: np.ndarray, half: float) -> tuple[int, int]:
    """The samples ``[lo, hi)`` recorded on the clock a marker was made on: its stream's clock
    jumps (in recorded order) matched to the resets in order, each to the first later reset
    stamped with its time (a device whose clock restarts at the same value every time resets
    to the same time more than once); ``hi`` is the next reset."""
    lo = prev = 0
    for j in jumps:
        nxt = next((r for r in resets if r > prev and abs(ts[r] - j) <= half), None)
        if nxt is not None:
            lo = prev = nxt
    return lo, min((r for r in resets if r > lo), default=ts.size)


def _marker_rows(streams: list[dict], data_stream: dict, marker_streams) -> list[tuple]:
    """(timestamp, label, duration, jumps) of every marker to annotate, sorted by time.

    ``jumps``: the timestamps of the clock-reset markers
    (:data:`acquisition.markers.CLOCK_JUMP_LABEL`, stamped at the first sample on the new clock)
    written before it in its own stream, its own included; ``None`` when its stream holds none
    (its order says nothing about the clock then).
    """
    from acquisition.markers import CLOCK_JUMP_LABEL, GAP_LABEL
    from acquisition.recorder import xdf_markers

    markers = xdf_markers(streams, skip=[data_stream])  # each stream in its recorded order
    with_jumps = {m.extra.get("stream") for m in markers if m.label == CLOCK_JUMP_LABEL}
    rows, seen = [], {s: () for s in with_jumps}
    for m in markers:
        stream = m.extra.get("stream")
        if m.label == CLOCK_JUMP_LABEL:
            seen[stream] += (m.timestamp,)
        if marker_streams is not None and stream not in marker_streams:
            continue
        label = GAP_ANNOTATION if m.label == GAP_LABEL else m.label
        rows.append((m.timestamp, label, max(0.0, m.duration), seen.get(stream)))
    rows.sort(key=lambda r: r[0])
    return rows


# ---------------------------------------------------------------------------- load
# Formats MNE reads directly: a user handing one of these to `load`/`export` needs no conversion.
_MNE_FORMATS = {".bdf": "BDF", ".edf": "EDF", ".gdf": "GDF", ".fif": "FIF", ".vhdr": "BrainVision",
                ".set": "EEGLAB", ".cnt": "Neuroscan CNT", ".mff": "EGI MFF"}


def _check_xdf_magic(path: Path) -> None:
    """Refuse a file that is not XDF (nor gzip-compressed XDF) with what to do instead, before
    pyxdf's bare "Invalid XDF file" (and before suggesting ``repair``, which only mends XDF)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"XDF:" or head[:2] == b"\x1f\x8b":  # XDF, or .xdfz (gzip) which pyxdf opens
        return
    fmt = _MNE_FORMATS.get(path.suffix.lower())
    what = (f"It looks like a {fmt} file, a format MNE reads directly: open it with "
            f"mne.io.read_raw({str(path)!r}); it needs no conversion by bci-app."
            if fmt else "Pass a recording written by bci-app (record/live/GUI) or LabRecorder.")
    raise DataFileError(
        f"{path} is not an XDF recording (it does not start with the bytes 'XDF:'; got "
        f"{head!r}). bci-app reads recordings in XDF. {what}"
    )


def load_recording(
    path: str | os.PathLike,
    stream: str | int | None = None,
    *,
    fill_gaps: bool = True,
    max_fill: float = 60.0,
    marker_streams: list[str] | None = None,
):
    """Read an XDF recording as an :class:`mne.io.RawArray` (volts) with marker annotations.

    Parameters
    ----------
    path : path-like
        ``.xdf`` (or ``.xdfz``) file: a bci_app recording or any LabRecorder file.
    stream : str | int | None
        Name (or XDF stream id) of the signal stream; default: the largest stream of type EEG.
    fill_gaps : bool
        Fill timestamp jumps with zeros annotated ``BAD_ACQ_SKIP`` (default) so every sample
        keeps its true time; ``False`` concatenates the samples (with ``BAD boundary`` /
        ``EDGE boundary`` annotations at each jump, as ``mne.concatenate_raws`` does).
    max_fill : float
        Longest jump (seconds) that is filled; longer ones and backward jumps (clock resets)
        become boundaries.
    marker_streams : list of str | None
        Names of the string streams to annotate; default: all of them.

    Returns
    -------
    mne.io.RawArray
        Data in volts (float64); ``raw.annotations``: the markers (onsets in seconds from the
        first sample; gap markers as ``BAD_gap`` with the gap's length); ``meas_date`` the
        wall-clock time of the first sample when known. ``raw.info["description"]`` holds the
        session metadata as JSON for bci_app recordings.

    Raises
    ------
    DataFileError
        Missing, non-XDF, cut-off (run ``bci-app repair``) or stream-less file.
    """
    import mne
    import pyxdf

    from acquisition.xdf_writer import damage_message, scan_xdf

    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"Recording {path} not found; expected an existing .xdf file.")
    if path.suffix.lower() == ".xdf":
        problem = damage_message(scan_xdf(path))
        if problem:
            raise DataFileError(problem)
    else:
        _check_xdf_magic(path)
    try:
        streams, header = pyxdf.load_xdf(str(path))
    except Exception as err:
        hint = (f" If it was cut short by a crash, run `bci-app repair {path}`."
                if path.suffix.lower() == ".xdf" else "")
        raise DataFileError(
            f"XDF file {path} cannot be parsed: {type(err).__name__}: {err}.{hint}"
        ) from err
    s = _pick_stream(streams, stream, path)
    data = np.asarray(s["time_series"], dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    ts = np.asarray(s["time_stamps"], dtype=np.float64)
    sfreq = float(_first(s["info"], "nominal_srate", 0) or 0) or float(
        s["info"].get("effective_srate") or 0
    )
    if sfreq <= 0:
        raise DataFileError(
            f"Stream {_stream_name(s)!r} in {path} has no sampling rate (irregular stream); "
            "it cannot become an MNE Raw. Pass stream=<name> of a regularly sampled stream."
        )
    if np.any(np.diff(ts) < 0):
        logger.warning(
            "%s: timestamps of %s go backwards (clock reset?); marked as boundaries",
            path.name,
            _stream_name(s),
        )
    names, types, scale = _channels(s, data.shape[1], path)
    if np.any(scale != 1.0):
        data = data * scale[None, :]
    data, ts, skips, bounds = _fill_gaps(data, ts, sfreq, max_fill if fill_gaps else 0.0)

    info = mne.create_info(names, sfreq, types)
    session = _read_file_header(path) if path.suffix.lower() == ".xdf" else {}
    if session:
        info["description"] = json.dumps(session, default=str, sort_keys=True)[:4000]
    raw = mne.io.RawArray(data.T, info, verbose="error")
    meas = _meas_date(header, float(ts[0]))
    if meas is not None and meas.year >= 1970:
        raw.set_meas_date(meas)

    duration = raw.n_times / sfreq
    onsets, durations, descriptions = [], [], []
    for first, n in skips:
        onsets.append(first / sfreq)
        durations.append(n / sfreq)
        descriptions.append(SKIP_ANNOTATION)
    for b in bounds:  # what mne.concatenate_raws marks at a junction
        onsets += [(b - 0.5) / sfreq] * 2
        durations += [0.0, 0.0]
        descriptions += ["BAD boundary", "EDGE boundary"]
    extras: list[dict | None] = [None] * len(onsets)
    rows = _marker_rows(streams, s, marker_streams)
    if rows:
        on, ambiguous = _onsets(np.array([r[0] for r in rows]), ts, sfreq, bounds,
                                [r[3] for r in rows])
        omitted, in_gap, unsure = 0, [], []
        for i, (o, (t, label, dur, _)) in enumerate(zip(on, rows)):
            if o < -1e8 / sfreq and ts[0] <= t <= ts.max():  # in a jump left as a boundary
                if label != GAP_ANNOTATION:  # a gap marker: the boundary marks that gap
                    in_gap.append(label)
                continue
            if o < -0.5 / sfreq or o > duration:
                omitted += 1
                continue
            o = max(0.0, float(o))
            onsets.append(o)
            durations.append(min(dur, duration - o))
            descriptions.append(label)
            extras.append(None)
            if i in ambiguous:
                extras[-1] = {AMBIGUOUS_KEY: True,  # MNE extras hold scalars only
                              "bci_app_onsets": ",".join(f"{x:.6f}" for x in ambiguous[i])}
                unsure.append(f"{label!r} at " + " or ".join(f"{x:.3f}" for x in ambiguous[i]))
        if omitted:
            logger.info(
                "%s: %d marker(s) outside the signal's time span left out", path.name, omitted
            )
        if in_gap:
            shown = ", ".join(repr(x) for x in in_gap[:5]) + (", ..." if len(in_gap) > 5 else "")
            longest = max((float(b) for b in np.diff(ts)), default=0.0)
            fix = (f"export with --max-fill {int(np.ceil(longest)) + 1} (or load_recording(..., "
                   f"max_fill={int(np.ceil(longest)) + 1})) to fill the gaps with zeros marked "
                   "BAD_ACQ_SKIP and keep every marker at its time"
                   if fill_gaps else "load with fill_gaps=True to keep them at their time")
            logger.warning(
                "%s: %d marker(s) fall inside gaps of the signal that were not filled (longer "
                "than %g s, or a clock reset) and are not annotated: %s. The XDF keeps them. "
                "Fix: %s.", path.name, len(in_gap), max_fill, shown, fix
            )
        if unsure:
            logger.warning(
                "%s: %d marker(s) fall where a clock reset makes the signal's time occur twice, "
                "and their stream does not say on which clock they were made: %s s. Each is "
                "kept at its first occurrence and flagged in raw.annotations.extras (%r, with "
                "every possible onset in seconds under 'bci_app_onsets').",
                path.name, len(unsure), "; ".join(unsure[:5]) + ("; ..." if len(unsure) > 5
                                                                else ""), AMBIGUOUS_KEY,
            )
    if onsets:
        extras += [None] * (len(onsets) - len(extras))
        raw.set_annotations(
            mne.Annotations(onsets, durations, descriptions, orig_time=raw.info["meas_date"],
                            extras=extras if any(extras) else None)
        )
    return raw


# ---------------------------------------------------------------------------- export
def _bids_label(value: str, what: str) -> str:
    """A BIDS entity label (ASCII letters and digits) from ``value``: accents are taken off
    (``"Ünï 01"`` → ``"Uni01"``), other characters dropped, and a changed label is logged."""
    ascii_text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    label = re.sub(r"[^A-Za-z0-9]", "", ascii_text)
    if not label:
        raise ConfigError(
            f"BIDS {what} label {value!r} has no letters or digits (BIDS labels are ASCII "
            f"letters and digits); pass --{what} with an alphanumeric label, e.g. --subject 01."
        )
    if label != str(value):
        logger.warning("BIDS %s label %r is written as %r (BIDS labels are ASCII letters and "
                       "digits); pass --%s to choose it.", what, value, label, what)
    return label


_FILE_SUFFIXES = {".fif": "fif", ".edf": "edf", ".vhdr": "bids", ".bdf": None, ".set": None}


def _output_file(out: Path, to: str) -> Path | None:
    """``out`` when it names an output file rather than a folder (a FIF/EDF suffix and not an
    existing folder); ConfigError when that file's format is not ``to``; else None."""
    out = Path(out).expanduser()
    suffix = out.suffix.lower()
    if suffix not in _FILE_SUFFIXES or out.is_dir():
        return None
    if _FILE_SUFFIXES[suffix] == to and to != "bids":
        return out
    if to == "bids":
        raise ConfigError(f"--out: {out} names a {suffix} file; --to bids writes a BIDS folder "
                          f"tree. Fix: pass a folder, e.g. --out {out.with_suffix('')}_bids.")
    raise ConfigError(f"--out: {out} names a {suffix} file, but --to {to} writes "
                      f"{to.upper()}. Fix: --out {out.with_suffix('.' + to)}, or a folder.")


def export_recording(
    path: str | os.PathLike,
    to: str,
    out_dir: str | os.PathLike | None = None,
    *,
    stream: str | None = None,
    subject: str | None = None,
    task: str | None = None,
    session: str | None = None,
    run: int | None = None,
    overwrite: bool = False,
    max_fill: float = 60.0,
) -> Path:
    """Convert an XDF recording to FIF, EDF or a BIDS dataset.

    Parameters
    ----------
    path : path-like
        The XDF recording.
    to : {"fif", "edf", "bids"}
        ``fif``: ``<stem>_raw.fif`` (float64, lossless); ``edf``: ``<stem>.edf`` (EDF+, 16-bit,
        annotations as EDF+ annotations, via edfio); ``bids``: a BIDS EEG dataset rooted at
        ``out_dir`` (BrainVision data, ``events.tsv`` from the annotations, sidecars, via
        mne-bids).
    out_dir : path-like | None
        Output folder (default: the recording's folder; for BIDS ``<folder>/bids``). For
        ``fif``/``edf`` it may also name the output file itself (``s01_raw.fif``, ``s01.edf``).
    subject, task, session, run
        BIDS entities; subject defaults to the recording's subject id, task to ``bci``.
    max_fill : float
        Longest gap (seconds) filled with zeros annotated ``BAD_ACQ_SKIP`` (see
        :func:`load_recording`); markers inside a longer gap are not annotated (a warning names
        them).

    Returns
    -------
    Path
        The written file (for BIDS: the data file inside the dataset).

    Notes
    -----
    FIF stores text as Latin-1: a marker label with other characters ("→", "左手") is kept
    exactly in the annotation's extras (:func:`acquisition.files.keep_exact_descriptions`), its
    description holding MNE's character references, and a warning says so. EDF+ and BIDS store
    labels in UTF-8.
    """
    import mne

    from acquisition.files import EXACT_LABEL_KEY, keep_exact_descriptions

    to = str(to).lower()
    if to not in EXPORT_FORMATS:
        raise ConfigError(f"Export format must be one of {', '.join(EXPORT_FORMATS)}; got {to!r}.")
    if run is not None and int(run) < 1:
        raise ConfigError(f"--run: expected a BIDS run number >= 1, got {run}.")
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"Recording {path} not found; expected an existing .xdf file.")
    out = (
        Path(out_dir)
        if out_dir is not None
        else (path.parent / "bids" if to == "bids" else path.parent)
    )
    # --out naming the file itself (s01_raw.fif, s01.edf): written as named, not made a folder
    target = _output_file(out, to) if out_dir is not None else None
    if target is not None:
        out = target.parent
    # every check before the (possibly long) load: the output folder, an existing target
    check_output_dir(out, "--out")
    if target is not None:
        fname = target
    elif to == "fif":
        fname = out / f"{path.stem}_raw.fif"
    elif to == "edf":
        fname = out / f"{path.stem}.edf"
    else:
        import mne_bids

        meta = _read_file_header(path) if path.suffix.lower() == ".xdf" else {}
        subj = _bids_label(subject or meta.get("subject") or "01", "subject")
        bids_path = mne_bids.BIDSPath(
            subject=subj,
            session=_bids_label(session, "session") if session else None,
            task=_bids_label(task or meta.get("task") or "bci", "task"),
            run=run,
            datatype="eeg",
            root=out,
        )
        fname = Path(bids_path.copy().update(suffix="eeg", extension=".vhdr").fpath)
    _refuse_existing(fname, overwrite, bids=to == "bids")
    raw = load_recording(path, stream, max_fill=max_fill)
    if to == "edf":
        _check_finite_for_edf(raw, path)
    if to in ("fif", "edf"):
        _check_labels(raw, to, path)
    if to == "fif":
        kept = keep_exact_descriptions(raw.annotations)
        if kept:
            shown = ", ".join(repr(x) for x in kept[:5]) + (", ..." if len(kept) > 5 else "")
            logger.warning(
                "%s: %d marker label(s) are not Latin-1, which FIF cannot store as text: %s. "
                "The annotation descriptions hold MNE's character references (such as &#8594;); "
                "the exact text is in raw.annotations.extras[i][%r] (bci-app reads it back). "
                "EDF and BIDS store the labels as they are.",
                fname.name, len(kept), shown, EXACT_LABEL_KEY)
    # a failed FIF/EDF write deletes its half-written file (a rerun would refuse it); never
    # a file that was there before, nor one that appeared meanwhile (FileExistsError)
    clean_up = to != "bids" and not fname.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        if to == "fif":
            raw.save(fname, fmt="double", overwrite=overwrite, verbose="error")
            clean_up = False
            return fname
        if to == "edf":
            mne.export.export_raw(fname, raw, fmt="edf", overwrite=overwrite, verbose="error")
            clean_up = False
            return fname
        line = meta.get("line_freq")
        if line:
            raw.info["line_freq"] = float(line)
        mne_bids.write_raw_bids(
            raw,
            bids_path,
            format="BrainVision",
            allow_preload=True,
            overwrite=overwrite,
            verbose="error",
        )
    except FileExistsError as err:
        clean_up = False
        raise ConfigError(
            f"export: {err}; pass --overwrite to replace it, or --out DIR (BIDS: another --run "
            "or --session)."
        ) from None
    except OSError as err:
        raise RecordingError(
            f"export: cannot write {fname} ({err.strerror or err}); fix: free disk space or "
            "pass --out DIR on another disk."
        ) from None
    finally:
        if clean_up:
            Path(fname).unlink(missing_ok=True)
    return Path(bids_path.fpath)


def _check_finite_for_edf(raw, path: Path) -> None:
    """EDF holds only finite numbers (edfio refuses NaN/inf with a bare ValueError): name the
    channels that have non-finite samples and the formats that keep them."""
    counts = np.array(  # channel by channel: no second copy of a long recording
        [np.count_nonzero(~np.isfinite(raw.get_data(picks=[i]))) for i in range(len(raw.ch_names))]
    )
    if not counts.any():
        return
    chans = ", ".join(
        f"{raw.ch_names[i]} ({int(counts[i])})" for i in np.flatnonzero(counts)[:8]
    )
    more = " ..." if np.count_nonzero(counts) > 8 else ""
    raise DataFileError(
        f"export --to edf: {path} has {int(counts.sum())} non-finite samples (NaN or inf) in "
        f"channel(s) {chans}{more}; EDF can store only finite numbers. Fix: export --to fif or "
        "--to bids, which keep them as they were recorded."
    )


def _check_labels(raw, to: str, path: Path) -> None:
    """FIF stores channel names in ASCII and EDF labels in at most 16 ASCII characters (MNE
    fails with a bare UnicodeEncodeError / RuntimeError, FIF after half the file is written):
    name the channels that do not fit and the formats that keep them."""
    edf = to == "edf"
    bad = [n for n in raw.ch_names if not n.isascii() or (edf and len(n) > 16)]
    if not bad:
        return
    shown = ", ".join(repr(n) for n in bad[:8]) + (" ..." if len(bad) > 8 else "")
    need = "ASCII labels of at most 16 characters" if edf else "ASCII channel names"
    fif = " (--to fif too when they are ASCII)" if edf else ""
    raise DataFileError(
        f"export --to {to}: {path} has {len(bad)} channel label(s) that {to.upper()} cannot "
        f"hold: {shown}; {to.upper()} needs {need}. Fix: export --to bids, which keeps the "
        f"labels (BrainVision stores them in UTF-8){fif}, or rename the channels in Python: "
        "raw = bci_app.recording.load_recording(path); raw.rename_channels({...}); then save "
        "or export that raw. Nothing was written."
    )


def _refuse_existing(fname: Path, overwrite: bool, bids: bool = False) -> None:
    if fname.exists() and not overwrite:
        other = "--out DIR, or another --run or --session" if bids else "--out DIR"
        raise ConfigError(f"{fname} already exists; pass --overwrite to replace it, or {other}.")
