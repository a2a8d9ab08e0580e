"""BrainFlow boards as sources: synthetic (default), OpenBCI Cyton / Cyton+Daisy / Ganglion by
serial port, the playback-file board, and any other board id BrainFlow knows.

Timestamps: BrainFlow stamps samples with the host's wall clock on arrival (bursty for serial and
BLE boards). We map the first sample once onto the LSL clock and then count samples at the nominal
rate, so timestamps are exactly 1/sfreq apart. Lost packets (package-number jumps) and device
silences are registered as gaps, and the count is re-anchored after them.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter

import numpy as np

from bci_app.errors import ConfigError, SourceError

from .base import Source, SourceLostError
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


def _brainflow():
    with warnings.catch_warnings():  # brainflow's library loader imports pkg_resources
        warnings.simplefilter("ignore")
        from brainflow import board_shim

        board_shim.BoardControllerDLL.get_instance()  # load the library now, quietly
    return board_shim


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
        Recording for the playback-file board (a BrainFlow CSV written by ``DataFilter``).
    master_board : int | str | None
        For the playback board: the board that recorded ``file`` (defines rows and rate).
    stream_buffer : int
        Samples BrainFlow keeps internally between our pulls.
    **kwargs
        Passed to :class:`Source` (buffer_seconds, stall_timeout, ...).
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
        self._sample_index = 0
        self._t0: float | None = None
        self._pylsl = None

    # ------------------------------------------------------------------ transport
    def _descr_board(self) -> int:
        return self.master_board if self.board_id == -3 and self.master_board is not None else self.board_id

    def _open(self, timeout: float) -> StreamInfo:
        bs = _brainflow()
        self._pylsl = import_pylsl()
        bs.BoardShim.set_log_level(bs.LogLevels.LEVEL_OFF.value)
        params = bs.BrainFlowInputParams()
        params.serial_port = self.serial_port
        params.timeout = max(1, int(round(timeout)))
        if self.file:
            params.file = self.file
        if self.master_board is not None:
            params.master_board = self.master_board
        board = bs.BoardShim(self.board_id, params)
        try:
            board.prepare_session()
            board.start_stream(self.stream_buffer)
        except bs.BrainFlowError as err:
            try:
                board.release_session()
            except Exception:
                pass
            hint = (
                f" Check that the dongle is plugged in and that {self.serial_port!r} is the right "
                "port (`bci-app devices`) and not used by another program (OpenBCI GUI)."
                if self.serial_port else ""
            )
            raise SourceError(f"Could not open BrainFlow board {self.board_name}: {err}.{hint}") from err
        self._board = board
        descr_id = self._descr_board()
        descr = bs.BoardShim.get_board_descr(descr_id)
        self._rows = list(bs.BoardShim.get_eeg_channels(descr_id))
        self._pkg_row = descr.get("package_num_channel")
        sfreq = float(bs.BoardShim.get_sampling_rate(descr_id))
        try:
            names = list(bs.BoardShim.get_eeg_names(descr_id))
        except bs.BrainFlowError:
            names = []
        if len(names) != len(self._rows):
            names = [f"EEG{i + 1}" for i in range(len(self._rows))]
        self._sample_index = 0
        self._t0 = None
        self._pkg_last = None
        self._pkg_step = None
        self._pkg_history = []
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

    def _pull(self) -> tuple[np.ndarray, np.ndarray] | None:
        board = self._board
        if board is None:
            raise SourceLostError(f"BrainFlow board {self.board_name} is closed.")
        n = board.get_board_data_count()
        if n == 0:
            return None
        raw = board.get_board_data(n)
        if raw.shape[1] == 0:
            return None
        now = self._pylsl.local_clock()
        sfreq = self.info.sfreq if self.info is not None else float(
            _brainflow().BoardShim.get_sampling_rate(self._descr_board()))
        m = raw.shape[1]
        if self._t0 is None:
            # map once: the newest sample arrived "now" on the LSL clock
            self._t0 = now - (m - 1) / sfreq
            self._sample_index = 0
        self._check_packages(raw, sfreq)
        idx = self._sample_index + np.arange(m)
        ts = self._t0 + idx / sfreq
        self._sample_index += m
        # re-anchor when the count drifts far behind the arrival clock (device sent fewer samples
        # than its nominal rate, or samples were lost without package numbers)
        lag = now - ts[-1]
        if lag > 0.5:
            missing = int(round(lag * sfreq))
            self.register_gap(ts[-1] + 1 / sfreq, lag, missing, "dropped")
            self._t0 += lag
        elif lag < -0.5:
            logger.warning("%s: sample count runs %.3f s ahead of the clock (device faster than "
                           "its nominal %g Hz?)", self.board_name, -lag, sfreq)
        data = raw[self._rows].T * 1e-6  # BrainFlow EEG rows are in microvolts
        return data, ts

    def _check_packages(self, raw: np.ndarray, sfreq: float) -> None:
        """Detect lost packets from the package-number row (wraps at 256)."""
        if self._pkg_row is None:
            return
        pk = raw[self._pkg_row].astype(np.int64)
        if self._pkg_step is None:
            self._pkg_history.extend(pk.tolist())
            if len(self._pkg_history) < 32:
                self._pkg_last = int(pk[-1])
                return
            diffs = np.diff(np.asarray(self._pkg_history)) % 256
            step, count = Counter(diffs.tolist()).most_common(1)[0]
            self._pkg_step = step if step > 0 and count >= 0.9 * len(diffs) else 0
            self._pkg_last = int(pk[-1])
            return
        if self._pkg_step == 0:
            return
        seq = np.concatenate(([self._pkg_last], pk))
        d = np.diff(seq) % 256
        bad = np.nonzero(d != self._pkg_step)[0]
        for j in bad:
            missing = int((d[j] - self._pkg_step) % 256) // self._pkg_step
            if missing <= 0:
                continue
            t = self._t0 + (self._sample_index + j) / sfreq
            self.register_gap(t, missing / sfreq, missing, "dropped packets")
            # keep timestamps true to the device: skip the counter over the lost samples
            self._t0 += missing / sfreq
        self._pkg_last = int(pk[-1])

    # ------------------------------------------------------------------ board extras
    def insert_marker(self, value: float) -> None:
        """Write a numeric marker into the board's marker row (BrainFlow ``insert_marker``)."""
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


