"""``bci-app train``: fit a motor-imagery decoder on EEGMMIDB subjects and save a bundle."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    from decoders.cli_args import add_data_args, add_model_args

    p = subparsers.add_parser(
        "train",
        help="train a motor-imagery decoder (left/right fist, EEGMMIDB) and save a bundle",
        description="Train on every trial of the given subjects (cross-subject, per-subject "
        "Euclidean alignment unless --no-align); early stopping uses a stratified 20 %% "
        "split of those trials. Writes a bundle folder (config.json + weights.safetensors).",
    )
    add_data_args(p)
    add_model_args(p)
    p.add_argument("--out", default=None, help="bundle folder to write (required to train)")
    p.add_argument("--onnx", action="store_true", help="also export model.onnx into the bundle")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from bci_app.errors import ConfigError
    from decoders.cli_args import (
        check_train_span,
        download_if_asked,
        preprocessor_from_args,
        settings_from_args,
    )
    from decoders.data import parse_subjects
    from decoders.registry import get_entry, list_models
    from decoders.training import load_data, train_cross_subject

    if args.list_models:
        print("\n".join(list_models()))
        return 0
    if not args.out:
        raise ConfigError("--out: expected a folder for the bundle, got nothing")
    model = args.model or "eegnet"
    # every check before the data are loaded and the model trained
    if args.onnx and get_entry(model).kind != "torch":
        raise ConfigError(f"--onnx: only torch models export to ONNX; {model!r} is a "
                          "scikit-learn model. Fix: drop --onnx, or train a torch model (e.g. "
                          f"--model eegnet; see --list-models).")
    if args.onnx and getattr(get_entry(model).obj, "onnx_exportable", True) is False:
        raise ConfigError(f"--onnx: {model!r} uses operators ONNX does not have (symmetric "
                          "eigen-decomposition), so it cannot be exported. Fix: drop --onnx (the "
                          "online worker runs it in PyTorch), or train another model (e.g. "
                          "--model eegnet; see --list-models).")
    settings = settings_from_args(args, model)
    check_model_params(model, settings)
    span = check_train_span(args, settings)
    from bci_app.recording import check_output_dir

    check_output_dir(args.out, "--out")
    torch.set_num_threads(max(1, args.threads))
    subjects = parse_subjects(args.subjects)
    download_if_asked(args, subjects, sys.stderr if args.json else None)  # JSON: stdout
    t0 = time.perf_counter()
    data = load_data(subjects, args.data_dir, preprocessor_from_args(args), args.tmin,
                     args.tmax, progress=args.progress, span_tmax=span)
    argv = getattr(args, "argv", None)  # set by bci_app.cli.main (global options included)
    command = "bci-app " + " ".join(shlex.quote(a) for a in argv) if argv else None
    try:
        dec, path = train_cross_subject(data, settings, args.out,
                                        provenance={"command": command}, export_onnx=args.onnx)
    except OSError as err:
        raise ConfigError(f"--out: cannot write the bundle to {args.out} "
                          f"({err.strerror or err}); fix: pass a writable folder (the check "
                          "before training passed: disk full, or the folder changed?)") from None
    summary = {"bundle": str(path), "model": model, "subjects": subjects,
               "n_trials": int(len(data)), "validation": dec.validation_,
               "seconds": round(time.perf_counter() - t0, 1)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"saved {path} ({model}, {len(data)} trials of subjects {args.subjects}; "
              f"validation {summary['validation']})")
    return 0


def check_model_params(model: str, settings) -> None:
    """Unknown or mistyped --model-param of a torch model, named before any data is loaded."""
    from decoders.models.base import EEGModel
    from decoders.registry import get_entry

    entry = get_entry(model)
    if entry.kind == "torch" and isinstance(entry.obj, type) and issubclass(entry.obj, EEGModel):
        entry.obj.check_hparams(settings.decoder_params.get("model_params") or {})
