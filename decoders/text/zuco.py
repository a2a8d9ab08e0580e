"""Loaders for ZuCo 1.0 and ZuCo 2.0 (sentence-level EEG and word-level fixation EEG).

ZuCo (Hollenstein et al. 2018, 2020) is distributed on OSF as one MATLAB file per subject and
task, ``results<SUBJECT>_<TASK>.mat`` (TASK = SR, NR or TSR). Expected layout (the one used by
EEG-To-Text and its successors; any sub-folder depth works, files are found recursively)::

    ZUCO_DIR/
      task1-SR/Matlab_files/resultsZAB_SR.mat        ZuCo 1.0, MATLAB v5  (scipy.io.loadmat)
      task2-NR/Matlab_files/resultsZAB_NR.mat
      task3-TSR/Matlab_files/resultsZAB_TSR.mat
      task1-NR-2.0/Matlab_files/resultsYAC_NR.mat    ZuCo 2.0, MATLAB v7.3 = HDF5 (h5py)
      task2-TSR-2.0/Matlab_files/resultsYAC_TSR.mat

Each file holds ``sentenceData``, one record per sentence, whose fields we read:

* ``content``  — the sentence (char array);
* ``rawData``  — the sentence-level EEG, 105 channels x samples (500 Hz, preprocessed, µV);
* ``word``     — per word: ``content``, ``nFixations``, ``rawEEG`` (one samples x 105 matrix per
  fixation). A sentence without recording has ``word`` = NaN (v5) / ``rawData`` empty or NaN.

In v7.3 files every field is an (n, 1) array of HDF5 object references (MATLAB's column-major
storage shows a 105 x n matrix as (n, 105)); we accept either orientation by the channel count.
The 105 channels are the EGI HydroCel-128 electrodes kept by ZuCo's preprocessing; the files do
not name them, so they are called ``E1..E105`` unless ``ch_names`` is given.

:func:`load_zuco` returns :class:`ZucoSentence` records (sentence EEG + word fixations);
:func:`zuco_to_dataset` cuts the first ``window_s`` seconds after sentence onset (zero-padded
when the subject read faster), filters causally with the model's Preprocessor and resamples,
giving a :class:`~decoders.text.synthetic.ReadingDataset` for the evaluation harness.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bci_app.errors import ConfigError, DataFileError

from .synthetic import ReadingDataset

logger = logging.getLogger(__name__)

__all__ = ["ZUCO_SFREQ", "ZucoSentence", "ZucoWord", "find_zuco_files", "load_zuco",
           "read_zuco_file", "zuco_to_dataset"]

ZUCO_SFREQ = 500.0
ZUCO_N_CHANS = 105
_NAME = re.compile(r"results(?P<subject>[A-Za-z0-9]+)_(?P<task>SR|NR|TSR)\.mat$")


@dataclass
class ZucoWord:
    """One word: its text and the EEG of each fixation on it (list of (105, n_i) µV arrays)."""

    content: str
    n_fixations: int
    fixations: list[np.ndarray] = field(default_factory=list)


@dataclass
class ZucoSentence:
    """One sentence read by one subject: EEG (105, n_samples) µV at 500 Hz, and its words."""

    subject: str
    task: str
    index: int
    content: str
    eeg: np.ndarray
    words: list[ZucoWord]
    version: str


def find_zuco_files(root: str | Path, tasks: Sequence[str] | None = None) -> list[Path]:
    """All ``results<SUBJ>_<TASK>.mat`` under ``root`` (recursively), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataFileError(f"zuco: {root} is not a folder. Fix: pass the folder holding the "
                            "ZuCo Matlab files (see decoders/text/zuco.py for the layout).")
    out = []
    for p in sorted(root.rglob("results*.mat")):
        m = _NAME.search(p.name)
        if m and (tasks is None or m["task"] in tasks):
            out.append(p)
    if not out:
        raise DataFileError(
            f"zuco: no results<SUBJECT>_<TASK>.mat file under {root}"
            + (f" for tasks {list(tasks)}" if tasks else "")
            + ". Fix: download ZuCo 1.0 (osf.io/q3zws) / 2.0 (osf.io/2urht) Matlab files and "
            "unzip them there.")
    return out


def _orient(a: np.ndarray, n_chans: int = ZUCO_N_CHANS) -> np.ndarray | None:
    """(channels, samples) float32, or None when empty / not EEG."""
    a = np.asarray(a)
    if a.dtype.kind not in "fiu" or a.ndim != 2 or a.size == 0:
        return None
    if a.shape[0] == n_chans:
        out = a
    elif a.shape[1] == n_chans:
        out = a.T
    else:
        return None
    out = out.astype(np.float32)
    return None if np.all(np.isnan(out)) else out


# -- ZuCo 1.0: MATLAB v5 ----------------------------------------------------------------------
def _v5_list(x) -> list:
    if isinstance(x, np.ndarray):
        return list(x.ravel())
    return [x]


def _read_v5(path: Path, subject: str, task: str) -> Iterator[ZucoSentence]:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path), squeeze_me=True, struct_as_record=False,
                      variable_names=["sentenceData"])
    except Exception as err:  # noqa: BLE001 - scipy raises several kinds
        raise DataFileError(f"zuco: cannot read {path} as MATLAB v5 ({err})") from None
    if "sentenceData" not in mat:
        raise DataFileError(f"zuco: {path} has no 'sentenceData' variable")
    for i, s in enumerate(_v5_list(mat["sentenceData"])):
        content = str(getattr(s, "content", ""))
        words_raw = getattr(s, "word", None)
        eeg = _orient(getattr(s, "rawData", np.empty(0)))
        if isinstance(words_raw, float) or eeg is None:
            logger.info("zuco %s: sentence %d has no EEG (skipped): %r", path.name, i, content)
            continue
        words = []
        for w in _v5_list(words_raw):
            nfix = getattr(w, "nFixations", 0)
            nfix = int(nfix) if np.size(nfix) == 1 and np.isfinite(nfix) else 0
            fx = getattr(w, "rawEEG", None)
            fixes = []
            if nfix > 0 and fx is not None:
                items = [fx] if (isinstance(fx, np.ndarray) and fx.dtype != object) else \
                    _v5_list(fx)
                fixes = [o for o in (_orient(f) for f in items) if o is not None]
            words.append(ZucoWord(str(getattr(w, "content", "")), nfix, fixes))
        yield ZucoSentence(subject, task, i, content, eeg, words, "1.0")


# -- ZuCo 2.0: MATLAB v7.3 (HDF5) ----------------------------------------------------------------
def _h5_string(f, ref) -> str:
    a = np.asarray(f[ref][()])
    if a.dtype.kind not in "ui" or (f[ref].attrs.get("MATLAB_empty", 0)):
        return ""
    return "".join(chr(int(c)) for c in a.ravel())


def _h5_array(f, ref) -> np.ndarray:
    obj = f[ref]
    if obj.attrs.get("MATLAB_empty", 0):
        return np.empty((0, 0))
    return np.asarray(obj[()])


def _read_v73(path: Path, subject: str, task: str) -> Iterator[ZucoSentence]:
    import h5py

    try:
        f = h5py.File(str(path), "r")
    except OSError as err:
        raise DataFileError(f"zuco: cannot read {path} as HDF5 / MATLAB v7.3 ({err})") from None
    with f:
        if "sentenceData" not in f:
            raise DataFileError(f"zuco: {path} has no 'sentenceData' group")
        sd = f["sentenceData"]
        for key in ("content", "rawData", "word"):
            if key not in sd:
                raise DataFileError(f"zuco: {path} sentenceData lacks the field {key!r}")
        contents, raws, words_refs = sd["content"], sd["rawData"], sd["word"]
        for i in range(contents.shape[0]):
            content = _h5_string(f, contents[i][0])
            eeg = _orient(_h5_array(f, raws[i][0]))
            if eeg is None:
                logger.info("zuco %s: sentence %d has no EEG (skipped): %r", path.name, i,
                            content)
                continue
            words = []
            wobj = f[words_refs[i][0]]
            if isinstance(wobj, h5py.Group) and "content" in wobj:
                has_eeg = "rawEEG" in wobj
                for j in range(wobj["content"].shape[0]):
                    text = _h5_string(f, wobj["content"][j][0])
                    nfix, fixes = 0, []
                    if has_eeg:
                        nf = _h5_array(f, wobj["nFixations"][j][0])
                        nfix = int(nf.ravel()[0]) if nf.size == 1 and np.isfinite(nf).all() \
                            else 0
                        fx = f[wobj["rawEEG"][j][0]]
                        if nfix > 0 and not fx.attrs.get("MATLAB_empty", 0) and \
                                fx.dtype == h5py.ref_dtype:
                            for r in np.asarray(fx[()]).ravel():
                                o = _orient(_h5_array(f, r))
                                if o is not None:
                                    fixes.append(o)
                    words.append(ZucoWord(text, nfix, fixes))
            yield ZucoSentence(subject, task, i, content, eeg, words, "2.0")


def read_zuco_file(path: str | Path) -> list[ZucoSentence]:
    """Sentences with EEG of one ZuCo file (v5 or v7.3 detected from the file)."""
    import h5py

    path = Path(path)
    m = _NAME.search(path.name)
    if not m:
        raise DataFileError(f"zuco: {path.name} is not named results<SUBJECT>_<TASK>.mat")
    if not path.is_file():
        raise DataFileError(f"zuco: {path} not found")
    reader = _read_v73 if h5py.is_hdf5(str(path)) else _read_v5
    return list(reader(path, m["subject"], m["task"]))


def load_zuco(root: str | Path, tasks: Sequence[str] | None = None,
              subjects: Sequence[str] | None = None) -> list[ZucoSentence]:
    """Every sentence with EEG under ``root`` (optionally only some tasks / subject codes)."""
    out = []
    for p in find_zuco_files(root, tasks):
        subj = _NAME.search(p.name)["subject"]
        if subjects is not None and subj not in subjects:
            continue
        sents = read_zuco_file(p)
        logger.info("zuco: %s: %d sentences with EEG", p.name, len(sents))
        out.extend(sents)
    if not out:
        raise DataFileError(f"zuco: no sentence with EEG under {root}")
    return out


def zuco_to_dataset(sentences: Sequence[ZucoSentence], window_s: float = 2.0,
                    sfreq: float | None = 100.0, ch_names: Sequence[str] | None = None,
                    channels: Sequence[str] | None = None) -> ReadingDataset:
    """Fixed windows from sentence onset for the evaluation harness.

    Each sentence's EEG (µV) is converted to volts and run through the causal
    :func:`~decoders.text.synthetic.text_preprocessor` chain (CAR, 1–40 Hz, resampling to
    ``sfreq``, µV), then its first ``window_s`` seconds are kept (zero-padded if shorter).
    ``channels`` picks a subset of ``ch_names`` (default all 105).
    """
    from .synthetic import text_preprocessor

    if not sentences:
        raise ConfigError("sentences: expected at least one ZuCo sentence")
    n_ch = sentences[0].eeg.shape[0]
    names = list(ch_names) if ch_names is not None else [f"E{i + 1}" for i in range(n_ch)]
    if len(names) != n_ch:
        raise ConfigError(f"ch_names: {len(names)} names for {n_ch} ZuCo channels")
    pre = text_preprocessor(list(channels) if channels is not None else names, sfreq)
    sf_out = pre.output_sfreq(ZUCO_SFREQ)
    n_times = round(window_s * sf_out)
    corpus: dict[str, int] = {}
    subj_codes: dict[str, int] = {}
    X, sids, subs = [], [], []
    for s in sentences:
        eeg = np.nan_to_num(s.eeg.astype(np.float64)) * 1e-6
        out = pre.streaming(ZUCO_SFREQ, names).process(eeg.T).T  # (C, n)
        win = np.zeros((out.shape[0], n_times), np.float32)
        win[:, :min(n_times, out.shape[1])] = out[:, :n_times]
        X.append(win)
        # one id per sentence text, whitespace collapsed: a sentence stored with other spacing
        # (another ZuCo version or task) must not become a second sentence, which the
        # sentence-disjoint split could put on both sides
        sids.append(corpus.setdefault(" ".join(s.content.split()), len(corpus)))
        subs.append(subj_codes.setdefault(s.subject, len(subj_codes) + 1))
    return ReadingDataset(
        X=np.stack(X), sentence_ids=np.asarray(sids), subjects=np.asarray(subs),
        corpus=list(corpus), ch_names=pre.output_channels(names), sfreq=sf_out,
        window_s=float(window_s), preprocessing=pre.to_dict(),
        info={"data": "ZuCo", "versions": sorted({s.version for s in sentences}),
              "tasks": sorted({s.task for s in sentences}), "subject_codes": subj_codes,
              "window": f"first {window_s} s after sentence onset, zero-padded"})
