"""Paired comparison of two results of ``bench_decoders.py`` on the same subjects.

    python bench/compare.py A.json:eegnet B.json:ts_lr [--k 10]
    python bench/compare.py A0.json,A1.json:tsmnet B0.json,B1.json:ts_lr   # means over runs

Each argument is ``FILE[:MODEL]`` (the model is needed when a file holds several); ``--k``
picks the calibration K. Prints both means, the per-subject paired difference (mean, 95 %
t-interval), how many subjects are better/worse/tied, and the two-sided Wilcoxon signed-rank p
over subjects (ties dropped). Per-subject accuracies vary by 13-18 points here, so only a
paired test says whether a difference of a few points is more than noise.
"""

from __future__ import annotations

import argparse
import json
import sys


def _pick(spec: str, k: int | None) -> dict:
    """The result named by ``FILE[:MODEL]``; ``F1,F2,...[:MODEL]`` averages each subject's
    accuracy over several runs (e.g. the fold draws of seeds 0-3) before the comparison."""
    paths, _, model = spec.partition(":")
    if "," in paths:
        runs = [_pick(f"{path}:{model}" if model else path, k) for path in paths.split(",")]
        subjects = set.intersection(*(set(r["per_subject_accuracy"]) for r in runs))
        mean = {s: sum(r["per_subject_accuracy"][s] for r in runs) / len(runs)
                for s in subjects}
        return {**runs[0], "per_subject_accuracy": mean}
    path = paths
    with open(path) as fh:
        results = json.load(fh)["results"]
    hits = [r for r in results if (not model or r["model"] == model)
            and (k is None or r["settings"].get("calib_trials", k) == k)]
    if len(hits) != 1:
        found = sorted({(r["model"], r["settings"].get("calib_trials")) for r in results})
        raise SystemExit(f"{spec}: expected one result (K={k}), found {len(hits)}; the file "
                         f"has (model, K) {found}. Fix: name the model as FILE:MODEL or give --k.")
    if hits[0].get("partial"):
        print(f"note: {spec} is a run still in progress (targets so far)")
    return hits[0]


def main(argv=None) -> int:
    import numpy as np
    from scipy import stats

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a", help="FILE[:MODEL], the candidate")
    p.add_argument("b", help="FILE[:MODEL], the reference")
    p.add_argument("--k", type=int, default=None, help="calibration: trials per class")
    args = p.parse_args(argv)
    ra, rb = _pick(args.a, args.k), _pick(args.b, args.k)
    sa, sb = ra["per_subject_accuracy"], rb["per_subject_accuracy"]
    subjects = sorted(set(sa) & set(sb), key=int)
    if set(sa) != set(sb):
        print(f"warning: only the {len(subjects)} common subjects are compared")
    a = np.array([sa[s] for s in subjects]) * 100
    b = np.array([sb[s] for s in subjects]) * 100
    d = a - b
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    nz = d[np.abs(d) > 1e-9]
    p_w = stats.wilcoxon(nz).pvalue if len(nz) > 0 else 1.0
    print(f"{ra['model']} {a.mean():.1f} % vs {rb['model']} {b.mean():.1f} % "
          f"({len(subjects)} subjects{'' if args.k is None else f', K={args.k}'}): "
          f"difference {d.mean():+.1f} points (95 % CI {d.mean() - half:+.1f} … "
          f"{d.mean() + half:+.1f}); better on {(d > 1e-9).sum()}, worse on {(d < -1e-9).sum()}, "
          f"tied {len(d) - len(nz)}; Wilcoxon p = {p_w:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
