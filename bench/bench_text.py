"""EEG-to-text benchmark (issue 9): SNR curves with baselines, and online inference cost.

1. Synthetic-generator curves: for each SNR, ``evaluate_text_model`` trains the model on the EEG
   and on the three controls (noise, shuffled, text prior) with splits disjoint by subject and
   sentence; we report retrieval top-1 and BLEU-1 (free-running) for all four plus chance, the
   pairing test of EEG use (the EEG model's outputs with their own vs re-paired test sentences)
   and the verdict.
2. Online cost: a bundle trained at the highest SNR is saved and re-loaded; one window at a time,
   one torch thread, we time ``predict_proba`` (retrieval over the bundle's candidates) and
   ``decode_text`` (greedy free-running generation), p50 / p99.

Run (2 shared cores: be nice)::

    nice -n 10 .venv/bin/python bench/bench_text.py --snrs 0,1,4 --json bench/out/text.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, pct


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--snrs", default="0,1,4")
    p.add_argument("--n-sentences", type=int, default=100)
    p.add_argument("--subjects", default="1,2,3,4")
    p.add_argument("--test-subject", type=int, default=4)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--d-model", type=int, default=32)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--latency-windows", type=int, default=200)
    p.add_argument("--skip-curves", action="store_true")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from decoders.text.bundle import load_text_bundle, save_text_bundle
    from decoders.text.estimator import EEGTextDecoder, TextTrainSettings
    from decoders.text.evaluation import disjoint_split, evaluate_text_model, format_results
    from decoders.text.synthetic import SyntheticReadingEEG

    subjects = [int(s) for s in args.subjects.split(",")]
    settings = TextTrainSettings(max_epochs=args.epochs, patience=5, seed=0)
    params = {"d_model": args.d_model}
    out = {"date": dt.date.today().isoformat(), "machine": machine(), "args": vars(args),
           "curves": [], "latency": {}}

    def dataset(snr):
        return SyntheticReadingEEG(snr=snr, n_sentences=args.n_sentences, subjects=subjects,
                                   reps=args.reps, sfreq=80.0, seed=0).generate()

    snrs = [float(s) for s in args.snrs.split(",")]
    if not args.skip_curves:
        for snr in snrs:
            t0 = time.perf_counter()
            ds = dataset(snr)
            split = disjoint_split(ds, test_subjects=[args.test_subject], test_fraction=0.25,
                                   seed=0)
            res = evaluate_text_model(ds, split, params, settings, seed=0)
            print(f"== SNR {snr:g}  ({time.perf_counter() - t0:.0f} s)")
            print(format_results(res), flush=True)
            out["curves"].append({"snr": snr, **{k: res[k] for k in (
                "setup", "chance", "conditions", "pairing_test", "tests", "verdict",
                "examples")}})
        _summary(out["curves"])

    if args.skip_latency:
        _write(args, out)
        return 0
    # -- online cost -------------------------------------------------------------------------
    ds = dataset(max(snrs))
    split = disjoint_split(ds, test_subjects=[args.test_subject], test_fraction=0.25, seed=0)
    sents = ds.sentences
    dec = EEGTextDecoder(ds.X.shape[1], ds.sfreq, ds.window_s, params, settings)
    dec.fit(ds.X[split.train], [sents[i] for i in split.train], ds.X[split.val],
            [sents[i] for i in split.val], candidates=list(ds.corpus))
    with tempfile.TemporaryDirectory() as tmp:
        tb = load_text_bundle(save_text_bundle(dec, Path(tmp) / "tb", {
            "channels": ds.ch_names, "preprocessing": ds.preprocessing}))
    X = ds.X[split.test]
    tb.predict_proba(X[:1])  # warm-up
    tb.decode_text(X[:1])
    lat_p, lat_t = [], []
    for i in range(args.latency_windows):
        w = X[i % len(X)]
        t = time.perf_counter()
        tb.predict_proba(w)
        lat_p.append(1e3 * (time.perf_counter() - t))
        t = time.perf_counter()
        tb.decode_text(w)
        lat_t.append(1e3 * (time.perf_counter() - t))
    n_params = sum(p.numel() for p in tb.decoder.model_.parameters())
    out["latency"] = {
        "window": f"{len(tb.channels)} ch x {tb.n_times} samples ({tb.window_s} s at "
                  f"{tb.sfreq:g} Hz)",
        "n_candidates": len(tb.classes), "n_params": int(n_params), "threads": args.threads,
        "predict_proba_ms": {"p50": pct(lat_p, 50), "p99": pct(lat_p, 99)},
        "decode_text_ms": {"p50": pct(lat_t, 50), "p99": pct(lat_t, 99)},
    }
    print(json.dumps(out["latency"], indent=2))
    _write(args, out)
    return 0


def _summary(curves) -> None:
    """One line per SNR: top-1 and BLEU-1 of the four conditions, the pairing test, verdict."""
    if not curves:
        return
    conds = list(curves[0]["conditions"])
    print("\nSNR | top-1 % " + " / ".join(conds) + " | BLEU-1 % " + " / ".join(conds)
          + " | pairing p(top-1), p(BLEU-1) | verdict: retrieval, text")
    for c in curves:
        m, pt, v = c["conditions"], c["pairing_test"], c["verdict"]
        print(f"{c['snr']:g} | " + " / ".join(f"{100 * m[k]['top1']:.1f}" for k in conds)
              + " | " + " / ".join(f"{100 * m[k]['bleu1']:.1f}" for k in conds)
              + f" | {pt['top1_p']:.2g}, {pt['bleu1_p']:.2g}"
              + f" | {v['retrieval_uses_eeg']}, {v['text_uses_eeg']}", flush=True)


def _write(args, out) -> None:
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
