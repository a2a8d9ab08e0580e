"""5 s session from the BrainFlow synthetic board + a replayed EEGMMIDB run, recorded together;
then pyxdf, load_recording and the FIF / EDF / BIDS exports are checked against the ring buffers.
"""

from __future__ import annotations

import json
import time

import mne
import numpy as np
import pytest
import pyxdf

from acquisition.brainflow_source import BrainFlowSource
from acquisition.recorder import Recorder
from acquisition.replay import ReplaySource
from bci_app.recording import export_recording, load_recording

RECORD_SECONDS = 5.0


@pytest.fixture(scope="module")
def session_file(tmp_path_factory, eegmmidb_path):
    edf = eegmmidb_path / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"
    path = tmp_path_factory.mktemp("rt") / "session.xdf"
    board = BrainFlowSource("synthetic", buffer_seconds=60.0)
    # 125 s of 64-ch EEGMMIDB at 32x: done within the 5 s of the session
    replay = ReplaySource(str(edf), speed=32.0, buffer_seconds=200.0)
    board.connect(timeout=10.0)
    replay.connect(timeout=10.0)
    try:
        rec = Recorder(path, session_meta={"subject": "S001", "task": "imagery"}, history=True)
        rec.add_source(board)
        rec.add_source(replay)
        rec.start()
        t_end = time.monotonic() + RECORD_SECONDS
        while time.monotonic() < t_end:  # the session's length, not a synchronisation
            time.sleep(0.2)
        assert replay.finished, "the replay should be over after 5 s at 32x"
    finally:
        board.disconnect()
        replay.disconnect()
        rec.stop()  # after the sources: the final step records every sample they delivered
    assert rec.error is None
    return path, board, replay


def _stream(path, name):
    streams, _ = pyxdf.load_xdf(str(path))
    by = {s["info"]["name"][0]: s for s in streams}
    return by[name], by.get(f"{name}-markers"), by.get(f"{name}-markers-details")


@pytest.mark.parametrize("which", ["board", "replay"])
def test_samples_timestamps_markers_identical(session_file, which):
    path, board, replay = session_file
    src = board if which == "board" else replay
    eeg, mk, det = _stream(path, src.info.name)
    everything = src.buffer.since(0)
    assert everything.lost == 0
    n = everything.n_samples
    assert n > (0.9 * RECORD_SECONDS * 250 if which == "board" else 125 * 160 - 1)
    assert np.array_equal(eeg["time_series"], everything.data)  # bit-identical
    assert np.array_equal(eeg["time_stamps"], everything.timestamps)
    expected = src.markers.all()
    if which == "replay":
        assert {m.label for m in expected} >= {"T0", "T1", "T2"}
    got = (
        []
        if mk is None
        else list(
            zip(
                mk["time_stamps"],
                (v[0] for v in mk["time_series"]),
                (json.loads(d[0]) for d in det["time_series"]),
            )
        )
    )
    assert [(t, lab) for t, lab, _ in got] == [(m.timestamp, m.label) for m in expected]
    assert [d.get("duration", 0.0) for _, _, d in got] == [m.duration for m in expected]


@pytest.fixture(scope="module")
def replay_raw(session_file):
    path, _, replay = session_file
    return load_recording(path, stream=replay.info.name)


def test_load_recording(session_file, replay_raw):
    _, _, replay = session_file
    raw = replay_raw
    everything = replay.buffer.since(0)
    assert raw.info["sfreq"] == replay.info.sfreq
    assert raw.ch_names == list(replay.info.ch_names)
    assert np.array_equal(raw.get_data().T, everything.data)  # volts, no scaling needed
    ann = raw.annotations
    t0 = everything.timestamps[0]
    marks = replay.markers.all()
    assert list(ann.description) == [m.label for m in marks]
    np.testing.assert_allclose(ann.onset, [m.timestamp - t0 for m in marks], atol=1e-6)
    np.testing.assert_allclose(ann.duration, [m.duration for m in marks], atol=1e-9)
    assert json.loads(raw.info["description"])["subject"] == "S001"
    assert raw.info["meas_date"] is not None


def _same_annotations(a, b, atol):
    assert list(a.description) == list(b.description)
    np.testing.assert_allclose(a.onset, b.onset, atol=atol)
    np.testing.assert_allclose(a.duration, b.duration, atol=atol)


def test_export_fif(session_file, replay_raw, tmp_path):
    path, _, replay = session_file
    out = export_recording(path, "fif", tmp_path, stream=replay.info.name)
    back = mne.io.read_raw_fif(out, preload=True, verbose="error")
    assert np.array_equal(back.get_data(), replay_raw.get_data())
    _same_annotations(back.annotations, replay_raw.annotations, 1e-4)  # FIF keeps them as float32


def test_export_edf(session_file, replay_raw, tmp_path):
    path, _, replay = session_file
    out = export_recording(path, "edf", tmp_path, stream=replay.info.name)
    back = mne.io.read_raw_edf(out, preload=True, verbose="error")
    a, b = replay_raw.get_data(), back.get_data()
    assert a.shape == b.shape
    # EDF: 16-bit integers over one physical range (MNE exports one range per channel type)
    resolution = (a.max() - a.min()) / 65535
    assert np.abs(a - b).max() <= resolution
    _same_annotations(back.annotations, replay_raw.annotations, 1e-4)


def test_export_bids(session_file, replay_raw, tmp_path):
    import mne_bids

    path, _, replay = session_file
    out = export_recording(path, "bids", tmp_path / "bids", stream=replay.info.name)
    assert out.name == "sub-S001_task-imagery_eeg.vhdr"
    events = out.with_name("sub-S001_task-imagery_events.tsv").read_text().splitlines()
    assert len(events) == 1 + len(replay_raw.annotations)
    for side in ("_eeg.json", "_channels.tsv"):
        assert out.with_name(f"sub-S001_task-imagery{side}").exists()
    bp = mne_bids.BIDSPath(subject="S001", task="imagery", datatype="eeg", root=tmp_path / "bids")
    back = mne_bids.read_raw_bids(bp, verbose="error")
    back.load_data()
    eeg = mne.pick_types(back.info, eeg=True)
    np.testing.assert_allclose(
        back.get_data()[eeg], replay_raw.get_data()[eeg], rtol=1e-6, atol=1e-12
    )  # BrainVision float32
    _same_annotations(back.annotations, replay_raw.annotations, 1e-3)
