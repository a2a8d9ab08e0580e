"""Synthetic reading EEG with known ground truth, on real resting EEG.

Why: no EEG-text corpus (ZuCo) exists on this machine, and a model that decodes text from EEG must
first prove, on data where the answer is known, that it uses the EEG at all. Here it does by
construction, with a dial (``snr``) that turns the EEG information off.

Model of a "reading" trial (one window of ``window_s`` seconds, sentence shown at t = 0):

* **Background**: real EEG from EEGMMIDB rest periods (T0 between cues of runs 4/8/12, subjects
  S001–S020; optionally S001's eyes-open/closed baseline runs 1/2), preprocessed causally on the
  continuous run with the same :class:`~decoders.preprocessing.Preprocessor` the bundle uses
  online (CAR, 1–40 Hz band-pass, µV), then cut at a random offset inside a T0 segment.
  A background subject is the "reader": subject-disjoint splits are disjoint in real brains.
* **Signal**: word ``k`` of the sentence is "fixated" during slot ``[k·word_s, (k+1)·word_s)``
  (jittered by up to ±``jitter_s``) and leaves its word signature there: a spatial pattern
  ``a_w`` (unit vector over channels) times a Hann-windowed sinusoid at frequency ``f_w``
  (6–30 Hz) and phase ``φ_w``. ``a_w, f_w, φ_w`` are a deterministic function of the word and the
  generator seed (CRC32), so the same word leaves the same signature in every sentence, and the
  sentence is recoverable word by word. Each reader's patterns are perturbed
  (``subject_variability``), and each word's amplitude varies by ±20 % per trial.
* **SNR**: the signal is scaled per trial so that RMS(signal) / RMS(background) over the window
  equals ``snr`` (an amplitude ratio). ``snr = 0`` means *no signal at all*: the EEG then carries
  no information about the sentence, and any decoder that still "works" is reading the text prior.

Everything is seeded; the same arguments give the same arrays.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from bci_app.errors import ConfigError

from .tokenizer import normalize_words

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CHANNELS",
    "ReadingDataset",
    "SyntheticReadingEEG",
    "make_corpus",
    "rest_background",
    "text_preprocessor",
]

DEFAULT_CHANNELS = ["Fz", "FC3", "FCz", "FC4", "C5", "C3", "Cz", "C4", "C6", "CP3", "CPz", "CP4",
                    "P3", "Pz", "P4", "Oz"]

_NAMES = ["anna", "peter", "maria", "john", "lisa", "david", "sarah", "tom"]
_ADJ = ["old", "small", "red", "quiet", "happy", "tall", "dark", "young", "green", "busy"]
_NOUNS = ["dog", "teacher", "car", "river", "house", "child", "doctor", "garden", "city", "bird",
          "book", "train"]
_VERBS = ["sees", "likes", "finds", "paints", "follows", "visits", "watches", "builds", "loves",
          "helps"]
_PLACES = ["park", "school", "market", "station", "forest", "kitchen"]
_TEMPLATES = [
    "the {adj} {noun} {verb} the {noun2}",
    "{name} {verb} the {adj} {noun}",
    "a {noun} {verb} {name} in the {place}",
    "the {noun} near the {place} is {adj}",
    "{name} {verb} {name2} and a {noun}",
]


def make_corpus(n_sentences: int, seed: int = 0) -> list[str]:
    """``n_sentences`` distinct template sentences (4–7 words, a vocabulary of about 60 words)."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n_sentences:
        tries += 1
        if tries > 100 * n_sentences + 1000:
            raise ConfigError(f"n_sentences: cannot draw {n_sentences} distinct sentences")
        t = _TEMPLATES[rng.integers(len(_TEMPLATES))]
        names = rng.choice(_NAMES, 2, replace=False)
        nouns = rng.choice(_NOUNS, 2, replace=False)
        s = t.format(adj=rng.choice(_ADJ), noun=nouns[0], noun2=nouns[1], verb=rng.choice(_VERBS),
                     name=names[0], name2=names[1], place=rng.choice(_PLACES))
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def text_preprocessor(channels: Sequence[str] = DEFAULT_CHANNELS, sfreq: float | None = None):
    """The preprocessing of the text model: CAR, 1–40 Hz band-pass, volts -> µV."""
    from decoders.preprocessing import Preprocessor

    return Preprocessor(channels=list(channels), car=True, l_freq=1.0, h_freq=40.0,
                        filter_order=4, sfreq=sfreq, scale=1e6)


@lru_cache(maxsize=64)
def _rest_segments(subject: int, path: str, channels: tuple[str, ...], baseline: bool,
                   sfreq_out: float | None) -> tuple[tuple[np.ndarray, ...], float]:
    from decoders.data import load_raws

    pre = text_preprocessor(channels, sfreq_out)
    runs = [4, 8, 12] + ([1, 2] if baseline and subject == 1 else [])
    segs = []
    sf = 160.0
    for run, raw in zip(runs, load_raws(subject, path, runs=runs)):
        proc = pre.process_offline(raw)
        sf = float(proc.info["sfreq"])
        data = proc.get_data()  # (C, n), µV, causal
        settle = round(1.0 * sf)  # skip the filters' start-up transient
        if run in (1, 2):
            segs.append(data[:, settle:])
            continue
        ann = raw.annotations
        for onset, dur, desc in zip(ann.onset, ann.duration, ann.description):
            if desc != "T0":
                continue
            a = max(round((onset - raw.first_time) * sf), settle)
            b = min(round((onset - raw.first_time + dur) * sf), data.shape[1])
            if b > a:
                segs.append(data[:, a:b])
    return tuple(np.ascontiguousarray(s, dtype=np.float32) for s in segs), sf


def rest_background(subject: int, path: str | Path | None = None,
                    channels: Sequence[str] = DEFAULT_CHANNELS, baseline: bool = True,
                    sfreq: float | None = None):
    """Preprocessed rest segments of one EEGMMIDB subject: (list of (C, n_i) µV arrays, sfreq).

    ``sfreq``: output rate (causal polyphase resampling); None keeps 160 Hz."""
    from bci_app.config import eegmmidb_dir

    path = str(path if path is not None else eegmmidb_dir())
    segs, sf = _rest_segments(int(subject), path, tuple(channels), bool(baseline),
                              None if sfreq is None else float(sfreq))
    return list(segs), sf


@dataclass
class ReadingDataset:
    """Windows of (real or synthetic) reading EEG with their sentences.

    Attributes
    ----------
    X : ndarray, shape (n_trials, n_chans, n_times), float32
        Preprocessed windows (bundle channel order and rate; µV).
    sentence_ids : ndarray (n_trials,) int
        Index into ``corpus`` of each trial's sentence.
    subjects : ndarray (n_trials,) int
    corpus : list of str
    ch_names, sfreq, window_s, preprocessing : signal facts (``preprocessing`` is a
        :class:`~decoders.preprocessing.Preprocessor` dict, or None when unknown).
    info : dict
        Provenance (generator settings, files).
    """

    X: np.ndarray
    sentence_ids: np.ndarray
    subjects: np.ndarray
    corpus: list[str]
    ch_names: list[str]
    sfreq: float
    window_s: float
    preprocessing: dict | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.X)
        if self.X.ndim != 3 or len(self.sentence_ids) != n or len(self.subjects) != n:
            raise ConfigError(
                f"ReadingDataset: expected X (n, n_chans, n_times) and n sentence ids/subjects, "
                f"got X {self.X.shape}, {len(self.sentence_ids)} ids, {len(self.subjects)} "
                "subjects")

    def __len__(self) -> int:
        return len(self.X)

    @property
    def sentences(self) -> list[str]:
        return [self.corpus[i] for i in self.sentence_ids]

    def subset(self, idx) -> ReadingDataset:
        idx = np.asarray(idx)
        return ReadingDataset(self.X[idx], self.sentence_ids[idx], self.subjects[idx],
                              self.corpus, self.ch_names, self.sfreq, self.window_s,
                              self.preprocessing, dict(self.info))

    def with_X(self, X: np.ndarray) -> ReadingDataset:
        return ReadingDataset(np.asarray(X, np.float32), self.sentence_ids, self.subjects,
                              self.corpus, self.ch_names, self.sfreq, self.window_s,
                              self.preprocessing, dict(self.info))


def _word_rng(word: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(word.encode()), int(seed)])


class SyntheticReadingEEG:
    """Generator of reading trials (see module docstring).

    Parameters
    ----------
    snr : float
        RMS amplitude ratio signal / background per trial (0 = no signal).
    n_sentences : int
        Size of the corpus (distinct sentences).
    subjects : sequence of int
        EEGMMIDB subjects providing background EEG (one "reader" each).
    reps : int
        Trials per sentence and subject.
    word_s, window_s : float
        Slot per word and window length (s); a sentence must fit: n_words * word_s <= window_s.
    sfreq : float or None
        Output rate of the preprocessing (None = EEGMMIDB's 160 Hz; 80 Hz halves the cost).
    """

    def __init__(self, snr: float = 1.0, n_sentences: int = 60, subjects: Sequence[int] = (1, 2, 3,
                 4, 5, 6), reps: int = 1, channels: Sequence[str] = DEFAULT_CHANNELS,
                 word_s: float = 0.25, window_s: float = 2.0, jitter_s: float = 0.02,
                 subject_variability: float = 0.3, seed: int = 0,
                 data_path: str | Path | None = None, baseline: bool = True,
                 sfreq: float | None = None) -> None:
        if snr < 0:
            raise ConfigError(f"snr: expected >= 0 (amplitude ratio), got {snr}")
        if reps < 1 or n_sentences < 2:
            raise ConfigError(f"reps/n_sentences: expected >= 1 / >= 2, got {reps}/{n_sentences}")
        self.snr = float(snr)
        self.n_sentences = int(n_sentences)
        self.subjects = [int(s) for s in subjects]
        self.reps = int(reps)
        self.channels = list(channels)
        self.word_s, self.window_s, self.jitter_s = float(word_s), float(window_s), float(jitter_s)
        self.subject_variability = float(subject_variability)
        self.seed = int(seed)
        self.data_path = data_path
        self.baseline = baseline
        self.sfreq = sfreq

    def min_window_s(self) -> float:
        """The shortest ``window_s`` that holds every sentence of the corpus (its longest
        sentence's words, ``word_s`` each, at the output rate), without loading any EEG."""
        sf = 160.0 if self.sfreq is None else float(self.sfreq)
        if not sf > 0:
            raise ConfigError(f"sfreq: expected > 0 Hz (or None for 160 Hz), got {self.sfreq}")
        longest = max(len(normalize_words(t)) for t in make_corpus(self.n_sentences, self.seed))
        return longest * round(self.word_s * sf) / sf

    def check_window(self, name: str = "window_s") -> None:
        """ConfigError naming ``name`` (e.g. ``--window``) when the sentences do not fit."""
        sf = 160.0 if self.sfreq is None else float(self.sfreq)
        need = self.min_window_s()
        if round(self.window_s * sf) < round(need * sf):
            raise ConfigError(
                f"{name}: the synthetic sentences have up to {round(need / self.word_s)} words of "
                f"{self.word_s:g} s each, so windows must be at least {need:g} s long; got "
                f"{self.window_s:g} s. Fix: {name} {need:g} or longer (the default is 2).")

    def signature(self, word: str, subject: int, sfreq: float) -> np.ndarray:
        """Word signature of a reader, shape (n_chans, n_slot) (unit peak amplitude)."""
        rng = _word_rng(word, self.seed)
        a = rng.standard_normal(len(self.channels))
        f = rng.uniform(6.0, 30.0)
        phi = rng.uniform(0, 2 * np.pi)
        if self.subject_variability > 0:
            srng = np.random.default_rng([zlib.crc32(word.encode()), self.seed, subject])
            a = a + self.subject_variability * np.linalg.norm(a) / np.sqrt(a.size) * \
                srng.standard_normal(a.size)
        a /= np.linalg.norm(a)
        n = round(self.word_s * sfreq)
        t = np.arange(n) / sfreq
        return a[:, None] * (np.sin(2 * np.pi * f * t + phi) * np.hanning(n))[None]

    def sentence_signal(self, sentence: str, subject: int, sfreq: float, n_times: int,
                        rng: np.random.Generator) -> np.ndarray:
        words = normalize_words(sentence)
        slot = round(self.word_s * sfreq)
        if len(words) * slot > n_times:
            raise ConfigError(
                f"window_s: {len(words)} words x {self.word_s} s do not fit a {self.window_s} s "
                f"window. Fix: window_s >= {self.min_window_s():g} s (`--window` of bci-app "
                "evaluate-text), or a shorter word_s (SyntheticReadingEEG(word_s=...)).")
        sig = np.zeros((len(self.channels), n_times))
        jit = round(self.jitter_s * sfreq)
        for k, w in enumerate(words):
            start = min(max(k * slot + int(rng.integers(-jit, jit + 1)), 0), n_times - slot)
            sig[:, start:start + slot] += rng.uniform(0.8, 1.2) * self.signature(w, subject, sfreq)
        return sig

    def generate(self) -> ReadingDataset:
        corpus = make_corpus(self.n_sentences, self.seed)
        rng = np.random.default_rng([self.seed, 7])  # background draws: same for every snr
        rng_sig = np.random.default_rng([self.seed, 11])  # jitter and amplitudes
        X, sids, subs = [], [], []
        sfreq = None
        for subject in self.subjects:
            segs, sf = rest_background(subject, self.data_path, self.channels, self.baseline,
                                       self.sfreq)
            sfreq = sf
            n_times = round(self.window_s * sf)
            segs = [s for s in segs if s.shape[1] >= n_times]
            if not segs:
                raise ConfigError(f"window_s: no rest segment of subject {subject} is "
                                  f"{self.window_s} s long")
            for _ in range(self.reps):
                for sid, sentence in enumerate(corpus):
                    seg = segs[int(rng.integers(len(segs)))]
                    a = int(rng.integers(seg.shape[1] - n_times + 1))
                    bg = seg[:, a:a + n_times].astype(np.float64)
                    x = bg
                    sig = self.sentence_signal(sentence, subject, sf, n_times, rng_sig)
                    if self.snr > 0:
                        scale = self.snr * np.sqrt(np.mean(bg ** 2)) / np.sqrt(np.mean(sig ** 2))
                        x = bg + scale * sig
                    X.append(x.astype(np.float32))
                    sids.append(sid)
                    subs.append(subject)
        return ReadingDataset(
            X=np.stack(X), sentence_ids=np.asarray(sids), subjects=np.asarray(subs),
            corpus=corpus, ch_names=list(self.channels), sfreq=float(sfreq),
            window_s=self.window_s, preprocessing=text_preprocessor(self.channels, self.sfreq).to_dict(),
            info={"generator": "SyntheticReadingEEG", "snr": self.snr,
                  "n_sentences": self.n_sentences, "subjects": self.subjects, "reps": self.reps,
                  "word_s": self.word_s, "jitter_s": self.jitter_s,
                  "subject_variability": self.subject_variability, "seed": self.seed,
                  "background": "EEGMMIDB T0 rest (runs 4/8/12) + S001 baseline runs 1/2"
                  if self.baseline else "EEGMMIDB T0 rest (runs 4/8/12)"},
        )
