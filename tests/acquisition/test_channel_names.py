"""Electrode names for BrainFlow boards: BrainFlow names a Cyton's 8 channels Fp1, Fp2, C3, C4,
P7, P8, O1, O2 whatever the cap, and decoders, recordings and the calibration find channels by
name. ``brainflow:BOARD:PORT?channels=...`` (and ``channel_names=``) gives each channel its
electrode. Real boards: BrainFlow's synthetic board, and its playback board replaying a file in
the Cyton's layout (an 8-channel OpenBCI board without the serial port)."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.brainflow_source import BrainFlowSource, _brainflow
from bci_app.errors import ConfigError
from bci_app.sources import make_source
from tests.helpers.processes import wait_until

NAMES16 = "C3,Cz,C4,FC3,FC4,CP3,CP4,Pz,F3,F4,P3,P4,O1,O2,T7,T8"
CYTON8 = ["FC3", "C3", "CP3", "Cz", "FC4", "C4", "CP4", "Pz"]


def test_the_spec_names_the_synthetic_boards_channels():
    src = make_source(f"synthetic?channels={NAMES16}")
    with src.connect(timeout=5):
        assert src.info.ch_names == tuple(NAMES16.split(","))
        wait_until(lambda: src.n_samples > 0, 5, what="first samples")


def _cyton_file(path, n: int = 2000) -> None:
    """A BrainFlow CSV in the Cyton's row layout: 8 EEG rows of 10 Hz sines (µV), a package
    counter, a timestamp row."""
    from brainflow.data_filter import DataFilter

    bs = _brainflow()
    cyton = bs.BoardIds.CYTON_BOARD.value
    data = np.zeros((bs.BoardShim.get_num_rows(cyton), n))
    t = np.arange(n) / 250.0
    for k, row in enumerate(bs.BoardShim.get_eeg_channels(cyton)):
        data[row] = 20.0 * (k + 1) * np.sin(2 * np.pi * 10 * t)
    data[bs.BoardShim.get_package_num_channel(cyton)] = np.arange(n) % 256
    data[bs.BoardShim.get_timestamp_channel(cyton)] = 1.7e9 + t
    DataFilter.write_file(data, str(path), "w")


def test_an_8_channel_cyton_gets_the_electrode_names_and_the_calibration_uses_them(tmp_path):
    from bci_app.commands.calibrate import check_pretrained_channels, pretraining_channels
    from bci_app.errors import StreamMismatchError
    from decoders.bundle import load_bundle
    from tests.calibration.test_channel_check import PRETRAINED_CSP

    f = tmp_path / "cyton.csv"
    _cyton_file(f)
    default = BrainFlowSource("playback", file=str(f), master_board="cyton", reconnect=False)
    with default.connect(timeout=5):
        assert default.info.ch_names == ("Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2")
    src = BrainFlowSource("playback", file=str(f), master_board="cyton", reconnect=False,
                          channel_names=",".join(CYTON8))
    with src.connect(timeout=5):
        assert src.info.ch_names == tuple(CYTON8) and src.info.sfreq == 250
        wait_until(lambda: src.n_samples >= 500, 10, what="samples")
        got = src.buffer.since(0).data
    # the names follow the board's channel order: channel k carries amplitude 20 (k + 1) µV
    amp = np.abs(got[:500]).max(axis=0) * 1e6
    np.testing.assert_allclose(amp, 20.0 * np.arange(1, 9), rtol=0.01)
    # the shipped 21-channel bundle: refused, and the advised pretraining uses these 8 names
    with pytest.raises(StreamMismatchError, match="lacks 14 of them"):
        check_pretrained_channels(load_bundle(PRETRAINED_CSP), src.info.ch_names)
    assert sorted(pretraining_channels(src.info.ch_names)) == sorted(CYTON8)


@pytest.mark.parametrize("spec, match", [
    ("synthetic?channels=C3,C4", "streams 16 EEG channels, but 2 names"),
    ("synthetic?channels=C3,C3,Cz", "C3 repeated"),
    ("synthetic?channels=C3,,Cz", "non-empty"),
    ("synthetic?names=C3", "the one option is channels="),
    ("brainflow:cyton:/dev/ttyUSB0?channels=C3,C4", "streams 8 EEG channels, but 2 names"),
])
def test_wrong_channel_names_are_clear_errors_and_leave_the_board_free(spec, match):
    with pytest.raises(ConfigError, match=match):
        make_source(spec).connect(timeout=3)
    other = make_source("synthetic")  # the count is checked before the board is prepared
    with other.connect(timeout=5):
        assert other.connected


def test_an_lsl_stream_without_labels_takes_the_names_from_the_spec(stream_name, tmp_path):
    """OpenBCI GUI's LSL output (and many amplifiers) send no channel labels: named by the
    spec, a real LSL outlet on loopback is a source the calibration can match by name."""
    from acquisition.lsl_env import import_pylsl

    pylsl = import_pylsl()
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(stream_name, "EEG", 8, 250, "float32",
                                                 stream_name))
    plain = make_source(f"lsl:{stream_name}")
    with plain.connect(timeout=10):
        unnamed = plain.info.ch_names
    assert not set(unnamed) & set(CYTON8)
    src = make_source(f"lsl:{stream_name}?channels={','.join(CYTON8)}")
    src.connect(timeout=10, acquisition=False)
    try:
        assert src.info.ch_names == tuple(CYTON8)
        assert src.info.metadata["device_ch_names"] == list(unnamed)
        t0 = pylsl.local_clock()
        outlet.push_chunk([[float(k) for k in range(8)]] * 20, list(t0 + np.arange(20) / 250))
        wait_until(lambda: src.acquire() >= 0 and src.n_samples >= 20, 5, what="20 samples")
        assert src.buffer.since(0).n_samples == 20
    finally:
        src.disconnect()
    with pytest.raises(ConfigError, match="has 8 channels .* but 3 names"):
        make_source(f"lsl:{stream_name}?channels=C3,Cz,C4").connect(timeout=10)
    del outlet


def test_a_replayed_file_takes_the_names_from_the_spec(data_dir):
    """file:PATH?channels=... renames a recording's channels (an OpenBCI GUI file: its EXG
    channels are named by the GUI, not by electrode); a path is otherwise left whole."""
    path = data_dir / "openbci-gui-sample" / "OpenBCI_GUI-v6-blinks-jawClench-alpha.txt"
    plain = make_source(f"file:{path}", speed="max")
    with plain.connect(timeout=10):
        n = plain.info.n_channels
    names = [f"E{i}" for i in range(n)]
    src = make_source(f"file:{path}?channels={','.join(names)}", speed="max")
    with src.connect(timeout=10):
        assert src.info.ch_names == tuple(names)
