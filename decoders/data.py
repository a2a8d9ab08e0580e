"""EEGMMIDB (PhysioNet EEG Motor Movement/Imagery) loading for left/right-fist imagery.

Runs 4, 8, 12 (imagined left/right fist): annotation ``T1`` = left, ``T2`` = right. Every run is
preprocessed as a *continuous* recording with the causal :class:`~decoders.preprocessing.Preprocessor`
(as the online engine would), then cut into windows ``[tmin, tmax)`` seconds after each cue.
Trial order stays chronological (run, then onset) and every trial keeps its subject id.

Works offline: pass a folder in MNE's eegbci layout (``bci_app.config.eegmmidb_dir()``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from bci_app.errors import ConfigError, DataFileError

from .preprocessing import Preprocessor

logger = logging.getLogger(__name__)

#: Left/right fist imagery runs of EEGMMIDB.
MI_RUNS = (4, 8, 12)
#: Class names, index = label.
CLASSES = ("left", "right")
_EVENT_TO_LABEL = {"T1": 0, "T2": 1}


@dataclass
class EpochsData:
    """Epoched trials of one or more subjects.

    Attributes
    ----------
    X : ndarray, shape (n_trials, n_chans, n_times), float32, volts (times ``scale``)
    y : ndarray, shape (n_trials,), int64 labels indexing ``classes``
    subject : ndarray, shape (n_trials,), int subject ids
    run : ndarray, shape (n_trials,), int run numbers
    onset : ndarray, shape (n_trials,), cue onset in seconds from the run start
    order : ndarray, shape (n_trials,), chronological rank of the trial within its subject
    X_span : ndarray, shape (n_trials, n_chans, n_span_times), optional
        The same trials cut over a longer span ``[tmin, span_tmax)`` (``X`` is its first
        ``n_times`` samples), for training on random crops (``DeepDecoder(augment="crop")``);
        ``None`` unless loaded with ``span_tmax``. Evaluation always tests on ``X``.
    """

    X: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    run: np.ndarray
    onset: np.ndarray
    order: np.ndarray
    ch_names: list[str]
    sfreq: float
    tmin: float
    tmax: float
    classes: tuple[str, ...] = CLASSES
    preprocessing: dict = field(default_factory=dict)
    X_span: np.ndarray | None = None
    span_tmax: float | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def window_s(self) -> float:
        return self.X.shape[-1] / self.sfreq

    def subset(self, mask_or_idx) -> EpochsData:
        idx = np.asarray(mask_or_idx)
        return EpochsData(
            self.X[idx], self.y[idx], self.subject[idx], self.run[idx], self.onset[idx],
            self.order[idx], list(self.ch_names), self.sfreq, self.tmin, self.tmax,
            self.classes, dict(self.preprocessing),
            None if self.X_span is None else self.X_span[idx], self.span_tmax,
        )

    @property
    def subjects(self) -> list[int]:
        return sorted(set(int(s) for s in self.subject))

    def save_npz(self, path: str | Path) -> None:
        """Cache to an .npz (plain arrays; load with :meth:`load_npz`, no pickle)."""
        import json

        span = {} if self.X_span is None else {"X_span": self.X_span}
        np.savez(
            path, X=self.X, y=self.y, subject=self.subject, run=self.run, onset=self.onset,
            order=self.order, **span,
            meta=np.array(json.dumps({
                "ch_names": self.ch_names, "sfreq": self.sfreq, "tmin": self.tmin,
                "tmax": self.tmax, "classes": list(self.classes),
                "preprocessing": self.preprocessing, "span_tmax": self.span_tmax,
            })),
        )

    @classmethod
    def load_npz(cls, path: str | Path) -> EpochsData:
        import json

        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return cls(
                z["X"], z["y"], z["subject"], z["run"], z["onset"], z["order"],
                meta["ch_names"], meta["sfreq"], meta["tmin"], meta["tmax"],
                tuple(meta["classes"]), meta["preprocessing"],
                z["X_span"] if "X_span" in z.files else None, meta.get("span_tmax"),
            )


def parse_subjects(spec: str | Sequence[int] | None) -> list[int]:
    """``"1-20"``, ``"1,3,5-7"`` or a list -> sorted unique subject ids."""
    if spec is None:
        return []
    if not isinstance(spec, str):
        return sorted(set(int(s) for s in spec))
    out: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        try:
            a, b = (int(v) for v in part.split("-", 1)) if "-" in part else (int(part),) * 2
        except ValueError:
            raise ConfigError(
                f"subjects: expected numbers and ranges like '1-20' or '1,3,5-7', got {spec!r}"
            ) from None
        if min(a, b) < 1:  # a range through negative ids would be dropped silently
            raise ConfigError(f"subjects: expected subject ids >= 1, got {spec!r}")
        if b < a:  # range() would silently give no subject for it
            raise ConfigError(f"subjects: the range {part!r} in {spec!r} runs backwards; fix: "
                              f"write it as '{b}-{a}'")
        out.update(range(a, b + 1))
    if not out or min(out) < 1:
        raise ConfigError(f"subjects: expected subject ids >= 1, got {spec!r}")
    return sorted(out)


#: The 64 channels of PhysioNet EEGMMIDB after ``mne.datasets.eegbci.standardize`` (10-10 names):
#: what :func:`load_raws` gives, and what a bundle for another montage can be trained on.
EEGMMIDB_CHANNELS = (
    "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
    "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz",
    "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8", "FT7", "FT8", "T7", "T8",
    "T9", "T10", "TP7", "TP8", "P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8", "PO7", "PO3",
    "POz", "PO4", "PO8", "O1", "Oz", "O2", "Iz",
)


#: Where PhysioNet serves EEGMMIDB (MNE's default). A mirror with the same
#: ``.../files/eegmmidb/1.0.0/`` layout: ``$BCI_APP_EEGMMIDB_URL`` or ``base_url=``.
EEGMMIDB_URL = "https://physionet.org/files/eegmmidb/1.0.0/"
EEGMMIDB_URL_ENV = "BCI_APP_EEGMMIDB_URL"


def missing_eegmmidb(subjects: Sequence[int], path: str | Path,
                     runs: Sequence[int] = MI_RUNS) -> list[tuple[int, int]]:
    """(subject, run) pairs whose EDF file is not under ``path`` (MNE's eegbci layout)."""
    base = Path(path) / "MNE-eegbci-data" / "files" / "eegmmidb" / "1.0.0"
    return [(s, r) for s in subjects for r in runs
            if not (base / f"S{s:03d}" / f"S{s:03d}R{r:02d}.edf").is_file()]


def download_eegmmidb(subjects: Sequence[int], path: str | Path | None = None,
                      runs: Sequence[int] = MI_RUNS, base_url: str | None = None) -> int:
    """Fetch the missing EDF files of ``subjects`` from PhysioNet into ``path`` (MNE's eegbci
    layout; default ``bci_app.config.eegmmidb_dir()``), checked against MNE's hashes. 2.6 MB
    per imagery run: 154 MB for runs 4, 8, 12 of the 20 subjects of the pretrained bundles. Returns the number
    of files fetched (0 when all are there: no network is touched).

    Raises
    ------
    DataFileError
        When the download fails (no internet, server refused, hash mismatch), with the fix.
    """
    import os

    from bci_app.config import eegmmidb_dir

    path = Path(path) if path is not None else eegmmidb_dir()
    base_url = base_url or os.environ.get(EEGMMIDB_URL_ENV) or EEGMMIDB_URL
    todo = missing_eegmmidb(subjects, path, runs)
    if not todo:
        return 0
    from mne.datasets import eegbci

    logger.info("Downloading %d EEGMMIDB files (about %.0f MB) from %s into %s", len(todo),
                2.6 * len(todo), base_url, path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        for subject in sorted({s for s, _ in todo}):
            eegbci.load_data(subject, runs=[r for s, r in todo if s == subject], path=str(path),
                             update_path=False, base_url=base_url, verbose="error")
    except Exception as err:  # requests/pooch/OS errors: all mean "not downloaded"
        raise DataFileError(
            f"data_dir: could not download EEGMMIDB subjects {sorted({s for s, _ in todo})} "
            f"from {base_url} into {path} ({type(err).__name__}: {err}). Fix: check the "
            "internet connection and retry, or copy the EDF files there in MNE's eegbci "
            "layout (MNE-eegbci-data/files/eegmmidb/1.0.0/S###/S###R##.edf) and set "
            "BCI_APP_DATA_DIR to the folder above it."
        ) from None
    left = missing_eegmmidb(subjects, path, runs)
    if left:
        raise DataFileError(f"data_dir: the download left {len(left)} files missing under "
                            f"{path}: {left[:5]}. Fix: retry.")
    return len(todo)


def load_raws(subject: int, path: str | Path, runs: Sequence[int] = MI_RUNS) -> list:
    """Raw EDF recordings of one subject (standardized 10-05 channel names), in run order.

    Raises DataFileError when a file is missing (the loader would otherwise try to download it),
    unreadable, or shorter than its header says (MNE would read the part that is there).
    """
    import mne
    from mne.datasets import eegbci

    path = Path(path)
    base = path / "MNE-eegbci-data" / "files" / "eegmmidb" / "1.0.0" / f"S{subject:03d}"
    missing = [r for _, r in missing_eegmmidb([subject], path, runs)]
    if missing:
        raise DataFileError(
            f"data_dir: subject {subject} runs {missing} not found under {base}; expected MNE's "
            "eegbci layout (MNE-eegbci-data/files/eegmmidb/1.0.0/S###/S###R##.edf). Fix: pass "
            "--data-dir pointing at that folder, choose subjects that are present (S001-S020 "
            "in shared/data/eegmmidb), or add --download to fetch them from PhysioNet (2.6 MB "
            "per run)."
        )
    files = eegbci.load_data(subject, runs=list(runs), path=str(path), update_path=False,
                             verbose="error")
    raws = []
    for f in files:
        fix = (f"Fix: delete {f} and run again with --download to fetch an intact copy "
               "(or copy one from PhysioNet EEGMMIDB), or choose other subjects.")
        short = _edf_truncation(f)
        if short:  # MNE reads what is there (its warning is silenced): trials would be lost
            raise DataFileError(f"data_dir: {f} is truncated ({short}). {fix}")
        try:
            raw = mne.io.read_raw_edf(f, preload=True, verbose="error")
        except (ValueError, OSError, RuntimeError, UnicodeDecodeError) as err:
            raise DataFileError(f"data_dir: {f} is not a readable EDF file "
                                f"({type(err).__name__}: {err}). {fix}") from None
        eegbci.standardize(raw)
        raw.pick("eeg")
        raws.append(raw)
    return raws


def _edf_truncation(path: str | Path) -> str | None:
    """What is missing when the EDF file at ``path`` is shorter than its header says
    (``None`` when complete, or when the header is unreadable: the reader then names it)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(256)
            header_bytes, n_records, ns = int(head[184:192]), int(head[236:244]), \
                int(head[252:256])
            f.seek(256 + ns * 216)  # samples per record, 8 ASCII bytes per signal
            record_bytes = 2 * sum(int(f.read(8)) for _ in range(ns))
    except (OSError, ValueError):
        return None
    if n_records < 0 or header_bytes < 256 or record_bytes <= 0:
        return None
    size = path.stat().st_size
    expected = header_bytes + n_records * record_bytes
    if size >= expected:
        return None
    have = max(0, size - header_bytes) // record_bytes
    return f"{size} of {expected} bytes: {have} of the {n_records} data records its header lists"


def epochs_from_raw(
    raw, tmin: float, tmax: float, run: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut windows ``[tmin, tmax)`` s after each T1/T2 cue of a (preprocessed) continuous raw.

    Returns X (n, n_chans, n_times), y (n,), onset seconds (n,), chronological.
    """
    sf = raw.info["sfreq"]
    n_times = int(round((tmax - tmin) * sf))
    data = raw.get_data()
    X, y, onsets = [], [], []
    ann = raw.annotations
    order = np.argsort(ann.onset, kind="stable")
    for i in order:
        desc = ann.description[i]
        if desc not in _EVENT_TO_LABEL:
            continue
        onset = float(ann.onset[i])
        start = int(round((onset + tmin) * sf))
        if start < 0 or start + n_times > data.shape[1]:
            logger.debug("run %s: cue at %.2f s too close to an edge, skipped", run, onset)
            continue
        X.append(data[:, start:start + n_times])
        y.append(_EVENT_TO_LABEL[desc])
        onsets.append(onset)
    X = np.stack(X) if X else np.zeros((0, data.shape[0], n_times))
    return X, np.asarray(y, dtype=np.int64), np.asarray(onsets, dtype=float)


def load_eegmmidb(
    subjects: Sequence[int],
    path: str | Path | None = None,
    preprocessor: Preprocessor | None = None,
    tmin: float = 0.5,
    tmax: float = 2.5,
    runs: Sequence[int] = MI_RUNS,
    progress: bool = False,
    span_tmax: float | None = None,
) -> EpochsData:
    """Left/right-fist imagery epochs of ``subjects``, preprocessed causally on continuous runs.

    Parameters
    ----------
    subjects : sequence of int
        PhysioNet subject ids (1..109; the shared folder has 1..20).
    path : folder in MNE's eegbci layout; default ``bci_app.config.eegmmidb_dir()``.
    preprocessor : Preprocessor; default ``Preprocessor()`` (CAR, 8-30 Hz, input rate).
    tmin, tmax : window in seconds relative to the cue.
    span_tmax : float, optional
        Also keep each trial over ``[tmin, span_tmax)`` (``EpochsData.X_span``) for random-crop
        training; must be >= ``tmax``. EEGMMIDB's imagery periods last 4.1 s, so up to 4.1.
    """
    from bci_app.config import eegmmidb_dir

    if path is None:
        path = eegmmidb_dir()
    if tmax <= tmin:
        raise ConfigError(f"tmin/tmax: expected tmin < tmax, got {tmin}, {tmax}")
    if span_tmax is not None and span_tmax < tmax:
        raise ConfigError(f"span_tmax: expected a span end >= tmax ({tmax} s), got {span_tmax}")
    pre = preprocessor or Preprocessor()
    subjects = list(subjects)
    if not subjects:
        raise ConfigError("subjects: expected at least one subject id, got none")
    Xs, ys, subs, runs_out, ons, orders, spans = [], [], [], [], [], [], []
    ch_names, sfreq = None, None
    it = subjects
    if progress:
        from tqdm import tqdm

        it = tqdm(subjects, desc="loading subjects", unit="subj")
    for s in it:
        k = 0
        for run, raw in zip(runs, load_raws(s, path, runs)):
            proc = pre.process_offline(raw)
            if span_tmax is None:
                X, y, on = epochs_from_raw(proc, tmin, tmax, run)
            else:  # the window is the span's start: identical trials and samples
                Xl, y, on = epochs_from_raw(proc, tmin, span_tmax, run)
                X = Xl[..., :int(round((tmax - tmin) * proc.info["sfreq"]))]
                spans.append(Xl.astype(np.float32))
            if not len(y):  # a damaged file, or a window past the run's cues
                n_cues = int(np.isin(proc.annotations.description, list(_EVENT_TO_LABEL)).sum())
                raise DataFileError(
                    f"subject {s} run {run}: none of its {n_cues} T1/T2 cues has the window "
                    f"[{tmin:g}, {span_tmax if span_tmax is not None else tmax:g}) s inside "
                    f"the recording ({proc.times[-1]:.1f} s). Fix: a window within the "
                    "4.1 s imagery period (--tmin/--tmax, --train-span), or an intact copy "
                    "of the run's EDF file.")
            if ch_names is None:
                ch_names, sfreq = list(proc.ch_names), float(proc.info["sfreq"])
            elif list(proc.ch_names) != ch_names:
                raise DataFileError(f"subject {s} run {run}: channels differ from the first file")
            elif float(proc.info["sfreq"]) != sfreq:  # windows of another length: no stacking
                raise DataFileError(
                    f"subject {s} run {run}: {float(proc.info['sfreq']):g} Hz after "
                    f"preprocessing, the first file {sfreq:g} Hz (EEGMMIDB's S088, S092 and S100 "
                    "are recorded at 128 Hz, the others at 160 Hz). Fix: resample every file to "
                    "one rate (--sfreq, e.g. 80, the default), or leave those subjects out.")
            Xs.append(X.astype(np.float32))
            ys.append(y)
            subs.append(np.full(len(y), s))
            runs_out.append(np.full(len(y), run))
            ons.append(on)
            orders.append(np.arange(k, k + len(y)))
            k += len(y)
    return EpochsData(
        np.concatenate(Xs), np.concatenate(ys), np.concatenate(subs), np.concatenate(runs_out),
        np.concatenate(ons), np.concatenate(orders), ch_names, sfreq, tmin, tmax, CLASSES,
        pre.to_dict(), np.concatenate(spans) if spans else None, span_tmax,
    )
