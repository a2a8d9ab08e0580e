"""Review 15e: names of the marker streams the recorder makes, and markers at a clock reset.

1. A source recorded with ``markers=False`` under a custom stream name: the marker stream the
   recorder makes for its own markers (a restart's gap) was named after the source's
   ``info.name`` (``S001R04-markers``), not after the recorded stream (``S001-motor-markers``),
   and two such sources of one device name wrote two streams of one name, whose ``-details``
   twins readers pair by name. A caller can now also name the marker stream (``markers_name``);
   a name already in the file gets ``-2`` with a warning.
2. After a clock reset (the device's timestamps go back, so two stretches of the recording
   share times) ``load_recording`` put every marker of the shared times in the first stretch.
   A marker recorded after the source's ``bci_app/clock_jump`` marker in its stream was made on
   the new clock and now lands there; one whose stream does not say (no clock-jump marker in
   it) is kept at its first occurrence, flagged in the annotation's extras, with a warning.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import pyxdf

from acquisition.markers import GAP_LABEL, MarkerLog
from acquisition.recorder import Recorder, xdf_markers
from acquisition.lsl_env import import_pylsl
from acquisition.lsl_source import LSLSource
from acquisition.replay import ReplaySource
from bci_app.recording import load_recording
from tests.acquisition.test_review11 import FS, _outlet, _push
from tests.helpers.processes import wait_until

from .conftest import wait_for


def _edf(eegmmidb_path):
    return eegmmidb_path / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"


def _streams(path):
    streams, _ = pyxdf.load_xdf(str(path))
    return {s["info"]["name"][0]: s for s in streams}


def _replay(eegmmidb_path) -> ReplaySource:
    src = ReplaySource(str(_edf(eegmmidb_path)), speed="max", chunk_samples=160,
                       buffer_seconds=200.0)
    src.connect(timeout=10.0, acquisition=False)
    for _ in range(5):
        src.acquire()
    return src


def test_recorder_made_marker_stream_is_named_after_the_recorded_stream(tmp_path,
                                                                         eegmmidb_path):
    a, b = _replay(eegmmidb_path), _replay(eegmmidb_path)  # one device name: S001R04
    path = tmp_path / "two.xdf"
    rec = Recorder(path, history=True)
    rec.add_source(a, name="S001-motor", markers=False)
    rec.add_source(b, name="S001-rest", markers=False)
    rec.start()
    try:
        wait_for(lambda: all(v["samples"] > 0 for v in rec.stats()["signals"].values()), 5.0,
                 "the first samples recorded")
        for src in (a, b):  # each source restarts: the recorder marks the break itself
            src.disconnect()
            src.connect(timeout=10.0, acquisition=False)
            src.acquire()
    finally:
        a.disconnect()
        b.disconnect()
        rec.stop()
    assert rec.error is None
    by = _streams(path)
    assert set(by) == {"S001-motor", "S001-rest", "S001-motor-markers",
                       "S001-motor-markers-details", "S001-rest-markers",
                       "S001-rest-markers-details"}, sorted(by)
    for name in ("S001-motor-markers", "S001-rest-markers"):
        marks = [m for m in xdf_markers(list(by.values())) if m.extra["stream"] == name]
        assert [(m.label, m.extra["reason"]) for m in marks] == [(GAP_LABEL, "restart")]


def test_marker_stream_name_given_by_the_caller_and_kept_unique(tmp_path, eegmmidb_path):
    src = _replay(eegmmidb_path)
    cues = MarkerLog()
    path = tmp_path / "named.xdf"
    rec = Recorder(path, history=True)
    rec.add_source(src, name="S001-motor", markers_name="cues")
    rec.add_marker_log(cues, "cues")  # the same name asked twice: the second one is renamed
    rec.start()
    try:
        t = float(src.buffer.since(0).timestamps[10])
        src.markers.add(t, "from-source", source="user")
        cues.add(t + 0.5, "from-cues", source="protocol")
        src.acquire()
    finally:
        src.disconnect()
        rec.stop()
    assert rec.error is None
    assert any("'cues-2'" in w for w in rec.warnings), rec.warnings
    by = _streams(path)
    assert {"S001-motor", "cues", "cues-details", "cues-2", "cues-2-details"} <= set(by)
    got = {(m.label, m.extra["stream"], m.extra.get("recorded_source"))
           for m in xdf_markers(list(by.values()))}
    assert ("from-source", "cues", "user") in got and ("from-cues", "cues-2", "protocol") in got


def test_marker_after_a_clock_reset_is_placed_on_the_new_clock(tmp_path, stream_name, caplog):
    pylsl = import_pylsl()
    out = _outlet(pylsl, stream_name)
    src = LSLSource(stream_name)
    src.connect(timeout=10, acquisition=False)
    cues = MarkerLog()
    path = tmp_path / "reset.xdf"
    try:
        t0 = pylsl.local_clock()
        _push(out, np.arange(1000), t0)  # 4 s on the device's first clock
        wait_until(lambda: src.acquire() >= 0 and src.n_samples >= 1000, 5, what="1000 samples")
        src.markers.add(t0 + 3.0, "before", source="user")  # sample 750
        # the device restarts with a clock 2 s behind: samples 1000.. claim t0 + 2 s on
        _push(out, np.arange(1000, 2000), t0 - 2.0)
        wait_until(lambda: src.acquire() >= 0 and src.n_samples >= 2000, 5, what="2000 samples")
        assert src.backward_jumps == 1
        src.markers.add(t0 + 3.0, "after", source="user")  # the new clock: sample 1250
        cues.add(t0 + 3.0, "cue", source="protocol")  # its own stream: cannot be told
        rec = Recorder(path, history=True)
        rec.add_source(src, name="eeg")
        rec.add_marker_log(cues, "cues")
        rec.start()
        rec.stop()
        assert rec.error is None
    finally:
        src.disconnect()
    with caplog.at_level(logging.WARNING, logger="bci_app.recording"):
        raw = load_recording(path)
    counter = raw.get_data(picks=[0])[0] * 1e6  # channel 0 counts samples (as microvolts)
    ann = raw.annotations
    got = {d: (int(round(counter[raw.time_as_index(o)[0]])), e)
           for o, d, e in zip(ann.onset, ann.description, ann.extras)}
    assert got["before"][0] == 750 and not got["before"][1]
    assert got["bci_app/clock_jump"][0] == 1000
    assert got["after"][0] == 1250, "placed on the first clock"
    assert not got["after"][1]
    n, flag = got["cue"]
    assert n == 750 and flag["bci_app_time_base_ambiguous"] is True
    onsets = [float(x) for x in flag["bci_app_onsets"].split(",")]
    assert onsets == pytest.approx([3.0, 5.0], abs=0.01)
    assert any("'cue' at 3.000 or 5.000" in r.getMessage() for r in caplog.records)


def test_clock_jumps_are_matched_to_resets_in_order():
    """A device whose clock restarts at the same value after every power cycle (stamps = its
    own sample count / rate) resets to t = 0 twice: a marker made after the first clock jump
    belongs to the second stretch, not to the last one with a reset at that time (review)."""
    import numpy as np

    from bci_app.recording import _onsets

    sfreq = 250.0
    one = np.arange(1000) / sfreq
    ts, bounds = np.concatenate([one, one, one]), [1000, 2000]
    for jumps, sample in (((0.0,), 1250), ((0.0, 0.0), 2250)):
        on, ambiguous = _onsets(np.array([1.0]), ts, sfreq, bounds, [jumps])
        assert on[0] * sfreq == sample and not ambiguous
    on, ambiguous = _onsets(np.array([1.0]), ts, sfreq, bounds, [None])  # nothing to tell
    assert on[0] * sfreq == 250 and [round(x * sfreq) for x in ambiguous[0]] == [250, 1250, 2250]
