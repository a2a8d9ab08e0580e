"""Calibration of a new user: adapt the pretrained decoder to a few cued trials, score it honestly.

Input: the user's cued trials, already preprocessed with the pretrained bundle's chain (same
channels, rate and window: :func:`epochs_from_stream` cuts them from a continuous recording, the
way ``decoders.data`` cuts EEGMMIDB). Output (:func:`calibrate`):

* **adapted** bundle: Euclidean alignment fitted on the user's trials (He & Wu 2019; unlabeled use)
  plus fine-tuning of the pretrained model on the aligned, labelled trials
  (``Decoder.partial_fit``: a few epochs, BatchNorm frozen);
* **baseline**: the Riemannian tangent-space + logistic-regression decoder (``ts_lr``) fitted on
  the same trials alone, the standard a deep model has to beat;
* cross-validated accuracy of both (stratified k-fold over the user's trials; every fold refits
  alignment and fine-tuning on its training part only), with the chance level, the accuracy a
  random classifier exceeds with 5 % probability (binomial), a Wilson 95 % confidence interval and
  the confusion matrix;
* ERD/ERS maps: per class and channel, band power during imagery relative to the pre-cue fixation
  (``100 * (P_task / P_ref - 1)`` in %, negative = desynchronisation), for MNE topomaps.

Runs in the caller's thread (the wizard uses a worker thread); ``progress(fraction, message)`` is
called from that thread. With the default settings it takes a few seconds on 2 CPU cores.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.base import gap_threshold
from bci_app.errors import BciAppError, ConfigError

from .bundle import Bundle
from .estimators import Decoder, make_decoder
from .preprocessing import ChannelMapping, EuclideanAlignment, Preprocessor
from .stats import chance_upper, guess_threshold, wilson_interval

logger = logging.getLogger(__name__)

__all__ = [
    "CVScore", "CalibrationCancelled", "CalibrationEpochs", "CalibrationResult",
    "DROP_REASONS", "band_power_maps", "calibrate", "describe_trials",
    "chance_upper", "cross_validate", "epochs_from_stream", "scratch_decoder", "wilson_interval",
]

Progress = Callable[[float, str], None]


class CalibrationCancelled(BciAppError, RuntimeError):
    """:func:`calibrate` stopped early because its ``cancel`` flag was set (no result)."""


def _cancel_check(cancel) -> Callable[[], None] | None:
    """A function that raises :class:`CalibrationCancelled` once ``cancel`` is set.

    ``cancel``: None, an object with ``is_set()`` (``threading.Event``) or a callable -> bool.
    """
    if cancel is None:
        return None
    is_set = cancel.is_set if hasattr(cancel, "is_set") else cancel
    if not callable(is_set):
        raise TypeError(f"cancel: expected a threading.Event, a callable or None, got "
                        f"{type(cancel).__name__}.")

    def check() -> None:
        if is_set():
            raise CalibrationCancelled("calibration cancelled")

    return check


@contextlib.contextmanager
def _interruptible(dec: Decoder, check: Callable[[], None] | None) -> Iterator[None]:
    """While training ``dec`` (a torch decoder), run ``check`` before every forward pass of its
    network, so a cancel takes effect within one batch instead of after the whole fine-tuning.
    The hooks are removed afterwards (the returned decoder carries none)."""
    net = getattr(dec, "net_", None)
    if check is None or net is None or not hasattr(net, "modules"):
        yield
        return
    handles = [m.register_forward_pre_hook(lambda _m, _a: check()) for m in net.modules()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class CVScore:
    """Cross-validated accuracy of one decoder on the user's trials."""

    name: str
    y_true: np.ndarray
    y_pred: np.ndarray
    n_classes: int
    folds: int

    @property
    def n(self) -> int:
        return int(len(self.y_true))

    @property
    def correct(self) -> int:
        return int(np.sum(self.y_true == self.y_pred))

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    @property
    def chance(self) -> float:
        """Nominal chance level, ``1 / n_classes`` (what balanced trials give)."""
        return 1.0 / self.n_classes

    @property
    def majority(self) -> float:
        """Share of the most frequent class of ``y_true``: the accuracy of always answering it.
        Above :attr:`chance` when trials were dropped or discarded unevenly."""
        if not self.n:
            return float("nan")
        return float(np.bincount(np.asarray(self.y_true, dtype=int),
                                 minlength=self.n_classes).max()) / self.n

    @property
    def chance_upper_95(self) -> float:
        """Accuracy a guesser exceeds with 5 % probability: binomial around the larger of
        :attr:`chance` and :attr:`majority` (a decoder that learnt only the class imbalance of
        unbalanced trials is not above chance)."""
        return guess_threshold(self.n, self.n_classes, self.majority)

    @property
    def confusion(self) -> np.ndarray:
        """Counts, rows = true class, columns = predicted class."""
        cm = np.zeros((self.n_classes, self.n_classes), dtype=int)
        for t, p in zip(self.y_true, self.y_pred):
            cm[int(t), int(p)] += 1
        return cm

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.ci95
        return {"model": self.name, "accuracy": round(self.accuracy, 4), "n_trials": self.n,
                "ci95": [round(lo, 4), round(hi, 4)], "chance": round(self.chance, 4),
                "majority_share": round(self.majority, 4),
                "chance_upper_95": round(self.chance_upper_95, 4), "cv_folds": self.folds,
                "confusion": self.confusion.tolist()}

    def text(self) -> str:
        lo, hi = self.ci95
        majority = f" (majority class {self.majority:.0%})" if self.majority > self.chance \
            else ""
        return (f"{self.name}: {self.accuracy:.1%} ({self.correct}/{self.n}, 95% CI "
                f"{lo:.1%}-{hi:.1%}; chance {self.chance:.0%}{majority}, significant above "
                f"{self.chance_upper_95:.1%})")


# ---------------------------------------------------------------------------------------- epochs
@dataclass
class CalibrationEpochs:
    """Cued trials of one calibration run, preprocessed like the bundle's training data.

    X : (n_trials, n_chans, n_times) task windows ``[tmin, tmax)`` after each cue;
    X_ref : (n_trials, n_chans, n_ref) pre-cue windows (fixation) for ERD/ERS, or None; the
    rows of trials whose pre-cue window is not in the data (before the stream started, or
    across a gap) are NaN: the trial itself is kept, its task window is clean.
    y : (n_trials,) class indices into ``classes``; onsets : (n_trials,) cue times.
    dropped : cues of a known class that gave no trial, by reason: ``"outside"`` (the window
    does not fit in the data), ``"gap"`` (the task window spans a gap in the timestamps,
    samples missing there, or starts before the filter settled after one) and ``"clock"``
    (the stream's clock went back, and the window's time occurs twice in it). ``no_reference``: trials kept without a pre-cue window.
    outcomes : one dict per cue of a known class, in cue order: ``onset``, ``class``, ``kept``,
    ``reason`` (a key of ``dropped``; None when kept) and ``reference`` (kept trials: whether
    their pre-cue window is in ``X_ref``; None without ``ref_window`` or when dropped).
    :meth:`accounting` sums them up for the calibration report.
    """

    X: np.ndarray
    y: np.ndarray
    onsets: np.ndarray
    classes: list[str]
    ch_names: list[str]
    sfreq: float
    tmin: float
    tmax: float
    X_ref: np.ndarray | None = None
    ref_window: tuple[float, float] | None = None
    dropped: dict[str, int] = field(
        default_factory=lambda: {"outside": 0, "gap": 0, "clock": 0})
    no_reference: int = 0
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def accounting(self) -> dict[str, Any]:
        """Every cued trial, kept or dropped with its reason (JSON-ready; the calibration
        report, ``profile.json`` and :func:`describe_trials` use it).

        ``cued`` = ``kept`` + the sum of ``dropped``; ``kept_without_reference``: kept trials
        whose pre-cue window is missing (trained on like the others; left out of the ERD/ERS
        maps only); ``trials``: :attr:`outcomes`, numbered from 1 in cue order.
        """
        return {
            "cued": len(self.outcomes), "kept": int(len(self.y)),
            "kept_without_reference": int(self.no_reference),
            "dropped": {k: int(v) for k, v in self.dropped.items()},
            "ref_window": list(self.ref_window) if self.ref_window is not None else None,
            "trials": [{"trial": i, **o} for i, o in enumerate(self.outcomes, 1)],
        }

    def joined(self, other: CalibrationEpochs) -> CalibrationEpochs:
        """These trials followed by ``other``'s (a later run cut the same way: same classes,
        channels, rate and windows), with their accounting added up."""
        if (other.classes, other.ch_names, other.sfreq, other.tmin, other.tmax) != (
                self.classes, self.ch_names, self.sfreq, self.tmin, self.tmax):
            raise ConfigError("other: expected trials cut like these (classes, channels, rate, "
                              f"window), got {other.classes} {other.ch_names} {other.sfreq} Hz "
                              f"[{other.tmin}, {other.tmax}) s.")
        ref = None
        if self.X_ref is not None and other.X_ref is not None:
            ref = np.concatenate([self.X_ref, other.X_ref])
        return CalibrationEpochs(
            np.concatenate([self.X, other.X]), np.concatenate([self.y, other.y]),
            np.concatenate([self.onsets, other.onsets]), self.classes, self.ch_names,
            self.sfreq, self.tmin, self.tmax, ref, self.ref_window if ref is not None else None,
            {k: self.dropped.get(k, 0) + other.dropped.get(k, 0)
             for k in {**self.dropped, **other.dropped}},
            self.no_reference + other.no_reference, self.outcomes + other.outcomes)

    @property
    def n_dropped_gap(self) -> int:
        """Trials dropped because their task window spans a gap or starts before the filter
        settled after one."""
        return int(self.dropped.get("gap", 0))


#: Why a cued trial gave no training trial (the keys of ``CalibrationEpochs.dropped``).
DROP_REASONS = {
    "outside": "its task window is not in the recorded data (the run began or ended inside it)",
    "gap": "its task window spans a gap in the signal (samples lost) or starts before the "
           "filter settled after one",
    "clock": "the device's clock went back over its task window (a restart?)",
}


def _trial_list(trials: list[dict[str, Any]]) -> str:
    return ", ".join(f"{t['trial']} ({t['class']})" for t in trials)


def describe_trials(accounting: dict[str, Any]) -> list[str]:
    """The calibration report's lines about the cued trials (:meth:`CalibrationEpochs.accounting`):
    how many were cued and kept, each dropped trial with its reason, and the kept trials without
    a pre-cue reference (trained on; left out of the ERD/ERS maps only)."""
    trials = accounting.get("trials", [])
    cued, kept = accounting["cued"], accounting["kept"]
    n_drop = cued - kept
    lines = [f"cued trials: {cued}, kept for training: {kept}"
             + (f", dropped: {n_drop}" if n_drop else "")]
    for reason, n in accounting["dropped"].items():
        if n:
            which = [t for t in trials if t.get("reason") == reason]
            lines.append(f"  dropped {n}: {DROP_REASONS.get(reason, reason)}"
                         + (f"; trial {_trial_list(which)}" if which else ""))
    n_noref = accounting.get("kept_without_reference", 0)
    if n_noref:
        which = [t for t in trials if t.get("kept") and t.get("reference") is False]
        a, b = accounting.get("ref_window") or (float("nan"), float("nan"))
        lines.append(
            f"  kept without a pre-cue reference {n_noref}: the window {-a:g} to {-b:g} s before "
            f"the cue is not in the data (the recording began less than {-a:g} s before the "
            "first cue: a short fixation) or spans a gap; trained on like the others, left out "
            f"of the ERD/ERS maps only (they use the {kept - n_noref} other trials)"
            + (f"; trial {_trial_list(which)}" if which else ""))
    return lines


#: A window spans a gap when its first and last samples are further apart, or closer, than
#: ``(n - 1) / sfreq`` by more than this many sample periods plus :data:`_GAP_REL_TOL` of the
#: window (the relative part absorbs a device whose true rate is off its nominal rate).
_GAP_TOL_PERIODS = 1.5
_GAP_REL_TOL = 0.01


def _increasing_pieces(times: np.ndarray) -> list[tuple[int, int]]:
    """``(lo, hi)`` index ranges of ``times`` between backward jumps (clock resets)."""
    back = np.flatnonzero(np.diff(times) < 0) + 1
    edges = np.r_[0, back, len(times)]
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _locate_in_pieces(times: np.ndarray, pieces: list[tuple[int, int]], sfreq_in: float,
                      sfreq_out: float, n_total: int, n_out: int, start: float
                      ) -> tuple[str, int]:
    """:func:`_locate_window` on a stream whose clock may have gone back.

    With one increasing piece this is :func:`_locate_window`. Otherwise the piece whose time
    span holds ``start`` is searched; a start that two pieces hold (the clock went back over
    it) is ``"clock"``: which samples the cue meant cannot be told. A window that runs from one
    piece into the next is a ``"gap"`` (its timestamps do not advance evenly).
    """
    if len(pieces) == 1:
        return _locate_window(times, sfreq_in, sfreq_out, n_total, n_out, start)
    tol = 1.0 / sfreq_in
    hits = [(lo, hi) for lo, hi in pieces if times[lo] - tol <= start <= times[hi - 1] + tol]
    if len(hits) > 1:
        return "clock", 0
    if not hits:
        return ("outside" if start < times.min() or start > times.max() else "gap"), 0
    return _locate_window(times, sfreq_in, sfreq_out, n_total, n_out, start, *hits[0])


def _locate_window(times: np.ndarray, sfreq_in: float, sfreq_out: float, n_total: int,
                   n_out: int, start: float, lo: int = 0, hi: int | None = None
                   ) -> tuple[str, int]:
    """Where the window of ``n_out`` output samples starting at time ``start`` lies.

    ``times`` are the *input* samples' timestamps, ``n_total`` the filter's output length;
    output sample ``k`` is computed from the input up to position ``k * sfreq_in / sfreq_out``
    (:class:`~decoders.preprocessing.StreamingResampler`). The start is found
    among the real timestamps (``searchsorted``), so samples missing before it (a gap) or a
    device rate off its nominal value do not move the window; it is then rounded to the nearest
    output sample. On evenly spaced timestamps this equals
    ``round((start - times[0]) * sfreq_out)``.

    Returns ``(status, a)``: status ``"ok"``, ``"outside"`` (not within the data) or ``"gap"``
    (timestamps jump inside the window or the start falls in a hole); ``a`` the first output
    sample. ``lo:hi``: the increasing stretch of ``times`` to search (default: all of it).
    """
    n_in = len(times)
    hi = n_in if hi is None else hi
    # last sample at or before start (the first one when start precedes the data)
    i_lo = lo + max(int(np.searchsorted(times[lo:hi], start, side="right")) - 1, 0)
    frac = (start - times[i_lo]) * sfreq_in  # in input periods; in [0, 1) without a gap
    r = sfreq_in / sfreq_out
    a = int(round((i_lo + frac) / r))
    if a < 0 or a + n_out > n_total:
        return "outside", a
    if frac > _GAP_TOL_PERIODS:  # the start lies in a hole of the timestamps
        return "gap", a
    ia = min(int(math.floor(a * r)), n_in - 1)
    ib = min(int(math.floor((a + n_out - 1) * r)), n_in - 1)
    expected = (ib - ia) / sfreq_in
    tol = (_GAP_TOL_PERIODS / sfreq_in) + _GAP_REL_TOL * expected
    if abs((times[ib] - times[ia]) - expected) > tol:
        return "gap", a
    return "ok", a


def epochs_from_stream(
    data: np.ndarray,
    times: np.ndarray,
    ch_names: Sequence[str],
    sfreq: float,
    cues: Sequence[tuple[float, str]],
    classes: Sequence[str],
    preprocessor: Preprocessor,
    *,
    tmin: float = 0.5,
    tmax: float = 2.5,
    ref_window: tuple[float, float] | None = (-1.5, -0.5),
    mapping: ChannelMapping | dict[str, str] | None = None,
) -> CalibrationEpochs:
    """Filter a continuous stream causally (exactly as online) and cut the cued windows.

    Parameters
    ----------
    data : (n_samples, n_channels) volts; times : (n_samples,) LSL clock (the source's buffer or
        a recording read back), increasing except where the clock went back (a device restart; see
    ``dropped["clock"]``). ``cues``: ``(onset, class)`` pairs on the same
        clock, e.g. :func:`bci_app.protocol.completed_trials`. ``sfreq``: the stream's nominal
        rate.

    Each cue is located by its timestamp among ``times`` (not by counting samples from the
    first one), so a gap earlier in the stream (samples missing, timestamps jumping, as after a
    reconnection) or a device whose real rate differs from the nominal one does not shift the
    windows. A cue whose window does not fit in the data is dropped (logged); one whose task
    window spans a gap, or starts within the filter's settling time after one, is dropped with
    a warning: as in the online worker, the band-pass restarts at each gap (timestamps stepping
    by more than :func:`acquisition.base.gap_threshold`), and until it has settled the window is
    not the signal the user produced. The counts are in the result's ``dropped``. A trial
    whose task window is clean but whose pre-cue window is not in the data (the stream started
    less than ``-ref_window[0]`` s before the first cue, or a gap) is kept, with a NaN reference
    (counted in ``no_reference``): the reference only serves the ERD/ERS maps.
    """
    classes = list(classes)
    data = np.asarray(data)
    times = np.asarray(times, dtype=float)
    if data.ndim != 2 or len(times) != len(data):
        raise ConfigError(f"data: expected (n_samples, n_channels) with one time per sample, got "
                          f"{data.shape} and {times.shape}.")
    if len(times) and not np.all(np.isfinite(times)):
        i = int(np.flatnonzero(~np.isfinite(times))[0])
        raise ConfigError(f"times: timestamp {i} of {len(times)} is {times[i]}; every sample "
                          "needs a finite time on the cues' clock. Fix: pass the source's (or "
                          "the recording's) timestamps as they are.")
    pieces = _increasing_pieces(times)
    if len(pieces) > 1:
        logger.warning("the stream's clock went back %d time(s) (device restart or clock reset): "
                       "cues whose window time occurs twice are dropped", len(pieces) - 1)
    filt = preprocessor.streaming(sfreq, list(ch_names), mapping)
    # as the online worker: the band-pass restarts at each gap (samples missing) and windows
    # starting before it settled after one are not the signal the user produced
    steps = np.diff(times)
    gaps = np.flatnonzero(steps > gap_threshold(sfreq)) + 1  # first input row after each gap
    parts = []
    for a, b in zip(np.r_[0, gaps], np.r_[gaps, len(data)]):
        if a:
            filt.restart()
        parts.append(filt.process(data[a:b]))
    out = np.concatenate(parts) if parts else filt.process(data)
    sf = filt.sfreq_out
    # output index of the first output after each gap (output k depends on input k * r)
    ratio = float(sfreq) / sf
    gap_out = np.ceil(gaps / ratio - 1e-9).astype(int)
    settle = filt.settle_samples

    def settling(start: int) -> bool:
        return bool(np.any((start >= gap_out) & (start < gap_out + settle)))

    n_win = int(round((tmax - tmin) * sf))
    n_ref = int(round((ref_window[1] - ref_window[0]) * sf)) if ref_window is not None else 0
    X, y, on, R = [], [], [], []
    dropped = {"outside": 0, "gap": 0, "clock": 0}
    no_reference = 0
    outcomes: list[dict[str, Any]] = []
    for t, cls in cues:
        if cls not in classes:
            continue
        outcome = {"onset": float(t), "class": cls, "kept": False, "reason": None,
                   "reference": None}
        outcomes.append(outcome)
        status, a = _locate_in_pieces(times, pieces, float(sfreq), sf, len(out), n_win, t + tmin)
        if status == "clock":
            logger.info("cue %s at %.2f: the stream's clock went back over the trial window, "
                        "dropped", cls, t)
            dropped["clock"] += 1
            outcome["reason"] = "clock"
            continue
        if status == "outside":
            logger.info("cue %s at %.2f: window outside the data, dropped", cls, t)
            dropped["outside"] += 1
            outcome["reason"] = "outside"
            continue
        if status == "gap" or settling(a):
            logger.info("cue %s at %.2f: the trial window [%.2f, %.2f) s %s, dropped", cls, t,
                        tmin, tmax, "spans a gap in the stream (samples missing)"
                        if status == "gap" else "starts before the filter settled after a gap")
            dropped["gap"] += 1
            outcome["reason"] = "gap"
            continue
        outcome["kept"] = True
        if ref_window is not None:
            rstatus, ra = _locate_in_pieces(times, pieces, float(sfreq), sf, len(out), n_ref,
                                            t + ref_window[0])
            if rstatus == "ok" and settling(ra):
                rstatus = "gap"
            outcome["reference"] = rstatus == "ok"
            if rstatus == "ok":
                R.append(out[ra:ra + n_ref].T)
            else:  # the trial is clean; only its ERD/ERS reference is missing
                logger.info("cue %s at %.2f: the pre-cue window [%.2f, %.2f) s is %s; trial "
                            "kept without a reference", cls, t, ref_window[0], ref_window[1],
                            {"outside": "not in the data", "gap": "across a gap",
                             "clock": "where the clock went back"}[rstatus])
                no_reference += 1
                R.append(np.full((out.shape[1], n_ref), np.nan))
        X.append(out[a:a + n_win].T)
        y.append(classes.index(cls))
        on.append(t)
    if dropped["gap"]:
        logger.warning("%d of %d cued trials dropped: their task windows span gaps in the "
                       "stream (samples missing there) or start right after one", dropped["gap"],
                       len(X) + sum(dropped.values()))
    if dropped["clock"]:
        logger.warning("%d of %d cued trials dropped: the stream's clock went back over their "
                       "windows", dropped["clock"], len(X) + sum(dropped.values()))
    if not X:
        raise ConfigError(
            "cues: no complete trial in the data; was the protocol run at all? "
            f"(dropped: {dropped['outside']} outside the data, {dropped['gap']} across a gap, "
            f"{dropped['clock']} where the clock went back)")
    return CalibrationEpochs(
        np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64), np.asarray(on),
        classes, list(filt.ch_names_out), sf, tmin, tmax,
        np.asarray(R, dtype=np.float32) if ref_window is not None else None, ref_window,
        dropped, no_reference, outcomes,
    )


def band_power_maps(X: np.ndarray, y: np.ndarray, X_ref: np.ndarray | None, n_classes: int
                    ) -> np.ndarray:
    """ERD/ERS per class and channel, shape (n_classes, n_chans), in %.

    Band power = mean square of the (already band-passed) signal. With ``X_ref`` (pre-cue
    windows of the same trials): ``100 * (mean_task / mean_ref - 1)`` per class, over the trials
    that have a reference (NaN rows: none); without it, each class relative to the mean over all
    trials. A class without any usable trial is NaN.
    """
    P = np.mean(np.asarray(X, dtype=float) ** 2, axis=2)  # (n, ch)
    has = np.ones(len(P), bool)
    if X_ref is not None and len(X_ref):
        Pr = np.mean(np.asarray(X_ref, dtype=float) ** 2, axis=2)
        has = np.all(np.isfinite(Pr), axis=1)
    else:
        Pr = np.broadcast_to(P.mean(axis=0), P.shape)
    out = np.full((n_classes, P.shape[1]), np.nan)
    for c in range(n_classes):
        m = (y == c) & has
        if m.any():
            out[c] = 100.0 * (P[m].mean(axis=0) / np.maximum(Pr[m].mean(axis=0), 1e-30) - 1.0)
    return out


# ---------------------------------------------------------------------------------------- models
def _adapt(pretrained: Decoder, X: np.ndarray, y: np.ndarray, align: bool, epochs: int,
           lr: float | None, check: Callable[[], None] | None = None
           ) -> tuple[Decoder, EuclideanAlignment | None]:
    ea = EuclideanAlignment().fit(X) if align else None
    Xa = ea.transform(X) if ea is not None else X
    dec = pretrained.clone()
    if epochs > 0:
        if dec.kind == "torch":
            with _interruptible(dec, check):
                dec.partial_fit(Xa, y, epochs=epochs, lr=lr)
        else:
            dec.partial_fit(Xa, y)
    return dec, ea


def _baseline(X: np.ndarray, y: np.ndarray, n_classes: int, sfreq: float, window_s: float
              ) -> Decoder:
    return make_decoder("ts_lr", X.shape[1], n_classes, sfreq, window_s).fit(X, y)


def scratch_decoder(X: np.ndarray, y: np.ndarray, n_classes: int, sfreq: float, window_s: float,
                    model: str = "eegnet", epochs: int = 100, seed: int = 0) -> Decoder:
    """A deep model trained on the user's trials alone (the 'from scratch' reference)."""
    dec = make_decoder(model, X.shape[1], n_classes, sfreq, window_s, max_epochs=epochs,
                       patience=max(epochs, 1), val_fraction=0.0, seed=seed)
    return dec.fit(X, y)


def _folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y)
    k = int(min(k, counts[counts > 0].min()))
    if k < 2:
        raise ConfigError(
            f"cross-validation needs at least 2 trials of every class, got counts "
            f"{counts.tolist()}. Fix: record more trials."
        )
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros(len(y)), y))


def cross_validate(fit_predict: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
                   X: np.ndarray, y: np.ndarray, n_classes: int, name: str, k: int = 5,
                   seed: int = 0, progress: Callable[[int, int], None] | None = None) -> CVScore:
    """Stratified k-fold: ``fit_predict(X_train, y_train, X_test) -> predicted labels``."""
    folds = _folds(y, k, seed)
    y_pred = np.full(len(y), -1, dtype=int)
    for i, (tr, te) in enumerate(folds):
        y_pred[te] = fit_predict(X[tr], y[tr], X[te])
        if progress is not None:
            progress(i + 1, len(folds))
    return CVScore(name, y.copy(), y_pred, n_classes, len(folds))


# ---------------------------------------------------------------------------------------- result
@dataclass
class CalibrationResult:
    """Everything the wizard shows and the profile saves."""

    adapted: Bundle
    baseline: Bundle | None
    scores: dict[str, CVScore]
    band_power: np.ndarray  # (n_classes, n_chans) ERD/ERS in %
    classes: list[str]
    ch_names: list[str]
    n_trials: int
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    #: :meth:`CalibrationEpochs.accounting` of the trials (every cued trial, kept or dropped
    #: with its reason), or None when the caller did not pass it to :func:`calibrate`.
    trials: dict[str, Any] | None = None

    @property
    def best(self) -> str:
        """Name of the decoder with the higher cross-validated accuracy."""
        return max(self.scores, key=lambda k: self.scores[k].accuracy)

    def summary(self) -> dict[str, Any]:
        return {"n_trials": self.n_trials, "classes": self.classes,
                "scores": {k: v.to_dict() for k, v in self.scores.items()},
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
                "settings": self.settings,
                "band_power": {"unit": "% change from pre-cue", "ch_names": self.ch_names,
                               "values": np.round(self.band_power, 2).tolist()},
                "trials": self.trials}

    def text(self) -> str:
        lines = [f"{self.n_trials} trials ({', '.join(self.classes)})"]
        if self.trials is not None:
            lines += ["  " + line for line in describe_trials(self.trials)]
        lines += ["  " + s.text() for s in self.scores.values()]
        lines.append("  training " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        return "\n".join(lines)


def calibrate(
    X: np.ndarray,
    y: np.ndarray,
    pretrained: Bundle,
    *,
    X_ref: np.ndarray | None = None,
    finetune_epochs: int = 30,
    finetune_lr: float | None = None,
    cv_folds: int = 5,
    fit_baseline: bool = True,
    cross_validation: bool = True,
    seed: int = 0,
    progress: Progress | None = None,
    provenance: dict[str, Any] | None = None,
    cancel=None,
    trials: dict[str, Any] | None = None,
) -> CalibrationResult:
    """Adapt ``pretrained`` to the user's trials and fit the tangent-space baseline.

    Parameters
    ----------
    X : (n_trials, n_chans, n_times)
        Task windows preprocessed with ``pretrained``'s chain (its channels, rate and window).
    y : (n_trials,) labels indexing ``pretrained.classes``.
    pretrained : Bundle
        The cross-subject bundle (``alignment == "euclidean"`` -> the user's alignment is fitted on
        ``X``, unlabeled).
    X_ref : pre-cue windows for the ERD/ERS maps (optional; NaN rows: trials without one).
    finetune_epochs, finetune_lr : fine-tuning of a deep model. ``0``: alignment only, the
        labels are not used (any decoder). Scikit-learn style decoders (``csp_lda``, ``ts_lr``)
        refit their classifier head on the user's trials for any positive value.
    cv_folds : stratified folds (capped by the smallest class count).
    progress : ``progress(fraction in [0, 1], message)`` from this thread.
    cancel : ``threading.Event`` (or a callable returning bool), optional
        Set from any thread to stop: checked at every progress step and, for a deep model,
        before every forward pass of the fine-tuning, so training ends within one batch.
    trials : :meth:`CalibrationEpochs.accounting` of ``X`` (optional): every cued trial, kept
        or dropped with its reason; kept in the result for its report and the profile.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    CalibrationCancelled
        ``cancel`` was set before the calibration finished.
    """
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    classes = pretrained.classes
    n_classes = len(classes)
    if X.ndim != 3 or X.shape[1:] != (len(pretrained.channels), pretrained.n_times):
        raise ConfigError(
            f"X: expected trials of shape (n, {len(pretrained.channels)}, {pretrained.n_times}) "
            f"(the bundle's channels and {pretrained.window_s} s at {pretrained.sfreq} Hz), got "
            f"{X.shape}. Fix: cut them with epochs_from_stream(..., bundle.preprocessor)."
        )
    if len(y) != len(X) or (len(y) and (y.min() < 0 or y.max() >= n_classes)):
        raise ConfigError(f"y: expected {len(X)} labels in 0..{n_classes - 1}, got {y!r}.")
    if trials is not None and trials.get("kept") != len(y):
        raise ConfigError(f"trials: expected the accounting of these {len(y)} trials "
                          f"(CalibrationEpochs.accounting()), got one that kept "
                          f"{trials.get('kept')}. Fix: pass the accounting of the epochs X was "
                          "taken from.")
    if cross_validation and (isinstance(cv_folds, bool)
                             or not isinstance(cv_folds, int | np.integer) or cv_folds < 2):
        raise ConfigError(
            f"cv_folds: expected an integer >= 2 (the folds of the cross-validated accuracy), got "
            f"{cv_folds!r}. Fix: pass 2 or more (default 5; it is capped by the smallest class "
            "count), or cross_validation=False to skip the accuracy estimate."
        )
    counts = np.bincount(y, minlength=n_classes)
    if counts.min() < 2:
        raise ConfigError(f"y: every class needs at least 2 trials, got {dict(zip(classes, counts))}.")
    align = pretrained.needs_alignment
    check = _cancel_check(cancel)
    user_report = progress or (lambda f, m: None)

    def report(f: float, msg: str) -> None:
        if check is not None:
            check()
        user_report(f, msg)

    seconds: dict[str, float] = {}
    n_steps = (cv_folds + 1 if cross_validation else 1) + (
        (cv_folds + 1) if fit_baseline and cross_validation else int(fit_baseline))
    done = [0]

    def tick(msg: str) -> None:
        done[0] += 1
        report(min(1.0, done[0] / n_steps), msg)

    report(0.0, "starting")
    t0 = time.perf_counter()
    scores: dict[str, CVScore] = {}
    if cross_validation:
        def fp_adapted(Xtr, ytr, Xte):
            dec, ea = _adapt(pretrained.decoder, Xtr, ytr, align, finetune_epochs, finetune_lr,
                             check)
            return dec.predict(ea.transform(Xte) if ea is not None else Xte)

        scores["adapted"] = cross_validate(
            fp_adapted, X, y, n_classes, f"pretrained {pretrained.config.get('model')} + "
            "alignment + fine-tuning", cv_folds, seed,
            lambda i, k: tick(f"cross-validating the adapted model ({i}/{k})"))
    dec, ea = _adapt(pretrained.decoder, X, y, align, finetune_epochs, finetune_lr, check)
    tick("fine-tuned the pretrained model on all trials")
    seconds["adapted"] = time.perf_counter() - t0
    cfg = copy.deepcopy(pretrained.config)
    cal = {"n_trials": int(len(y)), "counts": dict(zip(classes, counts.tolist())),
           "finetune_epochs": finetune_epochs, "finetune_lr": finetune_lr,
           "pretrained": str(pretrained.path) if pretrained.path else None,
           "cv": scores["adapted"].to_dict() if "adapted" in scores else None,
           **(provenance or {})}
    cfg["calibration"] = cal
    if "adapted" in scores:
        cfg["validation"] = {"calibration_cv": scores["adapted"].to_dict()}
    adapted = Bundle(decoder=dec, config=cfg, path=None, alignment=ea)

    baseline = None
    if fit_baseline:
        t1 = time.perf_counter()
        sf, ws = pretrained.sfreq, pretrained.window_s
        if cross_validation:
            scores["baseline"] = cross_validate(
                lambda Xtr, ytr, Xte: _baseline(Xtr, ytr, n_classes, sf, ws).predict(Xte),
                X, y, n_classes, "tangent space + LR (user's trials only)", cv_folds, seed,
                lambda i, k: tick(f"cross-validating the tangent-space baseline ({i}/{k})"))
        bdec = _baseline(X, y, n_classes, sf, ws)
        tick("fitted the tangent-space baseline")
        bcfg = copy.deepcopy(cfg)
        bcfg.update(kind=bdec.kind, model=bdec.name, model_version=bdec.model_version,
                    alignment=None)
        bcfg["validation"] = {"calibration_cv": scores["baseline"].to_dict()} \
            if "baseline" in scores else {}
        baseline = Bundle(decoder=bdec, config=bcfg, path=None, alignment=None)
        seconds["baseline"] = time.perf_counter() - t1
    bp = band_power_maps(X, y, X_ref, n_classes)
    seconds["total"] = time.perf_counter() - t0
    report(1.0, "done")  # (a cancel up to here still wins)
    result = CalibrationResult(
        adapted=adapted, baseline=baseline, scores=scores, band_power=bp, classes=classes,
        ch_names=pretrained.channels, n_trials=int(len(y)), seconds=seconds,
        settings={"finetune_epochs": finetune_epochs, "finetune_lr": finetune_lr,
                  "cv_folds": cv_folds, "seed": seed, "align": align},
        trials=copy.deepcopy(trials),
    )
    logger.info("Calibration: %s", result.text())
    return result


# ---------------------------------------------------------------------------------------- quality
@dataclass(frozen=True)
class ChannelQuality:
    """Signal check of one channel over the last seconds.

    ``status``: ``"good"`` (green), ``"warn"`` (yellow) or ``"bad"`` (red); ``problems`` names
    what was found (``flat``, ``railed``, ``line noise``, ``high variance``); ``advice`` says what
    to do about it.
    """

    name: str
    status: str
    problems: tuple[str, ...]
    std_uv: float
    line_ratio: float
    advice: str = ""


#: Thresholds of :func:`channel_quality` (microvolts, ratios).
QUALITY_LIMITS = {"flat_uv": 0.5, "railed_uv": 1000.0, "high_std_uv": 100.0,
                  "warn_std_uv": 50.0, "line_ratio": 1.0, "line_warn": 0.3}
_ADVICE = {
    "flat": "no signal: check that the electrode is connected and the amplifier channel is on",
    "railed": "amplifier saturated: re-seat the electrode, add gel, check the reference/ground",
    "line noise": "mains interference: improve the contact (impedance), move cables away from "
                  "power supplies, check the ground electrode",
    "high variance": "noisy: ask the user to relax jaw and face, add gel, re-seat the electrode",
}


def channel_quality(data: np.ndarray, sfreq: float, ch_names: Sequence[str],
                    line_freq: float | None = None, limits: dict | None = None
                    ) -> list[ChannelQuality]:
    """Per-channel signal check of raw EEG (volts), shape (n_samples, n_channels).

    * flat: standard deviation below ``flat_uv``;
    * railed: a sample beyond ``railed_uv`` in absolute value (after removing the median) or long
      runs of identical samples at the extreme;
    * line noise: power at 50/60 Hz (+-1 Hz; both checked when ``line_freq`` is None) relative to
      1-40 Hz power, on common-average-referenced signals (mains picked up by every lead alike is
      removed by the reference; a poorly connected electrode still stands out); needs
      ``sfreq > 2 * (line + 2)``;
    * high variance: standard deviation above ``high_std_uv`` (bad) or ``warn_std_uv`` (warn), after
      a 1 Hz high-pass so that electrode drift does not count.
    """
    from scipy import signal

    lim = {**QUALITY_LIMITS, **(limits or {})}
    x = np.asarray(data, dtype=float) * 1e6
    if x.ndim != 2 or x.shape[1] != len(ch_names):
        raise ConfigError(f"data: expected (n_samples, {len(ch_names)}) volts, got {x.shape}.")
    n = len(x)
    out = []
    if n < max(8, int(0.5 * sfreq)):
        return [ChannelQuality(c, "warn", ("too little data",), float("nan"), float("nan"),
                               "wait for at least half a second of signal") for c in ch_names]
    centred = x - np.median(x, axis=0)
    hp = centred
    if sfreq > 4:
        sos = signal.butter(2, 1.0, "highpass", fs=sfreq, output="sos")
        hp = signal.sosfiltfilt(sos, centred, axis=0) if n > 30 else centred
    std = hp.std(axis=0)
    raw_std = centred.std(axis=0)
    lines = [line_freq] if line_freq else [50.0, 60.0]
    lines = [f for f in lines if sfreq > 2 * (f + 2)]
    ratio = np.zeros(x.shape[1])
    if lines:
        ok = raw_std >= lim["flat_uv"]
        car = centred - (centred[:, ok].mean(axis=1, keepdims=True) if ok.sum() > 2 else 0.0)
        f, P = signal.welch(car, fs=sfreq, nperseg=min(n, int(sfreq)), axis=0)
        band = (f >= 1) & (f <= 40)
        ref = P[band].sum(axis=0) + 1e-12
        for lf in lines:
            sel = (f >= lf - 1) & (f <= lf + 1)
            ratio = np.maximum(ratio, P[sel].sum(axis=0) / ref)
    for i, name in enumerate(ch_names):
        probs, status = [], "good"
        if raw_std[i] < lim["flat_uv"]:
            probs.append("flat")
            status = "bad"
        elif np.max(np.abs(centred[:, i])) > lim["railed_uv"]:
            probs.append("railed")
            status = "bad"
        if "flat" in probs:
            pass
        elif ratio[i] > lim["line_ratio"]:
            probs.append("line noise")
            status = "bad"
        elif ratio[i] > lim["line_warn"]:
            probs.append("line noise")
            status = "warn" if status == "good" else status
        if "flat" not in probs and std[i] > lim["high_std_uv"]:
            probs.append("high variance")
            status = "bad"
        elif "flat" not in probs and std[i] > lim["warn_std_uv"]:
            probs.append("high variance")
            status = "warn" if status == "good" else status
        advice = "; ".join(_ADVICE[p] for p in probs if p in _ADVICE)
        out.append(ChannelQuality(str(name), status, tuple(probs), float(std[i]),
                                  float(ratio[i]), advice))
    return out


__all__ += ["ChannelQuality", "QUALITY_LIMITS", "channel_quality"]
