"""Streaming, append-only XDF writer and the repair of torn XDF files.

XDF (https://github.com/sccn/xdf/wiki/Specifications) is what LabRecorder writes and what
``pyxdf.load_xdf`` (and every MNE-based XDF reader built on it) reads. A file is the magic bytes
``XDF:`` followed by chunks::

    [NumLengthBytes: 1|4|8][Length: uint8|uint32|uint64][Tag: uint16][Content]

``Length`` counts the tag and the content. Tags: 1 FileHeader (XML), 2 StreamHeader (stream id +
XML), 3 Samples (stream id + samples), 4 ClockOffset (stream id + two doubles), 5 Boundary (16
signature bytes a reader scans for after corruption), 6 StreamFooter (stream id + XML).

Crash safety comes from the layout: chunks are only ever appended, a batch of whole chunks is
written with one ``write`` and fsync'ed regularly, so after a kill or a power cut the file is a
valid prefix plus at most one torn chunk. :func:`repair_xdf` cuts that torn chunk and appends the
missing footers. A stream whose StreamHeader is unreadable cannot be read at all (its samples'
layout is in the header): the repair leaves it out whole and says so, and an in-place repair that
drops anything inside the file keeps the original beside it. On a failed write (disk full,
file-size limit) the writer truncates the file back to the last whole chunk, so the file on disk
stays loadable.

Every sample is written with its full 8-byte timestamp (no timestamp compression), so timestamps
read back bit-identical; ``double64`` keeps float64 data bit-identical.

Threads: one :class:`XDFWriter` is used by one thread (the recorder's).
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from bci_app.errors import DataFileError, RecordingError

logger = logging.getLogger(__name__)

MAGIC = b"XDF:"
TAG_FILE_HEADER = 1
TAG_STREAM_HEADER = 2
TAG_SAMPLES = 3
TAG_CLOCK_OFFSET = 4
TAG_BOUNDARY = 5
TAG_STREAM_FOOTER = 6

#: The Boundary chunk's content (a fixed UUID from the XDF specification).
BOUNDARY_SIGNATURE = bytes(
    [0x43, 0xA5, 0x46, 0xDC, 0xCB, 0xF5, 0x41, 0x0F, 0xB3, 0x0E, 0xD5, 0x46, 0x73, 0x83, 0xCB, 0xE4]
)

#: XDF channel_format -> little-endian numpy dtype (``string`` has none).
FORMATS: dict[str, np.dtype | None] = {
    "double64": np.dtype("<f8"),
    "float32": np.dtype("<f4"),
    "int64": np.dtype("<i8"),
    "int32": np.dtype("<i4"),
    "int16": np.dtype("<i2"),
    "int8": np.dtype("<i1"),
    "string": None,
}


def xdf_format(dtype: np.dtype | type | str) -> str:
    """XDF ``channel_format`` that holds ``dtype`` without loss (``double64`` for float64)."""
    if isinstance(dtype, str) and dtype in FORMATS:
        return dtype
    dt = np.dtype(dtype)
    for fmt, d in FORMATS.items():
        if d is not None and d.kind == dt.kind and d.itemsize == dt.itemsize:
            return fmt
    if dt.kind == "f":
        return "double64"
    if dt.kind in "iub" and dt.itemsize <= 4:
        return "int64" if dt.kind == "u" and dt.itemsize == 4 else "int32"
    raise ValueError(
        f"Cannot store samples of dtype {dt} in XDF; expected a float or integer dtype "
        f"(XDF formats: {', '.join(FORMATS)})."
    )


# ---------------------------------------------------------------------------- encoding helpers
def _varlen(n: int) -> bytes:
    if n < 256:
        return bytes((1, n))
    if n < 2**32:
        return b"\x04" + struct.pack("<I", n)
    return b"\x08" + struct.pack("<Q", n)


def _chunk(tag: int, content: bytes) -> bytes:
    return _varlen(len(content) + 2) + struct.pack("<H", tag) + content


def _sid(stream_id: int) -> bytes:
    return struct.pack("<I", stream_id)


def _el(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
    e = ET.SubElement(parent, tag)
    if text is not None:
        e.text = str(text)
    return e


#: Characters XML 1.0 does not allow (control characters, lone surrogates, U+FFFE/U+FFFF).
#: ElementTree writes them as they are, which no XML parser (pyxdf, our scanner) reads back.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_bytes(root: ET.Element) -> bytes:
    """``root`` as UTF-8 XML. A character XML cannot hold (a control character in a subject
    name, a lone surrogate from a mis-decoded command line) is written as the six characters
    ``\\uXXXX`` (what JSON text decodes back to the same character), so the chunk stays readable."""
    text = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    text = _XML_INVALID.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return b'<?xml version="1.0"?>' + text.encode("utf-8")


def _fmt_float(x: float) -> str:
    return repr(float(x))


def encode_numeric_samples(
    stream_id: int, timestamps: np.ndarray, data: np.ndarray, dtype: np.dtype
) -> bytes:
    """Samples chunk (tag 3) for numeric data, every sample with its 8-byte timestamp."""
    n, c = data.shape
    rec = np.dtype([("nb", "u1"), ("t", "<f8"), ("v", dtype, (c,))])  # packed, no padding
    arr = np.empty(n, rec)
    arr["nb"] = 8
    arr["t"] = timestamps
    arr["v"] = data
    return _chunk(TAG_SAMPLES, _sid(stream_id) + _varlen(n) + arr.tobytes())


def encode_string_samples(stream_id: int, timestamps, rows) -> bytes:
    """Samples chunk (tag 3) for string data: ``rows`` is a list of lists of str."""
    parts = [_sid(stream_id), _varlen(len(rows))]
    for t, row in zip(timestamps, rows):
        parts.append(b"\x08" + struct.pack("<d", float(t)))
        for v in row:
            # a lone surrogate (undecodable bytes of a file name or argument) is kept as \udcXX
            b = str(v).encode("utf-8", "backslashreplace")
            parts.append(_varlen(len(b)))
            parts.append(b)
    return _chunk(TAG_SAMPLES, b"".join(parts))


def encode_clock_offset(stream_id: int, collection_time: float, offset: float) -> bytes:
    return _chunk(TAG_CLOCK_OFFSET, _sid(stream_id) + struct.pack("<dd", collection_time, offset))


def encode_boundary() -> bytes:
    return _chunk(TAG_BOUNDARY, BOUNDARY_SIGNATURE)


def encode_footer(
    stream_id: int,
    first: float | None,
    last: float | None,
    count: int,
    offsets: list[tuple[float, float]],
) -> bytes:
    root = ET.Element("info")
    _el(root, "first_timestamp", _fmt_float(first) if first is not None else "0")
    _el(root, "last_timestamp", _fmt_float(last) if last is not None else "0")
    _el(root, "sample_count", int(count))
    co = _el(root, "clock_offsets")
    for t, v in offsets:
        o = _el(co, "offset")
        _el(o, "time", _fmt_float(t))
        _el(o, "value", _fmt_float(v))
    return _chunk(TAG_STREAM_FOOTER, _sid(stream_id) + xml_bytes(root))


# ---------------------------------------------------------------------------- writer
@dataclass
class _StreamState:
    stream_id: int
    name: str
    channel_count: int
    channel_format: str
    nominal_srate: float
    dtype: np.dtype | None
    first: float | None = None
    last: float | None = None
    count: int = 0
    offsets: list[tuple[float, float]] = field(default_factory=list)
    footer_written: bool = False
    #: What is on disk, set after each successful write: None while the StreamHeader is not,
    #: then (count, first, last, number of offsets) of the samples and offsets that are. A
    #: footer written after a failed write describes only these.
    on_disk: tuple[int, float | None, float | None, int] | None = None


class XDFWriter:
    """Append-only XDF file writer.

    Chunks are encoded into an in-memory batch; :meth:`flush` appends the batch with one write and
    (optionally) fsyncs. The file on disk therefore always ends on a chunk boundary, except when
    the process dies inside that write (then :func:`repair_xdf` cuts the torn chunk).

    Parameters
    ----------
    path : path-like
        Target file (``.xdf``). Its folder is created if missing.
    file_header : xml.etree.ElementTree.Element | None
        Content of the FileHeader chunk (an ``<info>`` element); ``<version>1.0</version>`` is
        added when missing.
    overwrite : bool
        Replace an existing file. By default an existing file is an error: a recording is never
        silently overwritten.
    byte_quota : int | None
        Test hook: behave as if the disk were full once the file would exceed this many bytes
        (the write is cut at the quota, then ``ENOSPC`` is raised, as a real full disk does).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        file_header: ET.Element | None = None,
        overwrite: bool = False,
        byte_quota: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.byte_quota = byte_quota
        self._streams: dict[int, _StreamState] = {}
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._committed = 0  # bytes on disk that end on a chunk boundary
        self._fd: int | None = None
        self._failed: RecordingError | None = None
        #: Original path when the file had to be rescued to a new one (see ``_check_target``).
        self.relocated_from: Path | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # a folder that cannot be created (or a file in its place)
            raise RecordingError(
                f"Cannot create the folder {self.path.parent} for recording file "
                f"{self.path.name}: {err.strerror}. Fix: choose a folder you can write."
            ) from err
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            self._fd = os.open(self.path, flags, 0o644)
        except FileExistsError:
            raise RecordingError(
                f"Recording file {self.path} already exists; expected a new file name. "
                "Choose another --out path (or delete the old file yourself)."
            ) from None
        except OSError as err:
            raise RecordingError(
                f"Cannot create recording file {self.path}: {err.strerror}. "
                "Check that the folder is writable or choose another --out path."
            ) from err
        header = file_header if file_header is not None else ET.Element("info")
        if header.find("version") is None:
            header.insert(0, ET.Element("version"))
            header.find("version").text = "1.0"
        self._append(MAGIC + _chunk(TAG_FILE_HEADER, xml_bytes(header)))
        self.flush(fsync=True)

    # ------------------------------------------------------------------ properties
    @property
    def bytes_written(self) -> int:
        """Bytes safely on disk (a whole number of chunks)."""
        return self._committed

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    @property
    def closed(self) -> bool:
        return self._fd is None

    @property
    def failed(self) -> RecordingError | None:
        return self._failed

    def stream_stats(self, stream_id: int) -> tuple[int, float | None, float | None]:
        """(sample_count, first_timestamp, last_timestamp) of a stream, as queued so far."""
        s = self._streams[stream_id]
        return s.count, s.first, s.last

    # ------------------------------------------------------------------ chunks
    def _append(self, b: bytes) -> None:
        if self._fd is None:
            raise RecordingError(
                f"XDF writer for {self.path} is closed; no more data can be added."
            )
        self._pending.append(b)
        self._pending_bytes += len(b)

    def add_stream(self, stream_id: int, header: ET.Element) -> None:
        """Queue a StreamHeader chunk. ``header`` is the LSL-style ``<info>`` element.

        It must hold ``name``, ``channel_count``, ``nominal_srate`` and ``channel_format``.
        Streams may be added at any time (a reader takes headers from anywhere in the file).
        """
        stream_id = int(stream_id)
        if stream_id in self._streams:
            raise ValueError(f"XDF stream id {stream_id} is already used in {self.path}.")
        if not 0 <= stream_id < 2**32:
            raise ValueError(f"XDF stream id must fit in uint32, got {stream_id}.")
        try:
            fmt = header.findtext("channel_format")
            st = _StreamState(
                stream_id,
                header.findtext("name") or f"stream{stream_id}",
                int(header.findtext("channel_count")),
                fmt,
                float(header.findtext("nominal_srate")),
                FORMATS[fmt],
            )
        except (TypeError, KeyError, ValueError) as err:
            raise ValueError(
                "XDF stream header needs name, channel_count, nominal_srate and channel_format "
                f"(one of {', '.join(FORMATS)}); got {ET.tostring(header)[:200]!r}."
            ) from err
        self._streams[stream_id] = st
        self._append(_chunk(TAG_STREAM_HEADER, _sid(stream_id) + xml_bytes(header)))

    def write_samples(self, stream_id: int, timestamps, data) -> None:
        """Queue samples of a numeric stream.

        Parameters
        ----------
        timestamps : array, shape (n_samples,)
        data : array, shape (n_samples, channel_count)
            Cast to the stream's channel format (lossless when the dtypes match).
        """
        st = self._streams[stream_id]
        if st.dtype is None:
            raise TypeError(f"Stream {st.name!r} holds strings; use write_strings().")
        ts = np.asarray(timestamps, dtype=np.float64)
        data = np.asarray(data)
        if data.ndim == 1 and st.channel_count == 1:
            data = data[:, None]
        if data.ndim != 2 or data.shape != (ts.shape[0], st.channel_count):
            raise ValueError(
                f"Stream {st.name!r}: expected data of shape ({ts.shape[0]}, {st.channel_count}), "
                f"got {data.shape}."
            )
        if ts.shape[0] == 0:
            return
        self._append(encode_numeric_samples(stream_id, ts, data, st.dtype))
        self._count(st, ts)

    def write_strings(self, stream_id: int, timestamps, rows) -> None:
        """Queue samples of a string stream: ``rows[i]`` is a list of ``channel_count`` str."""
        st = self._streams[stream_id]
        ts = np.asarray(timestamps, dtype=np.float64)
        rows = [[str(v) for v in (r if isinstance(r, (list, tuple)) else [r])] for r in rows]
        if len(rows) != ts.shape[0] or any(len(r) != st.channel_count for r in rows):
            raise ValueError(
                f"Stream {st.name!r}: expected {ts.shape[0]} rows of {st.channel_count} strings."
            )
        if not rows:
            return
        if st.dtype is not None:
            raise TypeError(f"Stream {st.name!r} is numeric; use write_samples().")
        self._append(encode_string_samples(stream_id, ts, rows))
        self._count(st, ts)

    @staticmethod
    def _count(st: _StreamState, ts: np.ndarray) -> None:
        if st.first is None:
            st.first = float(ts[0])
        st.last = float(ts[-1])
        st.count += int(ts.shape[0])

    def write_clock_offset(self, stream_id: int, collection_time: float, offset: float) -> None:
        """Queue a ClockOffset chunk: at ``collection_time`` (recorder clock) the stream's clock
        was ``offset`` seconds behind the recorder's (readers add it to the timestamps)."""
        st = self._streams[stream_id]
        st.offsets.append((float(collection_time), float(offset)))
        self._append(encode_clock_offset(stream_id, collection_time, offset))

    def write_boundary(self) -> None:
        self._append(encode_boundary())

    # ------------------------------------------------------------------ disk
    def flush(self, fsync: bool = True) -> int:
        """Append the queued chunks to the file (one write) and optionally fsync.

        Returns the number of bytes appended.

        Raises
        ------
        RecordingError
            The write failed (disk full, file too large, I/O error). The file was truncated back
            to its last whole chunk, so it stays loadable; the writer accepts nothing more.
        """
        if self._fd is None:
            raise RecordingError(f"XDF writer for {self.path} is closed.")
        if not self._pending:
            if fsync:
                self._fsync()
            return 0
        buf = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        try:
            self._write_all(buf)
        except OSError as err:
            self._fail(err, len(buf))
        self._committed += len(buf)
        for st in self._streams.values():
            st.on_disk = (st.count, st.first, st.last, len(st.offsets))
        if fsync:
            self._fsync()
        return len(buf)

    def _write_all(self, buf: bytes) -> None:
        view = memoryview(buf)
        pos = 0
        while pos < len(view):
            limit = len(view)
            if self.byte_quota is not None:
                limit = min(limit, pos + max(0, self.byte_quota - (self._committed + pos)))
                if limit <= pos:
                    raise OSError(errno.ENOSPC, "No space left on device (byte quota)")
            n = os.write(self._fd, view[pos:limit])
            if n <= 0:
                raise OSError(errno.EIO, "write returned 0 bytes")
            pos += n

    def _fsync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as err:
            self._fail(err, 0)
        self._check_target()

    def _check_target(self) -> None:
        """If the file was deleted or replaced under us (folder removed, file moved to the
        trash by a user), everything written so far still lives in the open inode and would be
        lost at close: copy it to a rescue file and keep recording there."""
        try:
            st = os.fstat(self._fd)
        except OSError:
            return
        gone = st.st_nlink == 0
        if not gone:
            try:
                ps = os.stat(self.path)
                gone = (ps.st_ino, ps.st_dev) != (st.st_ino, st.st_dev)
            except FileNotFoundError:
                gone = True
            except OSError:
                return
        if gone:
            self._rescue()

    def _rescue(self) -> None:
        import tempfile
        import time as _time

        old = self.path
        stamp = _time.strftime("%Y%m%d-%H%M%S")
        folders = [old.parent]
        try:
            from bci_app.config import recordings_dir

            folders.append(recordings_dir())
        except Exception:  # pragma: no cover
            pass
        folders.append(Path(tempfile.gettempdir()))
        src = f"/proc/self/fd/{self._fd}"
        for folder in folders:
            target = folder / f"{old.stem}.rescued-{stamp}{old.suffix or '.xdf'}"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                with open(src, "rb") as fin, open(target, "xb") as fout:
                    remaining = self._committed
                    while remaining > 0:
                        block = fin.read(min(remaining, 1 << 20))
                        if not block:
                            raise OSError(errno.EIO, "recording shorter than expected")
                        fout.write(block)
                        remaining -= len(block)
                    fout.flush()
                    os.fsync(fout.fileno())
                new_fd = os.open(target, os.O_WRONLY | os.O_APPEND)
            except OSError as err:
                logger.warning("Could not rescue %s into %s: %s", old, folder, err)
                continue
            self._close_fd()
            self._fd = new_fd
            self.path = target
            self.relocated_from = old
            logger.error(
                "Recording file %s was deleted or replaced while recording; everything so far "
                "was saved to %s and the recording continues there.", old, target)
            return
        self._fail(OSError(errno.ENOENT, f"the file {old} was deleted while recording and no "
                                         "rescue copy could be written"), 0)

    def _fail(self, err: OSError, size: int) -> None:
        """Cut the file back to its last whole chunk, close it, raise a RecordingError."""
        try:
            os.ftruncate(self._fd, self._committed)
            os.lseek(self._fd, self._committed, os.SEEK_SET)
        except OSError:
            logger.exception("Could not truncate %s back to %d bytes", self.path, self._committed)
        # The cut freed the torn batch: try to end the file properly with the footers.
        try:
            tail = self._footer_bytes(on_disk=True)
            if self.byte_quota is None or self._committed + len(tail) <= self.byte_quota:
                written = os.write(self._fd, tail)
                if written != len(tail):  # a partial write at the size limit: undo it
                    raise OSError(errno.EFBIG, "footer only partly written")
                self._committed += len(tail)
                os.fsync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, self._committed)
            except OSError:
                pass
        self._close_fd()
        what = {
            errno.ENOSPC: "the disk is full",
            errno.EFBIG: "the file reached the size limit of this file system or process",
            errno.EDQUOT: "the disk quota is exhausted",
        }.get(err.errno, err.strerror or str(err))
        self._failed = RecordingError(
            f"Recording to {self.path} stopped: {what} (errno {err.errno}, while writing "
            f"{size} bytes). The file so far ({self._committed} bytes) is complete and readable. "
            "Free disk space or record to another disk (--out PATH) to go on recording."
        )
        raise self._failed from err

    def _footer_bytes(self, on_disk: bool = False) -> bytes:
        """Boundary + the footers of the streams without one. ``on_disk``: after a failed
        write, describe only what reached the file (a stream whose header was lost gets no
        footer, which no reader could place; counts leave out the lost samples)."""
        parts = [encode_boundary()]
        for st in self._streams.values():
            if st.footer_written:
                continue
            if not on_disk:
                parts.append(encode_footer(st.stream_id, st.first, st.last, st.count, st.offsets))
            elif st.on_disk is not None:
                count, first, last, n_off = st.on_disk
                parts.append(encode_footer(st.stream_id, first, last, count, st.offsets[:n_off]))
        return b"".join(parts)

    def close(self, footers: bool = True) -> None:
        """Queue a Boundary and the StreamFooters, flush, fsync and close. Idempotent."""
        if self._fd is None:
            return
        try:
            if footers:
                self._append(self._footer_bytes())
            self.flush(fsync=True)  # on failure, _fail writes the footers of what is on disk
            if footers:
                for st in self._streams.values():
                    st.footer_written = True
        finally:
            self._close_fd()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> XDFWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------- scanning / repair
@dataclass
class _ScanStream:
    stream_id: int
    name: str
    nchns: int
    fmt: str
    tdiff: float
    last_ts: float = 0.0
    first: float | None = None
    count: int = 0
    offsets: list[tuple[float, float]] = field(default_factory=list)
    has_footer: bool = False
    footer_span: tuple[int, int] | None = None  # bytes of its StreamFooter chunk
    damaged: bool = False  # a chunk of it was dropped: its footer's counts are stale


_TAG_NAMES = {TAG_SAMPLES: "Samples", TAG_CLOCK_OFFSET: "ClockOffset",
              TAG_STREAM_FOOTER: "StreamFooter", TAG_STREAM_HEADER: "StreamHeader"}


@dataclass
class _LostStream:
    """A stream whose StreamHeader is unreadable (garbled) or missing: the layout of its samples
    is in that header, so none of its chunks can be read and a repair leaves them all out."""

    stream_id: int
    problem: str  # why it cannot be read
    name: str = ""  # its name as far as the damaged header reads ("" when unknown)
    header: tuple[int, int] | None = None  # bytes of its unreadable StreamHeader chunk
    spans: list[tuple[int, int]] = field(default_factory=list)  # every chunk of it, header too
    chunks: dict[int, int] = field(default_factory=dict)  # tag -> chunks after the header
    samples: int = 0  # the sample counts its Samples chunks declare
    footer_count: int | None = None  # the sample count its StreamFooter declares, if readable

    @property
    def n_bytes(self) -> int:
        return sum(b - a for a, b in self.spans)

    def describe(self) -> str:
        """One line for the user: which stream, why it is unreadable, what it held."""
        name = f" ({self.name!r}, its name as far as the damaged header reads)" if self.name else ""
        held = ", ".join(
            f"{n} {_TAG_NAMES.get(tag, f'tag-{tag}')}" + (
                f" ({self.samples} samples)" if tag == TAG_SAMPLES else "")
            for tag, n in sorted(self.chunks.items()))
        footer = ("" if self.footer_count is None
                  else f"; its footer counts {self.footer_count} samples")
        return (f"stream {self.stream_id}{name}: {self.problem}; without it its "
                f"{sum(self.chunks.values())} chunks ({held or 'none'}; {self.n_bytes} bytes "
                f"with the header{footer}) cannot be read")


def _name_hint(xml: bytes) -> str:
    m = re.search(rb"<name>([^<]{1,200})</name>", xml)
    return m.group(1).decode("utf-8", "replace").strip() if m else ""


@dataclass
class XDFScan:
    """Result of :func:`scan_xdf`: where the valid chunks end and what they hold."""

    path: Path
    size: int
    valid_end: int
    n_chunks: int
    problem: str
    streams: dict[int, _ScanStream]
    #: ``(start, end, problem)`` of malformed chunks *inside* the file: the chunk's length was
    #: intact and well-formed chunks follow it, so only that chunk is bad (a flipped byte, a
    #: garbled XML). A repair drops just these; the chunks after them are kept.
    skipped: list[tuple[int, int, str]] = field(default_factory=list)
    #: Streams that cannot be read (their StreamHeader is garbled or missing), by stream id: a
    #: repair leaves out every chunk of them (not listed in ``skipped``).
    lost: dict[int, _LostStream] = field(default_factory=dict)

    @property
    def torn_bytes(self) -> int:
        return self.size - self.valid_end

    @property
    def skipped_bytes(self) -> int:
        return sum(b - a for a, b, _ in self.skipped)

    @property
    def lost_bytes(self) -> int:
        return sum(ls.n_bytes for ls in self.lost.values())

    @property
    def cut_bytes(self) -> int:
        """Bytes a repair removes: the malformed chunks inside the file, the chunks of the
        streams that cannot be read, and the torn tail."""
        return self.skipped_bytes + self.lost_bytes + self.torn_bytes

    @property
    def drops_inside(self) -> bool:
        """Whether a repair drops chunks inside the file (not only a torn tail): an in-place
        repair then keeps the original (:func:`kept_original_path`)."""
        return bool(self.skipped or self.lost)

    @property
    def signal_left(self) -> bool:
        """Whether a readable, regularly sampled numeric stream with samples remains."""
        return any(s.tdiff > 0 and s.fmt != "string" and s.count
                   for s in self.streams.values())

    @property
    def missing_footers(self) -> list[int]:
        """Streams a repair writes a footer for: those without one, and those a dropped chunk
        belonged to (their footer's sample count is rewritten)."""
        return [sid for sid, s in self.streams.items() if not s.has_footer or s.damaged]


class _Torn(Exception):
    pass


def _read_varlen(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise _Torn("length field cut off")
    nb = buf[pos]
    if nb == 1:
        if pos + 2 > end:
            raise _Torn("length field cut off")
        return buf[pos + 1], pos + 2
    if nb == 4:
        if pos + 5 > end:
            raise _Torn("length field cut off")
        return struct.unpack_from("<I", buf, pos + 1)[0], pos + 5
    if nb == 8:
        if pos + 9 > end:
            raise _Torn("length field cut off")
        return struct.unpack_from("<Q", buf, pos + 1)[0], pos + 9
    raise _Torn(f"invalid length-byte count {nb}")


def _scan_samples(buf: memoryview, pos: int, end: int, st: _ScanStream) -> None:
    """Validate a Samples chunk's content [pos, end) exactly and update the stream's stats."""
    n, pos = _read_varlen(buf, pos, end)
    dtype = FORMATS[st.fmt]
    if dtype is not None:
        sb = st.nchns * dtype.itemsize
        # fast path: every sample carries its 8-byte timestamp (what XDFWriter writes)
        if end - pos == n * (9 + sb):
            rec = np.frombuffer(
                buf[pos:end], dtype=np.dtype([("nb", "u1"), ("t", "<f8"), ("v", "u1", (sb,))])
            )
            ok = bool(np.all(rec["nb"] == 8))
            if ok and n:
                st.first = float(rec["t"][0]) if st.first is None else st.first
                st.last_ts = float(rec["t"][-1])
                st.count += n
            del rec
            if ok:
                return
    for _ in range(n):
        if pos >= end:
            raise _Torn("samples chunk shorter than its sample count")
        nb = buf[pos]
        if nb == 8:
            if pos + 9 > end:
                raise _Torn("timestamp cut off")
            t = struct.unpack_from("<d", buf, pos + 1)[0]
            pos += 9
        elif nb == 0:
            t = st.last_ts + st.tdiff
            pos += 1
        else:
            raise _Torn(f"invalid timestamp-byte count {nb}")
        if dtype is not None:
            pos += st.nchns * dtype.itemsize
        else:
            for _c in range(st.nchns):
                ln, pos = _read_varlen(buf, pos, end)
                pos += ln
        if pos > end:
            raise _Torn("sample values cut off")
        st.last_ts = t
        st.first = t if st.first is None else st.first
        st.count += 1
    if pos != end:
        raise _Torn("samples chunk longer than its samples")


def scan_xdf(path: str | os.PathLike) -> XDFScan:
    """Walk the chunks of an XDF file and find where the valid part ends.

    Every chunk is checked completely (length, tag, stream id, sample layout, XML). The scan
    stops at the first chunk that is cut off, or malformed with no well-formed chunk after it;
    what follows is treated as torn. A malformed chunk whose length is intact and that a
    well-formed chunk follows is listed in ``skipped`` and the scan goes on after it; a
    malformed chunk whose length is garbled (no chunk starts where it says it ends) is listed
    in ``skipped`` with every byte up to the next Boundary chunk, and the scan goes on there
    (every stream is then marked ``damaged``: its footer is rewritten). A whole StreamHeader
    chunk that cannot be parsed, and every later chunk of its stream (or of a stream with no
    header at all), goes to ``lost``: without the header none of them can be read.

    Raises
    ------
    DataFileError
        The file is missing or is not XDF at all (no ``XDF:`` magic / no file header).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except OSError as err:
        raise DataFileError(f"Cannot read XDF file {path}: {err.strerror}.") from err
    try:
        return _scan(path, mm, size)
    finally:
        if isinstance(mm, mmap.mmap):
            try:
                mm.close()
            except BufferError:  # a numpy view still alive; the GC closes it
                pass


def _framed(buf: memoryview, pos: int, size: int) -> bool:
    """Whether a chunk that fits in the file, with a tag XDF knows (not a second file header),
    starts at ``pos``."""
    try:
        length, p = _read_varlen(buf, pos, size)
    except _Torn:
        return False
    if length < 2 or p + length > size:
        return False
    return struct.unpack_from("<H", buf, p)[0] in (
        TAG_STREAM_HEADER, TAG_SAMPLES, TAG_CLOCK_OFFSET, TAG_BOUNDARY, TAG_STREAM_FOOTER)


def _next_boundary(raw, buf: memoryview, pos: int, size: int) -> int:
    """Start of the first whole Boundary chunk at or after ``pos`` that well-formed chunks (or
    the end of the file) follow, else -1."""
    lo = pos
    while True:
        at = raw.find(BOUNDARY_SIGNATURE, pos)
        if at < 0:
            return -1
        for start in (at - 4, at - 7, at - 11):  # 1-, 4- or 8-byte length field
            if start >= lo:
                try:
                    length, p = _read_varlen(buf, start, size)
                except _Torn:
                    continue
                end = at + len(BOUNDARY_SIGNATURE)
                if (length == 2 + len(BOUNDARY_SIGNATURE) and p + 2 == at
                        and struct.unpack_from("<H", buf, p)[0] == TAG_BOUNDARY
                        and (end == size or _framed(buf, end, size))):
                    return start
        pos = at + 1


def _scan(path: Path, raw, size: int) -> XDFScan:
    if raw[:4] != MAGIC:
        raise DataFileError(
            f"{path} is not an XDF file: expected the magic bytes 'XDF:', got {bytes(raw[:4])!r}. "
            "Only XDF recordings can be repaired."
        )
    buf = memoryview(raw)
    pos = 4
    streams: dict[int, _ScanStream] = {}
    n_chunks = 0
    problem = ""
    skipped: list[tuple[int, int, str]] = []
    lost: dict[int, _LostStream] = {}
    while pos < size:
        start = pos
        end = -1
        sid = tag = None
        saved = {k: (st.last_ts, st.first, st.count) for k, st in streams.items()}
        try:
            length, p = _read_varlen(buf, pos, size)
            if length < 2:
                raise _Torn(f"chunk length {length} < 2")
            end = p + length
            if end > size:
                raise _Torn(f"chunk of {length} bytes cut off after {size - p} bytes")
            tag = struct.unpack_from("<H", buf, p)[0]
            p += 2
            if n_chunks == 0 and tag != TAG_FILE_HEADER:
                raise _Torn(f"first chunk has tag {tag}, expected a FileHeader (1)")
            if tag == TAG_FILE_HEADER:
                ET.fromstring(bytes(buf[p:end]))
            elif tag in (TAG_STREAM_HEADER, TAG_SAMPLES, TAG_CLOCK_OFFSET, TAG_STREAM_FOOTER):
                if end - p < 4:
                    raise _Torn("stream id cut off")
                sid = struct.unpack_from("<I", buf, p)[0]
                p += 4
                if tag == TAG_STREAM_HEADER:
                    info = ET.fromstring(bytes(buf[p:end]))
                    fmt = info.findtext("channel_format")
                    if fmt not in FORMATS:
                        raise _Torn(f"stream header with unknown channel_format {fmt!r}")
                    srate = float(info.findtext("nominal_srate") or 0)
                    streams[sid] = _ScanStream(
                        sid,
                        info.findtext("name") or "",
                        int(info.findtext("channel_count")),
                        fmt,
                        1.0 / srate if srate > 0 else 0.0,
                    )
                elif sid not in streams:
                    raise _Torn(f"chunk for stream {sid} before its header")
                elif tag == TAG_SAMPLES:
                    _scan_samples(buf, p, end, streams[sid])
                elif tag == TAG_CLOCK_OFFSET:
                    if end - p != 16:
                        raise _Torn("clock offset chunk of wrong size")
                    streams[sid].offsets.append(struct.unpack_from("<dd", buf, p))
                else:
                    ET.fromstring(bytes(buf[p:end]))
                    streams[sid].has_footer = True
                    streams[sid].footer_span = (start, end)
            elif tag == TAG_BOUNDARY:
                if bytes(buf[p:end]) != BOUNDARY_SIGNATURE:
                    raise _Torn("boundary chunk with a wrong signature")
            else:
                raise _Torn(f"unknown chunk tag {tag}")
        except (_Torn, ET.ParseError, ValueError, TypeError, struct.error) as err:
            for k, (last_ts, first, count) in saved.items():  # undo a half-read chunk
                st = streams[k]
                st.last_ts, st.first, st.count = last_ts, first, count
            whole = start < end <= size and (end == size or _framed(buf, end, size))
            if (n_chunks and whole and sid is not None and sid not in streams
                    and (tag != TAG_STREAM_HEADER or end < size)):
                # a whole chunk of a stream without a readable header (a garbled last header
                # is a torn tail, as any garbled last chunk)
                _lose(lost, buf, sid, tag, start, p, end, err)
                pos = end
                continue
            if n_chunks and start < end < size and _framed(buf, end, size):
                # the chunk's length is intact and a chunk follows: only this one is bad
                skipped.append((start, end, f"at byte {start}: {err}"))
                if sid in streams:
                    streams[sid].damaged = True
                pos = end
                continue
            nxt = _next_boundary(raw, buf, start + 1, size) if n_chunks else -1
            if nxt > 0:
                # the chunk's length itself is garbled (no chunk where it says it ends): drop
                # the bytes up to the next Boundary chunk, which XDF writes for exactly this
                # resynchronisation, and go on there; streams may have lost samples in between
                skipped.append((start, nxt, f"at byte {start}: {err}; bytes up to the next "
                                f"boundary chunk at byte {nxt} dropped"))
                for st in streams.values():
                    st.damaged = True
                pos = nxt
                continue
            problem = f"at byte {start}: {err}"
            pos = start
            break
        n_chunks += 1
        pos = end
    if n_chunks == 0:
        raise DataFileError(
            f"{path} holds no complete XDF file header ({problem or 'file too short'}); "
            "there is nothing to recover."
        )
    return XDFScan(path, size, pos, n_chunks, problem, streams, skipped, lost)


def _lose(lost: dict[int, _LostStream], buf: memoryview, sid: int, tag: int, start: int,
          p: int, end: int, err: Exception) -> None:
    """File the whole chunk [start, end) (content from ``p``, after the stream id) under the
    unreadable stream ``sid``."""
    ls = lost.get(sid)
    if ls is None:
        if tag == TAG_STREAM_HEADER:
            ls = _LostStream(sid, f"its StreamHeader (at byte {start}) is unreadable ({err})",
                             _name_hint(bytes(buf[p:end])), (start, end))
        else:
            ls = _LostStream(sid, f"the file holds no readable StreamHeader for it (its first "
                                  f"chunk is at byte {start})")
        lost[sid] = ls
    ls.spans.append((start, end))
    if tag == TAG_STREAM_HEADER:
        return
    ls.chunks[tag] = ls.chunks.get(tag, 0) + 1
    try:
        if tag == TAG_SAMPLES:
            ls.samples += _read_varlen(buf, p, end)[0]
        elif tag == TAG_STREAM_FOOTER:
            ls.footer_count = int(ET.fromstring(bytes(buf[p:end])).findtext("sample_count"))
    except (_Torn, ET.ParseError, ValueError, TypeError):
        pass  # only for the report


def damage_message(scan: XDFScan) -> str | None:
    """What a reader tells the user about a damaged recording (:func:`scan_xdf`), with the fix:
    unreadable streams, malformed chunks inside the file, or a cut-off end; None when the scan
    found none of these."""
    path = scan.path
    if scan.lost:
        first = next(iter(scan.lost.values()))
        them = "it" if len(scan.lost) == 1 else "them"
        fix = (f"Run `bci-app repair {path}` to leave {them} out and make the rest loadable "
               "(the original is kept beside it as *.before-repair.xdf), then load it again."
               if scan.signal_left else
               "No other signal stream is in the file, so its EEG cannot be loaded: use an "
               f"intact copy of the recording if there is one, and keep this file (the "
               f"samples are still in it); `bci-app repair {path}` would keep only the "
               "other streams (markers), with the original beside it.")
        return (f"Recording {path} holds {len(scan.lost)} stream(s) that cannot be read; the "
                f"first: {first.describe()}. {fix}")
    if scan.skipped:
        a, b, problem = scan.skipped[0]
        return (f"Recording {path} holds {len(scan.skipped)} malformed chunk(s) inside it (the "
                f"first {problem}, {b - a} bytes); the chunks around them are intact. Run "
                f"`bci-app repair {path}` to drop just those chunks and keep everything else, "
                "then load it again.")
    if scan.torn_bytes:
        return (f"Recording {path} ends in a cut-off chunk ({scan.problem}; {scan.torn_bytes} of "
                f"{scan.size} bytes): it was interrupted while writing. Run `bci-app repair "
                f"{path}` to keep everything up to the last complete chunk, then load it again.")
    return None


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file (same inode when both exist, else the same
    resolved path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def _refuse_existing_target(target: Path, path: Path) -> None:
    if os.path.lexists(target):
        raise RecordingError(
            f"Repair output {target} already exists; expected a new file name (a repair never "
            f"replaces another file). Choose another --out path, or delete {target} yourself; "
            f"{path} is unchanged."
        )


def kept_original_path(path: str | os.PathLike) -> Path:
    """Where an in-place repair that drops chunks inside ``path`` keeps the original:
    ``<stem>.before-repair.xdf`` beside it (``-2``, ``-3``, ... when taken)."""
    path = Path(path)
    suffix = path.suffix or ".xdf"
    for i in range(1, 10_000):
        keep = path.with_name(f"{path.stem}.before-repair{'' if i == 1 else f'-{i}'}{suffix}")
        if not os.path.lexists(keep):
            return keep
    raise RecordingError(f"Too many earlier copies of {path} (*.before-repair-N{suffix}) beside "
                         "it; move them away and repair again. The recording is unchanged.")


def _keep_original(path: Path, keep: Path) -> None:
    """``keep`` becomes a second name of ``path`` (a hard link: instant, no space), or a copy
    where the file system has no hard links."""
    try:
        os.link(path, keep)
        return
    except FileExistsError:
        raise RecordingError(f"{keep} already exists; a repair never replaces another file. "
                             f"Move it away and repair again; {path} is unchanged.") from None
    except OSError:
        pass
    with open(path, "rb") as src:
        try:
            dst = open(keep, "xb")
        except FileExistsError:
            raise RecordingError(f"{keep} already exists; a repair never replaces another "
                                 f"file. Move it away and repair again; {path} is "
                                 "unchanged.") from None
        try:
            with dst:
                shutil.copyfileobj(src, dst, 1 << 22)
                dst.flush()
                os.fsync(dst.fileno())
            shutil.copystat(path, keep)
        except BaseException:
            keep.unlink(missing_ok=True)  # our own half-written copy
            raise


def repair_xdf(path: str | os.PathLike, out: str | os.PathLike | None = None, *,
               keep: str | os.PathLike | None = None) -> Path:
    """Make a recording cut short by a crash, a kill or a power cut loadable.

    Cuts a torn or garbled tail (everything from the first incomplete/malformed chunk on that
    no well-formed chunk follows), drops a malformed chunk inside the file whose length is
    intact (keeping every chunk after it; :attr:`XDFScan.skipped`) or, when its length is
    garbled too, the bytes up to the next Boundary chunk, leaves out every chunk of a stream
    whose StreamHeader is unreadable (its samples cannot be read without it;
    :attr:`XDFScan.lost`, each logged with what it held), and appends a Boundary and the
    StreamFooters of every stream that has none. A complete file is left unchanged.
    ``pyxdf.load_xdf`` reads the result. An in-place repair that drops chunks inside the file
    (not only a torn tail) keeps the original at ``keep`` first, so nothing recorded is lost.

    Parameters
    ----------
    path : path-like
        The XDF file.
    out : path-like | None
        Write the repaired file there and leave ``path`` untouched; ``None`` (or ``path``
        itself) repairs in place. Either way the repaired file is written to a temporary file
        beside the target and moved over it, so a crash mid-repair never loses the original.
        An existing file at ``out`` is never replaced (:class:`RecordingError`).
    keep : path-like | None
        Where an in-place repair that drops chunks inside the file keeps the original (None:
        :func:`kept_original_path`). Not used otherwise.

    Returns
    -------
    Path
        The repaired file.
    """
    path = Path(path)
    scan = scan_xdf(path)
    in_place = out is None or same_path(path, out)
    target = path if in_place else Path(out)
    if not in_place:
        _refuse_existing_target(target, path)
    for a, b, problem in scan.skipped:
        logger.warning("%s: dropping a malformed %d-byte chunk %s (the chunks after it are "
                       "kept)", path, b - a, problem)
    for ls in scan.lost.values():
        logger.warning("%s: leaving out %s", path, ls.describe())
    if scan.torn_bytes:
        logger.warning("%s: cutting %d torn bytes %s", path, scan.torn_bytes, scan.problem)
    tail = b""
    missing = scan.missing_footers
    if missing:
        tail = encode_boundary() + b"".join(
            encode_footer(sid, s.first, s.last_ts if s.count else None, s.count, s.offsets)
            for sid, s in scan.streams.items()
            if sid in missing
        )
    # byte ranges left out: the malformed chunks, and the stale footers of damaged streams
    drop = sorted([(a, b) for a, b, _ in scan.skipped]
                  + [span for ls in scan.lost.values() for span in ls.spans]
                  + [s.footer_span for s in scan.streams.values()
                     if s.damaged and s.footer_span is not None])
    if in_place and not scan.cut_bytes and not tail:
        return target
    keep_at = None
    if in_place and scan.drops_inside:
        keep_at = kept_original_path(path) if keep is None else Path(keep)
    # Write the whole repaired file beside the target and move it into place: a crash, a kill
    # or a full disk mid-repair leaves the original (and an in-place target) as it was.
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".repair",
                                    dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as dst, open(path, "rb") as src:
            kept, at = [], 0  # byte ranges to copy: all but ``drop`` and the torn tail
            for a, b in drop:
                kept.append((at, a))
                at = b
            kept.append((at, scan.valid_end))
            for a, b in kept:
                src.seek(a)
                remaining = b - a
                while remaining > 0:
                    block = src.read(min(remaining, 1 << 22))
                    if not block:
                        break
                    dst.write(block)
                    remaining -= len(block)
                if remaining:
                    raise DataFileError(f"{path} shrank while being repaired; nothing was "
                                        "changed.")
            dst.write(tail)
            dst.flush()
            os.fsync(dst.fileno())
        shutil.copymode(path, tmp)  # mkstemp's 0600 -> the recording's permissions
        if not in_place:
            _refuse_existing_target(target, path)  # created while we were copying
        if keep_at is not None:
            _keep_original(path, keep_at)
        try:
            os.replace(tmp, target)
        except BaseException:
            if keep_at is not None:
                keep_at.unlink(missing_ok=True)  # the original is still at its own path
            raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if keep_at is not None:
        logger.warning("%s: the original (before the repair dropped chunks inside it) is kept "
                       "as %s", target, keep_at)
    if scan.lost and not scan.signal_left:
        logger.warning("%s: no regularly sampled signal stream with samples is left in the "
                       "repaired file; every recorded sample is still in %s", target,
                       keep_at if keep_at is not None else path)
    logger.info(
        "Repaired %s: kept %d bytes, cut %d (%d malformed chunks inside, %d unreadable "
        "streams, a %d-byte tail), added %d footers",
        target,
        scan.valid_end - scan.skipped_bytes - scan.lost_bytes,
        scan.cut_bytes,
        len(scan.skipped),
        len(scan.lost),
        scan.torn_bytes,
        len(missing),
    )
    return target


def xdf_value(d, key: str, default=None):
    """First value of ``d[key]`` in pyxdf's parsed XML (every element is a list), else default."""
    if not isinstance(d, dict):
        return default
    v = d.get(key)
    if isinstance(v, list):
        return v[0] if v else default
    return default if v is None else v
