"""Evaluation protocols that cannot leak, and a short report (table + PNG figures).

Protocols (``data`` is an :class:`~decoders.data.EpochsData`, filtered causally on continuous
runs before epoching, so every trial's preprocessing is independent of the others):

``within``
    Per subject, stratified 5-fold CV (shuffled with ``seed``). The decoder is fitted on the
    training folds only; its early-stopping split and input scaling come from those trials. With
    ``align=True`` the alignment is fitted on the training folds' trials and applied to the test
    fold. With ``train_span=True`` the decoder trains on the training trials' longer span
    (``EpochsData.X_span``): a deep decoder with ``augment="crop"`` on random window-long crops of
    it, any other decoder on every window-long crop at a 0.25 s step (each counted as a trial of
    its label); the alignment is still fitted on the training trials' windows, and the test fold
    is the same windows as without it.
    With ``pretrain_subjects`` ("within + pretraining", the calibration wizard's path): the same
    folds, but each target's decoder is first trained on the listed subjects other than the
    target (each Euclidean-aligned on its own trials when ``align``), then per fold aligned on
    the training folds' trials and fine-tuned on them (``partial_fit``) before testing.
``loso``
    Leave one subject out: train on all other subjects, test on the held-out one. With
    ``align=True`` every subject is Euclidean-aligned with its *own* reference: training subjects
    from their trials, the held-out subject from its trials **without labels** (the standard,
    transductive use of EA; no label or model statistic of the test subject is used).
``calibration``
    Train once on the pretraining subjects (the target itself excluded when listed), then for
    each target subject take its first ``K`` trials of each class in chronological order: fit the
    alignment on them (unlabeled use) and fine-tune the decoder on them (``partial_fit``); test on
    all the target's other trials. ``K = 0``: no fine-tuning; the alignment then uses all the
    target's trials without labels (as in ``loso``).

Every fold records the global trial indices used for fitting and for testing; an assertion
checks they are disjoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from bci_app.errors import ConfigError

from .data import EpochsData
from .estimators import Decoder, stratified_split
from .preprocessing import EuclideanAlignment

logger = logging.getLogger(__name__)

__all__ = [
    "EvaluationResult",
    "FoldResult",
    "calibration_trials",
    "evaluate_calibration",
    "evaluate_loso",
    "evaluate_within",
    "write_report",
]

DecoderFactory = Callable[[], Decoder]


@dataclass
class FoldResult:
    """One fit/test split. Index arrays index the rows of the evaluated EpochsData."""

    subject: int
    fold: int
    fit_idx: np.ndarray
    test_idx: np.ndarray
    y_true: np.ndarray
    proba: np.ndarray

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.proba.argmax(1) == self.y_true)) if len(self.y_true) else np.nan


@dataclass
class EvaluationResult:
    """Results of one protocol run for one decoder."""

    protocol: str
    model: str
    folds: list[FoldResult]
    classes: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def per_subject(self) -> dict[int, float]:
        out: dict[int, list[tuple[int, int]]] = {}
        for f in self.folds:
            out.setdefault(f.subject, []).append(
                (int(np.sum(f.proba.argmax(1) == f.y_true)), len(f.y_true)))
        return {s: sum(c for c, _ in v) / max(1, sum(n for _, n in v))
                for s, v in sorted(out.items())}

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.per_subject.values())))

    @property
    def sd(self) -> float:
        return float(np.std(list(self.per_subject.values()), ddof=1)) if \
            len(self.per_subject) > 1 else 0.0

    @property
    def chance(self) -> float:
        return 1.0 / len(self.classes)

    @property
    def y_true(self) -> np.ndarray:
        return np.concatenate([f.y_true for f in self.folds])

    @property
    def proba(self) -> np.ndarray:
        return np.concatenate([f.proba for f in self.folds])

    @property
    def majority(self) -> float:
        """Share of the most frequent class among the pooled test trials (NaN when none): the
        accuracy of always answering it. Above :attr:`chance` when the test trials are
        unbalanced (e.g. ``calibration`` with a large K leaves few, uneven trials per class)."""
        y = self.y_true
        if not len(y):
            return float("nan")
        return float(np.bincount(y, minlength=len(self.classes)).max()) / len(y)

    def chance_upper_95(self) -> float:
        """Accuracy a guesser exceeds with 5 % probability on the pooled test trials: binomial
        around the larger of :attr:`chance` and :attr:`majority` (always answering the more
        frequent class of unbalanced trials is not above chance), as in
        :mod:`decoders.calibration` and :mod:`decoders.pseudo_online`."""
        from .stats import guess_threshold

        return guess_threshold(len(self.y_true), len(self.classes), self.majority)

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "model": self.model,
            "per_subject_accuracy": {str(k): round(v, 4) for k, v in self.per_subject.items()},
            "mean_accuracy": round(self.mean, 4),
            "sd_accuracy": round(self.sd, 4),
            "chance_level": self.chance,
            "majority_share": None if np.isnan(self.majority) else round(self.majority, 4),
            "test_class_counts": np.bincount(self.y_true, minlength=len(self.classes)).tolist(),
            "chance_upper_95_pooled": round(self.chance_upper_95(), 4),
            "n_test_trials": int(len(self.y_true)),
            "settings": self.settings,
        }


def _check_disjoint(fit_idx: np.ndarray, test_idx: np.ndarray) -> None:
    overlap = np.intersect1d(fit_idx, test_idx)
    if len(overlap):
        raise AssertionError(f"evaluation leak: trials {overlap[:10]} are in fit and test sets")


def _align_per_subject(data: EpochsData, X: np.ndarray, subjects: Sequence[int]) -> np.ndarray:
    """Each listed subject aligned with its own reference from all its trials (no labels)."""
    X = X.copy()
    for s in subjects:
        m = data.subject == s
        X[m] = EuclideanAlignment().fit_transform(data.X[m])
    return X


def _progress(it, enabled: bool, desc: str):
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, desc=desc, unit="fold")


def _span_crops(X_span: np.ndarray, y: np.ndarray, n_times: int,
                step: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ``n_times``-long crop of each trial of ``X_span`` at offsets 0, step, 2 step ...
    (the last one ending at or before the span's end), with the trial's label."""
    offs = range(0, X_span.shape[2] - n_times + 1, step)
    Xc = np.stack([X_span[:, :, o:o + n_times] for o in offs], axis=1)
    return Xc.reshape(-1, X_span.shape[1], n_times), np.repeat(y, len(offs))


def _training_span(data: EpochsData, dec: Decoder, fit_idx: np.ndarray, ea):
    """``(X, y, X_val, y_val)`` the decoder trains on when ``train_span``: see the module
    docstring. A decoder with early stopping and without ``crop`` gets its validation split
    here, by trial, before the spans are cut into crops: overlapping crops of one trial on
    both sides of it would make early stopping judge on near-copies of training windows. The
    validation trials are given as the windows the evaluation tests on (``None``: the decoder
    carves its own split, or has none)."""
    Xs = data.X_span[fit_idx]
    if ea is not None:
        Xs = ea.transform(Xs)
    y = data.y[fit_idx]
    if "crop" in getattr(dec, "augment", ()):
        return Xs, y, None, None
    n_times, step = data.X.shape[2], max(1, int(round(0.25 * data.sfreq)))
    val_fraction = getattr(dec, "val_fraction", 0.0) if dec.kind == "torch" else 0.0
    if val_fraction > 0:
        tr, va = stratified_split(y, val_fraction, dec.seed)
        return (*_span_crops(Xs[tr], y[tr], n_times, step), Xs[va][..., :n_times], y[va])
    return (*_span_crops(Xs, y, n_times, step), None, None)


def evaluate_within(data: EpochsData, factory: DecoderFactory, n_folds: int = 5, seed: int = 0,
                    align: bool = False, subjects: Sequence[int] | None = None,
                    progress: bool = False, model: str = "?", train_span: bool = False,
                    pretrain_subjects: Sequence[int] | None = None) -> EvaluationResult:
    """Per-subject stratified ``n_folds``-fold CV (``train_span``, ``pretrain_subjects``: see
    the module docstring)."""
    from sklearn.model_selection import StratifiedKFold

    if train_span and data.X_span is None:
        raise ConfigError("train_span: the data has no longer span per trial; fix: load it with "
                          "load_eegmmidb(..., span_tmax=4.0)")
    if train_span and pretrain_subjects is not None:
        raise ConfigError("train_span: not supported with pretraining subjects; fix: drop one "
                          "of --train-span / --pretrain-subjects")
    subjects = list(subjects or data.subjects)
    folds: list[FoldResult] = []
    jobs = [(s, k) for s in subjects for k in range(n_folds)]
    splits = {}
    for s in subjects:
        idx = np.flatnonzero(data.subject == s)
        skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits[s] = [(idx[a], idx[b]) for a, b in skf.split(idx, data.y[idx])]
    X_src, base, src_idx = None, None, np.zeros(0, dtype=int)
    if pretrain_subjects is not None:
        pretrain_subjects = list(pretrain_subjects)
        X_src = _align_per_subject(data, data.X, pretrain_subjects) if align else data.X
    for s, k in _progress(jobs, progress, f"within {model}"):
        fit_idx, test_idx = splits[s][k]
        if X_src is not None and k == 0:  # pretrain once per target, without the target
            pre_subj = [p for p in pretrain_subjects if p != s]
            if not pre_subj:
                raise ConfigError(f"pretrain_subjects: no subject left to pretrain on for "
                                  f"subject {s}; fix: list other subjects")
            src_idx = np.flatnonzero(np.isin(data.subject, pre_subj))
            base = factory().fit(X_src[src_idx], data.y[src_idx])
        _check_disjoint(np.concatenate([src_idx, fit_idx]), test_idx)
        Xf, Xt = data.X[fit_idx], data.X[test_idx]
        ea = None
        if align:
            ea = EuclideanAlignment().fit(Xf)
            Xf, Xt = ea.transform(Xf), ea.transform(Xt)
        yf = data.y[fit_idx]
        if base is not None:
            dec = base.clone()
            dec.partial_fit(Xf, yf)
        else:
            dec = factory()
            Xv = yv = None
            if train_span:
                Xf, yf, Xv, yv = _training_span(data, dec, fit_idx, ea)
            dec.fit(Xf, yf, Xv, yv)
        folds.append(FoldResult(s, k, np.concatenate([src_idx, fit_idx]), test_idx,
                                data.y[test_idx], dec.predict_proba(Xt)))
    settings = dict(n_folds=n_folds, seed=seed, align=align, subjects=subjects)
    if train_span:
        settings.update(train_span=[data.tmin, data.span_tmax])
    if pretrain_subjects is not None:
        settings.update(pretrain_subjects=pretrain_subjects)
    return EvaluationResult("within", model, folds, data.classes, settings)


def evaluate_loso(data: EpochsData, factory: DecoderFactory, align: bool = True,
                  subjects: Sequence[int] | None = None, progress: bool = False,
                  model: str = "?") -> EvaluationResult:
    """Leave one subject out over ``subjects`` (default: all in ``data``)."""
    subjects = list(subjects or data.subjects)
    if len(subjects) < 2:
        raise ConfigError(f"subjects: loso needs at least 2 subjects, got {subjects}")
    X = _align_per_subject(data, data.X, subjects) if align else data.X
    folds = []
    for k, s in enumerate(_progress(subjects, progress, f"loso {model}")):
        fit_idx = np.flatnonzero(np.isin(data.subject, [t for t in subjects if t != s]))
        test_idx = np.flatnonzero(data.subject == s)
        _check_disjoint(fit_idx, test_idx)
        dec = factory().fit(X[fit_idx], data.y[fit_idx])
        folds.append(FoldResult(s, k, fit_idx, test_idx, data.y[test_idx],
                                dec.predict_proba(X[test_idx])))
    return EvaluationResult("loso", model, folds, data.classes,
                            dict(align=align, subjects=subjects))


def calibration_trials(data: EpochsData, subject: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, test) global indices: the first ``k`` trials of each class in time order."""
    idx = np.flatnonzero(data.subject == subject)
    idx = idx[np.argsort(data.order[idx], kind="stable")]
    calib = []
    for c in range(len(data.classes)):
        of_c = idx[data.y[idx] == c]
        if k > 0 and len(of_c) <= k:
            raise ConfigError(
                f"calib_trials: subject {subject} has only {len(of_c)} trials of class "
                f"{data.classes[c]!r}; expected more than K={k}. Fix: use a smaller K."
            )
        calib.append(of_c[:k])
    calib = np.sort(np.concatenate(calib))
    return calib, np.setdiff1d(idx, calib)


def evaluate_calibration(data: EpochsData, factory: DecoderFactory | None,
                         pretrain_subjects: Sequence[int], target_subjects: Sequence[int],
                         calib_trials: Sequence[int] = (0, 5, 10, 20), align: bool = True,
                         pretrained: Decoder | None = None, progress: bool = False,
                         model: str = "?") -> dict[int, EvaluationResult]:
    """Cross-subject pretraining, then per-target alignment + fine-tuning on K trials per class.

    Parameters
    ----------
    factory : builds the decoder to pretrain (ignored when ``pretrained`` is given).
    pretrain_subjects : subjects to pretrain on; a target listed here is left out of its own
        pretraining (so ``pretrain == targets`` gives leave-one-subject-out pretraining).
    pretrained : an already fitted decoder (e.g. from a bundle); targets must not be among the
        subjects it was trained on (the caller checks provenance).
    Returns ``{K: EvaluationResult}``.
    """
    pretrain_subjects, target_subjects = list(pretrain_subjects), list(target_subjects)
    ks = sorted(set(int(k) for k in calib_trials))
    if any(k < 0 for k in ks):
        raise ConfigError(f"calib_trials: expected K >= 0, got {ks}")
    results: dict[int, list[FoldResult]] = {k: [] for k in ks}
    cache: dict[tuple[int, ...], Decoder] = {}
    X_src = _align_per_subject(data, data.X, pretrain_subjects) if align else data.X
    for fold, t in enumerate(_progress(target_subjects, progress, f"calibration {model}")):
        pre_subj = tuple(s for s in pretrain_subjects if s != t)
        if pretrained is not None:
            base = pretrained
            fit_src = np.zeros(0, dtype=int)
        else:
            if not pre_subj:
                raise ConfigError(
                    f"pretrain_subjects: no subject left to pretrain on for target {t}")
            fit_src = np.flatnonzero(np.isin(data.subject, pre_subj))
            if pre_subj not in cache:
                cache = {pre_subj: factory().fit(X_src[fit_src], data.y[fit_src])}
            base = cache[pre_subj]
        for k in ks:
            calib_idx, test_idx = calibration_trials(data, t, k)
            fit_idx = np.concatenate([fit_src, calib_idx])
            _check_disjoint(fit_idx, test_idx)
            Xc, Xt = data.X[calib_idx], data.X[test_idx]
            if align:
                ea = EuclideanAlignment().fit(Xc if k > 0 else data.X[test_idx])
                Xc, Xt = ea.transform(Xc), ea.transform(Xt)
            dec = base.clone()
            if k > 0:
                dec.partial_fit(Xc, data.y[calib_idx])
            results[k].append(FoldResult(t, fold, fit_idx, test_idx, data.y[test_idx],
                                         dec.predict_proba(Xt)))
    return {k: EvaluationResult("calibration", model, results[k], data.classes,
                                dict(calib_trials=k, align=align,
                                     pretrain_subjects=pretrain_subjects,
                                     target_subjects=target_subjects))
            for k in ks}


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
def results_table(results: Sequence[EvaluationResult]) -> str:
    """Markdown table: one row per result, per-subject accuracies in the last column."""
    lines = ["| protocol | model | settings | mean acc | sd | chance | per-subject |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        st = {k: v for k, v in r.settings.items() if k in ("align", "calib_trials", "n_folds")}
        per = " ".join(f"S{s:03d}:{a:.2f}" for s, a in r.per_subject.items())
        lines.append(f"| {r.protocol} | {r.model} | {st} | {100 * r.mean:.1f} % | "
                     f"{100 * r.sd:.1f} | {100 * r.chance:.0f} % | {per} |")
    return "\n".join(lines)


def write_report(results: Sequence[EvaluationResult], out_dir: str | Path) -> Path:
    """Write ``report.md`` (table), and per result a confusion matrix and a calibration
    (reliability) curve as PNG (matplotlib Agg; safe in headless runs)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Evaluation report", "", results_table(results), ""]
    for i, r in enumerate(results):
        tag = f"{i:02d}_{r.protocol}_{r.model}".replace(":", "-").replace("/", "-")
        if "calib_trials" in r.settings:
            tag += f"_K{r.settings['calib_trials']}"
        y, p = r.y_true, r.proba
        n_c = len(r.classes)
        cm = np.zeros((n_c, n_c), dtype=int)
        np.add.at(cm, (y, p.argmax(1)), 1)
        fig = Figure(figsize=(3.6, 3.2))
        ax = fig.subplots()
        ax.imshow(cm, cmap="Blues")
        for a in range(n_c):
            for b in range(n_c):
                ax.text(b, a, str(cm[a, b]), ha="center", va="center")
        ax.set_xticks(range(n_c), r.classes)
        ax.set_yticks(range(n_c), r.classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{r.protocol} {r.model}\nacc {100 * r.mean:.1f} %", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / f"{tag}_confusion.png", dpi=100)
        # top-label reliability curve
        conf = p.max(1)
        correct = p.argmax(1) == y
        bins = np.linspace(1.0 / n_c, 1.0, 6)
        which = np.clip(np.digitize(conf, bins) - 1, 0, len(bins) - 2)
        xs, ys, ns = [], [], []
        for b in range(len(bins) - 1):
            m = which == b
            if m.any():
                xs.append(conf[m].mean())
                ys.append(correct[m].mean())
                ns.append(int(m.sum()))
        fig = Figure(figsize=(3.6, 3.2))
        ax = fig.subplots()
        ax.plot([1.0 / n_c, 1], [1.0 / n_c, 1], "k:", lw=1, label="perfect")
        ax.plot(xs, ys, "o-", label="model")
        ax.set_xlabel("predicted probability (top class)")
        ax.set_ylabel("observed accuracy")
        ax.set_title(f"calibration {r.protocol} {r.model}", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"{tag}_calibration.png", dpi=100)
        lines += [f"## {tag}", "", f"![confusion]({tag}_confusion.png) "
                  f"![calibration]({tag}_calibration.png)", "",
                  f"confusion (rows true {list(r.classes)}, cols predicted): {cm.tolist()}; "
                  f"reliability bins (confidence, accuracy, n): "
                  f"{[(round(a, 3), round(b, 3), c) for a, b, c in zip(xs, ys, ns)]}", ""]
    (out / "report.md").write_text("\n".join(lines))
    return out
