"""Honest evaluation of EEG-to-text models: disjoint splits, free-running metrics, baselines.

A number is never reported alone. :func:`evaluate_text_model` trains and tests the *same* model
(same code, hyper-parameters, seed, splits and early stopping) four times:

* ``eeg``        — the real input;
* ``noise``      — Gaussian noise with the per-channel mean and standard deviation of the data
  (train and test sets each matched to their own statistics), the Jo et al. (2024) control;
* ``shuffled``   — the EEG windows permuted across trials so that every window comes from a
  *different* sentence (a derangement by sentence), in training and test alike;
* ``text_prior`` — no EEG at all (all-zero input): what the decoder's language prior alone gives.

Text is always generated free-running (:func:`decoders.text.inference.generate`): the model
sees its own previous words, never the reference. Metrics: corpus BLEU-1..4 (Papineni et al.
2002, cumulative uniform weights, brevity penalty, no smoothing — as ``nltk.corpus_bleu`` in the
EEG-to-text literature), ROUGE-1 F1 (mean over sentences), and retrieval top-1/top-5 over a
candidate set with chance = k / n_candidates.

Splits (:func:`disjoint_split`) are disjoint by subject *and* sentence: test trials are those of
test subjects reading test sentences; training and validation (for early stopping) use only
the other subjects reading the other sentences, and validation sentences are disjoint from the
training sentences. Retrieval candidates are the distinct test sentences (so it measures
generalisation of the semantic head to unseen sentences), optionally plus training sentences as
distractors.

``verdict``: the EEG model is declared to use the EEG only if it beats **every** baseline with
p < ``alpha`` — retrieval by an exact one-sided sign test on the trials where the two models
disagree, BLEU-1 by a one-sided paired bootstrap over test trials.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bci_app.errors import ConfigError

from .synthetic import ReadingDataset
from .tokenizer import normalize_words

logger = logging.getLogger(__name__)

__all__ = [
    "CONDITIONS",
    "Split",
    "baseline_inputs",
    "bleu",
    "disjoint_split",
    "evaluate_text_model",
    "format_results",
    "retrieval_topk",
    "rouge1",
    "score_decoder",
    "score_generation",
]

CONDITIONS = ("eeg", "noise", "shuffled", "text_prior")


# ----------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------
def _ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def bleu(references: Sequence[str], hypotheses: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU-``max_n`` (cumulative, uniform weights, brevity penalty), in [0, 1].

    One reference per hypothesis. Words are :func:`normalize_words` of each string.
    """
    if len(references) != len(hypotheses):
        raise ConfigError(f"bleu: {len(references)} references for {len(hypotheses)} hypotheses")
    match = [0] * max_n
    total = [0] * max_n
    ref_len = hyp_len = 0
    for r, h in zip(references, hypotheses):
        rw, hw = normalize_words(r), normalize_words(h)
        ref_len += len(rw)
        hyp_len += len(hw)
        for n in range(1, max_n + 1):
            hc, rc = _ngrams(hw, n), _ngrams(rw, n)
            match[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            total[n - 1] += max(len(hw) - n + 1, 0)
    if hyp_len == 0 or any(m == 0 for m in match):
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(match, total)) / max_n
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return float(bp * math.exp(log_p))


def rouge1(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Mean ROUGE-1 F1 over sentence pairs, in [0, 1]."""
    scores = []
    for r, h in zip(references, hypotheses):
        rc, hc = Counter(normalize_words(r)), Counter(normalize_words(h))
        overlap = sum((rc & hc).values())
        if overlap == 0:
            scores.append(0.0)
            continue
        p, rec = overlap / sum(hc.values()), overlap / sum(rc.values())
        scores.append(2 * p * rec / (p + rec))
    return float(np.mean(scores)) if scores else 0.0


def retrieval_topk(scores: np.ndarray, truth: Sequence[int], k: int) -> np.ndarray:
    """Per-trial hit (bool, shape (n,)) of the true candidate among the ``k`` best scores.

    Ties are broken against the truth (a constant score never counts as a hit), and so are NaN
    scores: a NaN true score is a miss, a NaN distractor ranks above the truth (a model that
    outputs NaN must score zero, not 100 %).
    """
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth)
    true_score = scores[np.arange(len(truth)), truth]
    # 1 + number of others at least as good (NaN comparisons are False: count them explicitly)
    rank = ((scores >= true_score[:, None]) | np.isnan(scores)).sum(1)
    return (rank <= k) & ~np.isnan(true_score)


def score_generation(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    out = {f"bleu{n}": bleu(references, hypotheses, n) for n in (1, 2, 3, 4)}
    out["rouge1"] = rouge1(references, hypotheses)
    return out


def score_decoder(decoder, X: np.ndarray, references: Sequence[str],
                  candidate_embeddings: np.ndarray, truth: Sequence[int]) -> dict[str, Any]:
    """Score a fitted decoder on test windows, free-running only.

    ``decoder`` needs ``decode_text(X)`` (free-running generation; it receives no reference)
    and ``similarities(X, candidate_embeddings)``. Returns ``metrics`` (BLEU-1..4, ROUGE-1,
    top1, top5), ``hits`` ({1: bool (n,), 5: bool (n,)}) and ``hypotheses``.
    """
    hyps = [t for t, _ in decoder.decode_text(X)]
    scores = decoder.similarities(X, candidate_embeddings)
    k5 = min(5, scores.shape[1])
    hits = {1: retrieval_topk(scores, truth, 1), 5: retrieval_topk(scores, truth, k5)}
    m = score_generation(references, hyps)
    m.update(top1=float(hits[1].mean()), top5=float(hits[5].mean()))
    return {"metrics": m, "hits": hits, "hypotheses": hyps}


# ----------------------------------------------------------------------------------------------
# Splits and baseline inputs
# ----------------------------------------------------------------------------------------------
@dataclass
class Split:
    """Trial indices; ``train``/``val``/``test`` are disjoint by subject and sentence."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_subjects: list[int]
    test_sentences: list[int]
    val_sentences: list[int]

    def describe(self) -> dict[str, Any]:
        return {"n_train": len(self.train), "n_val": len(self.val),
                "n_test": len(self.test), "test_subjects": self.test_subjects,
                "n_test_sentences": len(self.test_sentences),
                "n_val_sentences": len(self.val_sentences)}


def disjoint_split(ds: ReadingDataset, test_subjects: Sequence[int] | None = None,
                   test_fraction: float = 0.2, val_fraction: float = 0.15,
                   seed: int = 0) -> Split:
    """Split by subject and sentence (see module docstring).

    ``test_subjects`` default: the last third of the subjects (at least one). ``test_fraction``
    of the sentences (random, seeded) are test sentences; ``val_fraction`` of the remaining ones
    are validation sentences (read by the training subjects).
    """
    subjects = sorted({int(s) for s in ds.subjects})
    if len(subjects) < 2:
        raise ConfigError(f"subjects: a subject-disjoint split needs >= 2 subjects, got "
                          f"{subjects}")
    if test_subjects is None:
        test_subjects = subjects[-max(1, len(subjects) // 3):]
    test_subjects = sorted(int(s) for s in test_subjects)
    if not set(test_subjects) < set(subjects):
        raise ConfigError(f"test_subjects: expected a proper subset of {subjects}, got "
                          f"{test_subjects}")
    sents = np.unique(ds.sentence_ids)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(sents)
    n_test = max(2, round(test_fraction * len(sents)))
    n_val = max(1, round(val_fraction * (len(sents) - n_test)))
    if n_test + n_val >= len(sents):
        raise ConfigError(f"test_fraction/val_fraction: leave no training sentence out of "
                          f"{len(sents)}")
    test_s, val_s = perm[:n_test], perm[n_test:n_test + n_val]
    is_test_sub = np.isin(ds.subjects, test_subjects)
    is_test_s, is_val_s = np.isin(ds.sentence_ids, test_s), np.isin(ds.sentence_ids, val_s)
    return Split(
        train=np.flatnonzero(~is_test_sub & ~is_test_s & ~is_val_s),
        val=np.flatnonzero(~is_test_sub & is_val_s),
        test=np.flatnonzero(is_test_sub & is_test_s),
        test_subjects=test_subjects, test_sentences=sorted(int(s) for s in test_s),
        val_sentences=sorted(int(s) for s in val_s))


def _derangement(sentence_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation p with sentence_ids[p[i]] != sentence_ids[i] for every i (when possible)."""
    n = len(sentence_ids)
    for _ in range(100):
        p = rng.permutation(n)
        bad = np.flatnonzero(sentence_ids[p] == sentence_ids)
        for i in bad:  # repair by swapping with a trial that fixes both
            for j in rng.permutation(n):
                if (sentence_ids[p[j]] != sentence_ids[i]
                        and sentence_ids[p[i]] != sentence_ids[j]):
                    p[i], p[j] = p[j], p[i]
                    break
        if not np.any(sentence_ids[p] == sentence_ids):
            return p
    raise ConfigError("shuffled baseline: cannot pair every trial with another sentence's EEG "
                      "(only one sentence?)")


def baseline_inputs(condition: str, X: np.ndarray, sentence_ids: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """The input of ``condition`` for windows X (n, C, T) (see module docstring)."""
    X = np.asarray(X, dtype=np.float32)
    if condition == "eeg":
        return X
    if condition == "noise":
        mean = X.mean(axis=(0, 2))[None, :, None]
        std = X.std(axis=(0, 2))[None, :, None]
        return (mean + std * rng.standard_normal(X.shape)).astype(np.float32)
    if condition == "shuffled":
        return X[_derangement(np.asarray(sentence_ids), rng)]
    if condition == "text_prior":
        return np.zeros_like(X)
    raise ConfigError(f"condition: expected one of {CONDITIONS}, got {condition!r}")


# ----------------------------------------------------------------------------------------------
# The harness
# ----------------------------------------------------------------------------------------------
def _sign_test_p(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided exact sign test that hits ``a`` beat hits ``b`` (paired booleans)."""
    from scipy.stats import binomtest

    wins, losses = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if wins + losses == 0:
        return 1.0
    return float(binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue)


def _bootstrap_p(refs, hyp_a, hyp_b, rng, n_boot: int = 1000) -> float:
    """One-sided paired bootstrap p-value that corpus BLEU-1 of ``hyp_a`` exceeds ``hyp_b``."""
    n = len(refs)
    worse = 0
    for _ in range(n_boot):
        idx = rng.integers(n, size=n)
        r = [refs[i] for i in idx]
        if bleu(r, [hyp_a[i] for i in idx], 1) <= bleu(r, [hyp_b[i] for i in idx], 1):
            worse += 1
    return (worse + 1) / (n_boot + 1)


def evaluate_text_model(ds: ReadingDataset, split: Split | None = None,
                        model_params: dict | None = None, settings=None,
                        conditions: Sequence[str] = CONDITIONS, candidates: str = "test",
                        beam: int = 1, alpha: float = 0.01, seed: int = 0,
                        n_examples: int = 5) -> dict[str, Any]:
    """Train/test the EEG-to-text model on ``ds`` under every condition; see module docstring.

    Parameters
    ----------
    candidates : "test" or "test+train"
        Retrieval candidate set: the distinct test sentences, or those plus the training ones.

    Returns
    -------
    dict with ``setup``, ``chance``, ``conditions`` (metrics per condition), ``tests``
    (p-values of eeg vs each baseline), ``verdict`` and ``examples``.
    """
    from .estimator import EEGTextDecoder, TextTrainSettings

    if "eeg" not in conditions:
        raise ConfigError(f"conditions: 'eeg' is required, got {list(conditions)}")
    settings = settings or TextTrainSettings(seed=seed)
    split = split or disjoint_split(ds, seed=seed)
    sents = ds.sentences
    test_ids = sorted({int(ds.sentence_ids[i]) for i in split.test})
    cand = [ds.corpus[i] for i in test_ids]
    if candidates == "test+train":
        cand += sorted({sents[i] for i in split.train} - set(cand))
    elif candidates != "test":
        raise ConfigError(f"candidates: expected 'test' or 'test+train', got {candidates!r}")
    truth = np.asarray([cand.index(sents[i]) for i in split.test])
    refs = [sents[i] for i in split.test]
    n_cand = len(cand)
    k5 = min(5, n_cand)
    out: dict[str, Any] = {
        "setup": {**split.describe(), "n_candidates": n_cand, "candidates": candidates,
                  "decoding": "free-running " + ("greedy" if beam == 1 else f"beam {beam}"),
                  "settings": settings.to_dict(), "data": ds.info, "alpha": alpha},
        "chance": {"top1": 1 / n_cand, "top5": k5 / n_cand},
        "conditions": {}, "tests": {}, "examples": [],
    }
    hits, hyps = {}, {}
    emb_cache = None
    for cond in conditions:
        rng = np.random.default_rng([seed, CONDITIONS.index(cond)])
        X_tr = baseline_inputs(cond, ds.X[split.train], ds.sentence_ids[split.train], rng)
        X_va = baseline_inputs(cond, ds.X[split.val], ds.sentence_ids[split.val], rng)
        X_te = baseline_inputs(cond, ds.X[split.test], ds.sentence_ids[split.test], rng)
        t0 = time.perf_counter()
        dec = EEGTextDecoder(ds.X.shape[1], ds.sfreq, ds.window_s, model_params, settings,
                             beam=beam)
        dec.fit(X_tr, [sents[i] for i in split.train], X_va, [sents[i] for i in split.val],
                candidates=None)
        if emb_cache is None:
            from .embeddings import embed_sentences

            emb_cache = embed_sentences(cand)
        dec.set_candidates(cand, emb_cache)
        sc = score_decoder(dec, X_te, refs, emb_cache, truth)
        hits[cond], hyps[cond], m = sc["hits"], sc["hypotheses"], sc["metrics"]
        m.update(epochs=len(dec.history_), fit_s=round(time.perf_counter() - t0, 1))
        out["conditions"][cond] = m
        logger.info("evaluate-text %s: %s", cond, m)
    brng = np.random.default_rng([seed, 99])
    for cond in conditions:
        if cond == "eeg":
            continue
        out["tests"][cond] = {
            "top1_p": _sign_test_p(hits["eeg"][1], hits[cond][1]),
            "bleu1_p": _bootstrap_p(refs, hyps["eeg"], hyps[cond], brng),
        }
    base = [c for c in conditions if c != "eeg"]
    out["verdict"] = {
        "retrieval_uses_eeg": bool(base) and all(out["tests"][c]["top1_p"] < alpha
                                                 for c in base),
        "text_uses_eeg": bool(base) and all(out["tests"][c]["bleu1_p"] < alpha for c in base),
        "baselines": base,
    }
    for j in range(min(n_examples, len(refs))):
        out["examples"].append({"reference": refs[j],
                                **{c: hyps[c][j] for c in conditions}})
    return out


def format_results(res: dict[str, Any]) -> str:
    """A plain-text table: every condition beside the EEG model, chance, p-values, verdict."""
    cols = ["top1", "top5", "bleu1", "bleu2", "bleu3", "bleu4", "rouge1"]
    s = res["setup"]
    lines = [
        (f"EEG-to-text evaluation ({s['decoding']}; splits disjoint by subject and sentence: "
        f"{s['n_train']} train / {s['n_val']} val / {s['n_test']} test trials, "
        f"{s['n_candidates']} retrieval candidates = {s['candidates']} sentences)"),
        f"{'condition':<12}" + "".join(f"{c:>8}" for c in cols) + f"{'epochs':>8}",
    ]
    for cond, m in res["conditions"].items():
        lines.append(f"{cond:<12}" + "".join(f"{100 * m[c]:8.1f}" for c in cols)
                     + f"{m['epochs']:8d}")
    ch = res["chance"]
    lines.append(f"{'chance':<12}{100 * ch['top1']:8.1f}{100 * ch['top5']:8.1f}")
    for cond, t in res["tests"].items():
        lines.append(f"eeg > {cond:<10} p(top1) = {t['top1_p']:.2g}, p(BLEU-1) = "
                     f"{t['bleu1_p']:.2g}")
    v = res["verdict"]
    lines.append(f"verdict (alpha = {s['alpha']}): retrieval uses EEG: {v['retrieval_uses_eeg']}; "
                 f"generated text uses EEG: {v['text_uses_eeg']}")
    lines.append("(all values in %; metrics on free-running output only; a result is valid "
                 "only beside its baselines)")
    return "\n".join(lines)
