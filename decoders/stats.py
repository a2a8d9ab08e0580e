"""Small statistics for accuracies on few trials: the Wilson interval and the binomial chance
threshold (Combrisson & Jerbi 2015). Used by calibration, offline evaluation and replay reports.
"""

from __future__ import annotations

import math


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (``correct`` of ``n``)."""
    from scipy.stats import norm

    if n <= 0:
        return (float("nan"), float("nan"))
    z = float(norm.ppf(0.5 + confidence / 2))
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def chance_upper(n: int, n_classes: int, alpha: float = 0.05, p: float | None = None) -> float:
    """Accuracy a random classifier exceeds with probability ``alpha`` on ``n`` trials
    (Combrisson & Jerbi 2015): the significance threshold for small calibration sets.

    ``p``: the chance accuracy (default ``1 / n_classes``, balanced classes); for unbalanced
    trials pass the share of the most frequent class (:attr:`decoders.calibration.CVScore.majority`)."""
    from scipy.stats import binom

    if n <= 0:
        return float("nan")
    return float(binom.ppf(1 - alpha, n, 1.0 / n_classes if p is None else p) / n)


def guess_threshold(n: int, n_classes: int, majority: float = float("nan"),
                    alpha: float = 0.05) -> float:
    """Accuracy a guesser exceeds with probability ``alpha`` on ``n`` trials: the binomial
    threshold around the larger of chance (``1 / n_classes``) and ``majority``, the share of the
    most frequent class among the trials (always answering that class of unbalanced trials, or
    a decoder that learnt only the imbalance, is not above chance). NaN ``majority``: chance."""
    chance = 1.0 / n_classes
    p = chance if math.isnan(majority) else max(chance, majority)
    return chance_upper(n, n_classes, alpha, p=p)
