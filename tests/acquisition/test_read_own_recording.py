"""Replaying a bci_app recording gives back its markers with their durations."""

from __future__ import annotations

import mne
import pytest

from acquisition.files import read_file
from acquisition.recorder import Recorder
from acquisition.replay import ReplaySource


def test_own_xdf_recording_replays_markers_with_durations(eegmmidb_path, tmp_path):
    path = mne.datasets.eegbci.load_data(1, [4], path=str(eegmmidb_path), update_path=False)[0]
    original = read_file(path)
    src = ReplaySource(original, speed="max", chunk_samples=160)
    src.connect(timeout=5, acquisition=False)
    out = tmp_path / "rec.xdf"
    rec = Recorder(out, session_meta={"subject": "test"}, history=True)
    rec.add_source(src)
    rec.start()
    while src.n_samples < 30 * 160:
        src.acquire()
    rec.stop()
    src.disconnect()
    back = read_file(out)
    assert back.n_samples == 30 * 160
    labels = [m.label for m in back.markers]
    assert not any(lbl.startswith("{") for lbl in labels), labels
    expected = [m for m in original.markers if m.timestamp < 30.0]
    assert labels == [m.label for m in expected]
    assert [m.duration for m in back.markers] == pytest.approx([m.duration for m in expected])
    # marker times line up with the same samples as in the original file
    t0 = back.times[0]
    assert [m.timestamp - t0 for m in back.markers] == pytest.approx(
        [m.timestamp for m in expected], abs=1e-6)


def test_replay_speed_change_keeps_pacing_continuous(eegmmidb_path):
    import time

    path = mne.datasets.eegbci.load_data(1, [4], path=str(eegmmidb_path), update_path=False)[0]
    src = ReplaySource(path, speed=1.0)
    src.connect(timeout=5)
    try:
        time.sleep(0.5)
        n1 = src.n_samples
        src.set_speed(10.0)
        assert src.n_samples - n1 < 40  # no burst from re-computing the schedule
        time.sleep(0.5)
        assert src.n_samples - n1 > 400  # now ten times faster
        assert src.gaps == []
    finally:
        src.disconnect()
