"""Side-by-side motor-imagery decoder benchmark on EEGMMIDB (same folds, same preprocessing).

Examples (2-core CPU, run niced)::

    nice -n 10 .venv/bin/python bench/bench_decoders.py --protocol within \
        --models eegnet,eeg_simpleconv,csp_lda,ts_lr --subjects 1-20
    nice -n 10 .venv/bin/python bench/bench_decoders.py --protocol loso --align both \
        --models eegnet,ts_lr,csp_lda
    nice -n 10 .venv/bin/python bench/bench_decoders.py --protocol calibration \
        --calib-trials 0,5,10,20 --models eegnet,ts_lr,csp_lda

Prints one line per (model, setting) with mean +- sd accuracy over subjects, and writes JSON with
per-subject accuracies to bench/out/. Preprocessing: 21 sensorimotor channels (FC/C/CP rows; --channels),
CAR, causal Butterworth 8-30 Hz (order 4) on
the continuous runs, causal resampling to 80 Hz, windows 0.5-2.5 s after the cue.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


_STAMP = None


def _pretrain_cache(factory, path: Path, finetune: dict):
    """Factory whose decoders reuse a pretrained model saved at ``path`` (bench-only cache, so
    fine-tuning variants do not pretrain again); the fine-tuning settings are the current ones."""
    import numpy as np

    def make():
        dec = factory()
        if path.is_file():
            from decoders.estimators import DeepDecoder

            with np.load(path, allow_pickle=False) as z:
                state = json.loads(str(z["__state__"]))
                arrays = {k: z[k] for k in z.files if k != "__state__"}
            state["params"].update(finetune)
            loaded = DeepDecoder.from_state(state, arrays)
            loaded.net_.to(dec.device)
            loaded.device = dec.device
            loaded.fit = lambda *a, **k: loaded
            return loaded
        fit = dec.fit

        def fit_and_save(*a, **k):
            fit(*a, **k)
            state, arrays = dec.get_state()
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, __state__=json.dumps(state), **arrays)
            return dec

        dec.fit = fit_and_save
        return dec

    return make


def _merge(results):
    """One EvaluationResult from per-target results of the same setting."""
    from decoders.evaluation import EvaluationResult

    first = results[0]
    settings = dict(first.settings)
    key = "target_subjects" if "target_subjects" in settings else "subjects"
    settings[key] = [t for r in results for t in r.settings[key]]
    return EvaluationResult(first.protocol, first.model, [f for r in results for f in r.folds],
                            first.classes, settings)


def _write(args, out, torch) -> Path:
    """(Re)write the JSON results file of this run."""
    global _STAMP
    import os

    _STAMP = _STAMP or f"{dt.datetime.now():%H%M%S}"
    meta = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} cpus (shared), torch "
            f"{torch.__version__}, threads {args.threads}, device {args.device}"
            + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""),
            "command": " ".join(sys.argv), "results": out}
    path = Path(args.out or ROOT / "bench" / "out" / f"bench_{args.protocol}{args.tag}_{_STAMP}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=1))
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--protocol", choices=["within", "loso", "calibration"], required=True)
    p.add_argument("--models", default="eegnet,ts_lr,csp_lda")
    p.add_argument("--subjects", default="1-20")
    p.add_argument("--align", choices=["yes", "no", "both"], default="yes",
                   help="loso/calibration: Euclidean alignment (within: see --within-align)")
    p.add_argument("--calib-trials", default="0,5,10,20")
    p.add_argument("--targets", default=None,
                   help="calibration, within --within-pretrain: held-out target subjects "
                   "(default: all --subjects); each "
                   "is pretrained on the other --subjects, results saved after every target")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--finetune-epochs", type=int, default=20)
    p.add_argument("--finetune-lr", type=float, default=3e-4)
    p.add_argument("--finetune-layers", choices=["all", "head"], default="all")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--augment", default="",
                   help="deep models: comma list of flip,reverse,sr,noise,scale,crop "
                   "(training only)")
    p.add_argument("--model-param", action="append", default=[], metavar="KEY=VALUE",
                   help="deep models: hyper-parameter of the net (repeatable)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="deep models: early-stopping share of the training trials (0: train "
                   "--epochs epochs, no early stopping)")
    p.add_argument("--train-span", type=float, default=None, metavar="TMAX",
                   help="within: train on each training trial's span [0.5, TMAX) s (random crops "
                   "for deep models with --augment ...,crop; 0.25 s-step crops for the others); "
                   "test windows unchanged")
    p.add_argument("--within-align", action="store_true",
                   help="within: Euclidean alignment fitted on each training fold (all models)")
    p.add_argument("--within-pretrain", action="store_true",
                   help="within: pretrain each target on the other --subjects (aligned per "
                   "subject with --align yes), then align and fine-tune on each training fold "
                   "(--pretrain-cache reuses the calibration protocol's pretrained models)")
    p.add_argument("--fold-seed", type=int, default=None,
                   help="within: seed of the fold draw (default --seed; with --within-pretrain "
                   "the pretraining keeps --seed)")
    p.add_argument("--ensemble", type=int, default=1,
                   help="deep models: average this many nets trained from different seeds")
    p.add_argument("--device", default="cpu", help="deep models: torch device (cpu, cuda)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--channels", default="motor21", help="'motor21' or 'all'")
    p.add_argument("--cache", default=None,
                   help="npz cache of the preprocessed epochs (git-ignored; default bench/out/)")
    p.add_argument("--out", default=None, help="JSON results file")
    p.add_argument("--tag", default="")
    p.add_argument("--pretrain-cache", action="store_true",
                   help="calibration / within --within-pretrain, deep models: keep each "
                   "target's pretrained model in "
                   "bench/out/pretrained_cache/ and reuse it when only fine-tuning settings change")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from decoders.data import EpochsData, parse_subjects
    from decoders.evaluation import evaluate_calibration, evaluate_loso, evaluate_within
    from decoders.registry import get_entry
    from decoders.training import DEFAULT_PREPROCESSING, DEFAULT_TMAX, DEFAULT_TMIN, load_data
    from decoders.training import CHANNEL_SETS, TrainSettings, parse_model_params

    torch.set_num_threads(args.threads)
    subjects = parse_subjects(args.subjects)
    import dataclasses

    pre = dataclasses.replace(DEFAULT_PREPROCESSING, channels=CHANNEL_SETS[args.channels])
    if args.train_span is not None and args.protocol != "within":
        p.error("--train-span: only with --protocol within")
    span = "" if args.train_span is None else f"_span{args.train_span:g}"
    cache = Path(args.cache or ROOT / "bench" / "out"
                 / f"mi_s1-20_80hz_8-30_{args.channels}{span}.npz")
    data = None
    if cache.is_file():
        data = EpochsData.load_npz(cache)
        if not set(subjects) <= set(data.subjects) or data.preprocessing != pre.to_dict() \
                or data.span_tmax != args.train_span:
            data = None
    if data is None:
        data = load_data(range(1, 21) if max(subjects) <= 20 else subjects, args.data_dir,
                         pre, DEFAULT_TMIN, DEFAULT_TMAX, progress=True,
                         span_tmax=args.train_span)
        cache.parent.mkdir(parents=True, exist_ok=True)
        data.save_npz(cache)
    data = data.subset(np.isin(data.subject, subjects))
    print(f"data: {len(data)} trials, {data.X.shape[1]} ch, {data.sfreq} Hz, "
          f"{data.window_s} s windows, subjects {subjects}", flush=True)

    aligns = {"yes": [True], "no": [False], "both": [True, False]}[args.align]
    if args.within_pretrain and args.protocol != "within":
        p.error("--within-pretrain: only with --protocol within")
    if args.protocol == "within" and not args.within_pretrain:
        aligns = [args.within_align]
    fold_seed = args.seed if args.fold_seed is None else args.fold_seed

    def cached(factory, model, params, align, t):
        """The target's pretraining factory, through the bench cache when asked."""
        if not (args.pretrain_cache and params):
            return factory
        import hashlib

        pre_key = {k: v for k, v in params.items() if not k.startswith("finetune")
                   and k != "device"}
        key = hashlib.sha1(json.dumps(
            [model, pre_key, align, args.seed, subjects, args.channels],
            sort_keys=True).encode()).hexdigest()[:12]
        return _pretrain_cache(
            factory, ROOT / "bench" / "out" / "pretrained_cache" / f"{model}_{key}"
            f"_S{t:03d}.npz", {k: v for k, v in params.items() if k.startswith("finetune")})
    rows, out = [], []
    for model in args.models.split(","):
        params = {}
        if get_entry(model).kind == "torch":
            params = dict(max_epochs=args.epochs, patience=args.patience, lr=args.lr,
                          batch_size=args.batch_size, finetune_epochs=args.finetune_epochs,
                          finetune_lr=args.finetune_lr, finetune_layers=args.finetune_layers,
                          weight_decay=args.weight_decay, augment=args.augment,
                          val_fraction=args.val_fraction, device=args.device,
                          n_ensemble=args.ensemble,
                          model_params=parse_model_params(args.model_param))
        for align in aligns:
            st = TrainSettings(model=model, decoder_params=params, align=align, seed=args.seed)
            t0 = time.perf_counter()
            if args.protocol == "within" and args.within_pretrain:
                targets = parse_subjects(args.targets) if args.targets else subjects
                per_t = []
                for t in targets:  # one target at a time: its own (cached) pretraining
                    per_t.append(evaluate_within(
                        data, cached(st.factory(data), model, params, align, t), 5, fold_seed,
                        align=align, subjects=[t], model=model, pretrain_subjects=subjects))
                    _write(args, out + [{**_merge(per_t).to_dict(), "align": align,
                                         "partial": True, "decoder_params": params}], torch)
                    print(f"  target S{t:03d}: {100 * per_t[-1].mean:.1f}", flush=True)
                res = [_merge(per_t)]
            elif args.protocol == "within":
                res = [evaluate_within(data, st.factory(data), 5, fold_seed, align=align,
                                       subjects=subjects, progress=True, model=model,
                                       train_span=args.train_span is not None)]
            elif args.protocol == "loso":
                res = [evaluate_loso(data, st.factory(data), align=align, subjects=subjects,
                                     progress=True, model=model)]
            else:
                ks = [int(k) for k in args.calib_trials.split(",")]
                targets = parse_subjects(args.targets) if args.targets else subjects
                per_k: dict = {k: [] for k in ks}
                for t in targets:  # one target at a time so partial runs keep their folds
                    factory = cached(st.factory(data), model, params, align, t)
                    r = evaluate_calibration(data, factory, subjects, [t], ks,
                                             align=align, progress=False, model=model)
                    for k in ks:
                        per_k[k].append(r[k])
                    done = [k_res for k in ks for k_res in [_merge(per_k[k])]]
                    _write(args, out + [{**d.to_dict(), "align": align, "partial": True,
                                         "decoder_params": params} for d in done], torch)
                    print(f"  target S{t:03d}: " + " ".join(
                        f"K={k}:{100 * r[k].mean:.1f}" for k in ks), flush=True)
                res = [_merge(per_k[k]) for k in ks]
            el = time.perf_counter() - t0
            for r in res:
                k = r.settings.get("calib_trials")
                line = (f"{args.protocol:11s} {model:15s} align={align!s:5s} "
                        + (f"K={k:<2d} " if k is not None else "")
                        + f"acc {100 * r.mean:5.1f} +- {100 * r.sd:4.1f} % "
                        f"(chance 50 %, {len(r.y_true)} test trials, {el:.0f} s)")
                print(line, flush=True)
                rows.append(line)
                out.append({**r.to_dict(), "align": align, "seconds": round(el, 1),
                            "decoder_params": params})
            path = _write(args, out, torch)  # after every model: a killed run keeps its results
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
