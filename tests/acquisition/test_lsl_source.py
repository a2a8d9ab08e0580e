"""LSLSource with a real LSL outlet in another process, on loopback."""

from __future__ import annotations

import time

import numpy as np
import pytest

from acquisition.base import SourceState
from acquisition.lsl_env import import_pylsl
from acquisition.lsl_source import LSLMarkerInlet, LSLSource, list_lsl_streams
from acquisition.markers import GAP_LABEL, MarkerLog
from bci_app.errors import ConfigError, StreamNotFoundError
from tests.helpers.processes import start_outlet, stop_process, wait_until


def test_receives_every_sample_once_in_order_64ch_1khz(stream_name):
    proc = start_outlet(stream_name, channels=64, rate=1000, duration=5)
    try:
        src = LSLSource(stream_name, buffer_seconds=20)
        with src.connect(timeout=10):
            assert src.info.n_channels == 64 and src.info.sfreq == 1000
            assert src.info.ch_names[0] == "counter" and src.info.ch_names[1] == "EEG001"
            wait_until(lambda: src.n_samples >= 5_000, 30, what="5 000 samples")
            time.sleep(0.2)  # anything extra (duplicates) would arrive now
            chunk = src.buffer.since(0)
        counter = chunk.data[:, 0]
        assert chunk.lost == 0
        assert src.n_samples == 5_000
        np.testing.assert_array_equal(counter, np.arange(5_000))
        assert np.all(np.diff(chunk.timestamps) > 0)
        assert src.gaps == [] and src.samples_missing == 0
        # EEG channels announced in microvolts arrive in volts (the outlet sends 10 uV sines)
        assert 0.9e-5 < np.abs(chunk.data[:, 1:]).max() <= 1.0e-5 + 1e-9
        span = chunk.timestamps[-1] - chunk.timestamps[0]
        assert span == pytest.approx(4.999, abs=0.05)
    finally:
        stop_process(proc)


def test_killed_outlet_goes_stalled_then_lost_and_reconnects_with_gap(stream_name):
    pylsl = import_pylsl()
    proc = start_outlet(stream_name, channels=4, rate=250, duration=0)
    src = LSLSource(stream_name)
    try:
        src.connect(timeout=10)
        wait_until(lambda: src.n_samples >= 250, 10, what="first second of data")
        last_before = src.buffer.latest(1)
        proc.kill()
        t_kill = time.monotonic()
        t_kill_lsl = pylsl.local_clock()
        proc.wait(5)
        wait_until(lambda: src.state in (SourceState.LOST, SourceState.RECONNECTING), 3,
                   what="state lost")
        states = [s for _, s, _ in src.state_history]
        assert SourceState.STALLED in states and SourceState.LOST in states
        assert states.index(SourceState.STALLED) < states.index(SourceState.LOST)
        t_lost = next(t for t, s, _ in src.state_history if s == SourceState.LOST)
        assert t_lost - t_kill < 2.0
        n_before = src.n_samples
        time.sleep(0.3)  # the device stays away a little longer
        counter_before = int(last_before.data[-1, 0])
        proc = start_outlet(stream_name, channels=4, rate=250, duration=0,
                            start=counter_before + 100_000)
        wait_until(lambda: src.n_samples > n_before + 250, 15, what="data after reconnection")
        assert src.state == SourceState.STREAMING
        assert len(src.gaps) == 1
        gap = src.gaps[0]
        assert gap.reason == "reconnect"
        around = src.buffer.since(n_before - 1)  # last sample before the outage, then after
        outage = around.timestamps[1] - around.timestamps[0]
        assert gap.duration == pytest.approx(outage - 1 / 250, abs=1e-6)
        assert outage > pylsl.local_clock() - t_kill_lsl - 20  # sanity: a real, bounded outage
        assert gap.duration > 0.5
        assert gap.samples_missing == round(outage * 250) - 1
        gap_markers = [m for m in src.markers.all() if m.label == GAP_LABEL]
        assert len(gap_markers) == 1 and gap_markers[0].duration == pytest.approx(gap.duration)
        # nothing was shifted: data after the gap starts with the new outlet's counter values
        after = src.buffer.since(n_before)
        assert after.data[0, 0] >= counter_before + 100_000
    finally:
        src.disconnect()
        stop_process(proc)


def test_stream_comes_back_with_other_layout_is_refused(stream_name):
    proc = start_outlet(stream_name, channels=4, rate=250, duration=0)
    src = LSLSource(stream_name)
    try:
        src.connect(timeout=10)
        wait_until(lambda: src.n_samples >= 100, 10, what="data")
        proc.kill()
        proc.wait(5)
        wait_until(lambda: src.state == SourceState.RECONNECTING, 4, what="reconnecting")
        n_before = src.n_samples
        proc = start_outlet(stream_name, channels=6, rate=250, duration=0)
        wait_until(lambda: "not the stream this session started with" in src.last_error, 15,
                   what="mismatch error")
        assert "channels changed from 4" in src.last_error
        assert src.state == SourceState.RECONNECTING
        assert src.n_samples == n_before  # old data kept, nothing of the new layout mixed in
        assert src.info.n_channels == 4
    finally:
        src.disconnect()
        stop_process(proc)


def test_unknown_name_is_a_clear_error_within_timeout():
    src = LSLSource("no-such-stream-anywhere")
    t0 = time.monotonic()
    with pytest.raises(StreamNotFoundError, match="No LSL stream matching name='no-such-stream-anywhere'"):
        src.connect(timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert src.state == SourceState.STOPPED


def test_needs_a_query():
    with pytest.raises(ConfigError, match="needs a stream name"):
        LSLSource()


def test_marker_inlet_reads_string_markers(stream_name):
    pylsl = import_pylsl()
    info = pylsl.StreamInfo(stream_name, "Markers", 1, 0, pylsl.cf_string, f"{stream_name}-m")
    outlet = pylsl.StreamOutlet(info)
    log = MarkerLog()
    inlet = LSLMarkerInlet(log, stream_name)
    with inlet.connect(timeout=5):
        outlet.wait_for_consumers(5)
        stamps = []
        for label in ("left", "right", "rest"):
            t = pylsl.local_clock()
            outlet.push_sample([label], t)
            stamps.append(t)
        wait_until(lambda: len(log) == 3, 5, what="3 markers")
    got = log.all()
    assert [m.label for m in got] == ["left", "right", "rest"]
    np.testing.assert_allclose([m.timestamp for m in got], stamps, atol=1e-3)
    assert all(m.source == f"lsl:{stream_name}" for m in got)


def test_streams_are_visible_on_loopback_only_config(stream_name):
    import os

    from acquisition.lsl_env import MACHINE_CFG, lsl_scope

    assert os.environ["LSLAPICFG"] == str(MACHINE_CFG)
    assert lsl_scope() == "machine"
    text = MACHINE_CFG.read_text()
    assert "ResolveScope = machine" in text and "127.0.0.1" in text
    pylsl = import_pylsl()
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(stream_name, "EEG", 2, 100, "float32", "x"))
    found = wait_until(lambda: any(s["name"] == stream_name for s in list_lsl_streams(0.5)), 10,
                       what="own stream visible")
    assert found < 10
    del outlet


def _outlet(pylsl, name, fmt, n_ch=2, rate=250.0, unit="microvolts"):
    info = pylsl.StreamInfo(name, "EEG", n_ch, rate, fmt, name)
    chans = info.desc().append_child("channels")
    for i in range(n_ch):
        c = chans.append_child("channel")
        c.append_child_value("label", f"C{i}")
        c.append_child_value("unit", unit)
        c.append_child_value("type", "EEG")
    return pylsl.StreamOutlet(info)


@pytest.mark.parametrize("fmt", ["int16", "int32", "float32"])
def test_integer_and_float_streams_arrive_as_their_values(stream_name, fmt):
    pylsl = import_pylsl()
    out = _outlet(pylsl, stream_name, getattr(pylsl, f"cf_{fmt}"))
    src = LSLSource(stream_name)
    src.connect(timeout=10, acquisition=False)
    try:
        t0 = pylsl.local_clock()
        values = np.c_[np.arange(50), -np.arange(50)]
        out.push_chunk(values.astype(np.float64).tolist(), list(t0 + np.arange(50) / 250.0))
        wait_until(lambda: src.acquire() >= 0 and src.n_samples >= 50, 5, what="50 samples")
        got = src.buffer.since(0)
        np.testing.assert_allclose(got.data * 1e6, values, atol=1e-6)  # microvolts -> volts
    finally:
        src.disconnect()


def test_nanovolt_channels_are_scaled_to_volts(stream_name):
    pylsl = import_pylsl()
    out = _outlet(pylsl, stream_name, pylsl.cf_double64, unit="nanovolts")
    src = LSLSource(stream_name)
    src.connect(timeout=10, acquisition=False)
    try:
        out.push_chunk([[50_000.0, -50_000.0]] * 10, list(pylsl.local_clock() + np.arange(10) / 250))
        wait_until(lambda: src.acquire() >= 0 and src.n_samples >= 10, 5, what="10 samples")
        np.testing.assert_allclose(src.buffer.since(0).data, [[50e-6, -50e-6]] * 10)
        assert src.info.metadata["units_assumed"] is False
    finally:
        src.disconnect()


def test_a_silent_device_is_a_gap_and_no_timestamp_moves(stream_name):
    """0.5 s with no samples sent: one gap of 125 samples where it was, every timestamp as sent
    (liblsl's dejittering would smear the hole over the next seconds and hide it)."""
    pylsl = import_pylsl()
    out = _outlet(pylsl, stream_name, pylsl.cf_float32)
    src = LSLSource(stream_name, buffer_seconds=30)
    src.connect(timeout=10)
    try:
        t0 = pylsl.local_clock() + 0.05
        sent = []
        kept = [range(a, a + 10) for a in range(0, 500, 10)] + \
               [range(a, a + 10) for a in range(625, 1125, 10)]
        for k, idx in enumerate(kept):
            if k == 50:
                time.sleep(0.5)  # the device is silent; samples 500..624 are never sent
            ts = list(t0 + np.asarray(idx) / 250.0)
            out.push_chunk([[float(i), 0.0] for i in idx], ts)
            sent.extend(ts)
            time.sleep(10 / 250)
        wait_until(lambda: src.n_samples >= 1000, 10, what="all samples")
        got = src.buffer.since(0)
        np.testing.assert_allclose(got.data[:, 0] * 1e6, np.r_[np.arange(500), np.arange(625, 1125)],
                                   atol=1e-9)
        assert np.abs(got.timestamps - np.asarray(sent)).max() < 1e-3
        assert len(src.gaps) == 1
        gap = src.gaps[0]
        assert gap.samples_missing == 125 and gap.start == pytest.approx(t0 + 500 / 250, abs=1e-3)
    finally:
        src.disconnect()
