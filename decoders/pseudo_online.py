"""Pseudo-online evaluation: what a BCI researcher reports from a replayed session with cues.

Given the stream of window predictions (window end time + probabilities) and the cue markers of
the recording, compute per-trial accuracy (mean probability or majority vote over the windows
inside each trial's imagery period), accuracy as a function of time after cue onset, and the
Wolpaw information transfer rate. The same functions score the DecoderWorker's predictions on a
replay and the offline reference (:func:`decoders.online.offline_window_predictions`), so the two
can be compared number for number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bci_app.errors import ConfigError

from .stats import guess_threshold, wilson_interval


def wolpaw_itr(accuracy: float, n_classes: int, seconds_per_selection: float) -> float:
    """Wolpaw et al. (2000) information transfer rate in bits per minute.

    ``B = log2 N + P log2 P + (1-P) log2((1-P)/(N-1))`` bits per selection, times selections
    per minute. Accuracy at or below chance gives 0 (the formula is not meaningful there).
    """
    n, p = int(n_classes), float(accuracy)
    if n < 2 or seconds_per_selection <= 0:
        raise ConfigError("wolpaw_itr needs n_classes >= 2 and seconds_per_selection > 0.")
    if p <= 1.0 / n:
        return 0.0
    bits = math.log2(n)
    if p < 1.0:
        bits += p * math.log2(p) + (1 - p) * math.log2((1 - p) / (n - 1))
    return bits * 60.0 / seconds_per_selection


@dataclass(frozen=True)
class Trial:
    onset: float
    label: int
    cue: str


def trials_from_markers(markers: Sequence, cue_map: dict[str, str], classes: Sequence[str]
                        ) -> list[Trial]:
    """Cue markers (label in ``cue_map``) as trials with class indices, sorted by time.

    Raises
    ------
    ConfigError
        When ``cue_map`` names a class the model does not have.
    """
    classes = list(classes)
    bad = sorted({c for c in cue_map.values() if c not in classes})
    if bad:
        raise ConfigError(
            f"--cue maps markers to {bad}, which the model does not know; its classes are {classes}."
        )
    out = [Trial(float(m.timestamp), classes.index(cue_map[m.label]), m.label)
           for m in markers if m.label in cue_map]
    return sorted(out, key=lambda t: t.onset)


@dataclass
class PseudoOnlineReport:
    """Results of a pseudo-online evaluation (see :func:`score_trials`)."""

    n_trials: int
    n_classes: int
    trial_accuracy: float
    correct: np.ndarray
    decision: str
    trial_start: float
    trial_end: float
    window_s: float
    time_axis: np.ndarray
    accuracy_over_time: np.ndarray
    seconds_per_trial: float
    itr_bits_per_min: float
    commands: int = 0
    minutes: float = 0.0
    command_accuracy: float = float("nan")
    extra: dict = field(default_factory=dict)
    #: cued trials, scored or not (``n_trials`` counts those with a reliable window to decide)
    n_cued: int = -1
    #: share of the most frequent class among the scored trials (NaN when none was scored)
    majority: float = float("nan")

    def __post_init__(self) -> None:
        if self.n_cued < 0:
            self.n_cued = self.n_trials

    @property
    def chance(self) -> float:
        return 1.0 / self.n_classes

    @property
    def chance_upper_95(self) -> float:
        """Trial accuracy a guesser exceeds with 5 % probability on these trials: binomial
        around the larger of :attr:`chance` and :attr:`majority` (always answering the more
        frequent class of unbalanced trials is not above chance)."""
        return guess_threshold(self.n_trials, self.n_classes, self.majority)

    @property
    def ci95(self) -> tuple[float, float]:
        """Wilson 95 % interval of the trial accuracy."""
        return wilson_interval(int(self.correct.sum()), self.n_trials)

    @property
    def commands_per_min(self) -> float:
        return self.commands / self.minutes if self.minutes > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "n_trials": self.n_trials, "n_cued": self.n_cued,
            "n_classes": self.n_classes, "chance": self.chance,
            "majority": None if math.isnan(self.majority) else self.majority,
            "chance_upper_95": None if not self.n_trials else self.chance_upper_95,
            "trial_accuracy": self.trial_accuracy,
            "ci95": None if not self.n_trials else list(self.ci95),
            "decision": self.decision,
            "trial_period_s": [self.trial_start, self.trial_end], "window_s": self.window_s,
            "accuracy_over_time": {f"{t:.2f}": (None if np.isnan(a) else float(a))
                                   for t, a in zip(self.time_axis, self.accuracy_over_time)},
            "seconds_per_trial": self.seconds_per_trial,
            "itr_bits_per_min": self.itr_bits_per_min,
            "commands": self.commands, "commands_per_min": self.commands_per_min,
            "command_accuracy": (None if np.isnan(self.command_accuracy)
                                 else self.command_accuracy),
            **self.extra,
        }

    def text(self) -> str:
        unscored = self.n_cued - self.n_trials
        lines = [
            f"trials: {self.n_trials}"
            + (f" of {self.n_cued} cued ({unscored} without a reliable window to decide: "
               "before the first prediction, or the signal was unreliable)" if unscored else "")
            + f"  classes: {self.n_classes} (chance {self.chance:.0%}"
            + (f", majority class {self.majority:.0%}" if self.majority > self.chance else "")
            + (f"; above {self.chance_upper_95:.1%} is significant on {self.n_trials} trials, "
               "p < 0.05" if self.n_trials else "") + ")",
            f"per-trial accuracy ({self.decision} over windows inside "
            f"[cue+{self.trial_start:g}, cue+{self.trial_end:g}] s): {self.trial_accuracy:.1%}"
            + (" (95 % CI {:.1%}-{:.1%})".format(*self.ci95) if self.n_trials else ""),
            f"Wolpaw ITR: {self.itr_bits_per_min:.2f} bits/min "
            f"({self.seconds_per_trial:.1f} s per trial)",
            f"commands: {self.commands} ({self.commands_per_min:.1f}/min), "
            f"correct during trials: "
            + ("n/a" if np.isnan(self.command_accuracy) else f"{self.command_accuracy:.1%}"),
            "accuracy over time after cue (window end):",
        ]
        for t, a in zip(self.time_axis, self.accuracy_over_time):
            bar = "" if np.isnan(a) else "#" * int(round(a * 40))
            lines.append(f"  {t:5.2f} s  {'  n/a' if np.isnan(a) else f'{a:5.1%}'}  {bar}")
        return "\n".join(lines)


def score_trials(
    window_ends: np.ndarray,
    probabilities: np.ndarray,
    trials: Sequence[Trial],
    *,
    window_s: float,
    trial_start: float = 0.5,
    trial_end: float = 4.0,
    decision: str = "mean",
    time_axis: np.ndarray | None = None,
    reliable: np.ndarray | None = None,
    commands: Sequence[tuple[float, str]] = (),
    classes: Sequence[str] = (),
    total_seconds: float | None = None,
) -> PseudoOnlineReport:
    """Score window predictions against cued trials.

    Parameters
    ----------
    window_ends : ndarray, shape (n_windows,)
        Time of each window's last sample (same clock as the trial onsets).
    probabilities : ndarray, shape (n_windows, n_classes)
    trials : list of Trial
    window_s : float
        Window length; a window counts for a trial when all of it lies inside
        ``[onset + trial_start, onset + trial_end]``. If no window fits (window longer than the
        period), the window ending closest to ``onset + trial_end`` decides. A trial whose
        deciding windows are all unreliable is not scored (``n_trials`` < ``n_cued``): no
        window from outside its period stands in for them.
    decision : "mean" | "majority"
        Mean probability over the trial's windows, or majority vote of their labels.
    time_axis : ndarray
        Offsets after cue onset (s) at which accuracy-over-time is sampled (nearest window end).
    reliable : ndarray of bool, optional
        Windows marked unreliable are ignored (they decide nothing).
    commands : sequence of (time, label)
        Discrete commands issued during the session, for command rate and accuracy.
    """
    if decision not in ("mean", "majority"):
        raise ConfigError(f"decision must be 'mean' or 'majority', got {decision!r}.")
    ends = np.asarray(window_ends, dtype=float)
    P = np.asarray(probabilities, dtype=float)
    # which windows decide a trial is chosen among all of them, then the unreliable ones drop
    # out: otherwise a trial whose windows were all unreliable took the nearest reliable one,
    # up to 1 s after its period (rest EEG)
    ends_all = ends
    keep = np.ones(len(ends), bool) if reliable is None else np.asarray(reliable, bool)
    ends, P = ends[keep], P[keep]
    kept_index = np.cumsum(keep) - 1  # index among the reliable windows
    n_classes = P.shape[1] if P.ndim == 2 and P.size else max(2, len(classes))
    if time_axis is None:
        time_axis = np.round(np.arange(0.0, trial_end + 2.0001, 0.5), 3)
    tol = 0.26  # seconds: accuracy-over-time takes the window ending nearest each offset
    correct, scored_labels = [], []
    over_time = np.full((len(trials), len(time_axis)), np.nan)
    for i, tr in enumerate(trials):
        lo, hi = tr.onset + trial_start + window_s, tr.onset + trial_end
        sel = np.nonzero((ends_all >= lo - 1e-9) & (ends_all <= hi + 1e-9))[0]
        if sel.size == 0 and ends_all.size:
            j = int(np.argmin(np.abs(ends_all - hi)))
            sel = np.array([j]) if abs(ends_all[j] - hi) < 1.0 else sel
        sel = kept_index[sel[keep[sel]]]
        if sel.size == 0:
            continue
        if decision == "mean":
            pred = int(np.argmax(P[sel].mean(axis=0)))
        else:
            votes = np.bincount(np.argmax(P[sel], axis=1), minlength=n_classes)
            pred = int(np.argmax(votes))
        correct.append(pred == tr.label)
        scored_labels.append(tr.label)
        for k, off in enumerate(time_axis):
            t = tr.onset + off
            j = int(np.searchsorted(ends, t))
            cands = [c for c in (j - 1, j) if 0 <= c < len(ends)]
            if cands:
                c = min(cands, key=lambda c: abs(ends[c] - t))
                if abs(ends[c] - t) <= tol:
                    over_time[i, k] = float(np.argmax(P[c]) == tr.label)
    correct = np.asarray(correct, bool)
    acc = float(correct.mean()) if correct.size else float("nan")
    onsets = np.array([t.onset for t in trials])
    spt = float(np.median(np.diff(onsets))) if len(onsets) > 1 else trial_end
    with np.errstate(invalid="ignore"):
        aot = np.array([np.nanmean(c) if np.isfinite(c).any() else np.nan for c in over_time.T])
    cmd_correct = []
    for t, label in commands:
        inside = [tr for tr in trials if tr.onset + trial_start <= t <= tr.onset + trial_end]
        if inside and classes:
            cmd_correct.append(label == list(classes)[inside[0].label])
    minutes = (total_seconds or (ends[-1] - ends[0] if ends.size > 1 else 0.0)) / 60.0
    return PseudoOnlineReport(
        n_trials=int(correct.size), n_classes=int(n_classes), trial_accuracy=acc,
        correct=correct, decision=decision, trial_start=trial_start, trial_end=trial_end,
        window_s=window_s, time_axis=np.asarray(time_axis), accuracy_over_time=aot,
        seconds_per_trial=spt,
        itr_bits_per_min=wolpaw_itr(acc, n_classes, spt) if correct.size else 0.0,
        commands=len(commands), minutes=minutes,
        command_accuracy=float(np.mean(cmd_correct)) if cmd_correct else float("nan"),
        n_cued=len(trials),
        majority=(float(np.bincount(scored_labels).max() / len(scored_labels))
                  if scored_labels else float("nan")),
    )


def parse_cue_map(items: Sequence[str] | None, classes: Sequence[str]) -> dict[str, str]:
    """``["T1=left", "T2=right"]`` → dict. Default: markers named like the classes map to them,
    plus EEGMMIDB's ``T1``/``T2`` for left/right models."""
    if items:
        out = {}
        for item in items:
            key, eq, value = item.partition("=")
            if not eq or not key or not value:
                raise ConfigError(f"--cue expects MARKER=CLASS (e.g. T1=left), got {item!r}.")
            out[key] = value
        return out
    out = {c: c for c in classes}
    if set(classes) == {"left", "right"}:
        out.update({"T1": "left", "T2": "right"})
    return out
