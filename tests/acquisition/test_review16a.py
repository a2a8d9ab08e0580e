"""Review 16a: BrainFlow markers, the playback board's end of file and its file checks."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.base import SourceState
from acquisition.brainflow_source import BrainFlowSource, _brainflow
from bci_app.errors import ConfigError, DataFileError
from tests.helpers.processes import wait_until

SFREQ = 250.0


def _write_synthetic_csv(path, n: int, *, rate: float = SFREQ,
                         markers: dict[int, float] | None = None):
    """A BrainFlow CSV of the synthetic board's layout (32 rows) written by DataFilter:
    package counter, EEG ramps, timestamps ``rate`` apart, marker values at given samples."""
    from brainflow.data_filter import DataFilter

    bs = _brainflow()
    table = np.zeros((bs.BoardShim.get_num_rows(-1), n))
    table[bs.BoardShim.get_package_num_channel(-1)] = np.arange(n) % 256
    for k, row in enumerate(bs.BoardShim.get_eeg_channels(-1)):
        table[row] = np.arange(n) + 1000.0 * k  # microvolts
    table[bs.BoardShim.get_timestamp_channel(-1)] = 1.7e9 + np.arange(n) / rate
    for i, value in (markers or {}).items():
        table[bs.BoardShim.get_marker_channel(-1), i] = value
    DataFilter.write_file(table, str(path), "w")
    return table


def test_insert_marker_comes_back_as_a_marker_at_its_sample():
    """insert_marker() wrote into the board's marker row, which _pull dropped with every
    non-EEG row: the marker was never in source.markers, so never recorded."""
    src = BrainFlowSource("synthetic")
    src.connect(timeout=5, acquisition=False)
    try:
        wait_until(lambda: src.acquire() > 0 or src.n_samples > 0, 5, what="first samples")
        src.insert_marker(3.0)
        wait_until(lambda: src.acquire() >= 0 and len(src.markers) > 0, 5, what="marker")
        chunk = src.buffer.since(0)
    finally:
        src.disconnect()
    (m,) = src.markers.all()
    assert (m.label, m.source, m.extra["value"]) == ("3", "board", 3.0)
    assert m.timestamp in set(chunk.timestamps.tolist())  # the timestamp of its own sample


def test_playback_board_plays_its_file_once_with_its_markers(tmp_path):
    """At the end of the file the playback board went silent: stalled, lost, then (reconnect is
    on by default) 'reconnected' and played the file again after a made-up reconnection gap,
    over and over. Its marker row was dropped too."""
    f = tmp_path / "session.csv"
    n = 120  # 0.48 s
    _write_synthetic_csv(f, n, markers={40: 1.0, 100: 2.0})
    src = BrainFlowSource("playback", file=str(f), master_board="synthetic",
                          stall_timeout=0.2, lost_timeout=0.3)
    assert src.reconnect  # the default
    for _ in range(2):  # the board is released at the end: connect() plays the file again
        src.connect(timeout=5)
        try:
            wait_until(lambda: src.state == SourceState.STOPPED, 5, what="end of file")
            assert src.state_history[-1][2] == "end of file"
            got = src.buffer.since(0)
        finally:
            src.disconnect()
        assert got.n_samples == n and src.gaps == []
        assert got.data[:, 0] == pytest.approx(np.arange(n) * 1e-6)
        states = [s for _, s, _ in src.state_history]
        assert SourceState.LOST not in states and SourceState.RECONNECTING not in states
        labels = [(m.label, m.timestamp) for m in src.markers.all()]
        assert labels[-2:] == [("1", got.timestamps[40]), ("2", got.timestamps[100])]
    # a recording killed mid-write: BrainFlow skips the cut last line, the end is still found
    f.write_bytes(f.read_bytes()[:-60])
    src = BrainFlowSource("playback", file=str(f), master_board="synthetic",
                          stall_timeout=0.2, lost_timeout=0.3)
    with src.connect(timeout=5):
        wait_until(lambda: src.state == SourceState.STOPPED, 5, what="end of a cut file")
        assert src.n_samples == n - 1 and src.gaps == []


def test_playback_board_refuses_a_file_it_cannot_play(tmp_path, data_dir):
    """A missing file was BrainFlow's 'INVALID_ARGUMENTS_ERROR:13 unable to prepare streaming
    session'; an OpenBCI GUI file or a file of another board connected and streamed nothing
    (stalled, lost) or streamed at another rate than its timestamps, without an error."""
    with pytest.raises(DataFileError, match=r"missing\.csv' cannot be read.*No such file"):
        BrainFlowSource("playback", file=str(tmp_path / "missing.csv"),
                        master_board="synthetic").connect(timeout=2)
    gui = data_dir / "openbci-gui-sample" / "OpenBCI_GUI-v6-blinks-jawClench-alpha.txt"
    with pytest.raises(DataFileError, match="is not a BrainFlow CSV.*ReplaySource"):
        BrainFlowSource("playback", file=str(gui), master_board="cyton").connect(timeout=2)
    f = tmp_path / "synthetic.csv"
    _write_synthetic_csv(f, 600)  # 2.4 s at 250 Hz, 32 rows
    with pytest.raises(ConfigError, match="32 values per sample, but board CYTON_BOARD "
                                          "writes 24.*brainflow:playback:BOARD:PATH"):
        BrainFlowSource("playback", file=str(f), master_board="cyton").connect(timeout=2)
    with pytest.raises(ConfigError, match="recorded at 250 Hz .* CYTON_DAISY_BOARD runs at 125"):
        BrainFlowSource("playback", file=str(f), master_board="cyton-daisy").connect(timeout=2)
    src = BrainFlowSource("playback", file=str(f), master_board="synthetic")
    src.connect(timeout=2)  # the right board plays it
    src.disconnect()
    assert src.state == SourceState.STOPPED
    # a pause inside a file (stop_stream / start_stream, or a session appended) is no other rate
    table = _write_synthetic_csv(f, 500)
    table[bs_timestamp_row(), 250:] += 5.0
    from brainflow.data_filter import DataFilter

    DataFilter.write_file(table, str(f), "w")
    with BrainFlowSource("playback", file=str(f), master_board="synthetic").connect(timeout=2):
        pass  # (was: "recorded at 51 Hz ... with another board")


def bs_timestamp_row() -> int:
    return _brainflow().BoardShim.get_timestamp_channel(-1)


def test_playback_board_ends_a_file_with_blank_lines(tmp_path):
    """The sample count included blank lines, which BrainFlow skips: the end of the file was
    never reached, and the board was 'reconnected' and played the file again, for ever."""
    f = tmp_path / "blank.csv"
    n = 100
    _write_synthetic_csv(f, n, markers={60: 5.0})
    lines = f.read_bytes().split(b"\n")
    f.write_bytes(b"\n".join(lines[:50] + [b""] + lines[50:]) + b"\n\n")
    src = BrainFlowSource("playback", file=str(f), master_board="synthetic",
                          stall_timeout=0.2, lost_timeout=0.3)
    with src.connect(timeout=5):
        wait_until(lambda: src.state == SourceState.STOPPED, 5, what="end of file")
        got = src.buffer.since(0)
    assert got.n_samples == n and src.gaps == [] and src.duration == pytest.approx(n / SFREQ)
    assert [(m.label, m.timestamp) for m in src.markers.all()] == [("5", got.timestamps[60])]
