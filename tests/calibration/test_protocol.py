"""Graz protocol state machine: timings, balanced order, markers, pause/resume/abort (fake clock)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from acquisition.markers import MarkerLog
from bci_app.errors import ConfigError
from bci_app.protocol import (
    CUE_PREFIX, IMAGERY_END, TRIAL_START, GrazProtocol, ProtocolState, Timings,
    balanced_order, completed_trials, cue_args, cue_map,
)
from decoders.pseudo_online import parse_cue_map, trials_from_markers

T = Timings(fixation=2.0, cue=1.25, imagery=2.75, rest_min=1.5, rest_max=2.5)


def run_fake_clock(p: GrazProtocol, t0: float = 100.0, dt: float = 0.01, limit: float = 10_000):
    p.start(t0)
    t = t0
    while not p.finished and t < t0 + limit:
        t += dt
        p.advance(t)
    return t


def labels(log: MarkerLog, prefix: str = "") -> list:
    return [m for m in log.all() if m.label.startswith(prefix)]


def test_timings_follow_the_schedule_exactly():
    p = GrazProtocol(("left", "right"), 5, T, seed=3)
    states = []
    p.add_state_callback(lambda proto, s, t: states.append((s, t)))
    run_fake_clock(p, dt=0.013)  # an awkward tick: transitions still land on schedule
    assert p.state == ProtocolState.DONE
    assert p.n_done == 10
    seq = [s for s, _ in states]
    assert seq[:4] == [ProtocolState.FIXATION, ProtocolState.CUE, ProtocolState.IMAGERY,
                       ProtocolState.REST]
    rests = []
    for (s, t), (s2, t2) in zip(states, states[1:]):
        d = t2 - t
        if s == ProtocolState.FIXATION:
            assert d == pytest.approx(2.0, abs=1e-9)
        elif s == ProtocolState.CUE:
            assert d == pytest.approx(1.25, abs=1e-9)
        elif s == ProtocolState.IMAGERY:
            assert d == pytest.approx(2.75, abs=1e-9)
        elif s == ProtocolState.REST:
            assert 1.5 - 1e-9 <= d <= 2.5 + 1e-9
            rests.append(d)
    assert len(set(np.round(rests, 6))) > 3  # random, not constant
    # one late tick does all missed transitions with the same (scheduled) times
    q = GrazProtocol(("left", "right"), 5, T, seed=3)
    q.start(100.0)
    q.advance(10_000.0)
    assert q.state == ProtocolState.DONE
    assert [(m.timestamp, m.label) for m in q.markers.all()] == \
        [(m.timestamp, m.label) for m in p.markers.all()]


def test_balanced_randomized_order():
    p = GrazProtocol(("left", "right", "feet"), 8, T, seed=1)
    assert Counter(p.order) == {"left": 8, "right": 8, "feet": 8}
    assert GrazProtocol(("left", "right", "feet"), 8, T, seed=1).order == p.order
    assert GrazProtocol(("left", "right", "feet"), 8, T, seed=2).order != p.order
    for seed in range(20):
        order = balanced_order(("left", "right"), 20, seed, max_run=3)
        run = longest = 1
        for a, b in zip(order, order[1:]):
            run = run + 1 if a == b else 1
            longest = max(longest, run)
        assert longest <= 3 and Counter(order) == {"left": 20, "right": 20}
    # the order is random: first halves differ between seeds
    firsts = {tuple(balanced_order(("left", "right"), 10, s)[:6]) for s in range(10)}
    assert len(firsts) > 3


def test_markers_at_the_right_times_and_usable_by_pseudo_online():
    p = GrazProtocol(("left", "right"), 4, T, seed=0)
    cues = []
    p.add_cue_callback(lambda proto, cls, t, i: cues.append((cls, t, i)))
    run_fake_clock(p, t0=50.0, dt=0.05)
    log = p.markers
    starts = labels(log, TRIAL_START)
    cue_m = labels(log, CUE_PREFIX)
    ends = labels(log, IMAGERY_END)
    assert len(starts) == len(cue_m) == len(ends) == 8
    assert starts[0].timestamp == 50.0
    for s, c, e, cb in zip(starts, cue_m, ends, cues):
        assert c.timestamp - s.timestamp == pytest.approx(T.fixation)
        assert e.timestamp - c.timestamp == pytest.approx(T.cue + T.imagery)
        assert c.duration == pytest.approx(T.task)
        assert c.label == CUE_PREFIX + c.extra["cls"] == CUE_PREFIX + cb[0]
        assert cb[1] == c.timestamp and cb[2] == c.extra["trial"]
        assert c.source == "protocol"
    assert [c.extra["cls"] for c in cue_m] == p.order
    # the decoders' cue parsing understands the labels
    classes = ["left", "right"]
    trials = trials_from_markers(log.all(), cue_map(classes), classes)
    assert [classes[t.label] for t in trials] == p.order
    assert parse_cue_map(cue_args(classes), classes) == cue_map(classes)
    assert [c for _, c in completed_trials(log.all())] == p.order
    assert log.all()[-1].label == "calibration/end"


def test_pause_discards_the_running_trial_and_resume_repeats_it():
    p = GrazProtocol(("left", "right"), 3, T, seed=5)
    p.start(0.0)
    p.advance(2.5)  # trial 0 in its cue period
    assert p.state == ProtocolState.CUE
    cls0 = p.current_class
    p.pause(3.0)
    assert p.state == ProtocolState.PAUSED
    p.advance(100.0)  # time passes: nothing happens while paused
    assert p.state == ProtocolState.PAUSED and p.n_done == 0
    p.resume(100.0)
    assert p.state == ProtocolState.FIXATION and p.current_class == cls0
    t = 100.0
    while not p.finished:
        t += 0.1
        p.advance(t)
    done = completed_trials(p.markers.all())
    assert len(done) == 6 and [c for _, c in done] == p.order
    # the discarded cue is in the log but not among the completed trials
    cues = labels(p.markers, CUE_PREFIX)
    assert len(cues) == 7 and cues[0].timestamp == 2.0
    assert all(t_ != 2.0 for t_, _ in done)
    assert [m.label for m in p.markers.all()].count("calibration/discard") == 1


def test_abort_keeps_what_was_recorded():
    p = GrazProtocol(("left", "right"), 5, T, seed=2)
    p.start(0.0)
    t = 0.0
    while p.n_done < 3:
        t += 0.1
        p.advance(t)
    p.advance(t + 3.0)  # into trial 3 (fixation or cue)
    p.abort(t + 3.0)
    assert p.state == ProtocolState.ABORTED and p.finished
    assert len(completed_trials(p.markers.all())) == 3
    p.advance(t + 1000)  # no-op
    assert p.state == ProtocolState.ABORTED
    assert p.markers.all()[-1].label == "calibration/abort"
    assert p.time_left(t) == 0.0


def test_time_left_and_outlet():
    sent = []

    class Outlet:  # stands in for acquisition.lsl_outlet.MarkerOutlet (push(label, ts))
        def push(self, label, ts):
            sent.append((label, ts))

    p = GrazProtocol(("left", "right"), 2, T, seed=0, outlet=Outlet())
    total = p.time_left(0.0)
    assert total == pytest.approx(4 * T.mean_trial)
    run_fake_clock(p, t0=0.0)
    assert [(m.label, m.timestamp) for m in p.markers.all()] == sent


@pytest.mark.parametrize("kwargs, match", [
    (dict(classes=("left",)), "at least 2"),
    (dict(classes=("left", "left")), "unique"),
    (dict(classes=("a/b", "c")), "without '/'"),
    (dict(trials_per_class=0), "trials_per_class"),
    (dict(timings=(2, 1, 1, 3, 1)), "rest_max"),
    (dict(timings=(2, 1, -1, 1, 2)), "imagery"),
    (dict(timings=(1, 2)), "fixation, cue"),
])
def test_bad_settings_are_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GrazProtocol(**kwargs)


def test_wrong_state_is_a_runtime_error():
    p = GrazProtocol()
    with pytest.raises(RuntimeError, match="cannot pause"):
        p.pause(0.0)
    p.start(0.0)
    with pytest.raises(RuntimeError, match="already"):
        p.start(1.0)
    with pytest.raises(RuntimeError, match="not paused"):
        p.resume(1.0)


def test_cues_reach_a_stimulus_program_over_lsl(stream_name):
    """The protocol's MarkerOutlet (``bci-app calibrate --stimulus NAME``) on real LSL: a marker
    inlet, standing in for the stimulus program, receives every label in order."""
    import time

    from acquisition.lsl_env import import_pylsl
    from acquisition.lsl_outlet import MarkerOutlet
    from acquisition.lsl_source import LSLMarkerInlet

    outlet = MarkerOutlet(stream_name)
    received = MarkerLog()
    inlet = LSLMarkerInlet(received, stream_name)
    try:
        inlet.connect(timeout=10.0)
        assert outlet.wait_for_consumers(5.0)
        p = GrazProtocol(("left", "right"), 2, Timings(0.1, 0.1, 0.1, 0.1, 0.1), seed=0,
                         outlet=outlet)
        clock = import_pylsl().local_clock
        p.start(clock())
        deadline = time.monotonic() + 10.0
        while not p.finished and time.monotonic() < deadline:
            p.advance(clock())
            time.sleep(0.01)
        assert p.state == ProtocolState.DONE
        sent = [m.label for m in p.markers.all()]
        deadline = time.monotonic() + 5.0
        while len(received) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [m.label for m in received.all()] == sent
        got = [m.timestamp for m in received.all()]
        want = [m.timestamp for m in p.markers.all()]
        assert np.allclose(got, want, atol=0.01)  # same clock (LSL time correction ~0 locally)
    finally:
        inlet.disconnect()
        outlet.close()
