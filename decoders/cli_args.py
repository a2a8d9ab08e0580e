"""Argument groups shared by ``bci-app train`` and ``bci-app evaluate`` (argparse only)."""

from __future__ import annotations

import argparse

from bci_app.argtypes import number

from . import defaults
from .defaults import DEFAULT_TMAX, DEFAULT_TMIN


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data-dir", default=None,
                   help="folder in MNE's eegbci layout (default: bci_app.config.eegmmidb_dir())")
    g.add_argument("--subjects", default="1-20", help="subject ids, e.g. '1-20' or '1,3,5-7'")
    g.add_argument("--download", action="store_true",
                   help="fetch the subjects' missing EDF files from PhysioNet first (about "
                   "2.6 MB per run, 3 runs per subject) into --data-dir")
    g.add_argument("--tmin", type=number, default=DEFAULT_TMIN, help="window start after cue (s)")
    g.add_argument("--tmax", type=number, default=DEFAULT_TMAX, help="window end after cue (s)")
    g.add_argument("--train-span", type=number, default=None, metavar="TMAX",
                   help="deep models with --augment ...,crop: train on random window-long crops "
                   "of each training trial's span [tmin, TMAX) s (EEGMMIDB imagery lasts 4.1 s); "
                   "tests and the bundle keep the --tmin/--tmax window (train; evaluate within)")
    g.add_argument("--l-freq", type=number, default=defaults.L_FREQ)
    g.add_argument("--h-freq", type=number, default=defaults.H_FREQ)
    g.add_argument("--sfreq", type=number, default=defaults.SFREQ,
                   help="resample to this rate (Hz; 0 keeps 160 Hz)")
    g.add_argument("--no-car", action="store_true", help="no common average reference")
    g.add_argument("--channels", default="all",
                   help="'all' (64), 'motor21' (FC/C/CP rows) or a comma list of names")


def download_if_asked(args, subjects, out=None) -> None:
    """``--download``: fetch the subjects' missing EEGMMIDB files, saying how many on ``out``
    (default stdout)."""
    if not getattr(args, "download", False):
        return
    import sys

    from .data import download_eegmmidb

    n = download_eegmmidb(subjects, args.data_dir)
    if n:
        print(f"downloaded {n} EEGMMIDB files", file=out or sys.stdout, flush=True)


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and training")
    g.add_argument("--model", default=None,
                   help="registered model name (see --list-models); default eegnet")
    g.add_argument("--model-param", action="append", metavar="KEY=VALUE",
                   help="model hyper-parameter (repeatable), e.g. F1=16")
    g.add_argument("--epochs", type=int, default=None, help="max training epochs (deep models)")
    g.add_argument("--patience", type=int, default=None, help="early-stopping patience")
    g.add_argument("--batch-size", type=int, default=None)
    g.add_argument("--lr", type=number, default=None)
    g.add_argument("--finetune-epochs", type=int, default=None)
    g.add_argument("--finetune-lr", type=number, default=None)
    g.add_argument("--finetune-layers", choices=["all", "head"], default=None,
                   help="calibration fine-tuning: every layer (BatchNorm frozen) or the output "
                   "layer only")
    g.add_argument("--augment", default=None,
                   help="training augmentations (deep models), comma list of "
                   "flip,reverse,sr,noise,scale,crop")
    g.add_argument("--ensemble", type=int, default=None, metavar="N",
                   help="deep models: train N nets from different seeds and average their "
                   "class probabilities (default 1)")
    g.add_argument("--no-align", action="store_true",
                   help="no Euclidean alignment (it is on by default for train, loso, "
                   "calibration and within with --pretrain-subjects; plain within-subject "
                   "evaluation never aligns: one subject, one reference)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    g.add_argument("--list-models", action="store_true", help="print model names and exit")
    g.add_argument("--progress", action="store_true", help="show progress bars")


def preprocessor_from_args(args):
    from .preprocessing import Preprocessor

    sets = defaults.CHANNEL_SETS
    chans = sets[args.channels] if args.channels in sets else \
        [c.strip() for c in args.channels.split(",") if c.strip()]
    if chans is not None:  # named before loading, in the terms of this command (not live --map)
        from bci_app.errors import ConfigError

        from .data import EEGMMIDB_CHANNELS

        known = {c.lower() for c in EEGMMIDB_CHANNELS}
        unknown = [c for c in chans if c.rstrip(".").lower() not in known]
        if unknown:
            raise ConfigError(
                f"--channels: {', '.join(unknown)} not among EEGMMIDB's 64 channels "
                f"({', '.join(EEGMMIDB_CHANNELS)}). Fix: pick from these, or use 'all' or "
                "'motor21'.")
    return Preprocessor(channels=chans, car=not args.no_car, l_freq=args.l_freq, h_freq=args.h_freq,
                        filter_order=defaults.FILTER_ORDER,
                        sfreq=args.sfreq or None)


def check_train_span(args, settings, protocol: str | None = None) -> float | None:
    """``--train-span`` and the ``crop`` augmentation go together (a clear error otherwise)."""
    from bci_app.errors import ConfigError

    span = getattr(args, "train_span", None)
    from .estimators import _parse_augment

    crop = "crop" in _parse_augment(settings.decoder_params.get("augment"))
    if crop and span is None:
        raise ConfigError("--augment crop: needs trials longer than the window; fix: add "
                          "--train-span TMAX (e.g. 4.0)")
    if span is not None and not crop:
        raise ConfigError("--train-span: only used by deep models trained with --augment "
                          "...,crop; fix: add crop to --augment or drop --train-span")
    if span is not None and protocol not in (None, "within"):
        raise ConfigError(f"--train-span: supported by --protocol within, not {protocol!r}")
    return span


#: (DeepDecoder parameter, argparse attribute) of the options only deep models use.
_DEEP_OPTIONS = (("max_epochs", "epochs"), ("patience", "patience"), ("batch_size", "batch_size"),
                 ("lr", "lr"), ("finetune_epochs", "finetune_epochs"),
                 ("finetune_lr", "finetune_lr"), ("finetune_layers", "finetune_layers"),
                 ("augment", "augment"), ("n_ensemble", "ensemble"))


def settings_from_args(args, model: str):
    from .registry import get_entry
    from .training import TrainSettings, parse_model_params

    params: dict = {}
    entry = get_entry(model)
    if entry.kind == "torch":
        for key, attr in _DEEP_OPTIONS:
            if getattr(args, attr, None) is not None:
                params[key] = getattr(args, attr)
        params["verbose"] = bool(getattr(args, "progress", False))
        from .estimators import _check_optimisation

        # --lr 0, --batch-size 0, --epochs 0: named before any data is loaded
        _check_optimisation(**{k: v for k, v in params.items()
                               if k in ("lr", "finetune_lr", "batch_size", "max_epochs",
                                        "patience", "finetune_epochs")})
        mp = parse_model_params(args.model_param)
        if mp:
            params["model_params"] = mp
    else:
        from bci_app.errors import ConfigError

        given = [f"--{attr.replace('_', '-')}" for _, attr in _DEEP_OPTIONS
                 if getattr(args, attr, None) is not None]
        if given:  # they would be silently ignored: a baseline has no epochs, batches, nets
            raise ConfigError(
                f"{', '.join(given)}: only used by deep models; {model!r} is a scikit-learn "
                "baseline, which has no epochs, batches, augmentation or fine-tuning "
                "settings. Fix: drop them, or pick a deep model (e.g. --model eegnet; see "
                "--list-models).")
        params.update(parse_model_params(args.model_param))
        check = getattr(entry.obj, "check_params", None)
        if check is not None:  # a mistyped --model-param, named before any data is loaded
            check(params)
    return TrainSettings(model=model, decoder_params=params, align=not args.no_align,
                         seed=args.seed)
