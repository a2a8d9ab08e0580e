"""A simulated subject: real recorded EEG that answers a protocol's cues.

:class:`SimulatedSubjectSource` is a :class:`~acquisition.base.Source` built from labelled
recordings (EEGMMIDB runs, or any :class:`~acquisition.files.FileRecording` with rest and class
markers). Between cues it streams **real rest EEG** (the recordings' rest segments, e.g. EEGMMIDB
``T0``); when told :meth:`~SimulatedSubjectSource.cue` ``(class_name, at)`` it splices in a **real
recorded trial of that class**, starting at the cue's time on the stream's clock, then goes on with
the rest EEG that followed that trial in the recording. So a calibration run against it yields a
labelled recording of real brain signals, and a decoder trained on it can be checked on the trials
it never played (:meth:`~SimulatedSubjectSource.unplayed_trials`).

Signal
------
Segments are joined with a short linear cross-fade (``crossfade_s``, default 50 ms) between the
signal that would have followed and the new segment, so a jump causes no step that a filter
would ring on. Trials of a class are drawn at random without replacement (``seed``); when all were
played the pool is reshuffled (logged). :attr:`played` keeps, for each cue, which real trial was
played and when (ground truth for tests). Memory is bounded: the recordings (float32) plus the
base class's ring buffer; :attr:`played` grows by one small record per cue.

Time and pacing
---------------
As in :class:`~acquisition.replay.ReplaySource`: sample ``k`` (counted from connect) gets the LSL
timestamp ``anchor + k / sfreq`` with ``anchor = local_clock()`` at connect; ``speed`` 1.0 = real
time, N = N times faster (timestamps run ahead of the wall clock), ``"max"`` = one chunk per pull
(manual mode: ``connect(acquisition=False)`` + ``acquire()``). :attr:`next_timestamp` is the time
the next sample will carry: the clock a protocol must use to cue a subject faster than real time.

Threads
-------
:meth:`cue` may be called from any thread (the protocol's driver); it takes a short lock shared
with :meth:`_pull` on the acquisition thread. A cue whose time lies in the future (on the stream
clock) starts exactly at the first sample at or after it; one whose time has already been streamed
starts at the next sample, and the delay is recorded as ``lag`` in :attr:`played`.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bci_app.errors import ConfigError, DataFileError

from .base import Source, SourceState
from .files import FileRecording, read_file
from .lsl_env import import_pylsl
from .replay import _parse_speed
from .stream_info import StreamInfo

logger = logging.getLogger(__name__)

#: EEGMMIDB imagery runs: annotation -> class name (runs 4/8/12: left/right fist imagery).
EEGMMIDB_LR = {"T1": "left", "T2": "right"}
#: Runs 6/10/14: both fists / both feet imagery.
EEGMMIDB_FF = {"T1": "fists", "T2": "feet"}
#: Label of the ground-truth marker the source leaves at each spliced trial's first sample.
TRIAL_MARKER = "simulated/trial"


@dataclass(frozen=True)
class TrialRef:
    """One recorded trial that can be played.

    Attributes
    ----------
    key : str
        ``"<recording name>#<onset sample>"``, unique within the source.
    recording : int
        Index into :attr:`SimulatedSubjectSource.recordings`.
    cls : str
        Class name.
    start, stop : int
        Sample range of the trial in its recording (cue onset to end of the task period).
    onset_s : float
        Cue onset in seconds from the recording's start.
    """

    key: str
    recording: int
    cls: str
    start: int
    stop: int
    onset_s: float


@dataclass(frozen=True)
class PlayedTrial:
    """Ground truth of one cue: which real trial was played and when.

    ``cls`` is the class of the trial played; ``cued`` the class asked for (they differ only for
    a subject with ``compliance < 1``)."""

    cue_index: int
    cls: str
    trial: TrialRef
    requested_at: float | None
    onset: float  # LSL time of the trial's first sample
    lag: float  # onset - requested_at (0 when the cue came in time)
    cued: str = ""


def standardize_eegmmidb_name(name: str) -> str:
    """PhysioNet labels to 10-05 names, as ``mne.datasets.eegbci.standardize``: ``Fc5.`` ->
    ``FC5``, ``Fcz.`` -> ``FCz``, ``Fp1.`` -> ``Fp1``, ``Iz..`` -> ``Iz``."""
    n = name.strip().rstrip(".").upper()
    if n.endswith("Z"):
        n = n[:-1] + "z"
    if n.startswith("FP"):
        n = "Fp" + n[2:]
    return n


def eegmmidb_files(subject: int, runs: Sequence[int], data_dir: str | os.PathLike | None = None
                   ) -> list[Path]:
    """Paths of EEGMMIDB EDF files in MNE's eegbci layout; DataFileError names missing ones."""
    if data_dir is None:
        from bci_app.config import eegmmidb_dir

        data_dir = eegmmidb_dir()
    base = Path(data_dir) / "MNE-eegbci-data" / "files" / "eegmmidb" / "1.0.0" / f"S{subject:03d}"
    paths = [base / f"S{subject:03d}R{r:02d}.edf" for r in runs]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataFileError(
            f"simulated subject {subject}: {missing} not found under {base}. Fix: point "
            "BCI_APP_DATA_DIR at the shared data (eegmmidb/ in MNE's eegbci layout) or choose "
            "subjects that are present (S001-S020, runs 4/8/12)."
        )
    return paths


class SimulatedSubjectSource(Source):
    """Real EEG that answers cues: rest between cues, a recorded trial of the cued class on cue.

    Parameters
    ----------
    recordings : sequence of FileRecording or paths
        Labelled recordings with the same channels and rate (read at :meth:`connect` when paths).
    class_events : mapping
        Marker label in the recordings -> class name (default EEGMMIDB runs 4/8/12:
        ``{"T1": "left", "T2": "right"}``). A class may map from several labels.
    rest_events : sequence of str
        Marker labels of rest segments (default ``("T0",)``).
    trial_seconds : float | None
        Length of a played trial; default each marker's own duration (4.1 s in EEGMMIDB), or
        4 s for markers without one.
    trial_filter : callable(TrialRef) -> bool, optional
        Only trials for which it returns True are ever played (e.g. to hold some out).
    speed : float | "max"
        1.0 real time, N times faster, or "max" (one chunk per pull; manual mode).
    chunk_samples : int | None
        Samples per chunk; default 20 ms of signal.
    seed : int | None
        Seeds the choice of trials and rest segments.
    crossfade_s : float
        Length of the linear cross-fade at every jump between segments.
    compliance : float
        Probability that the subject does what the cue asks (default 1). Otherwise it plays a
        trial of a class drawn at random: ``compliance=0`` is a subject who ignores the cues
        (labels independent of the EEG: a decoder must score at chance).
    standardize_names : bool
        Rename channels with :func:`standardize_eegmmidb_name` (PhysioNet ``Fc5.`` -> ``FC5``).
    name : str
        Stream name (default ``"Simulated subject"``).
    reconnect : bool
        Default False; other keyword arguments go to :class:`~acquisition.base.Source`.
    """

    kind = "simulated"

    def __init__(
        self,
        recordings: Sequence[FileRecording | str | os.PathLike],
        *,
        class_events: Mapping[str, str] | None = None,
        rest_events: Sequence[str] = ("T0",),
        trial_seconds: float | None = None,
        trial_filter: Callable[[TrialRef], bool] | None = None,
        speed: float | str = 1.0,
        chunk_samples: int | None = None,
        seed: int | None = 0,
        crossfade_s: float = 0.05,
        compliance: float = 1.0,
        standardize_names: bool = False,
        name: str | None = None,
        reconnect: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(reconnect=reconnect, **kwargs)
        if isinstance(recordings, (FileRecording, str, os.PathLike)):
            recordings = [recordings]
        recordings = list(recordings)
        if not recordings:
            raise ConfigError("SimulatedSubjectSource needs at least one recording, got none.")
        for r in recordings:
            if not isinstance(r, (FileRecording, str, os.PathLike)):
                raise ConfigError(
                    f"SimulatedSubjectSource recordings must be FileRecordings or paths, got "
                    f"{type(r).__name__}."
                )
        self._recording_args = recordings
        self.class_events = dict(class_events if class_events is not None else EEGMMIDB_LR)
        if not self.class_events:
            raise ConfigError("class_events: expected at least one {marker label: class} pair.")
        self.rest_events = tuple(rest_events)
        if trial_seconds is not None and not trial_seconds > 0:
            raise ConfigError(f"trial_seconds: expected > 0 s or None, got {trial_seconds!r}.")
        self.trial_seconds = trial_seconds
        self.trial_filter = trial_filter
        self.speed = _parse_speed(speed)
        if chunk_samples is not None and (isinstance(chunk_samples, bool)
                                          or int(chunk_samples) != chunk_samples
                                          or chunk_samples < 1):
            raise ConfigError(f"chunk_samples: expected a positive integer or None, got "
                              f"{chunk_samples!r}.")
        self._chunk_arg = None if chunk_samples is None else int(chunk_samples)
        self.seed = seed
        if not crossfade_s >= 0:
            raise ConfigError(f"crossfade_s: expected >= 0 s, got {crossfade_s!r}.")
        self.crossfade_s = float(crossfade_s)
        if not 0.0 <= compliance <= 1.0:
            raise ConfigError(f"compliance: expected a probability in [0, 1], got {compliance!r}.")
        self.compliance = float(compliance)
        self.standardize_names = bool(standardize_names)
        self._name = name or "Simulated subject"
        self.recordings: list[FileRecording] = []
        self.trials: list[TrialRef] = []
        self.rest_segments: list[tuple[int, int, int]] = []  # (recording, start, stop)
        self.played: list[PlayedTrial] = []
        self.subjects: list[int] = []
        self.runs: list[int] = []
        self._data: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._prepared = False
        self.chunk_samples = 1
        self._reset_stream()

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_eegmmidb(cls, subjects: int | Sequence[int], runs: Sequence[int] = (4, 8, 12),
                      data_dir: str | os.PathLike | None = None, **kwargs
                      ) -> SimulatedSubjectSource:
        """A simulated subject playing EEGMMIDB ``subjects``' ``runs`` (files read at connect).

        Runs 4/8/12 give ``left``/``right`` (fist imagery), runs 6/10/14 ``fists``/``feet``;
        mixing the two families is refused (T1/T2 mean different things).
        """
        subjects = [int(subjects)] if isinstance(subjects, (int, np.integer)) else \
            [int(s) for s in subjects]
        if not subjects:
            raise ConfigError("from_eegmmidb: expected at least one subject id.")
        runs = [int(r) for r in runs]
        lr, ff = {4, 8, 12}, {6, 10, 14}
        if set(runs) <= lr:
            events = EEGMMIDB_LR
        elif set(runs) <= ff:
            events = EEGMMIDB_FF
        else:
            raise ConfigError(
                f"runs: expected imagery runs from one family, 4/8/12 (left/right fist) or "
                f"6/10/14 (both fists/feet); got {runs}."
            )
        paths = [p for s in subjects for p in eegmmidb_files(s, runs, data_dir)]
        kwargs.setdefault("class_events", events)
        kwargs.setdefault("standardize_names", True)
        kwargs.setdefault("name", f"Simulated subject (EEGMMIDB S{','.join(map(str, subjects))})")
        src = cls(paths, **kwargs)
        src.subjects = subjects
        src.runs = runs
        return src

    @property
    def classes(self) -> list[str]:
        """Class names in first-seen order of ``class_events``."""
        return list(dict.fromkeys(self.class_events.values()))

    def prepare(self) -> SimulatedSubjectSource:
        """Read the recordings and index their trials and rest segments (done by connect)."""
        if self._prepared:
            return self
        recs = [r if isinstance(r, FileRecording) else read_file(r) for r in self._recording_args]
        first = recs[0]
        if first.sfreq <= 0:
            raise ConfigError(f"recording {first.info.name!r} has no sampling rate.")
        for r in recs[1:]:
            if r.info.ch_names != first.info.ch_names or abs(r.sfreq - first.sfreq) > 1e-9:
                raise ConfigError(
                    f"recordings: {r.info.name!r} has other channels or rate than "
                    f"{first.info.name!r}; a simulated subject needs one layout."
                )
        sf = first.sfreq
        trials, rests = [], []
        for i, r in enumerate(recs):
            for m in r.markers:
                start = int(round((m.timestamp - r.times[0]) * sf))
                dur = m.duration if m.duration > 0 else 4.0
                if m.label in self.class_events:
                    dur = self.trial_seconds or dur
                    stop = min(r.n_samples, start + int(round(dur * sf)))
                    if start < 0 or stop - start < int(0.5 * dur * sf):
                        continue
                    ref = TrialRef(f"{r.info.name}#{start}", i, self.class_events[m.label],
                                   start, stop, float(m.timestamp - r.times[0]))
                    if self.trial_filter is None or self.trial_filter(ref):
                        trials.append(ref)
                elif m.label in self.rest_events:
                    stop = min(r.n_samples, start + int(round(dur * sf)))
                    if start >= 0 and stop - start >= int(0.5 * sf):
                        rests.append((i, start, stop))
        missing = [c for c in self.classes if not any(t.cls == c for t in trials)]
        if missing:
            raise DataFileError(
                f"simulated subject: no trials of class {missing} in the recordings (class "
                f"markers {sorted(self.class_events)}); check class_events and trial_filter."
            )
        if not rests:
            raise DataFileError(
                f"simulated subject: no rest segments (markers {list(self.rest_events)}) in the "
                "recordings; a simulated subject needs real rest EEG between cues."
            )
        self.recordings = recs
        self._data = [np.ascontiguousarray(r.data, dtype=np.float32) for r in recs]
        self.trials = trials
        self.rest_segments = rests
        self._prepared = True
        logger.info("Simulated subject: %d recordings, %d trials (%s), %d rest segments",
                    len(recs), len(trials),
                    ", ".join(f"{c}: {sum(t.cls == c for t in trials)}" for c in self.classes),
                    len(rests))
        return self

    # ------------------------------------------------------------------ stream state
    def _reset_stream(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._out = 0  # samples emitted since connect
        self._anchor = 0.0
        self._seg: tuple[int, int, int] | None = None  # (recording, pos, stop)
        self._seg_kind = "rest"
        self._fade: tuple[int, int, int] | None = None  # (recording, pos, samples left)
        self._pending: list[tuple[int, str, float | None]] = []  # (start sample, class, at)
        self._pools: dict[str, list[int]] = {}
        self._pace_t0 = time.monotonic()
        self._pace_idx0 = 0
        self.played = []
        self.n_cues = 0

    @property
    def sfreq(self) -> float:
        return self.recordings[0].sfreq if self.recordings else 0.0

    @property
    def next_timestamp(self) -> float:
        """LSL time the next emitted sample will carry (the stream clock)."""
        sf = self.sfreq or 1.0
        return self._anchor + self._out / sf

    @property
    def samples_emitted(self) -> int:
        return self._out

    def _open(self, timeout: float) -> StreamInfo:
        self.prepare()
        first = self.recordings[0]
        with self._lock:
            self._reset_stream()
            self.chunk_samples = self._chunk_arg or max(1, int(round(first.sfreq / 50.0)))
            self._anchor = float(import_pylsl().local_clock())
            self._pace_t0 = time.monotonic()
            self._seg = self._random_rest()
            self._seg_kind = "rest"
        names = first.info.ch_names
        if self.standardize_names:
            names = tuple(standardize_eegmmidb_name(n) for n in names)
        info = replace(
            first.info, name=self._name, source_kind="simulated", ch_names=names,
            source_id="",
            metadata={"recordings": [str(r.info.metadata.get("path", r.info.name))
                                     for r in self.recordings],
                      "classes": self.classes, "n_trials": len(self.trials)},
        )
        logger.info("Simulated subject %s: %d ch @ %g Hz, %s, chunks of %d", info.name,
                    info.n_channels, info.sfreq,
                    "max speed" if math.isinf(self.speed) else f"{self.speed:g}x",
                    self.chunk_samples)
        return info

    def _close(self) -> None:
        """Nothing to release (recordings stay in memory for the next connect)."""

    # ------------------------------------------------------------------ cues
    def cue(self, class_name: str, at: float | None = None) -> None:
        """Play a real trial of ``class_name`` starting at LSL time ``at`` (default: next sample).

        Any thread. Raises ConfigError for a class the recordings do not have, RuntimeError when
        not connected.
        """
        if class_name not in self.classes:
            raise ConfigError(
                f"cue: class {class_name!r} is not one this simulated subject can play; it has "
                f"{self.classes}."
            )
        if self.buffer is None:
            raise RuntimeError("SimulatedSubjectSource.cue: connect() first.")
        sf = self.sfreq
        with self._lock:
            if at is None:
                start = self._out
            else:
                start = max(self._out, int(math.ceil((float(at) - self._anchor) * sf - 1e-6)))
            self._pending.append((start, class_name, None if at is None else float(at)))
            self._pending.sort(key=lambda p: p[0])
            self.n_cues += 1

    def _next_trial(self, cls: str) -> TrialRef:
        pool = self._pools.get(cls)
        if not pool:
            idx = [i for i, t in enumerate(self.trials) if t.cls == cls]
            if cls in self._pools:
                logger.info("Simulated subject: every %s trial was played; reusing them", cls)
            pool = list(self._rng.permutation(idx))
            self._pools[cls] = pool
        return self.trials[int(pool.pop())]

    def unplayed_trials(self) -> list[TrialRef]:
        """Trials never played so far (e.g. to test a decoder trained on the played ones)."""
        used = {p.trial.key for p in self.played}
        return [t for t in self.trials if t.key not in used]

    # ------------------------------------------------------------------ signal generation
    def _random_rest(self, exclude: tuple[int, int] | None = None) -> tuple[int, int, int]:
        n = len(self.rest_segments)
        for _ in range(4):
            i, a, b = self.rest_segments[int(self._rng.integers(n))]
            if exclude is None or (i, a) != exclude or n == 1:
                return (i, a, b)
        return self.rest_segments[int(self._rng.integers(n))]

    def _jump(self, seg: tuple[int, int, int], kind: str) -> None:
        """Switch to ``seg`` with a cross-fade from where the old segment would have gone on."""
        old = self._seg
        nf = int(round(self.crossfade_s * self.sfreq))
        if old is not None and nf > 0:
            rec, pos, _ = old
            left = min(nf, self._data[rec].shape[0] - pos)
            self._fade = (rec, pos, left) if left > 0 else None
        else:
            self._fade = None
        self._seg = seg
        self._seg_kind = kind

    def _after_trial(self, rec: int, stop: int) -> tuple[int, int, int]:
        """The rest that followed a trial in its recording, else a random rest segment."""
        for i, a, b in self.rest_segments:
            if i == rec and abs(a - stop) <= int(0.2 * self.sfreq):
                return (i, stop, b)
        return self._random_rest()

    def _generate(self, n: int) -> np.ndarray:
        """The next ``n`` samples (caller holds the lock)."""
        out = np.empty((n, self._data[0].shape[1]), dtype=np.float32)
        filled = 0
        while filled < n:
            k = self._out + filled
            while self._pending and self._pending[0][0] <= k:
                start, cued, at = self._pending.pop(0)
                cls = cued
                if self.compliance < 1.0 and self._rng.random() >= self.compliance:
                    cls = self.classes[int(self._rng.integers(len(self.classes)))]
                trial = self._next_trial(cls)
                onset = self._anchor + k / self.sfreq
                self.played.append(PlayedTrial(len(self.played), cls, trial, at, onset,
                                               0.0 if at is None else max(0.0, onset - at),
                                               cued))
                self.markers.add(onset, TRIAL_MARKER, (trial.stop - trial.start) / self.sfreq,
                                 "simulated", cls=cls, cued=cued, trial=trial.key,
                                 requested_at=at)
                self._jump((trial.recording, trial.start, trial.stop), "trial")
            rec, pos, stop = self._seg
            take = min(n - filled, stop - pos)
            if self._pending:
                take = min(take, self._pending[0][0] - k)
            if take <= 0:  # segment used up: move on
                if self._seg_kind == "trial":
                    self._jump(self._after_trial(rec, stop), "rest")
                else:
                    self._jump(self._random_rest(exclude=(rec, pos)), "rest")
                continue
            block = self._data[rec][pos:pos + take]
            if self._fade is not None:
                frec, fpos, left = self._fade
                m = min(take, left)
                nf = max(1, int(round(self.crossfade_s * self.sfreq)))
                done = nf - left
                w = ((np.arange(m) + done + 1) / (nf + 1)).astype(np.float32)[:, None]
                block = block.copy()
                block[:m] = w * block[:m] + (1 - w) * self._data[frec][fpos:fpos + m]
                self._fade = (frec, fpos + m, left - m) if left - m > 0 else None
            out[filled:filled + take] = block
            self._seg = (rec, pos + take, stop)
            filled += take
        return out

    def _pull(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Emit the samples due (all of one chunk at max speed); never blocks."""
        if not self._prepared:
            return None
        sf = self.sfreq
        with self._lock:
            a = self._out
            if math.isinf(self.speed):
                n = self.chunk_samples
            else:
                due = self._pace_idx0 + int((time.monotonic() - self._pace_t0) * sf * self.speed)
                n = ((due - a) // self.chunk_samples) * self.chunk_samples
            if n <= 0:
                return None
            data = self._generate(n)
            ts = self._anchor + (a + np.arange(n)) / sf
            self._out = a + n
        return data.astype(np.float64), ts

    def acquire_until(self, t: float, max_chunks: int = 1_000_000) -> int:
        """Manual mode: acquire chunks until :attr:`next_timestamp` passes ``t``; returns samples."""
        got = 0
        for _ in range(max_chunks):
            if self.next_timestamp > t:
                break
            got += self.acquire()
        return got

    def check_health(self, now: float | None = None) -> SourceState:
        return super().check_health(now)


__all__ = [
    "EEGMMIDB_FF", "EEGMMIDB_LR", "PlayedTrial", "SimulatedSubjectSource", "TRIAL_MARKER",
    "TrialRef", "eegmmidb_files", "standardize_eegmmidb_name",
]
