"""ReplaySource: a file played as a live source, threaded and in manual mode."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pytest

from acquisition.base import SourceState
from acquisition.files import read_file
from acquisition.lsl_env import import_pylsl
from acquisition.replay import LOOP_LABEL, SEEK_LABEL, ReplaySource
from bci_app.errors import ConfigError, DataFileError
from tests.helpers.processes import wait_until

BDF_STIM = "mne-io-test-files/bdf/test_bdf_stim_channel.bdf"  # 4 ch, 500 Hz, 10 s, 9 triggers
BDF_TRIGGER_SAMPLES = [242, 310, 952, 1606, 2249, 2900, 3537, 4162, 4790]


@pytest.fixture(scope="module")
def s001r04(eegmmidb_path):
    import mne

    (path,) = mne.datasets.eegbci.load_data(1, [4], path=str(eegmmidb_path), update_path=False)
    return read_file(path)


@pytest.fixture(scope="module")
def bdf(data_dir):
    return read_file(data_dir / BDF_STIM)


def _file_markers(src):
    return [m for m in src.markers.all() if m.source == "file"]


def _hold(predicate, seconds: float, what: str) -> None:
    """Assert ``predicate`` stays true for ``seconds`` (a bounded negative wait)."""
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        assert predicate(), what
        time.sleep(0.01)


# --------------------------------------------------------------------------- threaded replay
def test_eegmmidb_replay_20x_every_sample_and_marker(s001r04):
    """S001R04 (125 s, 160 Hz) at 20x through the acquisition thread: bit-exact samples, 30
    annotations as markers in order on the sample they belong to, timestamps 1/160 s apart."""
    pylsl = import_pylsl()
    rec = s001r04
    src = ReplaySource(rec, speed=20, buffer_seconds=130)
    t_before = pylsl.local_clock()
    t0 = time.monotonic()
    src.connect(timeout=5)
    t_after = pylsl.local_clock()
    try:
        # A quarter of the way in, the replay runs at about 20x (3200 samples/s).
        wait_until(lambda: src.n_samples >= 5000, timeout=10, what="5000 samples")
        assert 5000 / (20 * 160) * 0.8 < time.monotonic() - t0 < 5.0
        assert src.state == SourceState.STREAMING
        wait_until(lambda: src.state == SourceState.STOPPED, timeout=20, what="end of file")
        elapsed = time.monotonic() - t0
    finally:
        src.disconnect()
    assert src.finished
    assert 125 / 20 * 0.9 <= elapsed < 15.0, f"paced replay took {elapsed:.2f} s"
    assert src.state_history[-1][2] == "end of file"
    assert not any(s == SourceState.LOST for _, s, _ in src.state_history)
    assert src.n_samples == rec.n_samples == 20000
    chunk = src.buffer.latest(20000)
    np.testing.assert_array_equal(chunk.data, rec.data)  # bit for bit
    ts = chunk.timestamps
    assert t_before <= ts[0] <= t_after  # first sample anchored at local_clock() at connect
    np.testing.assert_allclose(np.diff(ts), 1 / 160, atol=1e-9)
    assert src.gaps == [] and src.backward_jumps == 0
    markers = _file_markers(src)
    assert len(markers) == 30 and len(src.markers) == 30
    assert [m.label for m in markers] == [m.label for m in rec.markers]
    for m, fm in zip(markers, rec.markers):
        k = int(round(fm.timestamp * 160))
        assert m.timestamp == pytest.approx(ts[k], abs=1e-6), (fm.label, fm.timestamp)
        assert m.duration == fm.duration
    assert [m.timestamp for m in markers] == sorted(m.timestamp for m in markers)


def test_real_time_pacing(bdf):
    """At 1x, 500 samples take about one second of wall time."""
    src = ReplaySource(bdf, speed=1.0)
    t0 = time.monotonic()
    src.connect()
    try:
        wait_until(lambda: src.n_samples >= 500, timeout=5, what="500 samples")
        elapsed = time.monotonic() - t0  # pacing starts inside connect(), after t0
        assert 0.98 <= elapsed <= 2.5, elapsed
        assert src.n_samples <= 500 + 2 * 10 + int((time.monotonic() - t0) * 500)
        assert src.chunk_samples == 10  # default: 20 ms of signal
        assert src.position == pytest.approx(src.n_samples / 500, abs=0.05)
        assert src.duration == pytest.approx(10.0)
    finally:
        src.disconnect()


def test_pause_is_stalled_not_lost_and_resume_continues(bdf, caplog):
    caplog.set_level(logging.INFO, logger="acquisition")
    src = ReplaySource(bdf, speed=2.0, stall_timeout=0.2, lost_timeout=0.4)
    src.connect()
    try:
        wait_until(lambda: src.n_samples >= 300, timeout=5, what="300 samples")
        src.pause()
        assert src.paused
        wait_until(lambda: src.state == SourceState.STALLED, timeout=3, what="stalled")
        n_paused = src.n_samples
        # Longer than lost_timeout: a paused replay stays stalled, never lost/reconnecting.
        _hold(lambda: src.state == SourceState.STALLED and src.n_samples == n_paused, 0.6,
              "paused replay must stay stalled without new samples")
        pos = src.position
        src.resume()
        wait_until(lambda: src.n_samples > n_paused + 100, timeout=5, what="samples after resume")
        assert src.state == SourceState.STREAMING
        assert src.position > pos
    finally:
        src.disconnect()
    states = [s for _, s, _ in src.state_history]
    assert SourceState.LOST not in states and SourceState.RECONNECTING not in states
    chunk = src.buffer.latest(src.n_samples)
    np.testing.assert_array_equal(chunk.data, bdf.data[: src.n_samples])
    np.testing.assert_allclose(np.diff(chunk.timestamps), 1 / 500, atol=1e-9)  # no gap
    assert src.gaps == []
    # the user paused it: logged, but not as a fault
    paused = [r for r in caplog.records if "(paused)" in r.getMessage()]
    assert paused and all(r.levelno == logging.INFO for r in paused)


def test_seek_while_streaming(s001r04):
    rec = s001r04
    src = ReplaySource(rec, speed=20, buffer_seconds=130)
    src.connect()
    try:
        wait_until(lambda: src.n_samples >= 800, timeout=5, what="800 samples")
        src.seek(100.0)
        wait_until(lambda: src.finished, timeout=10, what="end after seek")
    finally:
        src.disconnect()
    seeks = [m for m in src.markers.all() if m.label == SEEK_LABEL]
    assert len(seeks) == 1 and seeks[0].extra["to_s"] == 100.0
    chunk = src.buffer.latest(src.n_samples)
    k = int(np.flatnonzero(np.abs(chunk.timestamps - seeks[0].timestamp) < 1e-6)[0])
    n_before = k
    np.testing.assert_array_equal(chunk.data[:k], rec.data[:k])
    np.testing.assert_array_equal(chunk.data[k:], rec.data[16000:])  # 100 s * 160 Hz
    np.testing.assert_allclose(np.diff(chunk.timestamps), 1 / 160, atol=1e-9)  # seek is no gap
    assert src.gaps == []
    # markers: those before the seek point up to where it was, then those from 100 s on
    after = [fm for fm in rec.markers if fm.timestamp >= 100.0]
    fmarks = _file_markers(src)
    tail = fmarks[len(fmarks) - len(after):]
    assert [m.label for m in tail] == [fm.label for fm in after]
    for m, fm in zip(tail, after):
        assert m.timestamp == pytest.approx(seeks[0].timestamp + fm.timestamp - 100.0, abs=1e-6)
    before = [fm for fm in rec.markers if fm.timestamp < n_before / 160]
    assert len(fmarks) == len(before) + len(after)


# --------------------------------------------------------------------------- manual mode
def test_manual_max_speed_chunks(s001r04):
    rec = s001r04
    src = ReplaySource(rec, speed="max", chunk_samples=32, buffer_seconds=130)
    src.connect(acquisition=False)
    counts = []
    while not src.finished:
        counts.append(src.acquire())
        assert len(counts) < 1000
    assert counts == [32] * 625  # 20000 / 32
    assert src.state == SourceState.STREAMING
    assert src.acquire() == 0  # the pull after the last sample ends the replay, without error
    assert src.state == SourceState.STOPPED and src.state_history[-1][2] == "end of file"
    assert src.acquire() == 0
    np.testing.assert_array_equal(src.buffer.latest(20000).data, rec.data)
    assert len(_file_markers(src)) == 30
    src.disconnect()
    # connect() again replays from the start (file kept in memory)
    src.connect(acquisition=False)
    assert src.acquire() == 32 and src.position == pytest.approx(32 / 160)
    src.disconnect()


def test_manual_seek_and_markers_replayed(bdf):
    src = ReplaySource(bdf, speed=math.inf, chunk_samples=100)
    src.connect(acquisition=False)
    for _ in range(10):
        src.acquire()
    assert [m.label for m in _file_markers(src)] == ["4", "2", "1"]  # samples 242, 310, 952
    last = src.buffer.latest(1).timestamps[0]
    src.seek(8.0)
    assert src.position == pytest.approx(8.0)
    (seek,) = [m for m in src.markers.all() if m.label == SEEK_LABEL]
    assert seek.timestamp == pytest.approx(last + 1 / 500) and seek.source == "replay"
    assert src.acquire() == 100
    c = src.buffer.latest(100)
    np.testing.assert_array_equal(c.data, bdf.data[4000:4100])
    assert c.timestamps[0] == pytest.approx(last + 1 / 500, abs=1e-9)
    # backwards: the triggers from 0.4 s on come again, on the new time line
    src.seek(0.4)
    n0 = len(_file_markers(src))
    t_seek = [m for m in src.markers.all() if m.label == SEEK_LABEL][-1].timestamp
    while not src.finished:
        src.acquire()
    new = _file_markers(src)[n0:]
    assert [m.label for m in new] == ["4", "2"] + ["1"] * 7  # all triggers are after 0.4 s
    assert [round((m.timestamp - t_seek) * 500) + 200 for m in new] == BDF_TRIGGER_SAMPLES
    assert src.gaps == [] and src.backward_jumps == 0
    with pytest.raises(ConfigError, match="seek"):
        src.seek(-1)
    src.acquire()
    with pytest.raises(RuntimeError, match="finished; connect"):
        src.seek(1.0)
    src.disconnect()


def test_manual_pause(bdf):
    src = ReplaySource(bdf, speed="max", chunk_samples=50)
    src.connect(acquisition=False)
    assert src.acquire() == 50
    src.pause()
    assert src.acquire() == 0 and src.acquire() == 0
    src.resume()
    assert src.acquire() == 50
    np.testing.assert_array_equal(src.buffer.latest(100).data, bdf.data[:100])
    src.disconnect()


def test_loop_wraps_seamlessly(bdf):
    src = ReplaySource(bdf, speed="max", chunk_samples=1000, loop=True, buffer_seconds=30)
    src.connect(acquisition=False)
    for _ in range(12):
        assert src.acquire() == 1000
    assert src.loops == 2 and not src.finished
    c = src.buffer.latest(12000)
    np.testing.assert_array_equal(c.data, np.concatenate([bdf.data, bdf.data, bdf.data[:2000]]))
    np.testing.assert_allclose(np.diff(c.timestamps), 1 / 500, atol=1e-9)
    assert len(_file_markers(src)) == 9 + 9 + 4  # third pass reached samples 242, 310, 952, 1606
    assert [m.label for m in src.markers.all()].count(LOOP_LABEL) == 2
    src.disconnect()


def test_xdf_replay_keeps_file_time_base(data_dir):
    """Timestamps follow the XDF's own LSL times (clock-reset file: a real gap stays a gap)."""
    rec = read_file(data_dir / "xdf-example-files/clock_resets.xdf")
    src = ReplaySource(rec, speed="max", chunk_samples=4000, buffer_seconds=300)
    src.connect(acquisition=False)
    while not src.finished:
        src.acquire()
    c = src.buffer.latest(rec.n_samples)
    np.testing.assert_allclose(c.timestamps - c.timestamps[0], rec.times - rec.times[0], atol=1e-6)
    assert len(src.gaps) >= 1 and max(g.duration for g in src.gaps) > 200  # the file's gap
    assert len(_file_markers(src)) == 175
    src.disconnect()


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("speed", [0, -1, "fast", None])
def test_bad_speed(bdf, speed):
    with pytest.raises(ConfigError, match="speed must be"):
        ReplaySource(bdf, speed=speed)


@pytest.mark.parametrize("chunk", [0, -5, 2.5])
def test_bad_chunk(bdf, chunk):
    with pytest.raises(ConfigError, match="chunk_samples must be a positive integer"):
        ReplaySource(bdf, chunk_samples=chunk)


def test_constructor_does_no_io_and_connect_reports_bad_file(tmp_path):
    src = ReplaySource(tmp_path / "missing.edf")  # no error yet
    assert src.state == SourceState.STOPPED and src.duration == 0.0
    with pytest.raises(DataFileError, match="does not exist"):
        src.connect()
    assert src.state == SourceState.STOPPED and not src.connected
    with pytest.raises(RuntimeError, match="connect"):
        src.seek(1.0)


def test_make_source_file_spec(data_dir):
    from bci_app.sources import make_source

    src = make_source(f"file:{data_dir / BDF_STIM}", speed=4.0)
    assert isinstance(src, ReplaySource) and src.speed == 4.0
    src.connect(acquisition=False)
    assert src.info.source_kind == "replay" and src.info.n_channels == 4
    src.disconnect()
