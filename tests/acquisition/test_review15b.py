"""Review 15b of the LSL source: a stream that describes no channels, as OpenBCI GUI publishes
its EEG (``obci_eeg1``: type EEG, no ``<desc><channels>``, the board's packet counter in column
0). Real OpenBCI Cyton+Daisy samples (BCI4ALS recording) sent through a real pylsl outlet on
loopback; each test fails on the code before its fix, which took the counter for an EEG channel
in microvolts (scaled to volts, drawn, checked and recorded as EEG) without a word."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

from acquisition.files import read_file
from acquisition.lsl_env import import_pylsl
from acquisition.lsl_source import LSLSource
from acquisition.recorder import Recorder
from bci_app.recording import load_recording
from tests.helpers.processes import wait_until

FS = 125.0


@pytest.fixture(scope="module")
def obci_samples(data_dir):
    """The first 1500 samples (12 s) of the BCI4ALS ``obci_eeg1`` stream as OpenBCI GUI sent
    them: (1500, 16) float32, column 0 the packet counter (0-254, step 2), 1-15 EEG in µV."""
    import pyxdf

    path = data_dir / "bci4als-openbci-mi-xdf" / "Sub2011001_EEG.xdf"
    streams, _ = pyxdf.load_xdf(str(path), select_streams=[{"type": "EEG"}])
    x = np.asarray(streams[0]["time_series"], dtype=np.float32)[:1500]
    assert x.shape == (1500, 16) and set(np.diff(x[:, 0]) % 256) == {2}
    return x


class _Device:
    """A stream with no channel description, pushing ``samples`` in chunks of 5 on a
    monotonic schedule from its own thread (the device is on before bci_app connects)."""

    def __init__(self, name, samples):
        pylsl = import_pylsl()
        info = pylsl.StreamInfo(name, "EEG", samples.shape[1], FS, pylsl.cf_float32, name)
        self.outlet = pylsl.StreamOutlet(info)
        self.samples = samples
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        target = time.monotonic()
        for k in range(0, len(self.samples), 5):
            if self._stop.is_set():
                return
            self.outlet.push_chunk(self.samples[k:k + 5].tolist())
            target += 5 / FS
            self._stop.wait(max(0.0, target - time.monotonic()))

    def close(self):
        self._stop.set()
        self._thread.join(5)


def _matching_rows(sent, got):
    """Row of ``sent`` where the received block starts (every received sample is the next sent
    one: nothing lost, nothing repeated), compared on the EEG columns in µV."""
    start = int(np.flatnonzero(np.all(sent[:, 1:] == np.float32(got[0, 1:] * 1e6), axis=1))[0])
    return start


def test_the_packet_counter_of_an_undescribed_openbci_stream_is_not_eeg(
        stream_name, obci_samples, tmp_path, caplog):
    """Connected while the board streams: the counter column is found in the first samples
    (whole numbers 0-255 rising by a constant step, the rule the XDF reader applies to the same
    stream in a file), named ``counter``, typed misc and kept as counts; the 15 EEG channels are
    EEG in volts. The samples read to find it are delivered (none lost), a warning says what was
    assumed and names the fix, and a recording keeps the counter as a misc channel."""
    device = _Device(stream_name, obci_samples)
    src = LSLSource(stream_name, buffer_seconds=30)
    path = tmp_path / "obci.xdf"
    try:
        with caplog.at_level(logging.WARNING, logger="acquisition.lsl_source"):
            src.connect(timeout=10)
        t_connected = import_pylsl().local_clock()
        info = src.info
        assert info.ch_names[0] == "counter" and info.ch_types[0] == "misc"
        assert info.units[0] == "n/a"
        assert info.ch_types[1:] == ("eeg",) * 15 and info.units[1:] == ("V",) * 15
        assert info.metadata["counter_channels"] == ["counter"]
        warning = " ".join(r.getMessage() for r in caplog.records)
        assert f"LSL {stream_name} describes no channels" in warning
        assert "channel 1 holds a packet counter" in warning
        assert "An accelerometer or other aux channel" in warning
        assert f"lsl:{stream_name}?channels=counter," in warning
        rec = Recorder(path, poll_interval=0.05, history=True)
        rec.add_source(src)
        rec.start()
        wait_until(lambda: src.n_samples >= 500, 15, what="500 samples")
        rec.stop()
    finally:
        src.disconnect()
        device.close()
    got = src.buffer.since(0)
    # the samples read while connecting (>= 128, 1 s at 125 Hz) are in the buffer, first
    assert t_connected - got.timestamps[0] > 120 / FS
    start = _matching_rows(obci_samples, got.data)
    sent = obci_samples[start:start + got.n_samples].astype(np.float64)
    np.testing.assert_array_equal(got.data[:, 0], sent[:, 0])  # counts, not µV -> V
    np.testing.assert_allclose(got.data[:, 1:], sent[:, 1:] * 1e-6, rtol=1e-12)
    back = read_file(path)
    assert back.info.ch_names[0] == "counter" and back.info.ch_types[0] == "misc"
    np.testing.assert_array_equal(back.data[:got.n_samples, 0], sent[:, 0])
    assert load_recording(path).get_channel_types()[:2] == ["misc", "eeg"]


def test_an_undescribed_stream_that_sends_nothing_at_connect_warns_and_names_the_fix(
        stream_name, caplog):
    """No sample came while connecting, so a counter cannot be told from EEG: every channel is
    taken as EEG in microvolts (as before), and a warning says so and what to do. The old code
    said nothing (an INFO line about microvolts only)."""
    pylsl = import_pylsl()
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(stream_name, "EEG", 16, FS, pylsl.cf_float32,
                                                 stream_name))
    src = LSLSource(stream_name)
    try:
        with caplog.at_level(logging.WARNING, logger="acquisition.lsl_source"):
            t0 = time.monotonic()
            src.connect(timeout=10, acquisition=False)
            waited = time.monotonic() - t0
        warning = " ".join(r.getMessage() for r in caplog.records)
        assert "too few (< 100) to tell a packet counter from EEG" in warning
        assert "Start the device's stream before connecting" in warning
        assert "?channels=" in warning
        assert src.info.ch_types == ("eeg",) * 16 and src.info.ch_names[0] == "Ch1"
        assert src.info.metadata["counter_checked"] is False
        assert waited < 10
    finally:
        src.disconnect()
        del outlet
