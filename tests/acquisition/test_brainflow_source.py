"""BrainFlowSource with BrainFlow's synthetic and playback-file boards (no hardware)."""

from __future__ import annotations

import time

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
