"""``bci-app evaluate``: within / loso / calibration protocols with a report."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    from decoders.cli_args import add_data_args, add_model_args

    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a motor-imagery decoder: within-subject CV, leave-one-subject-out, or "
        "calibration with K trials per class",
        description="Honest evaluation on EEGMMIDB left/right-fist imagery. Test trials never "
        "reach training, input scaling or early stopping.",
    )
    add_data_args(p)
    add_model_args(p)
    p.add_argument("--protocol", choices=["within", "loso", "calibration"], default="within")
    p.add_argument("--pretrain-subjects", default=None,
                   help="calibration: subjects to pretrain on (default: --subjects; each target "
                   "is left out of its own pretraining). within: given, each subject's decoder "
                   "is pretrained on these subjects (itself left out), then aligned and "
                   "fine-tuned on each training fold, as the calibration wizard does")
    p.add_argument("--calib-trials", default="0,5,10,20", metavar="K[,K...]",
                   help="calibration: trials per class used to align and fine-tune (0 = "
                   "unsupervised alignment only)")
    p.add_argument("--bundle", default=None,
                   help="a trained bundle: calibration fine-tunes it; within/loso train fresh "
                   "models with its model, hyper-parameters and preprocessing")
    p.add_argument("--folds", type=int, default=5, help="within: number of CV folds")
    p.add_argument("--json", action="store_true", help="print machine-readable results")
    p.add_argument("--report-dir", default=None,
                   help="where to write report.md and PNGs (default: "
                   "./bci-eval-<protocol>-<model>-<time>)")
    p.add_argument("--no-report", action="store_true", help="write no report files")
    p.set_defaults(func=run, bundle_fixed_defaults={d: p.get_default(d) for d in BUNDLE_FIXED})


#: Options a --bundle fixes (its model, hyper-parameters, preprocessing, window, alignment):
#: given with --bundle they would be silently ignored.
BUNDLE_FIXED = ("model_param", "epochs", "patience", "batch_size", "lr", "finetune_epochs",
                "finetune_lr", "finetune_layers", "augment", "ensemble", "no_align", "tmin",
                "tmax", "l_freq", "h_freq", "sfreq", "no_car", "channels")


def _check_bundle_options(args: argparse.Namespace) -> None:
    """ConfigError naming the options given with --bundle that the bundle fixes."""
    from bci_app.errors import ConfigError

    defaults = getattr(args, "bundle_fixed_defaults", None) or {}
    given = [f"--{d.replace('_', '-')}" for d in BUNDLE_FIXED
             if d in defaults and getattr(args, d, None) != defaults[d]]
    if given:
        raise ConfigError(
            f"{', '.join(given)}: the --bundle fixes its model, hyper-parameters, "
            "preprocessing, window and alignment, so these would be ignored. Fix: drop them, "
            "or evaluate with --model NAME and these options instead of --bundle.")


def run(args: argparse.Namespace) -> int:
    import torch

    from bci_app.errors import ConfigError
    from decoders.cli_args import check_train_span, preprocessor_from_args, settings_from_args
    from decoders.data import parse_subjects
    from decoders.evaluation import (
        evaluate_calibration,
        evaluate_loso,
        evaluate_within,
        results_table,
        write_report,
    )
    from decoders.preprocessing import Preprocessor
    from decoders.registry import list_models
    from decoders.training import TrainSettings, load_data

    from .train import check_model_params

    if args.list_models:
        print("\n".join(list_models()))
        return 0
    if args.model and args.bundle:
        raise ConfigError("--model/--bundle: expected one of them, got both")
    # cheap checks first: nothing below may fail after the data are loaded or the models trained
    if args.protocol == "within" and args.folds < 2:
        raise ConfigError(f"--folds: expected >= 2 cross-validation folds, got {args.folds}.")
    ks = _parse_calib_trials(args.calib_trials) if args.protocol == "calibration" else []
    torch.set_num_threads(max(1, args.threads))
    subjects = parse_subjects(args.subjects)
    bundle = None
    if args.bundle:
        from decoders.bundle import load_bundle

        from . import refuse_text_bundle

        refuse_text_bundle(args.bundle, "--bundle", "`bci-app evaluate` evaluates motor-imagery "
                           "decoders. Fix: pass a bundle written by `bci-app train --out`, or "
                           "evaluate EEG-to-text models with `bci-app evaluate-text`.")
        bundle = load_bundle(args.bundle)
        cfg = bundle.config
        model = cfg["model"]
        pre = Preprocessor.from_dict(cfg["preprocessing"])
        win = cfg["training"].get("window", {})
        tmin = win.get("tmin", args.tmin)
        tmax = win.get("tmax", tmin + cfg["window_s"])
        params = dict(cfg["decoder"]["params"])
        for k in ("model", "name", "n_chans", "n_outputs", "sfreq", "window_s"):
            params.pop(k, None)
        settings = TrainSettings(model=model, decoder_params=params,
                                 align=cfg.get("alignment") == "euclidean", seed=args.seed)
    else:
        model = args.model or "eegnet"
        pre = preprocessor_from_args(args)
        tmin, tmax = args.tmin, args.tmax
        settings = settings_from_args(args, model)
        check_model_params(model, settings)
    report_dir = None
    if not args.no_report:
        from bci_app.recording import check_output_dir

        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        report_dir = Path(args.report_dir or f"bci-eval-{args.protocol}-{model}-{stamp}")
        check_output_dir(report_dir, "--report-dir")
    pretrain = parse_subjects(args.pretrain_subjects) if args.pretrain_subjects else subjects
    if args.protocol == "loso" and args.pretrain_subjects is not None:
        raise ConfigError("--pretrain-subjects: loso trains on the other --subjects; fix: drop "
                          "it, or use --protocol within/calibration to pretrain on other subjects")
    within_pretrain = args.protocol == "within" and args.pretrain_subjects is not None
    if within_pretrain and bundle is not None:
        raise ConfigError("--pretrain-subjects with --protocol within: pretrains a fresh "
                          "--model, not a --bundle; fix: use --model, or --protocol calibration "
                          "to fine-tune the bundle")
    if bundle is not None:
        _check_bundle_options(args)
    if bundle is not None and args.protocol == "calibration":
        trained_on = set(bundle.config["training"].get("subjects", []))
        overlap = sorted(trained_on & set(subjects))
        if overlap:
            raise ConfigError(
                f"--subjects: targets {overlap} were in the bundle's training subjects; testing "
                "on them would leak. Fix: evaluate the bundle on other subjects, or use --model "
                "(each target is then left out of its own pretraining)."
            )
        pretrain = []
    if args.protocol in ("within", "loso") and not within_pretrain:
        pretrain = []
    all_subjects = sorted(set(subjects) | set(pretrain))
    span = None
    if bundle is None or args.train_span is not None:  # a crop-trained bundle may be evaluated
        span = check_train_span(args, settings, args.protocol)  # without spans (crop: no-op)
    from decoders.cli_args import download_if_asked

    download_if_asked(args, all_subjects, sys.stderr if args.json else None)  # JSON: stdout
    t0 = time.perf_counter()
    data = load_data(all_subjects, args.data_dir, pre, tmin, tmax, progress=args.progress,
                     span_tmax=span)
    if bundle is not None and (data.ch_names != bundle.channels
                               or abs(data.sfreq - bundle.sfreq) > 1e-6):
        raise ConfigError("--bundle: data channels/rate differ from the bundle's")
    if args.protocol == "within":
        _check_folds(data, subjects, args.folds)
    factory = settings.factory(data)
    if args.protocol == "within":
        results = [evaluate_within(data, factory, n_folds=args.folds, seed=args.seed,
                                   align=settings.align if within_pretrain else False,
                                   subjects=subjects, progress=args.progress, model=model,
                                   train_span=span is not None,
                                   pretrain_subjects=pretrain if within_pretrain else None)]
    elif args.protocol == "loso":
        results = [evaluate_loso(data, factory, align=settings.align, subjects=subjects,
                                 progress=args.progress, model=model)]
    else:
        res = evaluate_calibration(
            data, factory, pretrain, subjects, ks, align=settings.align,
            pretrained=bundle.decoder if bundle is not None else None,
            progress=args.progress, model=model)
        results = [res[k] for k in sorted(res)]
    elapsed = time.perf_counter() - t0
    # results first, the report files last: a failure while writing them loses no result
    if args.json:
        print(json.dumps({"results": [r.to_dict() for r in results],
                          "report_dir": str(report_dir) if report_dir else None,
                          "seconds": round(elapsed, 1)}))
    else:
        print(results_table(results))
        print(f"chance level {100 * results[0].chance:.0f} %; {elapsed:.0f} s"
              + (f"; report in {report_dir}" if report_dir else ""), flush=True)
    if report_dir is not None:
        try:
            write_report(results, report_dir)
        except OSError as err:
            raise ConfigError(f"--report-dir: cannot write the report to {report_dir} "
                              f"({err.strerror or err}); the results above are complete. Fix: "
                              "pass a writable folder, or --no-report.") from None
    return 0


def _parse_calib_trials(text) -> list[int]:
    """``"0,5,10"`` -> [0, 5, 10] (ConfigError naming --calib-trials otherwise)."""
    from bci_app.errors import ConfigError

    try:
        ks = [int(k) for k in str(text).split(",") if k.strip()]
    except ValueError:
        ks = []
    if not ks or min(ks) < 0:
        raise ConfigError(f"--calib-trials: expected trial counts per class >= 0 separated by "
                          f"commas (e.g. 0,5,10,20), got {text!r}.")
    return ks


def _check_folds(data, subjects, n_folds: int) -> None:
    """Stratified CV needs every class of every evaluated subject in each of the folds."""
    import numpy as np

    from bci_app.errors import ConfigError

    y_all, subj = np.asarray(data.y), np.asarray(data.subject)
    classes = np.unique(y_all)
    least, who = None, None
    for s in subjects:
        y = y_all[subj == s]
        if y.size == 0:
            continue
        n = min(int(np.sum(y == c)) for c in classes)
        if least is None or n < least:
            least, who = n, s
    if least is not None and n_folds > least:
        raise ConfigError(f"--folds: {n_folds} folds need at least {n_folds} trials of every "
                          f"class per subject; subject {who} has {least}. Fix: --folds between 2 "
                          f"and {least}.")
