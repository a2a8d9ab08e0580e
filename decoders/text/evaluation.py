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
test subjects reading test sentences (drawn among the sentences the test subjects read);
training and validation (for early stopping) use only the other subjects reading the other
sentences, and validation sentences are disjoint from the training sentences. Retrieval
candidates are the distinct test sentences (so it measures generalisation of the semantic head to
unseen sentences), optionally plus training sentences as distractors.

``verdict`` (see :data:`VERDICT_DEFINITION`): whether the EEG model *uses the EEG* is decided by a
test whose null hypothesis is exactly "its outputs do not depend on which sentence was read": the
**pairing test** (:func:`pairing_test`) scores the EEG model's own outputs against the matching
references, and against the same outputs re-paired with other test sentences' references (a
permutation of the sentence→reference pairing; all windows of a sentence move together). Text
must in addition score above the text-prior model (paired bootstrap), a usefulness bar: a model
whose text depends on the EEG but is worse than the language prior alone does not decode text.
The cross-model comparisons (sign test / paired bootstrap against the noise, shuffled and
text-prior models) are reported as context; they never decide alone, because their p-values
ignore the training variance between separately trained models (at SNR 0 the EEG model "beat"
the noise model with p < 0.01 in up to 40 % of seeds).
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
    "n_pairing_permutations",
    "pairing_test",
    "retrieval_topk",
    "rouge1",
    "score_decoder",
    "score_generation",
]

CONDITIONS = ("eeg", "noise", "shuffled", "text_prior")

#: What the verdict's booleans mean (stored in every result's ``verdict["definition"]``).
VERDICT_DEFINITION = {
    "retrieval_uses_eeg": (
        "pairing test on retrieval top-1, p < alpha: the EEG model's top-1 hits with every test "
        "window paired with its own sentence, against the same model's hits with the windows of "
        "each test sentence re-paired with another test sentence (random permutations of the "
        "sentence pairing, p = (1 + #permutations >= observed) / (1 + n_permutations); exact "
        "over all k! pairings when k! <= n_permutations)"),
    "text_uses_eeg": (
        "pairing test on corpus BLEU-1 of the free-running text (as above), p < alpha, AND "
        "BLEU-1 above the text-prior model's (one-sided paired bootstrap p < alpha; a usefulness "
        "bar, applied when text_prior was run)"),
    "baselines": (
        "noise / shuffled / text_prior: the same model trained and tested on those inputs; their "
        "p-values (sign test, paired bootstrap over test trials) compare separately trained "
        "models and ignore training variance, so they are context, never the test of EEG use"),
}


# ----------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------
def _ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def bleu(references: Sequence[str], hypotheses: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU-``max_n`` (cumulative, uniform weights, brevity penalty), in [0, 1].

    One reference per hypothesis. Words are :func:`normalize_words` of each string. As
    ``nltk.translate.bleu_score.corpus_bleu``, every hypothesis counts at least one n-gram in the
    precision's denominator (``max(1, len - n + 1)``): an empty or too short output lowers the
    score instead of dropping out of it.
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
            total[n - 1] += max(len(hw) - n + 1, 1)
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
    top1, top5), ``hits`` ({1: bool (n,), 5: bool (n,)}), ``hypotheses`` and ``scores``
    (n, n_candidates).
    """
    hyps = [t for t, _ in decoder.decode_text(X)]
    scores = decoder.similarities(X, candidate_embeddings)
    k5 = min(5, scores.shape[1])
    hits = {1: retrieval_topk(scores, truth, 1), 5: retrieval_topk(scores, truth, k5)}
    m = score_generation(references, hyps)
    m.update(top1=float(hits[1].mean()), top5=float(hits[5].mean()))
    return {"metrics": m, "hits": hits, "hypotheses": hyps, "scores": scores}


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
    of the sentences (at least 2; random, seeded) are test sentences, drawn among those the test
    subjects read; ``val_fraction`` of the remaining sentences that the other subjects read are
    validation sentences (read by the training subjects).

    Raises ConfigError (naming ``--test-subjects`` / ``--n-sentences``) for a split that cannot
    be evaluated: fewer than 2 test sentences, no training or no validation trial.
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
    is_test_sub = np.isin(ds.subjects, test_subjects)
    read_test = set(np.unique(ds.sentence_ids[is_test_sub]).tolist())
    read_train = set(np.unique(ds.sentence_ids[~is_test_sub]).tolist())
    # one seeded order of all sentences; test sentences are the first the test subjects read,
    # validation sentences the next ones the training subjects read (when every subject reads
    # every sentence, as in the synthetic generator, this is a plain permutation split)
    perm = np.random.default_rng(seed).permutation(sents)
    n_test = min(max(2, round(test_fraction * len(sents))), len(read_test))
    if n_test < 2:
        raise ConfigError(
            f"test_subjects (--test-subjects): the test subjects {test_subjects} read "
            f"{len(read_test)} distinct sentence(s); a sentence-disjoint test needs at least 2 "
            "(the test of EEG use re-pairs outputs across test sentences). Fix: choose test "
            "subjects who read more sentences, or a larger corpus (--n-sentences).")
    test_s = [int(s) for s in perm if s in read_test][:n_test]
    rest = [int(s) for s in perm if s in read_train and s not in test_s]
    n_val = max(1, round(val_fraction * len(rest)))
    if n_val >= len(rest):
        raise ConfigError(
            f"test_fraction/val_fraction: the training subjects read {len(rest)} sentence(s) "
            f"outside the {n_test} test sentences, which leaves none for training once "
            f"{n_val} go to validation. Fix: a larger corpus (--n-sentences) or other "
            "--test-subjects.")
    val_s = rest[:n_val]
    is_test_s, is_val_s = np.isin(ds.sentence_ids, test_s), np.isin(ds.sentence_ids, val_s)
    return Split(
        train=np.flatnonzero(~is_test_sub & ~is_test_s & ~is_val_s),
        val=np.flatnonzero(~is_test_sub & is_val_s),
        test=np.flatnonzero(is_test_sub & is_test_s),
        test_subjects=test_subjects, test_sentences=sorted(test_s),
        val_sentences=sorted(val_s))


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
    """One-sided paired bootstrap p-value that corpus BLEU-1 of ``hyp_a`` exceeds ``hyp_b``.

    Resamples test trials only: it compares two fixed sets of outputs, not two training
    procedures (the variance between separately trained models is not in it), so it is reported
    as context and never decides alone whether a model uses the EEG (see :func:`pairing_test`).
    """
    n = len(refs)
    worse = 0
    for _ in range(n_boot):
        idx = rng.integers(n, size=n)
        r = [refs[i] for i in idx]
        if bleu(r, [hyp_a[i] for i in idx], 1) <= bleu(r, [hyp_b[i] for i in idx], 1):
            worse += 1
    return (worse + 1) / (n_boot + 1)


def n_pairing_permutations(alpha: float) -> int:
    """Random pairings drawn by :func:`pairing_test` for a test at level ``alpha``: at least
    2000, and enough that the smallest attainable p-value is 20 times below ``alpha``."""
    return max(2000, math.ceil(20 / alpha))


def _all_pairings(n_sentences: int, n_perm: int) -> bool:
    """Enumerate every pairing (exact test) rather than draw ``n_perm`` at random?"""
    return n_sentences <= 12 and math.factorial(n_sentences) <= n_perm


def _smallest_pairing_p(n_sentences: int, n_perm: int) -> float:
    if _all_pairings(n_sentences, n_perm):
        return 1 / math.factorial(n_sentences)
    return 1 / (n_perm + 1)


def pairing_test(groups: Sequence[int], references: Sequence[str], hypotheses: Sequence[str],
                 top1_hits: np.ndarray | None = None, rng: np.random.Generator | None = None,
                 n_perm: int = 2000) -> dict[str, Any]:
    """Does one model's output depend on which sentence was read? A permutation test.

    The statistic is computed on the model's own outputs twice: paired with the references of
    the sentences actually read, and re-paired by a permutation of the test sentences (every
    window of sentence ``a`` gets the reference of sentence ``pi(a)``: windows of one sentence
    move together, so windows that share a sentence cannot make a constant model look good).
    Under the null hypothesis — the outputs do not depend on the sentence read, e.g. the EEG
    holds no information or the model ignores it — every pairing is equally likely to score
    highest, so ``p = (1 + #{pi: stat(pi) >= observed}) / (1 + n_perm)`` is a valid p-value
    (exact: ``#{pi: stat(pi) >= observed} / k!`` over all pairings when ``k! <= n_perm``).
    Ties count against the model.

    Parameters
    ----------
    groups : (n,) int
        Test-sentence index (0..k-1) of each test window.
    references : (k,) str
        Reference sentence of each test sentence.
    hypotheses : (n,) str
        The model's generated text per window.
    top1_hits : (n, k) bool, optional
        ``top1_hits[i, b]``: test sentence ``b``'s candidate is the model's top-1 for window
        ``i`` (ties against it, as :func:`retrieval_topk`).
    rng : numpy Generator (random pairings); n_perm : number of random pairings.

    Returns
    -------
    dict with ``n_sentences``, ``n_permutations``, ``exact``, and for ``bleu1`` (corpus BLEU-1)
    and ``top1`` (fraction of windows): the observed value, ``*_null_mean`` (mean over the
    pairings) and ``*_p``.
    """
    g = np.asarray(groups, dtype=int)
    k, n = len(references), len(g)
    if n != len(hypotheses) or k < 2 or (n and (g.min() < 0 or g.max() >= k)):
        raise ConfigError(f"pairing_test: expected >= 2 references and one group index in "
                          f"[0, {k}) per hypothesis, got {k} references, {n} groups, "
                          f"{len(hypotheses)} hypotheses")
    exact = _all_pairings(k, n_perm)
    if exact:
        import itertools

        perms = np.asarray(list(itertools.permutations(range(k))), dtype=int)
    else:
        rng = rng if rng is not None else np.random.default_rng(0)
        perms = np.argsort(rng.random((n_perm, k)), axis=1)
    ident = np.arange(k)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), g] = 1.0

    def assess(per_pair: np.ndarray, stat) -> tuple[float, float, float]:
        # per_pair[a, b]: summed over the windows of sentence a, paired with sentence b
        obs = stat(per_pair[ident, ident].sum())
        null = stat(per_pair[ident[None, :], perms].sum(1))
        hits = int(np.sum(null >= obs - 1e-12))
        p = hits / len(perms) if exact else (1 + hits) / (1 + len(perms))
        return float(obs), float(np.mean(null)), float(p)

    out: dict[str, Any] = {"n_sentences": k, "n_windows": n, "exact": bool(exact),
                           "n_permutations": len(perms)}
    # corpus BLEU-1 under a pairing: clipped unigram matches and reference length are sums
    # over windows, the hypothesis side (length, denominator) does not change
    hw = [normalize_words(h) for h in hypotheses]
    rc = [Counter(normalize_words(r)) for r in references]
    ref_len = np.asarray([sum(c.values()) for c in rc], dtype=float)
    match = np.asarray([[sum(min(c, r[w]) for w, c in Counter(h).items()) for r in rc]
                        for h in hw], dtype=float).reshape(n, k)
    hyp_len = float(sum(len(h) for h in hw))
    denom = float(sum(max(len(h), 1) for h in hw))
    A = onehot.T @ match                                 # (k, k) matches
    R = onehot.sum(0)[:, None] * ref_len[None, :]        # (k, k) reference words
    if hyp_len == 0:
        out.update(bleu1=0.0, bleu1_null_mean=0.0, bleu1_p=1.0)
    else:
        obs_m, obs_r = A[ident, ident].sum(), R[ident, ident].sum()
        null_m, null_r = A[ident[None, :], perms].sum(1), R[ident[None, :], perms].sum(1)

        def b1(m, r):
            bp = np.where(hyp_len > r, 1.0, np.exp(1 - np.asarray(r) / hyp_len))
            return np.where(np.asarray(m) > 0, bp * np.asarray(m) / denom, 0.0)

        obs = float(b1(obs_m, obs_r))
        null = b1(null_m, null_r)
        hits = int(np.sum(null >= obs - 1e-12))
        out.update(bleu1=obs, bleu1_null_mean=float(np.mean(null)),
                   bleu1_p=float(hits / len(perms) if exact else (1 + hits) / (1 + len(perms))))
    if top1_hits is not None:
        H = np.asarray(top1_hits, dtype=float)
        if H.shape != (n, k):
            raise ConfigError(f"pairing_test: top1_hits must be ({n}, {k}), got {H.shape}")
        obs, null_mean, p = assess(onehot.T @ H, lambda x: np.asarray(x) / max(n, 1))
        out.update(top1=obs, top1_null_mean=null_mean, top1_p=p)
    return out


def _check_split(split: Split, n_perm: int, alpha: float) -> None:
    """A split the harness can judge: training, validation and test trials, and enough test
    sentences for the pairing test to reach ``p < alpha`` (ConfigError naming the options)."""
    empty = [name for name in ("train", "val", "test") if not len(getattr(split, name))]
    if empty:
        raise ConfigError(
            f"split: no {'/'.join(empty)} trials ({split.describe()}); the harness needs "
            "training trials, validation trials (early stopping) and test trials. Fix: other "
            "--test-subjects, or a larger corpus (--n-sentences).")
    k = len(split.test_sentences)
    smallest = _smallest_pairing_p(k, n_perm) if k >= 2 else 1.0
    if smallest >= alpha:
        raise ConfigError(
            f"split: {k} test sentence(s) in {len(split.test)} test trials; the test of EEG use "
            f"re-pairs outputs across test sentences and cannot go below p = {smallest:.3g} "
            f"with {k}, so no result could reach alpha = {alpha:g}. Fix: more test sentences "
            f"(at least {_min_sentences(n_perm, alpha)}): a larger corpus (--n-sentences), or "
            "--test-subjects who read more sentences.")


def _min_sentences(n_perm: int, alpha: float) -> int:
    k = 2
    while _smallest_pairing_p(k, n_perm) >= alpha:
        k += 1
    return k


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
    alpha : float
        Level of the verdict's tests (0 < alpha < 1).

    Returns
    -------
    dict with ``setup``, ``chance``, ``conditions`` (metrics per condition), ``tests``
    (cross-model p-values of eeg vs each baseline: context), ``pairing_test`` (the EEG model's
    outputs with the right vs re-paired sentences: the test of EEG use), ``verdict`` (with its
    ``definition``) and ``examples``.

    Raises ConfigError for a split that cannot be judged (no training, validation or test
    trials, or too few test sentences for the pairing test to reach ``alpha``).
    """
    from .estimator import EEGTextDecoder, TextTrainSettings

    if "eeg" not in conditions:
        raise ConfigError(f"conditions: 'eeg' is required, got {list(conditions)}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ConfigError(f"alpha (--alpha): expected a level between 0 and 1 (e.g. 0.01), got "
                          f"{alpha!r}")
    n_perm = n_pairing_permutations(alpha)
    settings = settings or TextTrainSettings(seed=seed)
    split = split or disjoint_split(ds, seed=seed)
    _check_split(split, n_perm, alpha)
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
    hits, hyps, scores = {}, {}, {}
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
        scores[cond] = sc["scores"]
        m.update(epochs=len(dec.history_), fit_s=round(time.perf_counter() - t0, 1))
        out["conditions"][cond] = m
        logger.info("evaluate-text %s: %s", cond, m)
    # the test of EEG use: the EEG model's own outputs, right vs re-paired sentences
    groups = np.asarray([test_ids.index(int(ds.sentence_ids[i])) for i in split.test])
    group_cand = [cand.index(ds.corpus[s]) for s in test_ids]
    top1 = np.stack([retrieval_topk(scores["eeg"], np.full(len(groups), c), 1)
                     for c in group_cand], axis=1)
    out["pairing_test"] = pairing_test(groups, [ds.corpus[s] for s in test_ids], hyps["eeg"],
                                       top1, np.random.default_rng([seed, 98]), n_perm)
    # cross-model comparisons: context (and the text-prior usefulness bar)
    brng = np.random.default_rng([seed, 99])
    for cond in conditions:
        if cond == "eeg":
            continue
        out["tests"][cond] = {
            "top1_p": _sign_test_p(hits["eeg"][1], hits[cond][1]),
            "bleu1_p": _bootstrap_p(refs, hyps["eeg"], hyps[cond], brng),
        }
    base = [c for c in conditions if c != "eeg"]
    pt = out["pairing_test"]
    beats_prior = (out["tests"]["text_prior"]["bleu1_p"] < alpha
                   if "text_prior" in out["tests"] else None)
    out["verdict"] = {
        "retrieval_uses_eeg": bool(pt["top1_p"] < alpha),
        "text_uses_eeg": bool(pt["bleu1_p"] < alpha and beats_prior is not False),
        "text_depends_on_eeg": bool(pt["bleu1_p"] < alpha),
        "text_beats_text_prior": beats_prior,
        "baselines": base,
        "definition": dict(VERDICT_DEFINITION),
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
    pt = res.get("pairing_test")
    if pt:
        how = (f"all {pt['n_permutations']} pairings" if pt["exact"]
               else f"{pt['n_permutations']} random pairings")
        lines.append(
            f"test of EEG use (EEG model's outputs, own sentences vs re-paired across the "
            f"{pt['n_sentences']} test sentences, {how}): top1 {100 * pt['top1']:.1f} vs "
            f"{100 * pt['top1_null_mean']:.1f} re-paired, p = {pt['top1_p']:.2g}; BLEU-1 "
            f"{100 * pt['bleu1']:.1f} vs {100 * pt['bleu1_null_mean']:.1f} re-paired, "
            f"p = {pt['bleu1_p']:.2g}")
    if res["tests"]:
        lines.append("cross-model comparisons (context, not the test of EEG use):")
    for cond, t in res["tests"].items():
        lines.append(f"  eeg > {cond:<10} p(top1) = {t['top1_p']:.2g} (sign test), p(BLEU-1) = "
                     f"{t['bleu1_p']:.2g} (paired bootstrap)")
    v = res["verdict"]
    prior = v.get("text_beats_text_prior")
    bar = ("" if prior is None else
           f" [re-pairing p < alpha: {v.get('text_depends_on_eeg')}; above the text prior: "
           f"{prior}]")
    lines.append(f"verdict (alpha = {s['alpha']}): retrieval uses EEG: {v['retrieval_uses_eeg']}; "
                 f"generated text uses EEG: {v['text_uses_eeg']}{bar}")
    lines.append("(verdict = the test of EEG use at alpha; text must also beat the text prior. "
                 "All values in %; metrics on free-running output only; a result is valid only "
                 "beside its baselines)")
    return "\n".join(lines)
