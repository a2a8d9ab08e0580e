"""Merge calibration results of ``bench_decoders.py`` runs split by ``--targets`` into one file.

    python bench/merge_targets.py OUT.json A.json B.json [...]

The runs must share the model, K values and settings (only the targets differ). For each
(model, K) the per-subject accuracies are joined (a subject in two files is an error), and the
mean, sd, pooled test-trial count and pooled 95 % chance bound are recomputed. The output has the
commands of every input; ``compare.py`` reads it like any run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from decoders.stats import guess_threshold  # noqa: E402  (the rule evaluate --json uses)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("inputs", nargs="+")
    args = p.parse_args(argv)
    runs = [json.load(open(f)) for f in args.inputs]
    merged: dict = {}
    for run, name in zip(runs, args.inputs):
        for r in run["results"]:
            key = (r["model"], r["settings"].get("calib_trials"))
            if r.get("partial"):
                raise SystemExit(f"{name}: result {key} is partial (run unfinished); fix: "
                                 "merge finished runs only")
            m = merged.setdefault(key, {**r, "per_subject_accuracy": {}, "n_test_trials": 0,
                                        "test_class_counts": [0] * len(r.get("test_class_counts")
                                                                       or ()),
                                        "settings": {**r["settings"], "target_subjects": []}})
            both = set(m["per_subject_accuracy"]) & set(r["per_subject_accuracy"])
            if both:
                raise SystemExit(f"{name}: subjects {sorted(both, key=int)} already merged")
            m["per_subject_accuracy"].update(r["per_subject_accuracy"])
            m["n_test_trials"] += r["n_test_trials"]
            counts = r.get("test_class_counts")  # absent from JSON written before 2026-11-25
            m["test_class_counts"] = (None if counts is None or m["test_class_counts"] is None
                                      else [a + b for a, b in zip(m["test_class_counts"], counts)])
            m["settings"]["target_subjects"] += r["settings"].get("target_subjects", [])
    out = []
    for m in merged.values():
        acc = np.array(list(m["per_subject_accuracy"].values()))
        m["mean_accuracy"] = round(float(acc.mean()), 4)
        m["sd_accuracy"] = round(float(acc.std(ddof=1)), 4) if len(acc) > 1 else 0.0
        n = m["n_test_trials"]
        counts = m["test_class_counts"]  # (None in JSON written before 2026-11-25)
        majority = float("nan") if counts is None else max(counts) / n
        m["majority_share"] = None if counts is None else round(majority, 4)
        n_classes = round(1 / m["chance_level"])
        m["chance_upper_95_pooled"] = round(guess_threshold(n, n_classes, majority), 4)
        m["per_subject_accuracy"] = dict(sorted(m["per_subject_accuracy"].items(),
                                                key=lambda kv: int(kv[0])))
        out.append(m)
    meta = {"date": max(r["date"] for r in runs), "machine": runs[0]["machine"],
            "command": "  +  ".join(r["command"] for r in runs), "merged_from": args.inputs,
            "results": out}
    with open(args.out, "w") as fh:
        json.dump(meta, fh, indent=1)
    for m in out:
        print(f"{m['model']} K={m['settings'].get('calib_trials')}: "
              f"{100 * m['mean_accuracy']:.1f} % over {len(m['per_subject_accuracy'])} subjects")
    return 0


if __name__ == "__main__":
    sys.exit(main())
