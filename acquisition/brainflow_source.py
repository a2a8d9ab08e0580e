"""BrainFlow boards as sources: synthetic (default), OpenBCI Cyton / Cyton+Daisy / Ganglion by
serial port, the playback-file board, and any other board id BrainFlow knows.

Timestamps: BrainFlow stamps samples with the host's wall clock on arrival (bursty for serial and
BLE boards). We map the first sample once onto the LSL clock and then count samples at the nominal
rate, so timestamps are 1/sfreq apart. Each sample gets a *device index* (samples received plus
samples known to be lost); its timestamp is ``t0 + index / sfreq``.

Lost samples are found in two ways, before a chunk is stamped:

* the package-number row (1 byte, wraps at 256) locates losses exactly inside a chunk;
* the arrival clock measures how late the newest sample is against its counted time. Lateness
  beyond the usual delivery jitter that the counter does not explain is a device silence (or a
  counter that wrapped or restarted); the counter jump or the largest jump of BrainFlow's arrival
  timestamps says where in the chunk it happened.

Each loss is registered as a gap starting one period after the last sample before it, and only the
samples after it are shifted. Slow clock drift (a board that really runs at 249.9 Hz) is not a gap:
``t0`` follows the earliest arrivals of the last seconds by tiny steps (at most 0.5 % of the
elapsed time) once it is more than 10 ms off, so timestamps stay on real time.

Markers: a non-zero value in the board's marker row (written by
:meth:`BrainFlowSource.insert_marker`, or read from a playback file, whose marker row the playback
board itself delivers as zeros) becomes a marker in :attr:`~acquisition.base.Source.markers` at its
sample's timestamp, source ``"board"``, labelled as :func:`~acquisition.files.read_file` labels
the same row in a file (``3.0`` -> ``"3"``).

The playback-file board plays its file once: at the end of the file the state becomes ``stopped``
(message ``"end of file"``, not an error), the board is released and the acquisition thread ends,
as for a :class:`~acquisition.replay.ReplaySource`; ``connect()`` plays it again.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter, deque

import numpy as np

from bci_app.errors import ConfigError, DataFileError, SourceError

from .base import Source, SourceLostError, SourceState
from .files import _number_label
from .lsl_env import import_pylsl
from .stream_info import StreamInfo

logger = logging.getLogger(__name__)

#: Friendly names accepted for ``board`` (besides BrainFlow's own ``BoardIds`` names and ids).
BOARD_ALIASES = {
    "synthetic": "SYNTHETIC_BOARD",
    "cyton": "CYTON_BOARD",
    "cyton-daisy": "CYTON_DAISY_BOARD",
    "cyton_daisy": "CYTON_DAISY_BOARD",
    "daisy": "CYTON_DAISY_BOARD",
    "ganglion": "GANGLION_BOARD",
    "playback": "PLAYBACK_FILE_BOARD",
}

#: Boards that talk to a serial port (the port must be given).
SERIAL_BOARDS = {"CYTON_BOARD", "CYTON_DAISY_BOARD", "GANGLION_BOARD"}

#: Delivery jitter tolerated before lateness counts as lost time (seconds). The synthetic board
#: shows up to ~12 ms on a busy machine; serial and BLE dongles deliver in bursts of tens of ms.
DELIVERY_JITTER = 0.04
#: Extra tolerance in sample periods on top of :data:`DELIVERY_JITTER`.
TOLERANCE_PERIODS = 3
#: Lateness beyond which a chunk is taken as lost time even when the package counter runs on
#: without a jump (seconds).
LATE_LIMIT = 0.5
#: Clock-drift tracking: ``t0`` follows the earliest arrival over this window (seconds) ...
DRIFT_WINDOW = 4.0
#: ... once it is off by more than this (seconds) ...
DRIFT_DEADBAND = 0.01
#: ... by steps of at most this fraction of the time the chunk covers (0.5 %).
MAX_SLEW = 0.005


def _brainflow():
    with warnings.catch_warnings():  # brainflow's library loader imports pkg_resources
        warnings.simplefilter("ignore")
        from brainflow import board_shim

        board_shim.BoardControllerDLL.get_instance()  # load the library now, quietly
    return board_shim


_OWNED_SHIM = None


def _owned_board_shim():
    """``BoardShim`` that, when garbage-collected, releases only a session it prepared itself.

    BrainFlow keys sessions by board id and input parameters, and ``BoardShim.__del__`` releases
    the session of that key whenever one is prepared. A second source on a board already open in
    this process (the calibration wizard on "synthetic" beside the main window) fails to prepare
    (ANOTHER_BOARD_IS_CREATED), and when its BoardShim was collected it released the *first*
    source's board, which went lost and reconnected (a gap in its signal)."""
    global _OWNED_SHIM
    if _OWNED_SHIM is None:
        bs = _brainflow()

        class OwnedBoardShim(bs.BoardShim):
            _owned = False

            def prepare_session(self) -> None:
                super().prepare_session()
                self._owned = True

            def release_session(self) -> None:
                self._owned = False
                super().release_session()

            def __del__(self) -> None:
                if self._owned and self.is_prepared():
                    self.release_session()

        _OWNED_SHIM = OwnedBoardShim
    return _OWNED_SHIM


def resolve_board_id(board: int | str) -> int:
    """Turn ``-1``, ``"synthetic"``, ``"CYTON_BOARD"`` or ``"0"`` into a BrainFlow board id.

    Raises
    ------
    ConfigError
        For a name or number BrainFlow does not know, listing the accepted names.
    """
    bs = _brainflow()
    ids = {b.name: b.value for b in bs.BoardIds}
    if isinstance(board, str):
        text = board.strip()
        try:
            board = int(text)
        except ValueError:
            key = BOARD_ALIASES.get(text.lower(), text.upper())
            if key not in ids and f"{key}_BOARD" in ids:
                key = f"{key}_BOARD"
            if key not in ids:
                raise ConfigError(
                    f"Unknown BrainFlow board {text!r}. Use a board id number or one of: "
                    f"{', '.join(sorted(BOARD_ALIASES))}, or a BrainFlow name such as "
                    "CYTON_BOARD (see `bci-app devices`)."
                ) from None
            return ids[key]
    if int(board) not in ids.values():
        raise ConfigError(
            f"Unknown BrainFlow board id {board}. Known ids run from {min(ids.values())} to "
            f"{max(ids.values())}; `bci-app devices` lists them with their names."
        )
    return int(board)


def board_name(board_id: int) -> str:
    bs = _brainflow()
    return bs.BoardIds(board_id).name


class BrainFlowSource(Source):
    """Any BrainFlow board as a :class:`Source`; EEG rows only, in volts.

    Parameters
    ----------
    board : int | str
        Board id or name; default ``"synthetic"`` (BrainFlow's synthetic board, no hardware).
    serial_port : str
        Serial port of OpenBCI Cyton / Daisy / Ganglion dongles (e.g. ``/dev/ttyUSB0``, ``COM3``).
    file : str
        Recording for the playback-file board (a BrainFlow CSV written by ``DataFilter``), played
        once (see the module notes). An OpenBCI GUI recording is not one: replay it with
        :class:`~acquisition.replay.ReplaySource` (``--source file:PATH``).
    master_board : int | str | None
        For the playback board: the board that recorded ``file`` (defines rows and rate).
    stream_buffer : int
        Samples BrainFlow keeps internally between our pulls.
    **kwargs
        Passed to :class:`Source` (buffer_seconds, stall_timeout, ``channel_names``: the
        electrode of each EEG channel in board order, as BrainFlow names a Cyton's channels
        Fp1, Fp2, C3, ... whatever the cap; ...).
    """

    kind = "brainflow"
    registers_own_gaps = True

    def __init__(
        self,
        board: int | str = "synthetic",
        *,
        serial_port: str = "",
        file: str = "",
        master_board: int | str | None = None,
        stream_buffer: int = 450_000,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.board_id = resolve_board_id(board)
        self.board_name = board_name(self.board_id)
        self.serial_port = serial_port
        self.file = file
        self.master_board = None if master_board is None else resolve_board_id(master_board)
        self.stream_buffer = int(stream_buffer)
        if self.board_name in SERIAL_BOARDS and not serial_port:
            raise ConfigError(
                f"{self.board_name} needs a serial port (e.g. serial_port='/dev/ttyUSB0' or 'COM3'); "
                "`bci-app devices` lists the ports it sees."
            )
        if self.board_name == "PLAYBACK_FILE_BOARD" and not (file and self.master_board is not None):
            raise ConfigError(
                "The playback board needs file=<BrainFlow CSV> and master_board=<board that recorded it>."
            )
        self._board = None
        self._rows: list[int] = []
        self._pkg_row: int | None = None
        self._pkg_step: int | None = None
        self._pkg_last: int | None = None
        self._pkg_history: list[int] = []
        self._ts_row: int | None = None
        self._marker_row: int | None = None
        self._file_samples: int | None = None  # samples in the playback file
        self._file_markers = (np.zeros(0, np.int64), np.zeros(0))  # its marker row: (line, value)
        self._received = 0  # samples pulled since the board was (re)opened
        self._host_last: float | None = None
        self._n_dev = 0  # device index of the next sample (received + lost)
        self._t0: float | None = None  # LSL time of device index 0
        self._anchors: deque[tuple[float, float]] = deque()  # (now, anchor): increasing anchors
        self._slewing = False
        self._warned_ahead = False
        self._pylsl = None

    # ------------------------------------------------------------------ transport
    def _descr_board(self) -> int:
        return self.master_board if self.board_id == -3 and self.master_board is not None else self.board_id

    def _check_playback_file(self) -> int:
        """Check that the playback board's file is a BrainFlow CSV of the master board's layout
        (BrainFlow itself fails with INVALID_ARGUMENTS_ERROR for a missing file and streams
        nothing, without an error, from a file of another layout). Returns its sample count and
        keeps the values of its marker row in ``_file_markers`` (the playback board delivers
        that row as zeros)."""
        bs = _brainflow()
        path = str(self.file)
        n_rows = int(bs.BoardShim.get_num_rows(self.master_board))
        master = board_name(self.master_board)
        fix_board = ("Fix: give the board that recorded the file: --source brainflow:playback:"
                     "BOARD:PATH (master_board= in Python; `bci-app devices` lists the boards).")
        # the samples BrainFlow will play: the non-blank whole lines (it skips blank lines, and
        # a last line cut mid-write)
        first = last = carry = b""
        n_data = 0
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    buf = carry + block
                    end = buf.rfind(b"\n")
                    if end < 0:
                        carry = buf
                        continue
                    lines = [ln for ln in buf[:end].split(b"\n") if ln.strip()]
                    carry = buf[end + 1:]
                    if lines:
                        n_data += len(lines)
                        first, last = first or lines[0], lines[-1]
        except OSError as err:
            raise DataFileError(
                f"Playback file {path!r} cannot be read ({err.strerror or err}). Fix: pass the "
                "path of a BrainFlow CSV written by brainflow.DataFilter.write_file."
            ) from err
        if carry.strip() and (not first or len(carry.split(b"\t")) == n_rows):
            n_data += 1  # a whole last line without its newline
            first, last = first or carry, carry
        text = first.decode("utf-8", errors="replace").strip()
        fields = text.split("\t")
        try:
            [float(v) for v in fields]
        except ValueError:
            raise DataFileError(
                f"Playback file {path!r} is not a BrainFlow CSV (its first line is {text[:60]!r}, "
                "not tab-separated numbers). Fix: replay an OpenBCI GUI or other recording with "
                "ReplaySource (--source file:PATH); the playback board reads only files written by "
                "brainflow.DataFilter.write_file."
            ) from None
        if len(fields) != n_rows:
            raise ConfigError(
                f"Playback file {path!r} has {len(fields)} values per sample, but board {master} "
                f"writes {n_rows}: the file was recorded with another board. {fix_board}"
            )
        ts_row = int(bs.BoardShim.get_timestamp_channel(self.master_board))
        mrow = int(bs.BoardShim.get_marker_channel(self.master_board))
        try:  # numpy's C parser: about 1 s for an hour at 250 Hz (blank lines are not rows)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "line N contained no data"
                cols = np.loadtxt(path, delimiter="\t", usecols=(ts_row, mrow), comments=None,
                                  ndmin=2, max_rows=n_data)
        except ValueError as err:
            logger.warning("Playback file %s: its timestamp and marker rows cannot be read (%s); "
                           "the file's markers are not replayed (read_file reads a damaged file)",
                           path, err)
            cols = np.zeros((0, 2))
        # BrainFlow paces the file by its timestamp row; samples are stamped at the master's
        # rate. The median step, not the span: a pause in the file (stop/start) is no other rate
        ts, values = cols[:, 0], cols[:, 1]
        steps = np.diff(ts)
        steps = steps[np.isfinite(steps) & (steps > 0)]
        sfreq = float(bs.BoardShim.get_sampling_rate(self.master_board))
        if len(steps) and np.nanmax(ts) - np.nanmin(ts) >= 1.0:
            rate = 1.0 / float(np.median(steps))
            if abs(rate / sfreq - 1.0) > 0.1:
                raise ConfigError(
                    f"Playback file {path!r} was recorded at {rate:.0f} Hz (the median step of "
                    f"its timestamps), but board {master} runs at {sfreq:g} Hz: the file was "
                    f"recorded with another board. {fix_board}"
                )
        at = np.flatnonzero(np.isfinite(values) & (values != 0))
        self._file_markers = (at, values[at])
        return n_data

    def _open(self, timeout: float) -> StreamInfo:
        bs = _brainflow()
        self._pylsl = import_pylsl()
        bs.BoardShim.set_log_level(bs.LogLevels.LEVEL_OFF.value)
        if self.board_id == bs.BoardIds.PLAYBACK_FILE_BOARD.value:
            self._file_samples = self._check_playback_file()
        params = bs.BrainFlowInputParams()
        params.serial_port = self.serial_port
        params.timeout = max(1, int(round(timeout)))
        if self.file:
            params.file = self.file
        if self.master_board is not None:
            params.master_board = self.master_board
        # the user's channel names are applied by Source.connect; their count is checked here,
        # before the board is prepared
        n_eeg = len(bs.BoardShim.get_eeg_channels(self._descr_board()))
        if self.channel_names is not None and len(self.channel_names) != n_eeg:
            raise ConfigError(
                f"channels: {self.board_name} streams {n_eeg} EEG channels, but "
                f"{len(self.channel_names)} names were given ({', '.join(self.channel_names)}). "
                f"Fix: give exactly {n_eeg} names, one per channel in board order "
                f"(brainflow:BOARD:PORT?channels=C3,Cz,C4,...)."
            )
        board = _owned_board_shim()(self.board_id, params)
        prepared = False
        try:
            board.prepare_session()
            prepared = True
            board.start_stream(self.stream_buffer)
        except bs.BrainFlowError as err:
            # Release only a session this call prepared (see _owned_board_shim): after a failed
            # prepare (ANOTHER_BOARD_IS_CREATED) release_session() released the other user's board.
            if prepared:
                try:
                    board.release_session()
                except Exception:
                    pass
            in_use = getattr(err, "exit_code", None) == \
                bs.BrainFlowExitCodes.ANOTHER_BOARD_IS_CREATED_ERROR.value
            if in_use:
                hint = (" It is already open in this program (the main window or the calibration "
                        "wizard): disconnect it there first, or use that source.")
            elif self.serial_port:
                hint = (f" Check that the dongle is plugged in and that {self.serial_port!r} is the "
                        "right port (`bci-app devices`) and not used by another program (OpenBCI "
                        "GUI).")
            else:
                hint = ""
            raise SourceError(f"Could not open BrainFlow board {self.board_name}: {err}.{hint}") from err
        self._board = board
        descr_id = self._descr_board()
        descr = bs.BoardShim.get_board_descr(descr_id)
        self._rows = list(bs.BoardShim.get_eeg_channels(descr_id))
        self._pkg_row = descr.get("package_num_channel")
        self._ts_row = descr.get("timestamp_channel")
        self._marker_row = descr.get("marker_channel")
        sfreq = float(bs.BoardShim.get_sampling_rate(descr_id))
        try:
            names = list(bs.BoardShim.get_eeg_names(descr_id))
        except bs.BrainFlowError:
            names = []
        if len(names) != len(self._rows):
            names = [f"EEG{i + 1}" for i in range(len(self._rows))]
        self._reset_clock()
        return StreamInfo(
            name=f"BrainFlow {descr.get('name', self.board_name)}",
            source_kind=self.kind,
            ch_names=tuple(names),
            ch_types=("eeg",) * len(names),
            units=("V",) * len(names),
            sfreq=sfreq,
            source_id=f"brainflow:{self.board_id}:{self.serial_port or self.file or 'default'}",
            metadata={"board_id": self.board_id, "board_name": self.board_name,
                      "serial_port": self.serial_port, "rows": self._rows},
        )

    def _close(self) -> None:
        board, self._board = self._board, None
        if board is None:
            return
        try:
            if board.is_prepared():
                try:
                    board.stop_stream()
                except Exception:
                    pass
                board.release_session()
        except Exception:
            logger.exception("Releasing BrainFlow board %s failed", self.board_name)

    def _reopen(self, timeout: float) -> StreamInfo:
        self._close()
        info = self._open(timeout)
        return info

    def _reset_clock(self) -> None:
        """Forget the clock mapping and the package counter (a new session starts afresh)."""
        self._n_dev = 0
        self._t0 = None
        self._anchors = deque()
        self._slewing = False
        self._warned_ahead = False
        self._host_last = None
        self._pkg_last = None
        self._pkg_step = None
        self._pkg_history = []
        self._received = 0

    def _pull(self) -> tuple[np.ndarray, np.ndarray] | None:
        board = self._board
        if board is None:
            if self._state == SourceState.STOPPED:  # the playback file ended
                return None
            raise SourceLostError(f"BrainFlow board {self.board_name} is closed.")
        n = board.get_board_data_count()
        if n == 0:
            if self._file_samples is not None and self._received >= self._file_samples:
                self._end_of_file()
            return None
        raw = board.get_board_data(n)
        if raw.shape[1] == 0:
            return None
        self._received += raw.shape[1]
        now = self._pylsl.local_clock()
        sfreq = self.info.sfreq if self.info is not None else float(
            _brainflow().BoardShim.get_sampling_rate(self._descr_board()))
        m = raw.shape[1]
        if self._t0 is None:
            # map once: the newest sample arrived "now" on the LSL clock
            self._t0 = now - (m - 1) / sfreq
            self._n_dev = 0
        # where samples were lost inside this chunk, and how many: found before stamping, so
        # that only the samples after a loss move
        losses = self._lost_samples(raw, now, sfreq)
        shift = np.zeros(m, dtype=np.int64)
        for j, missing, _ in losses:
            shift[j:] += missing
        first = self._n_dev
        idx = first + np.arange(m) + shift
        self._n_dev = int(idx[-1]) + 1
        self._follow_clock(now - idx[-1] / sfreq, now, m, sfreq)
        before = 0
        for j, missing, reason in losses:
            # one period after the last real sample before the loss
            start = self._t0 + (first + j + before) / sfreq
            self.register_gap(start, missing / sfreq, missing, reason)
            before += missing
        ts = self._t0 + idx / sfreq
        lines, values = self._file_markers  # a playback file's markers, by file line
        received = self._received - m  # file line of this chunk's first sample
        lo, hi = np.searchsorted(lines, [received, received + m])
        marks = dict(zip((lines[lo:hi] - received).tolist(), values[lo:hi].tolist()))
        if self._marker_row is not None:  # insert_marker() values
            row = raw[self._marker_row]
            for i in np.flatnonzero(np.isfinite(row) & (row != 0)).tolist():
                marks.setdefault(i, float(row[i]))  # the file's own value if it has one there
        for i, value in sorted(marks.items()):
            self.markers.add(float(ts[i]), _number_label(value), 0.0, "board", value=value)
        data = raw[self._rows].T * 1e-6  # BrainFlow EEG rows are in microvolts
        return data, ts

    def _end_of_file(self) -> None:
        """The playback board delivered its whole file: stop (not lost, not reconnected: that
        played the file again after a made-up reconnection gap)."""
        if self._state == SourceState.STOPPED:
            return
        logger.info("Playback of %s reached the end of the file", self.file)
        self._stop.set()  # the acquisition thread ends after this iteration
        self._close()  # released first (a state callback may connect() to play it again)
        self._set_state(SourceState.STOPPED, "end of file")

    def _lost_samples(
        self, raw: np.ndarray, now: float, sfreq: float
    ) -> list[tuple[int, int, str]]:
        """Find the samples lost before and inside a chunk, from the counter and the clock.

        Parameters
        ----------
        raw : ndarray, shape (n_rows, n_samples)
            The chunk as BrainFlow returned it.
        now : float
            LSL time at which the chunk was read.
        sfreq : float
            Nominal sampling rate in Hz.

        Returns
        -------
        list of (position, n_missing, reason)
            ``position`` is the index in the chunk of the first sample after the loss (0: the
            loss lies between the previous chunk and this one), sorted by position.
        """
        m = raw.shape[1]
        losses = {j: k for j, k in self._package_losses(raw)}
        host = None if self._ts_row is None else raw[self._ts_row]
        host_before, self._host_last = self._host_last, (None if host is None else float(host[-1]))
        counted = sum(losses.values())
        # lateness of the newest sample against its counted time, beyond what the counter explains
        lag = now - (self._t0 + (self._n_dev + m - 1) / sfreq)
        resid = lag - counted / sfreq
        tol = TOLERANCE_PERIODS / sfreq + DELIVERY_JITTER
        reasons = {j: "dropped packets" for j in losses}
        if abs(resid) <= tol:
            pass  # the counter (or nothing) explains the timing: normal operation
        elif resid > 0:
            j = self._loss_position(losses, host, host_before, sfreq)
            wrap = self._counter_period()
            n_wraps = 0 if wrap is None else int(round(resid * sfreq / wrap))
            if n_wraps >= 1 and abs(resid - n_wraps * wrap / sfreq) <= tol:
                # the 1-byte counter wrapped during the silence: it still gives the exact count
                losses[j] = losses.get(j, 0) + n_wraps * wrap
                reasons.setdefault(j, "dropped packets")
            elif wrap is not None and not losses and resid < LATE_LIMIT:
                # the counter runs on without a jump: the samples came late, none was lost
                logger.debug("%s: chunk of %d samples arrived %.3f s late", self.board_name, m,
                             resid)
            else:
                # a silence the counter cannot measure (no counter, or it restarted)
                losses[j] = losses.get(j, 0) + int(round(resid * sfreq))
                reasons[j] = "dropped"
        elif losses:
            # the counter claims more than the clock allows: it restarted (device reset). Keep the
            # time the clock measured, at the counter jump.
            j = max(losses, key=losses.get)
            others = counted - losses[j]
            losses[j] = max(0, int(round(lag * sfreq)) - others)
            reasons[j] = "dropped"
            logger.info("%s: package counter restarted; gap measured on the clock instead",
                        self.board_name)
        return [(j, k, reasons[j]) for j, k in sorted(losses.items()) if k > 0]

    def _loss_position(self, losses: dict[int, int], host: np.ndarray | None,
                       host_before: float | None, sfreq: float) -> int:
        """Index in the chunk of the first sample after a silence.

        The largest counter jump if there is one; else the largest jump of BrainFlow's arrival
        timestamps (when it stands out from the normal spacing); else the chunk start.
        """
        if losses:
            return max(losses, key=losses.get)
        if host is None or len(host) == 0:
            return 0
        steps = np.diff(host if host_before is None else np.concatenate(([host_before], host)))
        if len(steps) == 0:
            return 0
        k = int(np.argmax(steps))
        if steps[k] <= 2.0 / sfreq:
            return 0
        return k if host_before is not None else k + 1

    def _counter_period(self) -> int | None:
        """Samples after which the package counter repeats; ``None`` without a usable counter."""
        step = self._pkg_step
        if not step or 256 % step:
            return None
        return 256 // step

    def _follow_clock(self, anchor: float, now: float, m: int, sfreq: float) -> None:
        """Keep ``t0`` on the earliest arrivals so that clock drift does not pile up.

        Parameters
        ----------
        anchor : float
            The ``t0`` that would stamp the newest sample of this chunk at its arrival ``now``.
        now : float
            LSL time of the arrival.
        m : int
            Samples in the chunk (a step moves ``t0`` by at most :data:`MAX_SLEW` of their span).
        sfreq : float
            Nominal sampling rate in Hz.
        """
        anchors = self._anchors  # sliding minimum: anchors increase from left to right
        while anchors and anchors[-1][1] >= anchor:
            anchors.pop()
        anchors.append((now, anchor))
        while anchors[0][0] < now - DRIFT_WINDOW:
            anchors.popleft()
        err = anchors[0][1] - self._t0
        if not (self._slewing or abs(err) > DRIFT_DEADBAND):
            return
        limit = min(MAX_SLEW * m / sfreq, 0.25 / sfreq)
        step = float(np.clip(err, -limit, limit))
        self._t0 += step
        self._slewing = abs(err - step) > 0.25 / sfreq  # slew until close, then rest
        if err < -LATE_LIMIT and not self._warned_ahead:
            self._warned_ahead = True
            logger.warning("%s: samples arrive %.3f s earlier than counted (device faster than "
                           "its nominal %g Hz?)", self.board_name, -err, sfreq)

    def _package_losses(self, raw: np.ndarray) -> list[tuple[int, int]]:
        """Lost packets from the package-number row (wraps at 256), without stamping anything.

        Returns
        -------
        list of (position, n_missing)
            ``position``: index in the chunk of the first sample after the loss.
        """
        if self._pkg_row is None:
            return []
        pk = raw[self._pkg_row].astype(np.int64)
        if self._pkg_step is None:
            self._pkg_history.extend(pk.tolist())
            if len(self._pkg_history) < 32:
                self._pkg_last = int(pk[-1])
                return []
            diffs = np.diff(np.asarray(self._pkg_history)) % 256
            step, count = Counter(diffs.tolist()).most_common(1)[0]
            self._pkg_step = step if step > 0 and count >= 0.9 * len(diffs) else 0
            self._pkg_last = int(pk[-1])
            return []
        if self._pkg_step == 0:
            return []
        seq = np.concatenate(([self._pkg_last], pk))
        d = np.diff(seq) % 256
        out = []
        for j in np.nonzero(d != self._pkg_step)[0]:
            missing = int((d[j] - self._pkg_step) % 256) // self._pkg_step
            if missing > 0:
                out.append((int(j), missing))
        self._pkg_last = int(pk[-1])
        return out

    # ------------------------------------------------------------------ board extras
    @property
    def duration(self) -> float | None:
        """Seconds of the playback board's file at the board's rate (``None`` for a live board),
        as :attr:`acquisition.replay.ReplaySource.duration`."""
        if self._file_samples is None or self.info is None or not self.info.sfreq:
            return None
        return self._file_samples / float(self.info.sfreq)

    @property
    def finished(self) -> bool:
        """True once the playback board delivered its whole file (never for a live board), as
        :attr:`acquisition.replay.ReplaySource.finished`: a headless session then ends."""
        return self._file_samples is not None and self._received >= self._file_samples

    def insert_marker(self, value: float) -> None:
        """Write a numeric marker into the board's marker row (BrainFlow ``insert_marker``); it
        comes back in :attr:`markers` with the next chunk, at the timestamp of its sample."""
        if self._board is None:
            raise RuntimeError("Board not connected.")
        self._board.insert_marker(float(value))


def list_boards() -> list[tuple[int, str, float, int]]:
    """(id, name, sampling rate, number of EEG channels) for every board BrainFlow describes."""
    bs = _brainflow()
    bs.BoardShim.set_log_level(bs.LogLevels.LEVEL_OFF.value)
    out = []
    for b in bs.BoardIds:
        try:
            d = bs.BoardShim.get_board_descr(b.value)
            out.append((b.value, b.name, float(d["sampling_rate"]), len(d.get("eeg_channels", []))))
        except Exception:
            continue
    return out


def list_serial_ports() -> list[str]:
    """Serial ports that could hold an OpenBCI dongle (best effort, no extra dependency)."""
    import glob
    import sys

    if sys.platform.startswith("win"):
        return [f"COM{i}" for i in range(1, 21)]
    pats = ["/dev/ttyUSB*", "/dev/ttyACM*", "/dev/cu.usbserial*", "/dev/tty.usbserial*"]
    return sorted(p for pat in pats for p in glob.glob(pat))


