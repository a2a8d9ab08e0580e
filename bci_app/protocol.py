"""The Graz motor-imagery calibration paradigm as an explicit state machine (no Qt, no timers).

One trial (Pfurtscheller & Neuper's Graz protocol, the template of OpenViBE's MI scenario)::

    FIXATION ──fixation s──► CUE ──cue s──► IMAGERY ──imagery s──► REST ──U(rest_min, rest_max) s──►
    (cross on screen)        (beep + arrow)  (keep imagining)       (blank)           next trial / DONE

The subject starts imagining at the cue; ``cue + imagery`` seconds is the task period (4 s by
default, like EEGMMIDB's 4.1 s trials). Trials follow a balanced order: every class appears
exactly ``trials_per_class`` times, shuffled with ``seed`` (no run of more than ``max_run`` equal
cues, by default 3).

Driving it
----------
Nothing here sleeps or owns a timer: the caller passes the time. :meth:`GrazProtocol.start` at
``now``, then :meth:`GrazProtocol.advance` (alias :meth:`tick`) with the current time as often as it
likes (a GUI timer at display rate, the headless loop, a test with a fake clock). Every transition
happens at its **scheduled** time, whatever the tick granularity: a late tick performs the missed
transitions in order and stamps each with the time it was due, so markers keep the protocol's
exact timing. The clock must be the LSL clock (``pylsl.local_clock()``) for a live device, or the
stream's own clock (the timestamp of the next sample) for a simulated subject faster than real
time: markers carry the time they were given.

Markers (written to ``marker_log``, source ``"protocol"``; sent to a stimulus program through an
optional :class:`acquisition.lsl_outlet.MarkerOutlet` too)
----------------------------------------------------------------------------------------------
==========================  ========================================================================
label                       meaning (``extra`` holds ``trial``, the 0-based trial index, and more)
==========================  ========================================================================
``calibration/start``       protocol started (extra: classes, trials_per_class, timings, seed)
``trial_start``             fixation cross appears (extra: ``cls``)
``cue/<class>``             beep + arrow: cue onset; the labelled event (duration = cue + imagery)
``imagery_end``             end of the imagery period (rest begins)
``calibration/pause``       paused (the running trial is discarded and will be repeated)
``calibration/resume``      resumed (the discarded trial restarts with its fixation)
``calibration/discard``     the trial whose cue is in extra ``trial`` does not count (paused/aborted)
``calibration/abort``       aborted by the user; what was recorded stays valid
``calibration/end``         all trials done
==========================  ========================================================================

:func:`cue_map` gives ``{"cue/left": "left", ...}`` for
:func:`decoders.pseudo_online.trials_from_markers`; :func:`cue_args` gives the same as ``--cue``
arguments of ``bci-app replay`` (``["cue/left=left", ...]``). :func:`completed_trials` lists the
cues of trials that ran to their ``imagery_end`` (discarded ones left out).

Threads: a protocol is not thread-safe; one thread drives it (GUI thread, or the headless loop).
Callbacks run on that thread, synchronously, inside ``advance``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

import numpy as np

from acquisition.markers import Marker, MarkerLog

from .errors import ConfigError

logger = logging.getLogger(__name__)

CUE_PREFIX = "cue/"
TRIAL_START = "trial_start"
IMAGERY_END = "imagery_end"
START_LABEL = "calibration/start"
END_LABEL = "calibration/end"
PAUSE_LABEL = "calibration/pause"
RESUME_LABEL = "calibration/resume"
DISCARD_LABEL = "calibration/discard"
ABORT_LABEL = "calibration/abort"
MARKER_SOURCE = "protocol"


class ProtocolState(str, Enum):
    IDLE = "idle"
    FIXATION = "fixation"
    CUE = "cue"
    IMAGERY = "imagery"
    REST = "rest"
    PAUSED = "paused"
    DONE = "done"
    ABORTED = "aborted"


#: States in which a trial is running.
TRIAL_STATES = (ProtocolState.FIXATION, ProtocolState.CUE, ProtocolState.IMAGERY)


@dataclass(frozen=True)
class Timings:
    """Durations in seconds. ``cue + imagery`` is the task period after cue onset."""

    fixation: float = 2.0
    cue: float = 1.25
    imagery: float = 2.75
    rest_min: float = 1.5
    rest_max: float = 2.5

    def __post_init__(self) -> None:
        for name in ("fixation", "cue", "imagery", "rest_min", "rest_max"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"timings.{name}: expected a finite number of seconds >= 0, "
                                  f"got {v!r}.")
        if self.cue + self.imagery <= 0:
            raise ConfigError("timings: cue + imagery must be > 0 s (the task period).")
        if self.rest_max < self.rest_min:
            raise ConfigError(f"timings: rest_max ({self.rest_max}) must be >= rest_min "
                              f"({self.rest_min}).")

    @property
    def task(self) -> float:
        return self.cue + self.imagery

    @property
    def mean_trial(self) -> float:
        return self.fixation + self.task + (self.rest_min + self.rest_max) / 2

    @classmethod
    def coerce(cls, value: Timings | Sequence[float] | dict | None) -> Timings:
        if value is None:
            return cls()
        if isinstance(value, Timings):
            return value
        if isinstance(value, dict):
            return cls(**value)
        vals = list(value)
        if len(vals) != 5:
            raise ConfigError(
                "timings: expected (fixation, cue, imagery, rest_min, rest_max) seconds, got "
                f"{value!r}."
            )
        return cls(*(float(v) for v in vals))


def balanced_order(classes: Sequence[str], trials_per_class: int, seed: int | None,
                   max_run: int | None = 3) -> list[str]:
    """Each class ``trials_per_class`` times, shuffled; no more than ``max_run`` equal in a row
    (when that is possible). Deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    seq = [c for c in classes for _ in range(trials_per_class)]
    if len(classes) < 2 or max_run is None:
        rng.shuffle(seq)
        return list(seq)
    for _ in range(1000):
        perm = list(rng.permutation(seq))
        run, ok = 1, True
        for a, b in zip(perm, perm[1:]):
            run = run + 1 if a == b else 1
            if run > max_run:
                ok = False
                break
        if ok:
            return [str(c) for c in perm]
    # a uniform shuffle almost never meets max_run for long runs (2 classes x 60 trials: 47 of
    # 50 seeds failed 1000 tries, and the order then had runs of 6 and more): build one that
    # does, drawing each cue among the classes that keep the rest arrangeable
    return _constrained_order([str(c) for c in classes], trials_per_class, max_run, rng)


def _arrangeable(counts: dict[str, int], last: str | None, run: int, max_run: int) -> bool:
    """Whether ``counts`` cues can follow a run of ``run`` ``last`` cues with no more than
    ``max_run`` equal in a row: each class fits in the blocks the others leave it."""
    n = sum(counts.values())
    return all(k <= max_run * (n - k + 1) - (run if c == last else 0)
               for c, k in counts.items() if k)


def _constrained_order(classes: list[str], trials_per_class: int, max_run: int,
                       rng: np.random.Generator) -> list[str]:
    counts = {c: trials_per_class for c in classes}
    out: list[str] = []
    last, run = None, 0
    while len(out) < trials_per_class * len(classes):
        ok = []
        for c in classes:
            if not counts[c] or (c == last and run >= max_run):
                continue
            counts[c] -= 1
            if _arrangeable(counts, c, run + 1 if c == last else 1, max_run):
                ok.append(c)
            counts[c] += 1
        if not ok:  # (max_run < 1: nothing can be met) unconstrained from here
            ok = [c for c in classes if counts[c]]
        w = np.array([counts[c] for c in ok], dtype=float)
        c = ok[int(rng.choice(len(ok), p=w / w.sum()))]
        run = run + 1 if c == last else 1
        last = c
        counts[c] -= 1
        out.append(c)
    return out


StateCallback = Callable[["GrazProtocol", ProtocolState, float], None]
CueCallback = Callable[["GrazProtocol", str, float, int], None]


class GrazProtocol:
    """Cued motor-imagery acquisition: a state machine driven by the caller's clock.

    Parameters
    ----------
    classes : sequence of str
        Class names (``("left", "right")``); markers are ``cue/<class>``.
    trials_per_class : int
        Trials of each class (the order is balanced and shuffled).
    timings : Timings | (fixation, cue, imagery, rest_min, rest_max) | dict
    seed : int | None
        Seeds the trial order and the rest durations.
    marker_log : MarkerLog | None
        Where markers go (usually ``source.markers`` so that the recording holds them).
    outlet : MarkerOutlet | None
        Also push every marker to this LSL marker outlet (for an external stimulus program).
    max_run : int | None
        Longest run of one class in the order (None: unconstrained shuffle).

    Notes
    -----
    Callbacks (``on_state(protocol, state, t)``, ``on_cue(protocol, class, t, trial)``) run
    synchronously on the thread calling :meth:`advance`, with ``t`` the scheduled time of the
    transition. A failing callback is logged and does not stop the protocol.
    """

    def __init__(
        self,
        classes: Sequence[str] = ("left", "right"),
        trials_per_class: int = 10,
        timings: Timings | Sequence[float] | dict | None = None,
        seed: int | None = 0,
        *,
        marker_log: MarkerLog | None = None,
        outlet=None,
        max_run: int | None = 3,
    ) -> None:
        classes = [str(c) for c in classes]
        if len(classes) < 2:
            raise ConfigError(f"classes: expected at least 2 class names, got {classes!r}.")
        if len(set(classes)) != len(classes):
            raise ConfigError(f"classes: names must be unique, got {classes!r}.")
        bad = [c for c in classes if not c or "/" in c or c != c.strip()]
        if bad:
            raise ConfigError(f"classes: names must be non-empty, without '/' or padding; got "
                              f"{bad!r}.")
        if isinstance(trials_per_class, bool) or int(trials_per_class) != trials_per_class \
                or trials_per_class < 1:
            raise ConfigError(f"trials_per_class: expected an integer >= 1, got "
                              f"{trials_per_class!r}.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)
                                 or seed < 0):
            raise ConfigError(f"seed: expected an integer >= 0 (or None for a random order), "
                              f"got {seed!r}.")
        self.classes = tuple(classes)
        self.trials_per_class = int(trials_per_class)
        self.timings = Timings.coerce(timings)
        self.seed = seed
        self.max_run = max_run
        self.markers = marker_log if marker_log is not None else MarkerLog()
        self.outlet = outlet
        self.order = balanced_order(self.classes, self.trials_per_class, seed, max_run)
        self._rng = np.random.default_rng(None if seed is None else seed + 7919)
        self._state_cbs: list[StateCallback] = []
        self._cue_cbs: list[CueCallback] = []
        self.state = ProtocolState.IDLE
        self.trial = 0  # index into order of the current (or next) trial
        self.completed: list[int] = []  # trial indices that reached imagery_end
        self.deadline: float | None = None  # scheduled time of the next transition
        self.state_since: float | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._paused_state: ProtocolState | None = None
        self._paused_at: float | None = None
        self.history: list[tuple[float, ProtocolState]] = []

    # ------------------------------------------------------------------ observers
    def add_state_callback(self, cb: StateCallback) -> None:
        self._state_cbs.append(cb)

    def add_cue_callback(self, cb: CueCallback) -> None:
        self._cue_cbs.append(cb)

    # ------------------------------------------------------------------ properties
    @property
    def n_trials(self) -> int:
        return len(self.order)

    @property
    def n_done(self) -> int:
        return len(self.completed)

    @property
    def finished(self) -> bool:
        return self.state in (ProtocolState.DONE, ProtocolState.ABORTED)

    @property
    def current_class(self) -> str | None:
        return self.order[self.trial] if self.trial < len(self.order) else None

    def time_left(self, now: float) -> float:
        """Estimated seconds to the end (remaining trials at their mean length)."""
        if self.finished:
            return 0.0
        remaining = self.n_trials - self.n_done
        t = self.timings
        if self.state in TRIAL_STATES + (ProtocolState.REST,) and self.deadline is not None:
            into = {ProtocolState.FIXATION: 0.0, ProtocolState.CUE: t.fixation,
                    ProtocolState.IMAGERY: t.fixation + t.cue}.get(self.state)
            if into is not None:
                into += max(0.0, now - (self.state_since or now))
                return max(0.0, remaining * t.mean_trial - into)
            return max(0.0, self.deadline - now) + remaining * t.mean_trial
        return remaining * t.mean_trial

    def settings(self) -> dict[str, Any]:
        return {"paradigm": "graz", "classes": list(self.classes),
                "trials_per_class": self.trials_per_class, "timings": asdict(self.timings),
                "seed": self.seed, "max_run": self.max_run, "order": list(self.order),
                "markers": {"cue": f"{CUE_PREFIX}<class>", "trial_start": TRIAL_START,
                            "imagery_end": IMAGERY_END}}

    # ------------------------------------------------------------------ control
    def start(self, now: float) -> None:
        """Begin with the first trial's fixation at ``now``."""
        if self.state != ProtocolState.IDLE:
            raise RuntimeError(f"GrazProtocol.start: already {self.state.value}; make a new "
                               "protocol to run again.")
        self.started_at = float(now)
        self._mark(now, START_LABEL, classes=list(self.classes),
                   trials_per_class=self.trials_per_class, timings=asdict(self.timings),
                   seed=self.seed)
        self._enter_fixation(float(now))

    def advance(self, now: float) -> ProtocolState:
        """Perform every transition due at or before ``now``; returns the state afterwards."""
        now = float(now)
        for _ in range(10_000):  # bounded: each pass moves the machine forward
            if self.deadline is None or self.state in (ProtocolState.IDLE, ProtocolState.PAUSED,
                                                       ProtocolState.DONE, ProtocolState.ABORTED):
                break
            if now < self.deadline:
                break
            t = self.deadline
            if self.state == ProtocolState.FIXATION:
                self._enter_cue(t)
            elif self.state == ProtocolState.CUE:
                self._enter(ProtocolState.IMAGERY, t, t + self.timings.imagery)
            elif self.state == ProtocolState.IMAGERY:
                self._mark(t, IMAGERY_END, trial=self.trial, cls=self.order[self.trial])
                self.completed.append(self.trial)
                self.trial += 1
                rest = float(self._rng.uniform(self.timings.rest_min, self.timings.rest_max))
                self._enter(ProtocolState.REST, t, t + rest)
            elif self.state == ProtocolState.REST:
                if self.trial >= len(self.order):
                    self._finish(t)
                else:
                    self._enter_fixation(t)
        return self.state

    tick = advance

    def pause(self, now: float) -> None:
        """Pause. A trial in progress (fixation/cue/imagery) is discarded and repeated on resume;
        pausing during rest keeps everything."""
        if self.state not in TRIAL_STATES + (ProtocolState.REST,):
            raise RuntimeError(f"GrazProtocol.pause: cannot pause while {self.state.value}.")
        self.advance(now)
        if self.state in TRIAL_STATES + (ProtocolState.REST,):
            self._discard_running(now)
            self._paused_state = self.state
            self._paused_at = float(now)
            self._mark(now, PAUSE_LABEL, trial=self.trial)
            self._enter(ProtocolState.PAUSED, now, None)

    def resume(self, now: float) -> None:
        """Continue after :meth:`pause` with a fresh fixation for the next (or repeated) trial."""
        if self.state != ProtocolState.PAUSED:
            raise RuntimeError(f"GrazProtocol.resume: not paused (state {self.state.value}).")
        self._mark(now, RESUME_LABEL, trial=self.trial)
        if self.trial >= len(self.order):
            self._finish(now)
        else:
            self._enter_fixation(float(now))

    def abort(self, now: float) -> None:
        """Stop for good. Completed trials (and their markers) stay valid."""
        if self.finished:
            return
        if self.state in TRIAL_STATES:
            self._discard_running(now)
        self._mark(now, ABORT_LABEL, trials_done=self.n_done)
        self.ended_at = float(now)
        self._enter(ProtocolState.ABORTED, now, None)

    # ------------------------------------------------------------------ internals
    def _discard_running(self, now: float) -> None:
        if self.state in (ProtocolState.CUE, ProtocolState.IMAGERY):
            self._mark(now, DISCARD_LABEL, trial=self.trial, cls=self.order[self.trial])

    def _enter_fixation(self, t: float) -> None:
        self._mark(t, TRIAL_START, trial=self.trial, cls=self.order[self.trial])
        self._enter(ProtocolState.FIXATION, t, t + self.timings.fixation)

    def _enter_cue(self, t: float) -> None:
        cls = self.order[self.trial]
        self._mark(t, f"{CUE_PREFIX}{cls}", duration=self.timings.task, trial=self.trial, cls=cls)
        self._enter(ProtocolState.CUE, t, t + self.timings.cue)
        for cb in list(self._cue_cbs):
            try:
                cb(self, cls, t, self.trial)
            except Exception:
                logger.exception("cue callback %r failed", cb)

    def _finish(self, t: float) -> None:
        self._mark(t, END_LABEL, trials_done=self.n_done)
        self.ended_at = t
        self._enter(ProtocolState.DONE, t, None)

    def _enter(self, state: ProtocolState, t: float, deadline: float | None) -> None:
        self.state = state
        self.state_since = t
        self.deadline = deadline
        self.history.append((t, state))
        logger.debug("protocol: %s at %.3f (trial %d)", state.value, t, self.trial)
        for cb in list(self._state_cbs):
            try:
                cb(self, state, t)
            except Exception:
                logger.exception("state callback %r failed", cb)

    def _mark(self, t: float, label: str, duration: float = 0.0, **extra) -> Marker:
        m = self.markers.add(t, label, duration, MARKER_SOURCE, **extra)
        if self.outlet is not None:
            try:
                self.outlet.push(label, t)
            except Exception:
                logger.exception("pushing marker %r to the LSL outlet failed", label)
        return m


# ---------------------------------------------------------------------------------------- helpers
def cue_map(classes: Sequence[str]) -> dict[str, str]:
    """``{"cue/left": "left", ...}`` for :func:`decoders.pseudo_online.trials_from_markers`."""
    return {f"{CUE_PREFIX}{c}": str(c) for c in classes}


def cue_args(classes: Sequence[str]) -> list[str]:
    """The same map as ``--cue`` arguments of ``bci-app replay``: ``["cue/left=left", ...]``."""
    return [f"{k}={v}" for k, v in cue_map(classes).items()]


def completed_trials(markers: Sequence[Marker], classes: Sequence[str] | None = None
                     ) -> list[tuple[float, str]]:
    """``(cue onset, class)`` of every trial that reached its ``imagery_end``.

    Works on a live :class:`MarkerLog`'s ``all()`` or on markers read back from a recording
    (trial indices come from ``extra['trial']`` when present, else from order).
    """
    markers = sorted(markers, key=lambda m: m.timestamp)
    out: list[tuple[float, str]] = []
    pending: tuple[float, str] | None = None
    for m in markers:
        if m.label.startswith(CUE_PREFIX):
            cls = m.label[len(CUE_PREFIX):]
            if classes is None or cls in classes:
                pending = (m.timestamp, cls)
        elif m.label == IMAGERY_END and pending is not None:
            out.append(pending)
            pending = None
        elif m.label in (DISCARD_LABEL, PAUSE_LABEL, ABORT_LABEL, TRIAL_START):
            pending = None
    return out


__all__ = [
    "ABORT_LABEL", "CUE_PREFIX", "END_LABEL", "IMAGERY_END", "PAUSE_LABEL", "RESUME_LABEL",
    "START_LABEL", "TRIAL_START", "GrazProtocol", "ProtocolState", "Timings", "balanced_order",
    "completed_trials", "cue_args", "cue_map",
]


# ---------------------------------------------------------------------------------------- runner
class ProtocolRunner:
    """Drive a :class:`GrazProtocol` against a source: pick the clock, forward cues.

    Parameters
    ----------
    protocol : GrazProtocol
        Its markers should go to ``source.markers`` (so they are recorded with the EEG).
    source : Source
        Connected. When it has a ``cue(class, at)`` method (a simulated subject) every cue is
        forwarded to it with the cue's scheduled time.
    clock : "auto" | "stream" | "lsl"
        ``"lsl"``: ``pylsl.local_clock()`` (a person watching a screen). ``"stream"``: the time of
        the next sample of the source (``source.next_timestamp`` or the newest buffered timestamp
        plus one period), so a subject faster than real time is cued on its own time base.
        ``"auto"``: ``"stream"`` for sources with ``cue`` (simulated), else ``"lsl"``.

    Notes
    -----
    :meth:`step` is what a GUI timer or the headless loop calls. In manual mode (source connected
    with ``acquisition=False``, e.g. a simulated subject at max speed) each step advances the
    protocol to the end of the next chunk and then acquires that chunk, so a cue due inside it
    is spliced at its exact sample. One thread calls step/pause/resume/abort.
    """

    def __init__(self, protocol: GrazProtocol, source, *, clock: str = "auto") -> None:
        if clock not in ("auto", "stream", "lsl"):
            raise ConfigError(f"clock: expected 'auto', 'stream' or 'lsl', got {clock!r}.")
        if source.info is None:
            raise RuntimeError("ProtocolRunner needs a connected source; call connect() first.")
        self.protocol = protocol
        self.source = source
        can_cue = callable(getattr(source, "cue", None))
        self.clock = ("stream" if can_cue else "lsl") if clock == "auto" else clock
        self._can_cue = can_cue
        if can_cue:
            protocol.add_cue_callback(self._forward_cue)
        self._sfreq = float(source.info.sfreq or 0.0)
        self._t = -math.inf  # the latest time the protocol was advanced to

    def _forward_cue(self, protocol, cls: str, t: float, trial: int) -> None:
        self.source.cue(cls, at=t)

    @property
    def manual(self) -> bool:
        """True when nobody else acquires: :meth:`step` pulls the source itself."""
        return getattr(self.source, "_thread", None) is None and self.source.connected

    def now(self) -> float:
        if self.clock == "lsl":
            from acquisition.lsl_env import import_pylsl

            return float(import_pylsl().local_clock())
        nxt = getattr(self.source, "next_timestamp", None)
        if nxt is not None:
            return float(nxt)
        buf = self.source.buffer
        if buf is None or buf.counter == 0:
            from acquisition.lsl_env import import_pylsl

            return float(import_pylsl().local_clock())
        ts = buf.latest(1).timestamps
        return float(ts[-1]) + (1.0 / self._sfreq if self._sfreq > 0 else 0.0)

    def _lookahead(self) -> float:
        chunk = getattr(self.source, "chunk_samples", 1)
        return chunk / self._sfreq if self._sfreq > 0 else 0.0

    def _advance(self, t: float) -> ProtocolState:
        self._t = max(self._t, t)
        return self.protocol.advance(t)

    def _control_time(self) -> float:
        """Now for pause/resume/abort: never before a transition already performed (markers
        stay in time order after a look-ahead step)."""
        return max(self.now(), self._t)

    def start(self) -> None:
        t = self.now()
        self._t = max(self._t, t)
        self.protocol.start(t)

    def step(self) -> ProtocolState:
        """Advance the protocol to now (manual mode: to the end of the next chunk, then pull it).

        A simulated subject on its own stream clock gets a cue due within its next chunk before
        it emits that chunk, so the trial is spliced at the cue's exact sample."""
        if self.manual:
            # the chunk about to be pulled covers [now, now + lookahead): a cue due in it is
            # handed to the source first and spliced at its exact sample
            self._advance(self.now() + self._lookahead() - 1e-9)
            self.source.acquire()
            return self.protocol.state
        if self.clock == "stream" and self._can_cue:
            # the source's thread emits [now, now + lookahead) next: a cue handed over after
            # that chunk went out was spliced up to a chunk after its marker
            return self._advance(self.now() + self._lookahead() - 1e-9)
        return self._advance(self.now())

    def pause(self) -> None:
        self.protocol.pause(self._control_time())

    def resume(self) -> None:
        self.protocol.resume(self._control_time())

    def abort(self) -> None:
        self.protocol.abort(self._control_time())

    def run(self, *, stop_event=None, tail: float = 0.5, timeout: float | None = None,
            on_step: Callable[[GrazProtocol], None] | None = None) -> ProtocolState:
        """Run to the end (headless): start if idle, step until DONE/ABORTED, then keep the
        source going for ``tail`` seconds of signal so the last trial's data is in the buffer.

        ``stop_event`` (threading.Event) set -> abort. ``timeout`` (wall seconds) -> abort with a
        logged error. Waits are bounded (new-data condition with a 50 ms timeout).
        """
        import time as _time

        if self.protocol.state == ProtocolState.IDLE:
            self.start()
        t0 = _time.monotonic()
        while not self.protocol.finished:
            if stop_event is not None and stop_event.is_set():
                self.abort()
                break
            if timeout is not None and _time.monotonic() - t0 > timeout:
                logger.error("protocol run exceeded %.1f s: aborting", timeout)
                self.abort()
                break
            if not self.manual:
                with self.source.new_data:
                    self.source.new_data.wait(0.05 if self.clock == "stream" else 0.01)
            self.step()
            if on_step is not None:
                on_step(self.protocol)
        end = self.protocol.ended_at if self.protocol.ended_at is not None else self.now()
        deadline = _time.monotonic() + max(5.0, 4 * tail)
        while self._data_end() < end + tail and _time.monotonic() < deadline:
            if self.manual:
                self.source.acquire()
            else:
                with self.source.new_data:
                    self.source.new_data.wait(0.05)
        return self.protocol.state

    def _data_end(self) -> float:
        buf = self.source.buffer
        if buf is None or buf.counter == 0:
            return -math.inf
        return float(buf.latest(1).timestamps[-1])


__all__ += ["ProtocolRunner"]
