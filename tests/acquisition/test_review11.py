"""Acquisition review 11: each test failed on the code before its fix.

Real components only: LSL outlets on loopback (in this process), a real EEGMMIDB recording.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from acquisition.base import SourceState
from acquisition.lsl_env import import_pylsl
from acquisition.lsl_source import LSLSource
from acquisition.markers import GAP_LABEL
from acquisition.replay import ReplaySource
from tests.helpers.processes import wait_until

FS = 250.0


def _outlet(pylsl, name, labels=("C0", "C1"), ch_type="EEG", unit="microvolts"):
    info = pylsl.StreamInfo(name, "EEG", len(labels), FS, pylsl.cf_double64, name)
    chans = info.desc().append_child("channels")
    for label in labels:
        c = chans.append_child("channel")
        c.append_child_value("label", label)
        c.append_child_value("unit", unit)
        c.append_child_value("type", ch_type)
    return pylsl.StreamOutlet(info)


def _push(out, idx, t0):
    idx = np.asarray(idx)
    out.push_chunk([[float(i), 0.0] for i in idx], list(t0 + idx / FS))


# ------------------------------------------------------------------ gaps inside one chunk
def test_a_gap_inside_one_pulled_chunk_is_registered(stream_name):
    """A sender that pushes chunks (or a pull that comes late) hands over the samples before
    and after a hole in one chunk. The hole is a gap all the same: counted, marked, where it
    is (only jumps between chunks were checked: 125 lost samples, no gap, no marker)."""
    pylsl = import_pylsl()
    out = _outlet(pylsl, stream_name)
    src = LSLSource(stream_name)
    src.connect(timeout=10, acquisition=False)
    try:
        t0 = pylsl.local_clock()
        _push(out, np.arange(200), t0)
        wait_until(lambda: src.acquire() >= 0 and src.n_samples >= 200, 5, what="200 samples")
        # one chunk: samples 200..209, then 335..344 (125 samples never sent)
        _push(out, np.r_[np.arange(200, 210), np.arange(335, 345)], t0)
        time.sleep(0.3)  # both halves are in the inlet before the pull
        src.acquire()
        assert src.n_samples == 220
        got = src.buffer.since(0)
        np.testing.assert_allclose(got.timestamps, t0 + got.data[:, 0] * 1e6 / FS, atol=1e-3)
    finally:
        src.disconnect()
    assert len(src.gaps) == 1, src.gaps
    gap = src.gaps[0]
    assert gap.samples_missing == 125 and gap.reason == "dropped"
    assert gap.start == pytest.approx(t0 + 210 / FS, abs=1e-3)
    assert gap.duration == pytest.approx(125 / FS, abs=1e-3)
    assert [m.label for m in src.markers.all()] == [GAP_LABEL]


def test_a_clock_reset_inside_one_pulled_chunk_is_marked(stream_name):
    """A device clock that restarts between two samples of one chunk: the data is kept and the
    jump counted and marked, as between chunks (it was neither)."""
    pylsl = import_pylsl()
    out = _outlet(pylsl, stream_name)
    src = LSLSource(stream_name)
    src.connect(timeout=10, acquisition=False)
    try:
        t0 = pylsl.local_clock()
        _push(out, np.arange(100), t0)
        wait_until(lambda: src.acquire() >= 0 and src.n_samples >= 100, 5, what="100 samples")
        idx = np.arange(100, 120)
        ts = t0 + idx / FS
        ts[10:] -= 100.0  # the clock went back 100 s after sample 109
        out.push_chunk([[float(i), 0.0] for i in idx], list(ts))
        time.sleep(0.3)
        src.acquire()
        assert src.n_samples == 120  # nothing dropped
        got = src.buffer.since(0)
    finally:
        src.disconnect()
    assert src.backward_jumps == 1
    jumps = [m for m in src.markers.all() if m.label == "bci_app/clock_jump"]
    assert len(jumps) == 1
    assert jumps[0].timestamp == pytest.approx(got.timestamps[110], abs=1e-6)
    assert jumps[0].extra["jump"] == pytest.approx(-100.0 + 1 / FS, abs=1e-3)
    assert src.gaps == []


# ------------------------------------------------------------------ readers on other threads
def test_arrival_time_is_safe_while_the_acquisition_thread_writes(eegmmidb_path):
    """DecoderWorker calls arrival_time from its own thread. It iterated over the write record
    while the acquisition thread appended to it: "RuntimeError: deque mutated during
    iteration" (hundreds of times a second here), which broke the worker's step mid-chunk."""
    import mne

    (path,) = mne.datasets.eegbci.load_data(1, [4], path=str(eegmmidb_path), update_path=False)
    src = ReplaySource(path, speed="max", chunk_samples=1, poll_interval=1e-5,
                       buffer_seconds=200)
    errors: list[Exception] = []
    answers = []
    src.connect(timeout=5)
    try:
        wait_until(lambda: src.n_samples > 4200, 10, what="a full record of writes")
        n_start = src.n_samples
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end and src.state == SourceState.STREAMING:
            seq = src.n_samples - 3000  # far back: the lookup walks most of the record
            try:
                answers.append(src.arrival_time(seq))
            except RuntimeError as err:
                errors.append(err)
        assert src.n_samples > n_start + 500  # the writer really ran during the lookups
    finally:
        src.disconnect()
    assert not errors, f"{len(errors)} lookups failed: {errors[0]}"
    assert answers and all(a is not None for a in answers)


# ------------------------------------------------------------------ reconnection layout checks
def _lose_and_bring_back(pylsl, stream_name, src, outlets, second_kwargs):
    """Stream from the one outlet in ``outlets``, destroy it (the inlet sees the stream lost),
    then push from a new outlet built with ``second_kwargs`` until the source refuses it
    (returns that outlet)."""
    first = outlets.pop()  # the only reference: ``del`` destroys the outlet
    for _ in range(50):
        first.push_sample([1.0, 2.0])
        time.sleep(1 / FS)
    wait_until(lambda: src.n_samples > 0, 5, what="data")
    del first
    wait_until(lambda: src.state == SourceState.RECONNECTING, 5, what="reconnecting")
    n_before = src.n_samples
    second = _outlet(pylsl, stream_name, **second_kwargs)

    def pushing_until_refused():
        second.push_sample([1.0, 2.0])
        return "not the stream this session started with" in src.last_error

    wait_until(pushing_until_refused, 8, interval=1 / FS, what="the new stream refused")
    time.sleep(0.3)
    assert src.state == SourceState.RECONNECTING
    assert src.n_samples == n_before  # nothing of the other layout in the buffer
    return second


def test_user_channel_names_do_not_hide_a_device_back_with_other_channels(stream_name):
    """Channel names given by the user replace the device's; a device that came back with
    other channels (same count) was accepted under them (without names it is refused)."""
    pylsl = import_pylsl()
    outlets = [_outlet(pylsl, stream_name, labels=("Fp1", "Fp2"))]
    src = LSLSource(stream_name, channel_names="C3,C4", stall_timeout=0.2, lost_timeout=0.4,
                    reconnect_timeout=0.3)
    src.connect(timeout=10)
    try:
        second = _lose_and_bring_back(pylsl, stream_name, src, outlets, {"labels": ("O1", "O2")})
        assert "Fp1" in src.last_error and "O1" in src.last_error
        assert src.info.ch_names == ("C3", "C4")
        del second
    finally:
        src.disconnect()


def test_a_stream_back_with_channels_of_another_type_is_refused(stream_name):
    """The same labels, but no longer EEG: LSLSource no longer converts them from microvolts,
    so the buffer (labelled volts) got values a million times too large."""
    pylsl = import_pylsl()
    outlets = [_outlet(pylsl, stream_name)]
    src = LSLSource(stream_name, stall_timeout=0.2, lost_timeout=0.4, reconnect_timeout=0.3)
    src.connect(timeout=10)
    try:
        second = _lose_and_bring_back(pylsl, stream_name, src, outlets, {"ch_type": "MISC"})
        assert "types or units changed" in src.last_error and "C0: eeg in V" in src.last_error
        assert np.abs(src.buffer.since(0).data).max() == pytest.approx(2e-6)
        del second
    finally:
        src.disconnect()


# ------------------------------------------------------------------ marker labels
def test_numeric_lsl_markers_are_labelled_as_a_recording_of_them_reads(stream_name):
    """A float32 marker stream (event codes): the live label of 4.0 was "4.0", while read_file
    labels the same marker "4" in a LabRecorder XDF of that stream, so an event mapping
    {"4": ...} matched the recording but never the live session (or bci_app's own recording)."""
    from acquisition.lsl_source import LSLMarkerInlet
    from acquisition.markers import MarkerLog

    pylsl = import_pylsl()
    info = pylsl.StreamInfo(stream_name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_float32,
                            f"{stream_name}-m")
    outlet = pylsl.StreamOutlet(info)
    log = MarkerLog()
    with LSLMarkerInlet(log, stream_name).connect(timeout=5):
        outlet.wait_for_consumers(5)
        for code in (4.0, 2.5, 770.0):
            outlet.push_sample([code])
        wait_until(lambda: len(log) == 3, 5, what="3 markers")
    assert [m.label for m in log.all()] == ["4", "2.5", "770"]


# ------------------------------------------------------------------ dejitter restarts
def test_a_short_gap_soon_after_another_is_a_gap_not_smeared(stream_name):
    """Drop-outs come in clusters. After a gap the dejitterer restarted its jitter estimate at
    the 10 ms prior, so for seconds its break rule was blind to short gaps: 60 ms lost 1 s
    after a 0.5 s gap were smeared over the following samples (timestamps up to 59 ms off)
    and never registered."""
    pylsl = import_pylsl()
    out = _outlet(pylsl, stream_name)
    src = LSLSource(stream_name, buffer_seconds=60)
    src.connect(timeout=10, acquisition=False)
    try:
        t0 = pylsl.local_clock()
        a, b = int(20 * FS), int(21 * FS)  # 0.5 s lost at 20 s, 60 ms lost at 21.5 s
        idx = np.r_[np.arange(a), np.arange(a + 125, b + 125), np.arange(b + 140, b + 640)]
        for k in range(0, len(idx), 10):
            _push(out, idx[k:k + 10], t0)
        wait_until(lambda: src.acquire() >= 0 and src.n_samples >= len(idx), 10,
                   what="all samples")
        got = src.buffer.since(0)
    finally:
        src.disconnect()
    np.testing.assert_allclose(got.data[:, 0] * 1e6, idx, atol=1e-6)
    assert np.abs(got.timestamps - (t0 + idx / FS)).max() < 1e-3
    assert [g.samples_missing for g in src.gaps] == [125, 15]
    assert src.gaps[1].start == pytest.approx(t0 + (b + 125) / FS, abs=1e-3)


def test_an_unreadable_file_is_a_data_file_error(tmp_path, data_dir):
    """A file without read permission raised a bare PermissionError (a traceback in the CLI)."""
    import os
    import shutil

    import pytest

    from acquisition.files import read_file
    from bci_app.errors import DataFileError

    if os.geteuid() == 0:
        pytest.skip("root reads files without read permission")
    src = next((data_dir / "eegmmidb").rglob("S001R04.edf"))
    path = tmp_path / "locked.edf"
    shutil.copy(src, path)
    path.chmod(0)
    with pytest.raises(DataFileError, match="permission denied. Fix: give your user read"):
        read_file(path)
