"""Simulated subject: real EEGMMIDB trials spliced in on cue, rest EEG between, pacing."""

from __future__ import annotations

import time

import numpy as np
import pytest

from acquisition.base import SourceState
from acquisition.files import read_file
from acquisition.simulated import (
    TRIAL_MARKER, SimulatedSubjectSource, eegmmidb_files, standardize_eegmmidb_name,
)
from bci_app.errors import ConfigError, DataFileError
from bci_app.protocol import GrazProtocol, ProtocolRunner, Timings, completed_trials


def test_names_are_standardized():
    assert [standardize_eegmmidb_name(n) for n in ("Fc5.", "Fcz.", "Fp1.", "Iz..", "Cz..",
                                                   "Af7.", "T10.")] == \
        ["FC5", "FCz", "Fp1", "Iz", "Cz", "AF7", "T10"]


def test_cued_trials_are_the_recorded_trials(s7_recordings):
    src = SimulatedSubjectSource(s7_recordings, speed="max", seed=4, standardize_names=True,
                                 buffer_seconds=400)
    src.connect(acquisition=False)
    try:
        assert src.info.source_kind == "simulated" and src.info.sfreq == 160.0
        assert src.info.ch_names[:3] == ("FC5", "FC3", "FC1")
        p = GrazProtocol(("left", "right"), 4, Timings(1.0, 1.0, 3.0, 1.0, 2.0), seed=0,
                         marker_log=src.markers)
        runner = ProtocolRunner(p, src)
        assert runner.clock == "stream" and runner.manual
        runner.run(timeout=20)
        assert p.state.value == "done"
        chunk = src.buffer.since(0)
        assert chunk.lost == 0
        ts = chunk.timestamps
        assert np.allclose(np.diff(ts), 1 / 160.0)
        cues = completed_trials(src.markers.all())
        assert [c for _, c in cues] == p.order == [pt.cls for pt in src.played]
        nf = int(round(src.crossfade_s * 160))
        for (t_cue, cls), pt in zip(cues, src.played):
            # the trial starts at the cue (within one sample: the cue time is not on the grid)
            assert 0 <= pt.onset - t_cue < 1 / 160 + 1e-9
            i = int(np.searchsorted(ts, pt.onset - 1e-6))
            n = pt.trial.stop - pt.trial.start
            # real data of the cued class, bit for bit after the cross-fade
            rec = s7_recordings[pt.trial.recording]
            want = rec.data[pt.trial.start + nf:pt.trial.stop].astype(np.float32)
            assert np.array_equal(chunk.data[i + nf:i + n].astype(np.float32), want)
            label = [m for m in rec.markers if abs(m.timestamp - pt.trial.onset_s) < 1e-6][0]
            assert {"T1": "left", "T2": "right"}[label.label] == cls
        gt = [m for m in src.markers.all() if m.label == TRIAL_MARKER]
        assert len(gt) == len(src.played) == 8
        keys = [pt.trial.key for pt in src.played]
        assert len(set(keys)) == 8  # drawn without replacement
        assert len(src.unplayed_trials()) == len(src.trials) - 8
    finally:
        src.disconnect()


def test_rest_between_cues_is_recorded_rest(s7_recordings):
    """Without cues the stream is made of T0 segments only (no task EEG sneaks in)."""
    src = SimulatedSubjectSource(s7_recordings[:1], speed="max", chunk_samples=160,
                                 crossfade_s=0.0, seed=1)
    src.connect(acquisition=False)
    try:
        for _ in range(60):
            src.acquire()
        data = src.buffer.since(0).data.astype(np.float32)
        rec = s7_recordings[0]
        rest = [(int(m.timestamp * 160), int((m.timestamp + m.duration) * 160))
                for m in rec.markers if m.label == "T0"]
        X = rec.data.astype(np.float32)
        # every 1-s block starts inside some rest segment of the recording
        for b in range(0, len(data) - 160, 160):
            hit = np.flatnonzero(np.all(X[:, 0:1] == data[b, 0:1], axis=1))
            assert any(a <= h < z for h in hit for a, z in rest), f"block {b} is not rest"
        assert src.played == []
    finally:
        src.disconnect()


def test_real_time_and_faster_pacing(s7_recordings):
    for speed, seconds in ((1.0, 1.0), (10.0, 0.5)):
        src = SimulatedSubjectSource(s7_recordings[:1], speed=speed, seed=0)
        src.connect()
        try:
            t0 = time.monotonic()
            deadline = t0 + 5.0
            while src.n_samples < 160 * speed * seconds and time.monotonic() < deadline:
                with src.new_data:
                    src.new_data.wait(0.05)
            took = time.monotonic() - t0
            assert src.state == SourceState.STREAMING
            assert src.n_samples >= 160 * speed * seconds
            assert took == pytest.approx(seconds, abs=0.35 * seconds + 0.15)
            # a cue from another thread, at a future stream time, starts exactly there
            at = src.next_timestamp + 0.2
            src.cue("left", at=at)
            deadline = time.monotonic() + 3.0
            while not src.played and time.monotonic() < deadline:
                with src.new_data:
                    src.new_data.wait(0.05)
            assert src.played and src.played[0].lag < 1 / 160 + 1e-9
        finally:
            src.disconnect()


def test_bounded_memory_and_reuse_of_trials(s7_recordings):
    src = SimulatedSubjectSource(s7_recordings[:1], speed="max", buffer_seconds=5, seed=0)
    src.connect(acquisition=False)
    try:
        n_left = sum(t.cls == "left" for t in src.trials)
        for _ in range(n_left + 2):
            src.cue("left")
            src.acquire_until(src.next_timestamp + 4.0)
        assert src.buffer.capacity == 5 * 160  # the ring buffer never grows
        assert len(src.played) == n_left + 2
        first = {pt.trial.key for pt in src.played[:n_left]}
        assert len(first) == n_left  # every trial once before any repeats
    finally:
        src.disconnect()


def test_trial_filter_holds_trials_out(s7_recordings):
    keep = {t.key for t in SimulatedSubjectSource(s7_recordings).prepare().trials[::2]}
    src = SimulatedSubjectSource(s7_recordings, trial_filter=lambda t: t.key in keep)
    src.prepare()
    assert {t.key for t in src.trials} == keep


def test_errors(eegmmidb_path, s7_recordings):
    with pytest.raises(DataFileError, match="not found"):
        eegmmidb_files(99, (4,), eegmmidb_path)
    with pytest.raises(ConfigError, match="one family"):
        SimulatedSubjectSource.from_eegmmidb(1, runs=(4, 6), data_dir=eegmmidb_path)
    with pytest.raises(ConfigError, match="at least one recording"):
        SimulatedSubjectSource([])
    src = SimulatedSubjectSource(s7_recordings[:1], speed="max")
    with pytest.raises(RuntimeError, match="connect"):
        src.cue("left")
    src.connect(acquisition=False)
    try:
        with pytest.raises(ConfigError, match="feet"):
            src.cue("feet")
    finally:
        src.disconnect()
    with pytest.raises(DataFileError, match="no trials of class"):
        SimulatedSubjectSource(s7_recordings[:1], class_events={"T5": "left"}).prepare()


def test_from_eegmmidb_hands_feet(eegmmidb_path):
    src = SimulatedSubjectSource.from_eegmmidb(1, runs=(6,), data_dir=eegmmidb_path)
    src.prepare()
    assert src.classes == ["fists", "feet"] and src.subjects == [1]
    rec = read_file(eegmmidb_files(1, (6,), eegmmidb_path)[0])
    assert len(src.trials) == sum(m.label in ("T1", "T2") for m in rec.markers)
