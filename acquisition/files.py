"""Read EEG recordings from files into one in-memory form: :class:`FileRecording`.

Supported formats (chosen by file extension):

========================  ===========================  =============================================
extension                 format                       reader
========================  ===========================  =============================================
``.fif``, ``.fif.gz``     MNE FIF                      ``mne.io.read_raw_fif``
``.edf``                  EDF / EDF+                   ``mne.io.read_raw_edf`` (size checked first)
``.bdf``                  BioSemi BDF                  ``mne.io.read_raw_bdf`` (+ Status triggers)
``.vhdr``                 BrainVision                  ``mne.io.read_raw_brainvision``
``.xdf``                  XDF (LabRecorder)            ``pyxdf.load_xdf`` (EEG stream + markers)
``.txt``                  OpenBCI GUI raw text         own parser (v5/v6 ``OpenBCI-RAW`` + legacy)
``.csv``                  BrainFlow ``write_file``     own parser (``numpy.loadtxt``) + board id
``.mat``                  OpenViBE ov2mat export       ``scipy.io.loadmat``
========================  ===========================  =============================================

Conventions of the result: ``data`` has shape (n_samples, n_channels), float64, with EEG (and any
channel whose unit is a voltage) in **volts**; ``times`` has shape (n_samples,) in seconds (the
file's own LSL timestamps for XDF, ``sample_index / sfreq`` otherwise); markers are on the same time
base as ``times``.

Every function here is pure (no threads, no global state) and may be called from any thread.
Problems with the file raise :class:`bci_app.errors.DataFileError`; bad arguments raise
:class:`bci_app.errors.ConfigError`.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bci_app.errors import ConfigError, DataFileError

from .markers import Marker
from .stream_info import VOLT_SCALE, StreamInfo, mne_channel_type, unique_channel_names
from .xdf_writer import xdf_value as _first

logger = logging.getLogger(__name__)

#: Extensions this module reads, mapped to a format name (checked longest first).
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".fif.gz": "fif",
    ".fif": "fif",
    ".edf": "edf",
    ".bdf": "bdf",
    ".vhdr": "brainvision",
    ".xdf": "xdf",
    ".txt": "openbci",
    ".csv": "brainflow",
    ".mat": "openvibe-mat",
}


@dataclass(frozen=True)
class FileRecording:
    """A recording read from a file, ready to analyse or replay.

    Attributes
    ----------
    data : ndarray, shape (n_samples, n_channels), float64
        Samples in the units of ``info.units`` (EEG in volts).
    times : ndarray, shape (n_samples,), float64
        Time of each sample in seconds: the file's own LSL timestamps for XDF,
        ``sample_index / sfreq`` for every other format.
    info : StreamInfo
        ``source_kind="replay"``; channel names, MNE channel types, units, nominal rate;
        ``metadata`` holds at least ``path`` and ``format``.
    markers : list of Marker
        Events of the file sorted by time, on the time base of ``times``; ``source="file"``.
    """

    data: np.ndarray
    times: np.ndarray
    info: StreamInfo
    markers: list[Marker] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[1])

    @property
    def sfreq(self) -> float:
        return float(self.info.sfreq)

    @property
    def path(self) -> Path:
        return Path(self.info.metadata.get("path", ""))

    @property
    def format(self) -> str:
        return str(self.info.metadata.get("format", ""))

    @property
    def duration(self) -> float:
        """Seconds covered: span of ``times`` plus one sample period (``n / sfreq`` if regular)."""
        if self.n_samples == 0:
            return 0.0
        period = 1.0 / self.sfreq if self.sfreq > 0 else 0.0
        return float(self.times[-1] - self.times[0]) + period


# ---------------------------------------------------------------------------------------- entry
def read_file(
    path: str | os.PathLike,
    *,
    stream: str | None = None,
    board_id: int = -1,
) -> FileRecording:
    """Read an EEG recording (format chosen by extension, see the module docstring).

    Parameters
    ----------
    path : str | PathLike
        The file. For BrainVision pass the ``.vhdr`` header (its ``.eeg`` and ``.vmrk`` must sit
        beside it).
    stream : str | None
        XDF only: name of the stream to read as EEG. ``None`` picks the stream of type ``EEG``
        with the most samples.
    board_id : int
        BrainFlow CSV only: the BrainFlow board id that recorded the file (it says which rows are
        EEG and the sampling rate). Default ``-1``, the synthetic board.

    Returns
    -------
    FileRecording

    Raises
    ------
    DataFileError
        Missing, empty, truncated or unsupported file, or no EEG stream in it.
    ConfigError
        An argument (``stream``, ``board_id``) does not fit the file.
    """
    path = Path(path).expanduser()
    fmt = _format_of(path)
    if not path.exists():
        raise DataFileError(
            f"EEG file {str(path)!r} does not exist. Check the path (relative paths are resolved "
            f"from {os.getcwd()!r})."
        )
    if not path.is_file():
        raise DataFileError(
            f"{str(path)!r} is a directory, not an EEG file; pass a file inside it."
        )
    if not os.access(path, os.R_OK):
        raise DataFileError(
            f"EEG file {str(path)!r} cannot be read: permission denied. Fix: give your user read "
            "access (e.g. chmod u+r), or copy the file somewhere you can read it."
        )
    size = path.stat().st_size
    if size == 0:
        raise DataFileError(
            f"EEG file {str(path)!r} is empty (0 bytes); expected a {fmt} recording. The recording "
            "was probably interrupted before anything was written; use another file."
        )
    reader: Callable[..., FileRecording] = _READERS[fmt]
    logger.debug("Reading %s as %s", path, fmt)
    if fmt == "xdf":
        rec = reader(path, stream=stream)
    elif fmt == "brainflow":
        rec = reader(path, board_id=board_id)
    else:
        if stream is not None:
            raise ConfigError(
                f"read_file(stream={stream!r}) only applies to XDF files, but {path.name!r} is "
                f"{fmt}; drop the stream argument."
            )
        rec = reader(path)
    _check_recording(rec, path)
    logger.info(
        "Read %s: %d samples x %d channels @ %g Hz, %d markers", path.name, rec.n_samples,
        rec.n_channels, rec.sfreq, len(rec.markers),
    )
    return rec


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return SUPPORTED_EXTENSIONS[ext]
    raise DataFileError(
        f"Unsupported file type {path.suffix or '(no extension)'!r} for {str(path)!r}. "
        f"Supported extensions: {', '.join(sorted(SUPPORTED_EXTENSIONS))}. Convert the file "
        "(for example with MNE-Python) to one of them."
    )


def _check_recording(rec: FileRecording, path: Path) -> None:
    if rec.data.ndim != 2 or rec.data.shape[0] == 0:
        raise DataFileError(
            f"{str(path)!r} holds no samples (data shape {rec.data.shape}); expected at least one "
            "sample of EEG. Use a recording that contains data."
        )
    if rec.times.shape != (rec.data.shape[0],):
        raise DataFileError(  # internal consistency: a reader bug more than a file problem
            f"{str(path)!r}: {rec.data.shape[0]} samples but {rec.times.shape} timestamps."
        )
    if rec.data.shape[1] != rec.info.n_channels:
        raise DataFileError(
            f"{str(path)!r}: {rec.data.shape[1]} data columns but {rec.info.n_channels} channel "
            "names in the header; the file is inconsistent."
        )


def _make_info(
    path: Path,
    fmt: str,
    ch_names: Sequence[str],
    ch_types: Sequence[str],
    units: Sequence[str],
    sfreq: float,
    *,
    name: str | None = None,
    **metadata: Any,
) -> StreamInfo:
    return StreamInfo(
        name=name or path.stem,
        source_kind="replay",
        ch_names=tuple(unique_channel_names(ch_names)),
        ch_types=tuple(ch_types),
        units=tuple(units),
        sfreq=float(sfreq),
        source_id=f"file:{path.resolve()}",
        metadata={"path": str(path.resolve()), "format": fmt, **metadata},
    )


def _number_label(value: float) -> str:
    """``4.0`` -> ``"4"``, ``2.5`` -> ``"2.5"`` (trigger values as marker labels)."""
    v = float(value)
    return str(int(v)) if v.is_integer() else repr(v)


def _sorted_markers(markers: list[Marker]) -> list[Marker]:
    return sorted(markers, key=lambda m: m.timestamp)  # stable: file order among equal times


# ---------------------------------------------------------------------------------------- MNE
def _check_edf_size(path: Path, fmt: str) -> None:
    """Compare an EDF/BDF file's size with what its header promises (catches truncation)."""
    bytes_per_sample = 3 if fmt == "bdf" else 2
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(256)
        if len(head) < 256:
            raise DataFileError(
                f"{fmt.upper()} file {str(path)!r} is truncated: its header needs 256 bytes, the "
                f"file has {size}. Use an intact copy of the recording."
            )
        try:
            header_bytes = int(head[184:192].decode("ascii").strip())
            n_records = int(head[236:244].decode("ascii").strip())
            n_signals = int(head[252:256].decode("ascii").strip())
        except ValueError as err:
            raise DataFileError(
                f"{str(path)!r} is not a valid {fmt.upper()} file: its fixed header fields are not "
                f"numbers ({err}). Check that the file really is {fmt.upper()}."
            ) from None
        if size < header_bytes:
            raise DataFileError(
                f"{fmt.upper()} file {str(path)!r} is truncated: the header declares "
                f"{header_bytes} header bytes but the file has only {size} bytes. Use an intact "
                "copy of the recording."
            )
        f.seek(256 + n_signals * 216)
        raw = f.read(n_signals * 8)
    try:
        per_record = sum(
            int(raw[i * 8 : (i + 1) * 8].decode("ascii").strip()) for i in range(n_signals)
        )
    except ValueError:
        raise DataFileError(
            f"{str(path)!r}: the samples-per-record fields of the {fmt.upper()} header are not "
            "numbers; the header is corrupt."
        ) from None
    if n_records < 0:  # -1: unknown while recording; MNE copes
        return
    expected = header_bytes + n_records * per_record * bytes_per_sample
    if size < expected:
        complete = (size - header_bytes) // max(1, per_record * bytes_per_sample)
        raise DataFileError(
            f"{fmt.upper()} file {str(path)!r} is truncated: its header declares {n_records} data "
            f"records ({expected} bytes in all) but the file has {size} bytes, i.e. only "
            f"{complete} complete records. Use an intact copy (re-download or re-export it)."
        )


def _fiff_unit(code: int) -> str:
    from mne.io.constants import FIFF

    return {
        int(FIFF.FIFF_UNIT_V): "V",
        int(FIFF.FIFF_UNIT_T): "T",
        int(FIFF.FIFF_UNIT_T_M): "T/m",
        int(FIFF.FIFF_UNIT_MOL): "mol",
        int(FIFF.FIFF_UNIT_CEL): "C",
        int(FIFF.FIFF_UNIT_NONE): "n/a",
    }.get(int(code), "n/a")


def _read_mne(path: Path, fmt: str) -> FileRecording:
    import mne

    if fmt in ("edf", "bdf"):
        _check_edf_size(path, fmt)
    readers = {
        "fif": mne.io.read_raw_fif,
        "edf": mne.io.read_raw_edf,
        "bdf": mne.io.read_raw_bdf,
        "brainvision": mne.io.read_raw_brainvision,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MNE warns about odd units / annotations at length
            raw = readers[fmt](str(path), preload=True, verbose="error")
    except DataFileError:
        raise
    except Exception as err:  # MNE raises many types (ValueError, OSError, RuntimeError, ...)
        raise DataFileError(
            f"{str(path)!r} cannot be read as {fmt}: {type(err).__name__}: {err}. Check that the "
            "file is complete and really in that format (BrainVision also needs its .eeg and "
            ".vmrk files beside the .vhdr)."
        ) from err
    sfreq = float(raw.info["sfreq"])
    data = np.ascontiguousarray(raw.get_data().T, dtype=np.float64)
    n = data.shape[0]
    times = np.arange(n, dtype=np.float64) / sfreq
    markers: list[Marker] = []
    ann = raw.annotations
    offset = raw.first_time if ann.orig_time is not None else 0.0
    # a label FIF cannot hold as text is in the extras (keep_exact_descriptions)
    extras = getattr(ann, "extras", None) or [None] * len(ann)
    for onset, duration, desc, extra in zip(ann.onset, ann.duration, ann.description, extras):
        label = (extra or {}).get(EXACT_LABEL_KEY, desc)
        markers.append(Marker(float(onset - offset), str(label), float(duration), "file"))
    stim = mne.pick_types(raw.info, meg=False, stim=True)
    n_triggers = 0
    if len(stim):
        stim_names = [raw.ch_names[i] for i in stim]
        try:
            events = mne.find_events(
                raw, stim_channel=stim_names, shortest_event=1, initial_event=True, verbose="error"
            )
        except ValueError as err:
            logger.warning("%s: could not read triggers from %s: %s", path.name, stim_names, err)
            events = np.zeros((0, 3), dtype=int)
        for sample, _prev, value in events:
            markers.append(
                Marker(float((sample - raw.first_samp) / sfreq), _number_label(value), 0.0, "file",
                       {"trigger": int(value)})
            )
        n_triggers = len(events)
    units = [_fiff_unit(ch["unit"]) for ch in raw.info["chs"]]
    meas_date = raw.info.get("meas_date")
    info = _make_info(
        path, fmt, raw.ch_names, raw.get_channel_types(), units, sfreq,
        meas_date=None if meas_date is None else meas_date.isoformat(),
        n_annotations=len(ann), n_triggers=n_triggers,
    )
    return FileRecording(data, times, info, _sorted_markers(markers))


# ---------------------------------------------------------------------------------------- XDF
_XDF_MAGIC = b"XDF:"


def _xdf_fix(path: Path) -> str:
    return (f"If it was interrupted (crash, kill, power cut), run `bci-app repair {path}`: it "
            "keeps everything up to the last complete chunk. Otherwise use an intact copy.")


def _check_xdf_chunks(path: Path) -> None:
    """Walk the XDF chunk headers and make sure the last chunk ends exactly at the end of file.

    pyxdf silently returns whatever it could read from a truncated file, so truncation is
    detected here first (only chunk headers are read: cheap).
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(4) != _XDF_MAGIC:
            raise DataFileError(
                f"{str(path)!r} is not an XDF file: it does not start with the 'XDF:' magic bytes. "
                "Check the file (an XDF file is written by LabRecorder or pyxdf-compatible tools)."
            )
        pos = 4
        n_chunks = 0
        while pos < size:
            lb = f.read(1)
            if not lb:
                break
            n_len = lb[0]
            if n_len not in (1, 4, 8):
                raise DataFileError(
                    f"XDF file {str(path)!r} is corrupt: chunk {n_chunks} at byte {pos} has an "
                    f"invalid length prefix ({n_len}; expected 1, 4 or 8). {_xdf_fix(path)}"
                )
            raw_len = f.read(n_len)
            if len(raw_len) < n_len:
                raise DataFileError(
                    f"XDF file {str(path)!r} is truncated inside the header of chunk {n_chunks} "
                    f"(byte {pos} of {size}). {_xdf_fix(path)}"
                )
            length = int.from_bytes(raw_len, "little")
            end = pos + 1 + n_len + length
            if end > size:
                raise DataFileError(
                    f"XDF file {str(path)!r} is truncated: chunk {n_chunks} at byte {pos} declares "
                    f"{length} bytes but only {size - pos - 1 - n_len} remain (file has {size} "
                    f"bytes). The recording was cut short. {_xdf_fix(path)}"
                )
            f.seek(end)
            pos = end
            n_chunks += 1
    if n_chunks == 0:
        raise DataFileError(f"XDF file {str(path)!r} has no chunks after its magic bytes (empty).")


def _xdf_channels(info: dict) -> list[dict]:
    desc = _first(info, "desc")
    chans = _first(desc, "channels")
    lst = chans.get("channel") if isinstance(chans, dict) else None
    return list(lst) if isinstance(lst, list) else []


def _looks_like_counter(col: np.ndarray) -> bool:
    """True for an OpenBCI-style packet counter: integers 0-255 rising by a constant step."""
    if col.shape[0] < 100:
        return False
    if not np.all(np.isfinite(col)) or np.any(col != np.round(col)):
        return False
    if col.min() < 0 or col.max() > 255:
        return False
    steps = np.mod(np.diff(col), 256)
    values, counts = np.unique(steps, return_counts=True)
    best = values[np.argmax(counts)]
    return 1 <= best <= 8 and counts.max() >= 0.99 * steps.size


def _is_marker_stream(info: dict) -> bool:
    fmt = str(_first(info, "channel_format", "")).lower()
    try:
        srate = float(_first(info, "nominal_srate", 0) or 0)
    except ValueError:
        srate = 0.0
    return fmt == "string" or srate == 0.0


def _read_xdf(path: Path, *, stream: str | None = None) -> FileRecording:
    import pyxdf

    _check_xdf_chunks(path)
    try:
        streams, header = pyxdf.load_xdf(str(path))
    except Exception as err:
        from .xdf_writer import damage_message, scan_xdf

        try:  # a damage `bci-app repair` mends (a garbled header or chunk): say so
            problem = damage_message(scan_xdf(path))
        except Exception:  # noqa: BLE001 - the scan's own error says less than pyxdf's
            problem = None
        raise DataFileError(
            f"XDF file {str(path)!r} cannot be parsed: {type(err).__name__}: {err}. "
            + (problem or "Use an intact copy of the recording.")
        ) from err

    def n_samples(s: dict) -> int:
        return len(s.get("time_stamps", []))

    def describe(s: dict) -> str:
        i = s["info"]
        return f"{_first(i, 'name')!r} (type {_first(i, 'type')!r}, {n_samples(s)} samples)"

    found = ", ".join(describe(s) for s in streams) or "no streams at all"
    if stream is not None:
        cands = [s for s in streams if _first(s["info"], "name") == stream]
        if not cands:
            raise ConfigError(
                f"read_file(stream={stream!r}): no stream of that name in {str(path)!r}; the file "
                f"has {found}. Pass one of those names, or stream=None for the EEG stream."
            )
        cands = [s for s in cands if n_samples(s) > 0 and not _is_marker_stream(s["info"])]
        if not cands:
            raise DataFileError(
                f"Stream {stream!r} in {str(path)!r} has no numeric samples to read as EEG "
                f"(the file has {found}). Pick a non-empty, regularly sampled stream."
            )
    else:
        cands = [
            s for s in streams
            if mne_channel_type(_first(s["info"], "type", "")) == "eeg" and n_samples(s) > 0
        ]
        if not cands:
            raise DataFileError(
                f"XDF file {str(path)!r} has no non-empty stream of type 'EEG' (or 'ExG'); "
                f"it has {found}. Pass stream=<name> to read another stream as EEG (bci-app: --stream NAME)."
            )
    eeg = max(cands, key=n_samples)
    einfo = eeg["info"]
    name = str(_first(einfo, "name", path.stem))
    raw = np.asarray(eeg["time_series"], dtype=np.float64)
    if raw.ndim == 1:
        raw = raw[:, None]
    times = np.asarray(eeg["time_stamps"], dtype=np.float64)
    if np.any(np.diff(times) < 0):
        raise DataFileError(
            f"Stream {name!r} in {str(path)!r} has timestamps that go backwards even after pyxdf's "
            "clock-reset handling (the device's clock was reset during the recording, or the "
            "file's clock offsets are inconsistent), so it cannot be replayed on one time axis. "
            f"Fix: `bci-app export {path} --to fif` keeps every sample and marks the jump as a "
            "boundary; replay or analyse that FIF file."
        )
    n_ch = raw.shape[1]
    stream_is_eeg = mne_channel_type(_first(einfo, "type", "")) == "eeg"  # EEG, ExG
    chans = _xdf_channels(einfo)
    if len(chans) != n_ch:
        if chans:
            logger.warning(
                "%s: stream %s describes %d channels but has %d; ignoring the description",
                path.name, name, len(chans), n_ch,
            )
        chans = [{} for _ in range(n_ch)]
    ch_names, ch_types, units = [], [], []
    scale = np.ones(n_ch)
    assumed = []
    k_exg = 0
    for j, ch in enumerate(chans):
        label = _first(ch, "label")
        ctype = mne_channel_type(_first(ch, "type"), "eeg" if stream_is_eeg else "misc")
        unit = _first(ch, "unit")
        if not ch and stream_is_eeg and _looks_like_counter(raw[:, j]):
            ch_names.append("counter")
            ch_types.append("misc")
            units.append("n/a")
            continue
        if label is None:
            k_exg += 1
            label = f"EXG{k_exg}" if stream_is_eeg else f"ch{j + 1}"
        if unit is None and ctype in ("eeg", "eog", "emg", "ecg"):
            unit = "microvolts"  # the LSL/XDF convention for biosignals
            assumed.append(str(label))
        key = str(unit).strip().lower() if unit is not None else ""
        if key in VOLT_SCALE:
            scale[j] = VOLT_SCALE[key]
            units.append("V")
        else:
            units.append(str(unit) if unit else "n/a")
        ch_names.append(str(label))
        ch_types.append(ctype)
    data = raw * scale[None, :] if np.any(scale != 1.0) else raw
    data = np.ascontiguousarray(data)

    try:
        sfreq = float(_first(einfo, "nominal_srate", 0) or 0)
    except ValueError:
        sfreq = 0.0
    eff = float(einfo.get("effective_srate", 0.0) or 0.0)
    if sfreq <= 0:
        sfreq = eff
    if sfreq <= 0:
        raise DataFileError(
            f"Stream {name!r} in {str(path)!r} has no sampling rate (nominal 0 Hz and too few "
            "samples to estimate one); it cannot be replayed as EEG."
        )

    markers: list[Marker] = []
    marker_streams = []
    # bci_app recordings: marker durations/extras live in "-details" twin streams, and the
    # prediction labels are not events; read those through the recorder's own reader.
    from .recorder import DETAILS_TYPE, xdf_markers

    own = {"PredictionLabels", DETAILS_TYPE}
    if any(str(_first(s["info"], "type", "")) == DETAILS_TYPE for s in streams):
        for m in xdf_markers(streams, skip=[eeg]):
            markers.append(Marker(m.timestamp, m.label, m.duration, "file", dict(m.extra)))
            if m.extra.get("stream") not in marker_streams:
                marker_streams.append(m.extra.get("stream"))
        own.add("__string__")
    for s in streams:
        if s is eeg or n_samples(s) == 0 or not _is_marker_stream(s["info"]):
            continue
        stype = str(_first(s["info"], "type", ""))
        if stype in own or ("__string__" in own
                            and str(_first(s["info"], "channel_format", "")) == "string"):
            continue
        if _first(_first(_first(s["info"], "desc"), "bci_app"), "role") == "pushed":
            continue  # a bci_app recording's predictions (Recorder.add_stream): not events
        sname = str(_first(s["info"], "name", ""))
        marker_streams.append(sname)
        series = s["time_series"]
        for ts, value in zip(s["time_stamps"], series):
            vals = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
            label = ",".join(str(v) if isinstance(v, str) else _number_label(v) for v in vals)
            markers.append(Marker(float(ts), label, 0.0, "file", {"stream": sname}))
    if assumed:
        logger.info(
            "%s: no unit for %d channel(s) of %s; assumed microvolts (LSL convention)",
            path.name, len(assumed), name,
        )
    info = _make_info(
        path, "xdf", ch_names, ch_types, units, sfreq, name=name,
        stream_name=name, stream_type=str(_first(einfo, "type", "")),
        stream_id=einfo.get("stream_id"), effective_srate=eff,
        units_assumed_microvolts=assumed, marker_streams=marker_streams,
        streams=[describe(s) for s in streams],
    )
    return FileRecording(data, times, info, _sorted_markers(markers))


# ---------------------------------------------------------------------------------------- OpenBCI
_RATE_RE = re.compile(r"sample\s*rate\s*=\s*([0-9.]+)", re.I)
_NCH_RE = re.compile(r"number\s+of\s+channels\s*=\s*([0-9]+)", re.I)
_BOARD_RE = re.compile(r"board\s*=\s*(.+)", re.I)


def _split_complete_rows(
    lines: list[str], n_cols: int, path: Path, terminated: bool = True
) -> list[str]:
    """Drop a cut-off last row (a GUI killed mid-write); any other malformed row is an error.

    ``terminated``: whether the file ends with a newline. The GUI ends every row with one, so a
    last row without it was cut mid-write even when it has every column (its last value may be
    cut short or empty).
    """
    if lines and (len(lines[-1].split(",")) != n_cols or not terminated):
        logger.warning("%s: last row is incomplete (%r); dropped", path.name, lines[-1][:60])
        lines = lines[:-1]
    return lines


def _read_openbci(path: Path) -> FileRecording:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise DataFileError(f"{str(path)!r} cannot be read: {err}.") from err
    all_lines = text.splitlines()
    header = [ln for ln in all_lines[:20] if ln.startswith("%")]
    if not header or not header[0].lower().startswith("%openbci raw"):
        raise DataFileError(
            f"{str(path)!r} is not an OpenBCI GUI recording: the first line should start with "
            f"'%OpenBCI Raw', found {all_lines[0][:60]!r}. Only OpenBCI GUI raw .txt files are "
            "read from .txt."
        )
    head_text = "\n".join(header)
    m = _RATE_RE.search(head_text)
    if not m:
        raise DataFileError(
            f"OpenBCI file {str(path)!r} has no '%Sample Rate = ... Hz' header line; the header is "
            "incomplete. Use the file as written by the OpenBCI GUI."
        )
    sfreq = float(m.group(1))
    m = _NCH_RE.search(head_text)
    n_eeg_header = int(m.group(1)) if m else None
    m = _BOARD_RE.search(head_text)
    board = m.group(1).strip() if m else ""
    body = [ln for ln in all_lines if ln.strip() and not ln.startswith("%")]
    terminated = text.endswith(("\n", "\r")) or not all_lines or not all_lines[-1].strip()
    if not body:
        raise DataFileError(f"OpenBCI file {str(path)!r} has a header but no samples.")
    markers: list[Marker] = []
    if body[0].lstrip().lower().startswith("sample index"):
        layout = "openbci-gui-v6"
        cols = [c.strip() for c in body[0].split(",")]
        rows = _split_complete_rows(body[1:], len(cols), path, terminated)
        exg = [
            i for i, c in enumerate(cols) if c.lower().startswith(("exg channel", "eeg channel"))
        ]
        acc = [i for i, c in enumerate(cols) if c.lower().startswith("accel channel")]
        mark = [i for i, c in enumerate(cols) if c.lower() == "marker channel"]
        ts_col = [i for i, c in enumerate(cols) if c.lower() == "timestamp"]
        if not exg:
            raise DataFileError(
                f"OpenBCI file {str(path)!r}: no 'EXG Channel N' columns in the column row "
                f"{body[0][:80]!r}; expected the OpenBCI GUI v5/v6 layout."
            )
        use = exg + acc + mark + ts_col
        arr = _loadtxt(rows, use, path)
        eeg = arr[:, : len(exg)] * 1e-6
        accel = arr[:, len(exg) : len(exg) + len(acc)]
        if mark:
            mcol = arr[:, len(exg) + len(acc)]
            for i in np.flatnonzero(mcol):
                markers.append(Marker(float(i / sfreq), _number_label(mcol[i]), 0.0, "file"))
        unix_ms = arr[0, -1] if ts_col else None
    else:
        layout = "openbci-gui-legacy"
        first = [c.strip() for c in body[0].split(",")]
        n_num = 0
        for tok in first:
            try:
                float(tok)
            except ValueError:
                break
            n_num += 1
        n_eeg = n_eeg_header if n_eeg_header else n_num - 1 - 3
        if n_eeg <= 0 or n_num < 1 + n_eeg:
            raise DataFileError(
                f"OpenBCI file {str(path)!r}: cannot find the EEG columns in row {body[0][:80]!r} "
                f"(header says {n_eeg_header} channels, {n_num} numeric columns)."
            )
        n_acc = min(3, n_num - 1 - n_eeg)
        has_unix = len(first) > n_num + 1
        rows = _split_complete_rows(body, len(first), path, terminated)
        use = list(range(1, 1 + n_eeg + n_acc)) + ([len(first) - 1] if has_unix else [])
        arr = _loadtxt(rows, use, path)
        eeg = arr[:, :n_eeg] * 1e-6
        accel = arr[:, n_eeg : n_eeg + n_acc]
        exg, acc = list(range(n_eeg)), list(range(n_acc))
        unix_ms = arr[0, -1] if has_unix else None
    n = eeg.shape[0]
    data = np.ascontiguousarray(np.hstack([eeg, accel]), dtype=np.float64)
    names = [f"EXG Channel {k}" for k in range(len(exg))]
    names += [f"Accel Channel {k}" for k in range(len(acc))]
    types = ["eeg"] * len(exg) + ["misc"] * len(acc)
    units = ["V"] * len(exg) + ["g"] * len(acc)
    info = _make_info(
        path, "openbci", names, types, units, sfreq, layout=layout, board=board,
        first_sample_unix_ms=None if unix_ms is None else float(unix_ms),
    )
    return FileRecording(data, np.arange(n, dtype=np.float64) / sfreq, info, markers)


def _loadtxt(rows: list[str], usecols: list[int], path: Path) -> np.ndarray:
    try:
        arr = np.loadtxt(rows, delimiter=",", usecols=usecols, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise DataFileError(
            f"OpenBCI file {str(path)!r} has a malformed data row: {err}. Fix or remove that row."
        ) from err
    if arr.shape[0] == 0:
        raise DataFileError(f"OpenBCI file {str(path)!r} has a header but no samples.")
    return arr


# ---------------------------------------------------------------------------------------- BrainFlow
def _brainflow():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brainflow imports the deprecated pkg_resources
        from brainflow.board_shim import BoardShim
        from brainflow.data_filter import DataFilter
        from brainflow.exit_codes import BrainFlowError
    return BoardShim, DataFilter, BrainFlowError


def _read_brainflow(path: Path, *, board_id: int = -1) -> FileRecording:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brainflow loads its library through pkg_resources
        return _read_brainflow_quiet(path, board_id)


def _parse_brainflow_table(path: Path) -> np.ndarray:
    """The board table (rows = board channels, columns = samples) of a file written by
    ``DataFilter.write_file``: one line per sample, one tab-separated value per board row.

    Parsed with numpy rather than ``DataFilter.read_file``: BrainFlow's C++ reader aborts the
    whole process on a value outside the double range (an uncaught ``std::out_of_range`` from
    ``stod``, e.g. for ``1e-400``), and malformed input has corrupted its heap before
    (brainflow-dev/brainflow#527). A damaged file must give an error, not kill the app.
    """
    text = path.read_text(encoding="latin-1")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # write_file ends every sample line with a newline: a last line without one was cut by a
    # kill mid-write, even when it has every column (its last value may be cut short, or empty)
    if len(lines) > 1 and (len(lines[-1].split("\t")) != len(lines[0].split("\t"))
                           or not text.endswith(("\n", "\r"))):
        # a recording killed mid-write: keep every complete sample, as for OpenBCI GUI files
        logger.warning("%s: last sample line is incomplete (%r); dropped", path.name,
                       lines[-1][:60])
        lines = lines[:-1]
    try:
        rows = np.loadtxt(lines, delimiter="\t", dtype=np.float64, ndmin=2, comments=None)
    except ValueError as err:
        raise DataFileError(
            f"BrainFlow file {str(path)!r} cannot be parsed: {err}. Every line must hold the "
            "same number of tab-separated numbers (one per board row), as written by "
            "brainflow.DataFilter.write_file; the file may be damaged."
        ) from err
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
    if len(bad):
        raise DataFileError(
            f"BrainFlow file {str(path)!r} has a non-finite or out-of-range value in sample "
            f"{int(bad[0]) + 1} ({len(bad)} such samples); BrainFlow writes finite numbers "
            "only, so the file is damaged there. Fix or remove those lines."
        )
    return rows.T


def _read_brainflow_quiet(path: Path, board_id: int) -> FileRecording:
    BoardShim, _, BrainFlowError = _brainflow()
    try:
        board_id = int(board_id)
        sfreq = float(BoardShim.get_sampling_rate(board_id))
        n_rows = int(BoardShim.get_num_rows(board_id))
        eeg_rows = list(BoardShim.get_eeg_channels(board_id))
    except (BrainFlowError, ValueError, TypeError) as err:
        raise ConfigError(
            f"read_file(board_id={board_id!r}) for {str(path)!r}: BrainFlow does not know this "
            f"board or it has no EEG channels ({err}). Pass the id of the board that recorded "
            "the file (see brainflow.BoardIds; -1 = synthetic)."
        ) from err
    try:
        names = list(BoardShim.get_eeg_names(board_id))
    except BrainFlowError:
        names = []
    if len(names) != len(eeg_rows):
        names = [f"EEG{k + 1}" for k in range(len(eeg_rows))]
    with path.open("rb") as f:
        first = f.readline().decode("utf-8", errors="replace")
    n_cols = len(first.rstrip("\r\n").split("\t"))
    if n_cols != n_rows:
        raise DataFileError(
            f"BrainFlow file {str(path)!r} has {n_cols} tab-separated columns per line, but board "
            f"{board_id} writes {n_rows} rows. Fix: name the board that recorded it "
            "(`bci-app stream FILE --board-id ID`; to replay it, `--source "
            "brainflow:playback:BOARD:PATH`; in Python read_file(path, board_id=ID)), or check "
            "that it was written by brainflow.DataFilter.write_file."
        )
    table = _parse_brainflow_table(path)
    if table.ndim != 2 or table.shape[0] != n_rows or table.shape[1] == 0:
        raise DataFileError(
            f"BrainFlow file {str(path)!r} parsed to shape {table.shape}; expected ({n_rows}, "
            f"n_samples) for board {board_id}. The file may be truncated or from another board."
        )
    data = np.ascontiguousarray(table[eeg_rows].T * 1e-6)
    n = data.shape[0]
    markers: list[Marker] = []
    try:
        mrow = int(BoardShim.get_marker_channel(board_id))
    except BrainFlowError:
        mrow = -1
    if 0 <= mrow < n_rows:
        for i in np.flatnonzero(table[mrow]):
            markers.append(Marker(float(i / sfreq), _number_label(table[mrow, i]), 0.0, "file"))
    try:
        trow = int(BoardShim.get_timestamp_channel(board_id))
        first_ts = float(table[trow, 0])
    except (BrainFlowError, IndexError):
        first_ts = None
    info = _make_info(
        path, "brainflow", names, ["eeg"] * len(names), ["V"] * len(names), sfreq,
        board_id=board_id, eeg_rows=eeg_rows, first_sample_unix_time=first_ts,
    )
    return FileRecording(data, np.arange(n, dtype=np.float64) / sfreq, info, markers)


# ---------------------------------------------------------------------------------------- OpenViBE
def _read_openvibe_mat(path: Path) -> FileRecording:
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as err:
        raise DataFileError(
            f"{str(path)!r} cannot be read as a MATLAB file: {type(err).__name__}: {err}."
        ) from err
    missing = [k for k in ("samples", "samplingFreq", "channelNames") if k not in mat]
    if missing:
        raise DataFileError(
            f"{str(path)!r} is not an OpenViBE ov2mat export: variables {missing} are missing "
            f"(found {sorted(k for k in mat if not k.startswith('__'))}). Only that layout is read "
            "from .mat files."
        )
    samples = np.asarray(mat["samples"], dtype=np.float64)
    sfreq = float(np.asarray(mat["samplingFreq"]).ravel()[0])
    names = [str(np.asarray(c).ravel()[0]) for c in np.asarray(mat["channelNames"]).ravel()]
    if samples.ndim != 2 or samples.shape[1] != len(names):
        raise DataFileError(
            f"{str(path)!r}: 'samples' has shape {samples.shape} but there are {len(names)} "
            "channel names; the export is inconsistent."
        )
    t0 = float(np.asarray(mat["sampleTime"]).ravel()[0]) if "sampleTime" in mat else 0.0
    markers = []
    stims = np.asarray(mat.get("stims", np.zeros((0, 3))), dtype=np.float64).reshape(-1, 3)
    for t, code, dur in stims:
        markers.append(Marker(float(t - t0), _number_label(code), float(dur), "file"))
    info = _make_info(path, "openvibe-mat", names, ["eeg"] * len(names), ["V"] * len(names), sfreq)
    n = samples.shape[0]
    return FileRecording(
        np.ascontiguousarray(samples * 1e-6), np.arange(n, dtype=np.float64) / sfreq, info,
        _sorted_markers(markers),
    )


_READERS: dict[str, Callable[..., FileRecording]] = {
    "fif": lambda p: _read_mne(p, "fif"),
    "edf": lambda p: _read_mne(p, "edf"),
    "bdf": lambda p: _read_mne(p, "bdf"),
    "brainvision": lambda p: _read_mne(p, "brainvision"),
    "xdf": _read_xdf,
    "openbci": _read_openbci,
    "brainflow": _read_brainflow,
    "openvibe-mat": _read_openvibe_mat,
}


# ---------------------------------------------------------------------------------------- MNE out
#: Key of ``mne.Annotations.extras`` that holds an annotation's exact text in a FIF file where its
#: description cannot (see :func:`keep_exact_descriptions`).
EXACT_LABEL_KEY = "bci_app_label"


def keep_exact_descriptions(annotations) -> list[str]:
    """Make annotation descriptions that FIF cannot store survive a FIF round trip exactly.

    FIF stores text as Latin-1: MNE writes any other character of a description as an HTML
    character reference (``"左手"`` is read back as ``"&#24038;&#25163;"``, and a label typed as
    that text is indistinguishable from it). MNE (>= 1.10) writes each annotation's ``extras`` as
    ASCII JSON, which holds any text, so every description that is not Latin-1 is also put there,
    under :data:`EXACT_LABEL_KEY`. :func:`read_file` restores it; with MNE alone:
    ``raw.annotations.extras[i].get("bci_app_label", raw.annotations.description[i])``.

    Parameters
    ----------
    annotations : mne.Annotations
        Changed in place (the descriptions stay as they are).

    Returns
    -------
    list of str
        The descriptions FIF cannot store as text (empty: nothing changed).
    """
    odd = [i for i, d in enumerate(annotations.description) if not _is_latin1(d)]
    if not odd:
        return []
    labels = [str(annotations.description[i]) for i in odd]
    extras = [dict(e or {}) for e in annotations.extras]
    for i, label in zip(odd, labels):
        extras[i][EXACT_LABEL_KEY] = label
    annotations.extras = extras
    return labels


def _is_latin1(text: str) -> bool:
    try:
        str(text).encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def to_raw(rec: FileRecording):
    """Convert a recording to an ``mne.io.RawArray`` with its markers as annotations.

    Parameters
    ----------
    rec : FileRecording

    Returns
    -------
    mne.io.RawArray
        Data (n_channels, n_samples) in the recording's units (EEG in volts). Each marker becomes
        an annotation (description = label, duration kept) at its position in samples divided by
        ``sfreq``; positions are interpolated on ``rec.times``, so XDF timestamps with jitter or
        gaps still land on the right sample. Markers outside the data are clipped to its ends.
        A label FIF cannot store as text is kept exactly in the annotation's extras
        (:func:`keep_exact_descriptions`), so ``raw.save`` loses none.
    """
    import mne

    if rec.sfreq <= 0:
        raise ConfigError(
            f"to_raw needs a regularly sampled recording; {rec.info.name!r} has sfreq 0."
        )
    info = mne.create_info(
        list(rec.info.ch_names), rec.sfreq, list(rec.info.ch_types), verbose="error"
    )
    raw = mne.io.RawArray(np.ascontiguousarray(rec.data.T), info, verbose="error")
    if rec.markers:
        ts = np.array([m.timestamp for m in rec.markers])
        pos = np.interp(ts, rec.times, np.arange(rec.n_samples, dtype=np.float64))
        ann = mne.Annotations(
            onset=pos / rec.sfreq,
            duration=[m.duration for m in rec.markers],
            description=[m.label for m in rec.markers],
        )
        keep_exact_descriptions(ann)
        raw.set_annotations(ann)
    return raw


__all__ = [
    "EXACT_LABEL_KEY", "SUPPORTED_EXTENSIONS", "FileRecording", "keep_exact_descriptions",
    "read_file", "to_raw",
]
