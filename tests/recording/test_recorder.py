"""Recorder with an in-process source: bit-identical samples, markers, gaps, predictions,
disk full."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pyxdf

from acquisition.markers import GAP_LABEL, MarkerLog
from acquisition.recorder import Recorder, RecorderState, xdf_markers
from acquisition.xdf_writer import scan_xdf
from bci_app.errors import RecordingError

from .conftest import wait_for
from .fakes import FakeSource


def _load(path):
    streams, header = pyxdf.load_xdf(str(path))
    return {s["info"]["name"][0]: s for s in streams}, header


def _markers(streams, name):
    s, d = streams[name], streams[name + "-details"]
    return [
        (t, v[0], json.loads(x[0]))
        for t, v, x in zip(s["time_stamps"], s["time_series"], d["time_series"])
    ]


def _same_as_buffer(stream, buffer):
    """The recorded samples are exactly the buffer's samples (same values, same timestamps)."""
    ts = stream["time_stamps"]
    chunk = buffer.since(max(0, buffer.counter - len(buffer)))
    i0 = int(np.searchsorted(chunk.timestamps, ts[0]))
    n = ts.size
    assert chunk.timestamps[i0] == ts[0]
    assert np.array_equal(chunk.timestamps[i0 : i0 + n], ts)
    assert np.array_equal(chunk.data[i0 : i0 + n], stream["time_series"])
    return i0


def test_round_trip_markers_predictions_meta(tmp_path, fake_source):
    src = fake_source
    path = tmp_path / "s.xdf"
    cues = MarkerLog()
    rec = Recorder(
        path,
        session_meta={"subject": "S7", "model_bundle": "eegnet@abc", "settings": {"window": 2.0}},
        poll_interval=0.05,
    )
    rec.add_source(src)
    rec.add_marker_log(cues, "cues")
    pred = rec.add_stream("predictions", "Predictions", ["left", "right"], fmt="float32")
    states = []
    rec.add_state_callback(lambda r, s, m: states.append(s))
    rec.start()
    wait_for(lambda: rec.stats()["signals"]["fake-eeg"]["samples"] > 25, 2, "samples recorded")
    t_mid = src.buffer.latest(1).timestamps[0]
    src.markers.add(t_mid, "user-mark", source="user")
    cues.add(t_mid + 0.01, "left", 4.0, "protocol", trial=3)
    pred.push([0.25, 0.75], t_mid + 0.02)
    wait_for(lambda: rec.stats()["signals"]["fake-eeg"]["samples"] > 150, 3, "150 samples recorded")
    rec.stop()
    assert states == [RecorderState.RECORDING, RecorderState.STOPPED]
    assert rec.error is None

    streams, header = _load(path)
    eeg = streams["fake-eeg"]
    _same_as_buffer(eeg, src.buffer)
    assert np.all(np.diff(eeg["time_series"][:, 0]) == 1)  # counter: nothing missing/repeated
    info = eeg["info"]
    assert info["channel_format"] == ["double64"] and info["nominal_srate"] == ["250.0"]
    chans = info["desc"][0]["channels"][0]["channel"]
    assert [c["label"][0] for c in chans] == ["counter"] + [f"EEG{i:02d}" for i in range(1, 8)]
    assert chans[1]["unit"] == ["volts"] and chans[1]["type"] == ["EEG"]
    si = json.loads(info["desc"][0]["bci_app"][0]["stream_info"][0])
    assert si["metadata"] == {"device": "fake", "serial": "0001"}
    assert si["source_id"] == src.info.source_id
    assert len(eeg["clock_times"]) >= 2 and set(eeg["clock_values"]) == {0.0}
    assert eeg["footer"]["info"]["sample_count"] == [str(eeg["time_stamps"].size)]

    assert _markers(streams, "fake-eeg-markers") == [(t_mid, "user-mark", {"source": "user"})]
    assert _markers(streams, "cues") == [
        (t_mid + 0.01, "left", {"duration": 4.0, "source": "protocol", "trial": 3})
    ]
    p = streams["predictions"]
    assert p["time_stamps"].tolist() == [t_mid + 0.02]
    assert p["time_series"].tolist() == [[0.25, 0.75]]

    sess = json.loads(header["info"]["session_json"][0])
    assert sess["subject"] == "S7" and sess["model_bundle"] == "eegnet@abc"
    assert sess["settings"] == {"window": 2.0} and sess["app_version"]


def test_source_gap_is_a_marker_and_samples_are_not_shifted(tmp_path, fake_source):
    src = fake_source
    path = tmp_path / "gap.xdf"
    with Recorder(path, poll_interval=0.05) as rec:
        rec.add_source(src)
        wait_for(lambda: src.buffer.counter > 50, 2, "samples")
        src.drop(125)  # 0.5 s of samples never arrive
        wait_for(lambda: len(src.gaps) == 1 and src.buffer.counter > 300, 3, "gap + more data")
    streams, _ = _load(path)
    eeg = streams["fake-eeg"]
    _same_as_buffer(eeg, src.buffer)
    counter = eeg["time_series"][:, 0]
    jumps = np.flatnonzero(np.diff(counter) != 1)
    assert jumps.size == 1 and np.diff(counter)[jumps[0]] == 126
    dt = np.diff(eeg["time_stamps"])[jumps[0]]
    assert dt == pytest.approx(126 / 250)  # the timestamps keep the hole: nothing shifted
    ((t, label, det),) = _markers(streams, "fake-eeg-markers")
    assert label == GAP_LABEL
    assert det["samples_missing"] == 125 and det["duration"] == pytest.approx(0.5)
    assert t == pytest.approx(eeg["time_stamps"][jumps[0]] + 1 / 250)
    # the reader helper others (file replay) use gives the same marker back
    (m,) = xdf_markers(pyxdf.load_xdf(str(path))[0])
    assert (m.timestamp, m.label, m.duration) == (t, GAP_LABEL, det["duration"])
    assert m.extra["samples_missing"] == 125 and m.extra["stream"] == "fake-eeg-markers"


def test_recorder_overrun_is_recorded_as_gap(tmp_path):
    src = FakeSource(buffer_seconds=0.2, rate=1000.0)  # 200-sample buffer
    src.connect(timeout=2.0)
    try:
        rec = Recorder(tmp_path / "o.xdf", poll_interval=1.0)  # too slow for that buffer
        rec.add_source(src)
        rec.start()
        wait_for(lambda: rec.stats()["signals"]["fake-eeg"]["lost"] > 0, 4, "an overrun")
        rec.stop()
    finally:
        src.disconnect()
    streams, _ = _load(rec.path)
    marks = _markers(streams, "fake-eeg-markers")
    gaps = [m for m in marks if m[1] == GAP_LABEL and m[2]["reason"] == "recorder_overrun"]
    assert gaps and gaps[0][2]["samples_missing"] > 0 and gaps[0][2]["source"] == "recorder"
    counter = streams["fake-eeg"]["time_series"][:, 0]
    skipped = counter[0] - rec.stats()["signals"]["fake-eeg"]["first_sample"]
    skipped += np.sum(np.diff(counter) - 1)
    assert (
        skipped
        == sum(g[2]["samples_missing"] for g in gaps)
        == rec.stats()["signals"]["fake-eeg"]["lost"]
    )


def test_source_connected_after_add_and_late_stream(tmp_path):
    src = FakeSource(name="late")
    rec = Recorder(tmp_path / "late.xdf", poll_interval=0.05).start()
    rec.add_source(src)
    src.connect(timeout=2.0)
    try:
        wait_for(
            lambda: rec.stats()["signals"].get("late", {}).get("samples", 0) > 50, 3, "samples"
        )
        extra = rec.add_stream("text", "Predictions", ["text"], fmt="string")
        extra.push("hello wörld", 12.5)
        rec.stop()
    finally:
        src.disconnect()
    streams, _ = _load(rec.path)
    assert streams["late"]["time_stamps"].size > 50
    assert streams["text"]["time_series"] == [["hello wörld"]]


def test_existing_file_refused(tmp_path):
    p = tmp_path / "x.xdf"
    p.write_bytes(b"keep")
    with pytest.raises(RecordingError, match="already exists"):
        Recorder(p).start()
    assert p.read_bytes() == b"keep"


def test_disk_full_stops_recording_cleanly_session_survives(tmp_path, fake_source):
    src = fake_source
    path = tmp_path / "full.xdf"
    rec = Recorder(path, poll_interval=0.05, byte_quota=30_000)
    failed = []
    rec.add_state_callback(lambda r, s, m: failed.append(m) if s == RecorderState.FAILED else None)
    rec.add_source(src)
    rec.start()
    wait_for(lambda: rec.state == RecorderState.FAILED, 5, "the recorder to hit the quota")
    assert isinstance(rec.error, RecordingError)
    assert "disk is full" in str(rec.error) and str(path) in str(rec.error)
    assert failed and "disk is full" in failed[0]
    rec.stop()  # no raise
    n = src.buffer.counter
    wait_for(lambda: src.buffer.counter > n + 25, 2, "the source to keep streaming")
    assert src.state.value == "streaming"
    assert path.stat().st_size <= 30_000
    assert scan_xdf(path).torn_bytes == 0
    streams, _ = _load(path)
    eeg = streams["fake-eeg"]
    assert eeg["time_stamps"].size > 100
    _same_as_buffer(eeg, src.buffer)


def test_source_reconnecting_with_a_new_buffer_is_followed(tmp_path):
    src = FakeSource(name="re")
    src.connect(timeout=2.0)
    rec = Recorder(tmp_path / "re.xdf", poll_interval=0.05)
    rec.add_source(src)
    rec.start()
    try:
        wait_for(lambda: rec.stats()["signals"]["re"]["samples"] > 50, 3, "samples")
        src.disconnect()
        first = src.buffer
        src.connect(timeout=2.0)  # a fresh ring buffer, counter from 0 again
        assert src.buffer is not first
        wait_for(lambda: rec.stats()["signals"]["re"]["samples"] > first.counter + 50, 3, "more")
    finally:
        src.disconnect()
        rec.stop()
    streams, _ = _load(rec.path)
    ts = streams["re"]["time_stamps"]
    assert np.all(np.diff(ts) > 0)
    gaps = [m for m in _markers(streams, "re-markers") if m[1] == GAP_LABEL]
    assert len(gaps) == 1 and gaps[0][2]["reason"] == "restart"
