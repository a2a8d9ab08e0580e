"""BrainFlowSource with BrainFlow's synthetic and playback-file boards (no hardware)."""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import pytest

from acquisition.base import SourceState
from acquisition.brainflow_source import BrainFlowSource, _brainflow, resolve_board_id
from acquisition.markers import GAP_LABEL
from bci_app.errors import ConfigError
from tests.helpers.processes import wait_until


def test_synthetic_board_streams_at_nominal_rate_for_5_s():
    src = BrainFlowSource("synthetic")
    with src.connect(timeout=5):
        assert src.info.n_channels == 16 and src.info.sfreq == 250
        assert src.info.ch_names[:4] == ("Fz", "C3", "Cz", "C4")
        assert set(src.info.units) == {"V"} and set(src.info.ch_types) == {"eeg"}
        wait_until(lambda: src.n_samples > 0, 5, what="first samples")
        n0, t0 = src.n_samples, time.monotonic()
        time.sleep(5.0)  # a measurement interval, not a synchronisation
        n1, t1 = src.n_samples, time.monotonic()
        rate = (n1 - n0) / (t1 - t0)
        assert rate == pytest.approx(250, rel=0.02)
        chunk = src.buffer.since(0)
    assert src.state == SourceState.STOPPED
    # timestamps are counted at the nominal rate: exactly 1/250 apart, on the LSL clock
    np.testing.assert_allclose(np.diff(chunk.timestamps), 1 / 250, atol=1e-9)
    # volts: the synthetic board's EEG is tens of microvolts
    assert 1e-7 < np.std(chunk.data) < 1e-3
    assert src.gaps == []


def _record_synthetic(path, seconds: float = 2.0) -> np.ndarray:
    bs = _brainflow()
    board = bs.BoardShim(-1, bs.BrainFlowInputParams())
    board.prepare_session()
    board.start_stream()
    time.sleep(seconds)
    board.stop_stream()
    data = board.get_board_data()
    board.release_session()
    from brainflow.data_filter import DataFilter

    DataFilter.write_file(data, str(path), "w")
    return DataFilter.read_file(str(path))  # what the playback board will read (file precision)


def test_playback_board_replays_file_bit_exact(tmp_path):
    f = tmp_path / "synthetic.csv"
    recorded = _record_synthetic(f)
    n = recorded.shape[1]
    src = BrainFlowSource("playback", file=str(f), master_board="synthetic", reconnect=False)
    with src.connect(timeout=5):
        wait_until(lambda: src.n_samples >= n, 10, what="whole file played back")
        got = src.buffer.since(0)
    rows = _brainflow().BoardShim.get_eeg_channels(-1)
    np.testing.assert_array_equal(got.data, recorded[rows].T[: got.n_samples] * 1e-6)
    assert got.n_samples == n
    assert src.gaps == []


def test_lost_packets_become_gaps_and_timestamps_skip_them(tmp_path):
    from brainflow.data_filter import DataFilter

    f = tmp_path / "full.csv"
    recorded = _record_synthetic(f, seconds=2.0)
    pkg_row = 0
    # drop 10 consecutive samples (packets) in the middle, as a flaky dongle would
    keep = np.ones(recorded.shape[1], bool)
    keep[200:210] = False
    cut = recorded[:, keep]
    f2 = tmp_path / "dropped.csv"
    DataFilter.write_file(np.ascontiguousarray(cut), str(f2), "w")
    assert np.diff(cut[pkg_row, 195:205]).max() == 11  # the file really has a jump
    src = BrainFlowSource("playback", file=str(f2), master_board="synthetic", reconnect=False)
    with src.connect(timeout=5):
        wait_until(lambda: src.n_samples >= cut.shape[1], 10, what="file played back")
        got = src.buffer.since(0)
    assert len(src.gaps) == 1
    gap = src.gaps[0]
    assert gap.samples_missing == 10 and gap.reason == "dropped packets"
    assert gap.duration == pytest.approx(10 / 250)
    assert [m.label for m in src.markers.all()] == [GAP_LABEL]
    # the samples after the gap are stamped where the device produced them
    dt = np.diff(got.timestamps)
    big = np.nonzero(dt > 1.5 / 250)[0]
    assert len(big) == 1 and big[0] == 199
    assert dt[199] == pytest.approx(11 / 250)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"board": 9999}, "Unknown BrainFlow board id 9999"),
        ({"board": "not-a-board"}, "Unknown BrainFlow board 'not-a-board'"),
        ({"board": "cyton"}, "CYTON_BOARD needs a serial port"),
        ({"board": "ganglion"}, "GANGLION_BOARD needs a serial port"),
        ({"board": "playback"}, "playback board needs file="),
    ],
)
def test_bad_board_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        BrainFlowSource(**kwargs)


def test_board_names_and_ids_resolve():
    assert resolve_board_id("synthetic") == -1
    assert resolve_board_id("CYTON_DAISY_BOARD") == 2
    assert resolve_board_id("cyton-daisy") == 2
    assert resolve_board_id("0") == 0


# ---------------------------------------------------------------------- losses and silences
# The synthetic board in manual mode (``acquisition=False``); what a faulty device or dongle does
# is injected into what the board returns, as a transform of ``get_board_data``.

SFREQ = 250
PKG_ROW = 0
HOST_TS_ROW = 30  # BrainFlow's arrival timestamps (wall clock) of the synthetic board


@contextmanager
def _manual_synthetic(transform=None):
    """A connected synthetic board without acquisition thread; ``transform(raw)`` edits chunks.

    Disconnects on exit and unpatches the board: a patched ``BoardShim`` left in a reference cycle
    would be collected later, and its ``__del__`` would release the next test's synthetic board
    (BrainFlow keys boards by id and parameters).
    """
    src = BrainFlowSource("synthetic", reconnect=False)
    src.connect(timeout=5, acquisition=False)
    board = src._board
    if transform is not None:
        get = board.get_board_data
        board.get_board_data = lambda n: transform(get(n))
    try:
        yield src
    finally:
        src.disconnect()
        board.__dict__.pop("get_board_data", None)


def _acquire_at_least(src: BrainFlowSource, n: int) -> int:
    """Wait (bounded) until the board holds ``n`` samples, then acquire them."""
    wait_until(lambda: src._board.get_board_data_count() >= n, 5, what=f"{n} samples on the board")
    return src.acquire()


def _jumps(ts: np.ndarray) -> np.ndarray:
    """Indices ``i`` where ``ts[i + 1] - ts[i]`` is clearly more than one period."""
    return np.flatnonzero(np.diff(ts) > 1.5 / SFREQ)


def test_packet_loss_inside_a_chunk_moves_only_the_samples_after_it():
    state = {"armed": False}

    def lose_five_packets(raw):
        if state["armed"] and raw.shape[1] >= 20:
            state["armed"] = False
            return np.delete(raw, np.s_[10:15], axis=1)  # packets 10..14 of this chunk lost
        return raw

    with _manual_synthetic(lose_five_packets) as src:
        for _ in range(3):  # > 32 samples: the package counter's step is learned
            _acquire_at_least(src, 25)
        k = src.n_samples  # buffer index of the chunk's first sample
        state["armed"] = True
        _acquire_at_least(src, 30)
        _acquire_at_least(src, 10)
    ts = src.buffer.since(0).timestamps
    assert len(src.gaps) == 1
    gap = src.gaps[0]
    assert gap.samples_missing == 5 and gap.reason == "dropped packets"
    # the 10 samples before the loss continue the previous chunk; only those after it jump
    assert list(_jumps(ts)) == [k + 9]
    assert ts[k + 10] - ts[k + 9] == pytest.approx(6 / SFREQ, abs=1e-9)
    # the gap starts one period after the last real sample before the loss and ends on the next
    assert gap.start == pytest.approx(ts[k + 9] + 1 / SFREQ, abs=1e-9)
    assert gap.start + gap.duration == pytest.approx(ts[k + 10], abs=1e-9)
    assert gap.duration == pytest.approx(5 / SFREQ)


def _no_counter(raw):
    raw[PKG_ROW] = 0.0  # a board without package numbers
    return raw


class _CounterRunsOn:
    """Package numbers of a device that keeps counting through a silence (1 byte, wraps)."""

    def __init__(self):
        self.last_pkg = None
        self.last_host = None
        self.offset = None

    def __call__(self, raw):
        if raw.shape[1] == 0:
            return raw
        restarted = self.last_pkg is not None and raw[PKG_ROW, 0] != (self.last_pkg + 1) % 256
        if self.offset is None and restarted:
            # the synthetic board restarted its counter: continue ours over the samples not sent
            skipped = int(round((raw[HOST_TS_ROW, 0] - self.last_host) * SFREQ)) - 1
            self.offset = (self.last_pkg + 1 + skipped - raw[PKG_ROW, 0]) % 256
        if self.offset is not None:
            raw[PKG_ROW] = (raw[PKG_ROW] + self.offset) % 256
        self.last_pkg, self.last_host = raw[PKG_ROW, -1], raw[HOST_TS_ROW, -1]
        return raw


@pytest.mark.parametrize(
    ("silence", "transform", "reason"),
    [
        (1.2, None, "dropped"),  # the synthetic counter restarts: its jump means nothing
        (0.3, _no_counter, "dropped"),  # no counter: only the clock can tell
        (1.2, _CounterRunsOn, "dropped packets"),  # the counter wrapped: exact count from it
    ],
    ids=["counter-restarts", "no-counter", "counter-wraps"],
)
def test_device_silence_is_a_gap_before_the_samples_that_follow_it(silence, transform, reason):
    host = []
    if isinstance(transform, type):
        transform = transform()

    def record(raw):
        raw = raw if transform is None else transform(raw)
        host.extend(raw[HOST_TS_ROW].tolist())
        return raw

    with _manual_synthetic(record) as src:
        board = src._board
        for _ in range(3):
            _acquire_at_least(src, 25)
        board.stop_stream()  # the device goes silent ...
        src.acquire()  # ... after the samples it already sent
        k = src.n_samples
        time.sleep(silence)  # the silence being simulated, not a synchronisation
        board.start_stream(450_000)
        _acquire_at_least(src, 25)
        arrived = src._pylsl.local_clock()
        newest = src.buffer.latest(1).timestamps[0]
        _acquire_at_least(src, 10)
    ts = src.buffer.since(0).timestamps
    # how long the device really was silent, from BrainFlow's own arrival stamps
    measured = host[k] - host[k - 1] - 1 / SFREQ
    assert len(src.gaps) == 1, src.gaps
    gap = src.gaps[0]
    assert gap.reason == reason
    # one jump, between the last sample before the silence and the first one after it
    assert list(_jumps(ts)) == [k - 1]
    assert gap.start == pytest.approx(ts[k - 1] + 1 / SFREQ, abs=1e-9)
    assert gap.start + gap.duration == pytest.approx(ts[k], abs=1e-9)
    assert gap.duration == pytest.approx(measured, abs=0.04)
    assert gap.samples_missing == round(gap.duration * SFREQ)
    if reason == "dropped packets":  # the counter gives the exact number
        assert gap.samples_missing == round(measured * SFREQ)
    # the chunk after the silence is stamped at its arrival, not inside the silence
    assert arrived - newest == pytest.approx(0, abs=0.04)


def test_late_chunk_with_continuous_counter_is_not_a_gap():
    held = {"rows": None, "armed": False}

    def deliver_late(raw):
        # a dongle that holds back 0.2 s of samples and sends them with the next chunk
        if held["rows"] is not None:
            raw, held["rows"] = np.concatenate([held["rows"], raw], axis=1), None
        elif held["armed"] and raw.shape[1] > 60:
            held["armed"] = False
            raw, held["rows"] = raw[:, :-50], raw[:, -50:]
        return raw

    with _manual_synthetic(deliver_late) as src:
        for _ in range(3):
            _acquire_at_least(src, 25)
        held["armed"] = True
        _acquire_at_least(src, 65)
        _acquire_at_least(src, 10)
        _acquire_at_least(src, 10)
    assert src.gaps == []
    np.testing.assert_allclose(np.diff(src.buffer.since(0).timestamps), 1 / SFREQ, atol=1e-9)


def test_a_second_source_on_an_open_board_leaves_the_first_streaming():
    """The wizard on "synthetic" beside the main window: the second connect fails (BrainFlow
    allows one session per board), and its BoardShim, once garbage-collected, released the first
    source's board (lost, reconnect, a gap) through BoardShim.__del__."""
    import gc

    from bci_app.errors import SourceError

    first = BrainFlowSource("synthetic")
    first.connect(timeout=5)
    try:
        wait_until(lambda: first.n_samples > 50, timeout=5)
        second = BrainFlowSource("synthetic")
        with pytest.raises(SourceError, match="already open in this program"):
            second.connect(timeout=5)
        del second
        gc.collect()  # the failed attempt's BoardShim is collected
        n0 = first.n_samples
        wait_until(lambda: first.n_samples > n0 + 250, timeout=5)  # > 1 s of signal more
        states = [s for _, s, _ in first.state_history]
        assert states == [SourceState.CONNECTING, SourceState.STREAMING], states
        assert first.gaps == []
    finally:
        first.disconnect()
