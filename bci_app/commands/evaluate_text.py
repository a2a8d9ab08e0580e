"""``bci-app evaluate-text``: EEG-to-text evaluation, always beside its baselines.

By default on the synthetic reading-EEG generator (real EEGMMIDB rest background, known word
signatures at a chosen SNR); ``--zuco DIR`` evaluates on ZuCo 1.0/2.0 MATLAB files instead.
Every run trains the same model on the EEG and on three controls — Gaussian noise of matching
statistics, EEG shuffled across sentences, and no EEG (text prior) — and prints them together
with chance levels, p-values and a verdict. Text is generated free-running (no teacher forcing).
The verdict "uses the EEG" is the pairing test of the EEG model's own outputs (right vs re-paired
test sentences); text must also beat the text prior (see ``decoders/text/README.md``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from ..argtypes import number

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate-text",
        help="evaluate the EEG-to-text model (retrieval + generation) against noise, shuffled "
        "and text-prior baselines",
        description="Honest EEG-to-text evaluation: splits disjoint by subject and sentence, "
        "free-running decoding, BLEU-1..4 / ROUGE-1 / retrieval top-1/top-5 with chance, and "
        "the same model trained and tested on noise, shuffled EEG and no EEG.",
    )
    g = p.add_argument_group("data")
    g.add_argument("--snr", default="2.0", metavar="SNR[,SNR...]",
                   help="synthetic: signal/background RMS amplitude ratio(s); 0 = no signal")
    g.add_argument("--zuco", default=None, metavar="DIR",
                   help="evaluate on ZuCo Matlab files under DIR instead of synthetic data")
    g.add_argument("--zuco-tasks", default=None, help="ZuCo tasks, e.g. 'SR,NR' (default all)")
    g.add_argument("--n-sentences", type=int, default=120, help="synthetic: corpus size")
    g.add_argument("--subjects", default="1-6",
                   help="synthetic: EEGMMIDB subjects giving background EEG, e.g. '1-6'")
    g.add_argument("--test-subjects", default=None,
                   help="held-out subjects (synthetic: EEGMMIDB ids; ZuCo: 1-based index in "
                   "load order; default: the last third)")
    g.add_argument("--reps", type=int, default=2, help="synthetic: trials per sentence/subject")
    g.add_argument("--sfreq", type=number, default=80.0, help="model input rate (Hz)")
    g.add_argument("--window", type=number, default=2.0,
                   help="window length (s); synthetic: >= 1.75 (7 words x 0.25 s)")
    g.add_argument("--data-dir", default=None, help="EEGMMIDB folder (default: config)")
    g = p.add_argument_group("model, training and evaluation")
    g.add_argument("--d-model", type=int, default=64,
                   help="model width: a positive multiple of 4 (default 64)")
    g.add_argument("--epochs", type=int, default=40, help="max epochs (early stopping on val)")
    g.add_argument("--patience", type=int, default=8)
    g.add_argument("--beam", type=int, default=1, help="1 = greedy, >1 = beam search")
    g.add_argument("--candidates", choices=["test", "test+train"], default="test",
                   help="retrieval candidates: the unseen test sentences, or with training "
                   "sentences as distractors")
    g.add_argument("--conditions", default="eeg,noise,shuffled,text_prior",
                   help="comma list; 'eeg' and at least one baseline are required")
    g.add_argument("--alpha", type=number, default=0.01,
                   help="level of the verdict's test of EEG use (default 0.01)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                   help="print all results as JSON (bare --json or '-': stdout; PATH: write "
                   "them to that file)")
    p.add_argument("--bundle-out", default=None, metavar="DIR",
                   help="also save the EEG model (trained on the training split, early-stopped "
                   "on validation, candidates = every corpus sentence) as a text bundle with "
                   "these results as its validation record (first SNR only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from bci_app.errors import ConfigError
    from decoders.data import parse_subjects
    from decoders.text.estimator import TextTrainSettings
    from decoders.text.evaluation import (
        CONDITIONS,
        disjoint_split,
        evaluate_text_model,
        format_results,
    )

    from bci_app.recording import check_output_dir, check_output_file

    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    bad = [c for c in conditions if c not in CONDITIONS]
    if bad or "eeg" not in conditions or len(conditions) < 2:
        raise ConfigError(f"--conditions: expected 'eeg' plus at least one of "
                          f"{list(CONDITIONS[1:])}, got {conditions}. A result is reported only "
                          "beside its baselines.")
    if args.beam < 1:
        raise ConfigError(f"--beam: expected >= 1 (1 = greedy, > 1 = beam search), got "
                          f"{args.beam}.")
    from decoders.text.model import check_d_model

    check_d_model(args.d_model, name="--d-model")
    for opt, value in (("--sfreq", args.sfreq), ("--window", args.window)):
        if not value > 0:
            raise ConfigError(f"{opt}: expected a number > 0, got {value:g}. Fix: e.g. "
                              f"{opt} {80 if opt == '--sfreq' else 2}.")
    if args.epochs < 1:  # 0 trained nothing and evaluated the random initial model
        raise ConfigError(f"--epochs: expected an integer >= 1, got {args.epochs}. Fix: e.g. "
                          "--epochs 40 (the default; early stopping ends training sooner).")
    snrs = []
    if not args.zuco:
        snrs = _parse_snrs(args.snr)
        from decoders.text.synthetic import SyntheticReadingEEG

        # before any EEG is loaded: the corpus alone says how long a window must be
        SyntheticReadingEEG(n_sentences=args.n_sentences, window_s=args.window,
                            sfreq=args.sfreq, seed=args.seed).check_window("--window")
    # outputs checked before the (long) training, so a bad path never costs the results
    if args.json not in (None, "-"):
        check_output_file(args.json, "--json")
    if args.bundle_out:
        check_output_dir(args.bundle_out, "--bundle-out")
    torch.set_num_threads(max(1, args.threads))
    settings = TextTrainSettings(max_epochs=args.epochs, patience=args.patience, seed=args.seed)
    params = {"d_model": args.d_model}
    test_subjects = parse_subjects(args.test_subjects) if args.test_subjects else None
    datasets = []
    if args.zuco:
        from decoders.text.zuco import load_zuco, zuco_to_dataset

        tasks = args.zuco_tasks.split(",") if args.zuco_tasks else None
        datasets.append(("zuco", zuco_to_dataset(load_zuco(args.zuco, tasks), args.window,
                                                 args.sfreq)))
    else:
        from decoders.text.synthetic import SyntheticReadingEEG

        for snr in snrs:
            gen = SyntheticReadingEEG(snr=snr, n_sentences=args.n_sentences,
                                      subjects=parse_subjects(args.subjects), reps=args.reps,
                                      window_s=args.window, sfreq=args.sfreq, seed=args.seed,
                                      data_path=args.data_dir)
            datasets.append((f"synthetic snr={snr:g}", gen.generate()))
    all_res = []
    t0 = time.perf_counter()
    for name, ds in datasets:
        split = disjoint_split(ds, test_subjects=test_subjects, seed=args.seed)
        res = evaluate_text_model(ds, split, params, settings, conditions, args.candidates,
                                  args.beam, args.alpha, args.seed)
        res["name"] = name
        all_res.append(res)
        if args.json != "-":
            print(f"== {name}")
            print(format_results(res))
            for ex in res["examples"][:3]:
                print("   ref: " + ex["reference"])
                for c in conditions:
                    print(f"   {c:>10}: {ex[c]}")
    payload = {"command": "bci-app evaluate-text", "args": {k: v for k, v in vars(args).items()
                                                            if k != "func"},
               "elapsed_s": round(time.perf_counter() - t0, 1), "results": all_res}
    # the results first (stdout, then the --json file), the optional bundle last: a failure
    # while saving it loses no result
    if args.json == "-":
        print(json.dumps(payload, indent=2, default=_default), flush=True)
    elif args.json:
        text = json.dumps(payload, indent=2, default=_default) + "\n"
        try:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(text)
        except OSError as err:
            print(text, flush=True)
            raise ConfigError(f"--json: cannot write {args.json} ({err.strerror or err}); the "
                              "results were printed above instead. Fix: pass a writable file "
                              "path.") from None
        print(f"results written to {args.json}")
    if args.bundle_out:
        try:
            _save_bundle(args, datasets[0][1], all_res[0], params, settings, test_subjects)
        except OSError as err:
            raise ConfigError(f"--bundle-out: cannot write {args.bundle_out} "
                              f"({err.strerror or err}); the results above are complete. Fix: "
                              "pass a writable folder.") from None
    return 0


def _parse_snrs(text: str) -> list[float]:
    """``"2"`` / ``"0,1,4"`` -> SNRs (ConfigError naming --snr otherwise)."""
    import math

    from bci_app.errors import ConfigError

    try:
        snrs = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        snrs = []
    if not snrs or any(not math.isfinite(v) or v < 0 for v in snrs):
        raise ConfigError(f"--snr: expected one or more numbers >= 0 separated by commas (e.g. "
                          f"2 or 0,1,4), got {text!r}.")
    return snrs


def _default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _save_bundle(args, ds, res, params, settings, test_subjects) -> None:
    from decoders.text.bundle import save_text_bundle
    from decoders.text.estimator import EEGTextDecoder
    from decoders.text.evaluation import disjoint_split

    split = disjoint_split(ds, test_subjects=test_subjects, seed=args.seed)
    sents = ds.sentences
    dec = EEGTextDecoder(ds.X.shape[1], ds.sfreq, ds.window_s, params, settings, args.beam)
    dec.fit(ds.X[split.train], [sents[i] for i in split.train], ds.X[split.val],
            [sents[i] for i in split.val], candidates=list(ds.corpus))
    path = save_text_bundle(dec, args.bundle_out, {
        "channels": ds.ch_names, "preprocessing": ds.preprocessing,
        "training": {"data": ds.info, "split": split.describe(),
                     "command": "bci-app evaluate-text --bundle-out"},
        "validation": {k: res[k] for k in ("setup", "chance", "conditions", "tests",
                                           "verdict")}})
    # stdout holds only the JSON with a bare --json
    print(f"text bundle written to {path}", file=sys.stderr if args.json == "-" else sys.stdout)
