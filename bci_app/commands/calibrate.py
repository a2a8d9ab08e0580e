"""``bci-app calibrate``: cued motor-imagery calibration without the GUI.

Runs the Graz protocol (:mod:`bci_app.protocol`) on a source, records EEG + markers to XDF,
adapts the pretrained decoder to the recorded trials (:mod:`decoders.calibration`), and saves the
user's profile (:mod:`bci_app.profiles`). Cues are printed (``--headless``) and, with
``--stimulus NAME``, sent as LSL markers to an external stimulus program.

``--source`` takes the usual specs (:mod:`bci_app.sources`) plus ``simulated[:SUBJECTS]``:
a :class:`acquisition.simulated.SimulatedSubjectSource` playing real EEGMMIDB trials of the cued
class (``simulated:7``, ``simulated:7,9``; default subject 1), at ``--speed`` (1 = real time, N,
or ``max``).

The pieces are importable: :func:`run_calibration` does the whole job and returns a
:class:`CalibrationRun`; :func:`score_unplayed` scores a bundle on the trials a simulated subject
never played (the closed-loop check of the tests and the benchmark).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..argtypes import number
from ..errors import ConfigError
from ..sources import SPEC_HELP

logger = logging.getLogger(__name__)

SIM_PREFIX = "simulated"


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="cued motor-imagery calibration: record, adapt the pretrained decoder, save a profile",
        description="Run the Graz motor-imagery protocol (fixation, beep + arrow cue, imagery, "
                    "random rest) on a source, record it, adapt the pretrained decoder "
                    "(Euclidean alignment + fine-tuning), fit the tangent-space baseline, report "
                    "cross-validated accuracy and save the user's profile.",
    )
    p.add_argument("--source", required=True,
                   help=f"{SPEC_HELP} (simulated: real EEGMMIDB EEG answering cues)")
    p.add_argument("--headless", action="store_true",
                   help="no GUI: cues are printed (and sent with --stimulus)")
    p.add_argument("--trials", type=int, default=20, help="trials per class (default 20)")
    p.add_argument("--classes", default="left,right", help="comma-separated class names")
    p.add_argument("--timings", default=None, metavar="FIX,CUE,IMAGERY,REST_MIN,REST_MAX",
                   help="seconds (default 2,1.25,2.75,1.5,2.5)")
    p.add_argument("--seed", type=int, default=0, help="trial order / rest durations")
    p.add_argument("--speed", default="1", help="simulated subject speed: 1 (real time), N or max")
    p.add_argument("--runs", default="4,8,12", help="EEGMMIDB runs of a simulated subject")
    p.add_argument("--data-dir", default=None, help="EEGMMIDB folder (MNE eegbci layout)")
    p.add_argument("--compliance", type=number, default=1.0,
                   help="simulated subject: probability of following the cue (0 = ignores it)")
    p.add_argument("--pretrained", default=None, metavar="BUNDLE",
                   help="pretrained bundle folder (default: the first in decoders/pretrained/)")
    p.add_argument("--user", default="anonymous", help="user id (names the profile folder)")
    p.add_argument("--profiles-dir", default=None, help="where profiles go (default profiles/)")
    p.add_argument("--choose", choices=["best", "adapted", "baseline"], default="best",
                   help="decoder the profile uses online (default: best cross-validated)")
    p.add_argument("--record", default="", metavar="PATH",
                   help="XDF file or folder (default recordings/calibration_<user>_<time>.xdf)")
    p.add_argument("--no-record", action="store_true", help="do not write a recording")
    p.add_argument("--stimulus", default=None, metavar="NAME",
                   help="send cue markers on an LSL marker stream with this name")
    p.add_argument("--finetune-epochs", type=int, default=30,
                   help="epochs of fine-tuning a deep pretrained model on the user's trials "
                   "(default 30; 0 = Euclidean alignment only)")
    p.add_argument("--cv-folds", type=int, default=5,
                   help="stratified folds of the cross-validated accuracy that picks the "
                   "profile's decoder (default 5; capped by the trials per class)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: the model is small, and with other "
                        "processes on the CPU two OpenMP threads measured 3-30x slower)")
    p.add_argument("--timeout", type=number, default=10.0, help="seconds to wait for the device")
    p.add_argument("--quiet", action="store_true", help="do not print every cue")
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------------------- pieces
def default_pretrained() -> Path:
    """The pretrained bundle shipped in ``decoders/pretrained/`` (an EEGNet one first)."""
    from ..config import REPO_ROOT

    root = REPO_ROOT / "decoders" / "pretrained"
    cands = sorted(d for d in root.glob("*") if (d / "config.json").is_file()) \
        if root.is_dir() else []
    if not cands:
        raise ConfigError(
            f"--pretrained: no bundle in {root}. Fix: pass --pretrained BUNDLE (e.g. one written "
            "by `bci-app train --out`)."
        )
    deep = [d for d in cands if "eegnet" in d.name]
    return (deep or cands)[0]


def parse_simulated(spec: str) -> list[int] | None:
    """``simulated`` / ``simulated:7`` / ``simulated:7,9-10`` -> subject ids; None if not one."""
    kind, _, rest = spec.strip().partition(":")
    if kind.lower() != SIM_PREFIX:
        return None
    from decoders.data import parse_subjects

    return parse_subjects(rest) if rest else [1]


def parse_speed(text: str | float) -> float:
    if isinstance(text, str) and text.strip().lower() in ("max", "inf"):
        return math.inf
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"--speed: expected 1 (real time), a factor N, or 'max'; got {text!r}."
                          ) from None
    if not v > 0:
        raise ConfigError(f"--speed: expected > 0, got {text!r}.")
    return v


def make_calibration_source(spec: str, *, speed: float = 1.0, runs=(4, 8, 12),
                            data_dir=None, buffer_seconds: float = 600.0, seed: int = 0,
                            compliance: float = 1.0, chunk_samples: int | None = None):
    """A source for calibration: ``simulated[:SUBJECTS]`` or any :func:`make_source` spec
    (``chunk_samples`` and ``compliance`` apply to the simulated subject only)."""
    subjects = parse_simulated(spec)
    if subjects is not None:
        from acquisition.simulated import SimulatedSubjectSource

        return SimulatedSubjectSource.from_eegmmidb(
            subjects, runs=runs, data_dir=data_dir, speed="max" if math.isinf(speed) else speed,
            buffer_seconds=buffer_seconds, seed=seed, compliance=compliance,
            chunk_samples=chunk_samples)
    from ..sources import make_source

    kwargs: dict[str, Any] = {"buffer_seconds": buffer_seconds}
    if spec.startswith("file:"):
        kwargs["speed"] = "max" if math.isinf(speed) else speed
    return make_source(spec, **kwargs)


def window_of(bundle) -> tuple[float, float]:
    """(tmin, tmax) after the cue that the bundle was trained on."""
    w = bundle.config.get("training", {}).get("window") or {}
    tmin = float(w.get("tmin", 0.5))
    return tmin, float(w.get("tmax", tmin + bundle.window_s))


def pretraining_channels(ch_names) -> list[str]:
    """The source's channels that EEGMMIDB also has (10-10 names, EDF/case spellings matched),
    in EEGMMIDB's order: what a pretrained bundle for this source can be trained on."""
    from decoders.data import EEGMMIDB_CHANNELS
    from decoders.preprocessing import _normalize_label

    have = {_normalize_label(c) for c in ch_names}
    return [c for c in EEGMMIDB_CHANNELS if _normalize_label(c) in have]


def pretrain_argv(channels, out, subjects: str = "1-20", data_dir=None) -> list[str]:
    """``bci-app train`` arguments for a cross-subject CSP+LDA bundle (Euclidean alignment) on
    ``channels``: what the channel check advises and the wizard runs (missing EEGMMIDB files
    are downloaded first)."""
    argv = ["train", "--subjects", subjects, "--channels", ",".join(channels),
            "--model", "csp_lda", "--download", "--out", str(out)]
    return argv + (["--data-dir", str(data_dir)] if data_dir is not None else [])


def train_pretrained_for(ch_names, out, subjects: str = "1-20", data_dir=None) -> Path:
    """Train the bundle of :func:`pretrain_argv` for a source with ``ch_names`` (blocking:
    about 15 s for 20 subjects on one core, plus the download of missing EEGMMIDB files) and
    return its folder.

    Raises
    ------
    ConfigError
        Fewer than 2 of the channels are in EEGMMIDB, or the data or ``out`` is unusable.
    """
    from ..cli import build_parser

    channels = pretraining_channels(ch_names)
    if len(channels) < 2:
        raise ConfigError(
            f"channels: only {len(channels)} of {list(ch_names)} are 10-10 electrode names that "
            "the pretraining data (EEGMMIDB) has. Fix: name the device's channels after their "
            "electrode positions (e.g. C3, Cz, C4).")
    args = build_parser().parse_args(pretrain_argv(channels, out, subjects, data_dir))
    args.func(args)
    return Path(out)


def check_pretrained_channels(pretrained, ch_names) -> None:
    """Refuse a source that lacks channels of the pretrained bundle, before any cue is shown.

    The trials are cut with the bundle's channels; without this check a user learned it only
    after recording every trial. The error names the missing channels and the fix: a pretrained
    bundle trained on the channels this source has (those EEGMMIDB also has), with the command.

    Raises
    ------
    StreamMismatchError
    """
    from decoders.preprocessing import ChannelMapping, _normalize_label

    from ..errors import StreamMismatchError

    try:
        ChannelMapping().indices(pretrained.channels, list(ch_names))
        return
    except StreamMismatchError:
        pass
    have = {_normalize_label(c) for c in ch_names}
    missing = [c for c in pretrained.channels if _normalize_label(c) not in have]
    usable = pretraining_channels(ch_names)
    name = Path(str(pretrained.path)).name if pretrained.path else "the pretrained bundle"
    msg = (f"pretrained: {name} needs {len(pretrained.channels)} channels and this source lacks "
           f"{len(missing)} of them ({', '.join(missing)}); its channels are "
           f"{', '.join(map(str, ch_names))}. ")
    if len(usable) >= 2:
        msg += ("Fix: train a pretrained bundle on the channels it has (PhysioNet EEGMMIDB, "
                "under a minute for CSP+LDA): "
                f"`bci-app {' '.join(pretrain_argv(usable, 'my_pretrained'))}` (--download "
                "fetches missing EEGMMIDB files from PhysioNet, 154 MB for 20 subjects; "
                "--data-dir DIR names the folder), then calibrate with --pretrained "
                "my_pretrained "
                "(in the wizard: Train a pretrained model for these channels).")
    else:
        msg += (f"Only {len(usable)} of them are 10-10 electrode names that the pretraining "
                "data (EEGMMIDB) has. Fix: name the device's channels after their electrode "
                "positions (e.g. C3, Cz, C4), or pass a pretrained bundle trained for this "
                "montage with --pretrained.")
    raise StreamMismatchError(msg)


def training_data_warning(source_spec: str, pretrained) -> str | None:
    """A warning when ``source_spec`` is a simulated subject the pretrained bundle was trained on
    (its config's ``training`` names EEGMMIDB and the subject), else None."""
    seen = sorted(set(parse_simulated(source_spec) or []) & pretrained.eegmmidb_training_subjects)
    if not seen:
        return None
    return (f"the pretrained bundle was trained on simulated subject(s) {seen}: the adapted "
            "decoder's accuracy is optimistic (the tangent-space baseline, trained on these "
            "trials alone, is not). Fix: for an honest check, pretrain without them (bci-app "
            "train --subjects ...) and pass --pretrained PATH.")


def score_unplayed(source, bundle, name: str = "held-out trials"):
    """Score ``bundle`` on the trials a simulated subject never played.

    Each recording is filtered causally from its start (as online) and the unplayed trials are
    cut at the bundle's window. Returns a :class:`decoders.calibration.CVScore` (folds 0).
    """
    import numpy as np

    from decoders.calibration import CVScore, epochs_from_stream

    classes = bundle.classes
    tmin, tmax = window_of(bundle)
    todo = source.unplayed_trials()
    ys, preds = [], []
    for i, rec in enumerate(source.recordings):
        cues = [(float(rec.times[0]) + t.onset_s, t.cls) for t in todo
                if t.recording == i and t.cls in classes]
        if not cues:
            continue
        ep = epochs_from_stream(rec.data, rec.times, source.info.ch_names, rec.sfreq, cues,
                                classes, bundle.preprocessor, tmin=tmin, tmax=tmax,
                                ref_window=None)
        ys.append(ep.y)
        preds.append(np.argmax(bundle.predict_proba(ep.X), axis=1))
    if not ys:
        raise ConfigError("score_unplayed: every trial was played; nothing is held out.")
    return CVScore(name, np.concatenate(ys), np.concatenate(preds), len(classes), 0)


@dataclass
class CalibrationRun:
    """What :func:`run_calibration` did."""

    source: Any
    protocol: Any
    epochs: Any
    result: Any
    profile: Path | None
    recording: Path | None
    seconds: dict[str, float] = field(default_factory=dict)
    chosen: str = "adapted"


def run_calibration(
    source,
    pretrained,
    *,
    classes=("left", "right"),
    trials_per_class: int = 20,
    timings=None,
    seed: int = 0,
    user: str = "anonymous",
    profiles_root=None,
    record: str | Path | None = "",
    stimulus: str | None = None,
    finetune_epochs: int = 30,
    cv_folds: int = 5,
    choose: str = "best",
    source_spec: str = "",
    timeout: float = 10.0,
    print_cue=None,
    settings: dict | None = None,
    stop_event=None,
    save: bool = True,
) -> CalibrationRun:
    """Protocol -> recording -> epochs -> :func:`decoders.calibration.calibrate` -> profile.

    ``source`` is not yet connected; a simulated subject at max speed is driven in manual mode
    (no acquisition thread), everything else with its acquisition thread. ``pretrained`` is a
    :class:`decoders.bundle.Bundle`. ``record`` None: no recording; "" default path.
    """
    from decoders.calibration import calibrate, epochs_from_stream

    from ..protocol import GrazProtocol, ProtocolRunner, completed_trials
    from ..session import Session

    t_all = time.perf_counter()
    classes = [c.strip() for c in classes]
    if sorted(classes) != sorted(pretrained.classes):
        raise ConfigError(
            f"--classes {classes} do not match the pretrained bundle's classes "
            f"{pretrained.classes}; calibrate the classes it was trained on."
        )
    outlet = None
    if stimulus:
        from acquisition.lsl_outlet import MarkerOutlet

        outlet = MarkerOutlet(stimulus)
    manual = getattr(source, "speed", 1.0) == math.inf and callable(getattr(source, "cue", None))
    source.connect(timeout=timeout, acquisition=not manual)
    try:  # before the first cue: the trials are cut with the bundle's channels
        check_pretrained_channels(pretrained, source.info.ch_names)
    except Exception:
        source.disconnect()
        if outlet is not None:
            outlet.close()
        raise
    session = Session(source)
    rec = None
    if record is not None:
        from ..recording import attach_recorder

        rec = attach_recorder(session, record or None, subject=user,
                              prefix=f"calibration_{user}", settings=settings or {},
                              model_bundle=str(pretrained.path or ""))
    protocol = GrazProtocol(classes, trials_per_class, timings, seed, marker_log=source.markers,
                            outlet=outlet)
    runner = ProtocolRunner(protocol, source)
    if print_cue is not None:
        protocol.add_cue_callback(lambda p, cls, t, i: print_cue(p, cls, i))
    need = protocol.n_trials * (protocol.timings.mean_trial + 1.0) + 30.0
    if source.buffer.capacity < need * source.info.sfreq:
        logger.warning("buffer holds %.0f s, the protocol needs about %.0f s: the recording is "
                       "the complete copy", source.buffer.capacity / source.info.sfreq, need)
    session.start(timeout=timeout)
    t_proto = time.perf_counter()
    try:
        runner.run(stop_event=stop_event, timeout=None if manual else need * 3 + 60)
    finally:
        session.stop()
        if outlet is not None:
            outlet.close()
    seconds = {"protocol": time.perf_counter() - t_proto}
    chunk = source.buffer.since(0)
    cues = completed_trials(source.markers.all(), classes)
    tmin, tmax = window_of(pretrained)
    epochs = epochs_from_stream(chunk.data, chunk.timestamps, source.info.ch_names,
                                source.info.sfreq, cues, pretrained.classes,
                                pretrained.preprocessor, tmin=tmin, tmax=tmax)
    t_train = time.perf_counter()
    result = calibrate(epochs.X, epochs.y, pretrained, X_ref=epochs.X_ref,
                       trials=epochs.accounting(),
                       finetune_epochs=finetune_epochs, cv_folds=cv_folds, seed=seed,
                       provenance={"recording": str(rec.path) if rec is not None else None,
                                   "source": source_spec})
    seconds["training"] = time.perf_counter() - t_train
    if choose == "best":
        choose = "adapted" if result.scores["adapted"].accuracy >= \
            result.scores.get("baseline", result.scores["adapted"]).accuracy else "baseline"
    profile = None
    if save:
        info = source.info
        profile = _save(result, user, profiles_root, choose, source_spec, info, protocol, rec)
    seconds["total"] = time.perf_counter() - t_all
    return CalibrationRun(source, protocol, epochs, result, profile,
                          rec.path if rec is not None else None, seconds, choose)


def _save(result, user, root, choose, spec, info, protocol, rec):
    from ..profiles import save_profile

    stream = {"name": info.name, "kind": info.source_kind, "sfreq": info.sfreq,
              "ch_names": list(info.ch_names)}
    return save_profile(result, user, root=root, chosen=choose, source=spec, stream=stream,
                        montage=info.metadata.get("montage", "standard_1005"),
                        protocol=protocol.settings(),
                        recording=str(rec.path) if rec is not None else None)


# ---------------------------------------------------------------------------------------- CLI
def run(args) -> int:
    from decoders.bundle import load_bundle

    if not args.headless:
        raise ConfigError(
            "calibrate without --headless opens the calibration wizard from the GUI (bci-app "
            "gui, menu Calibration); here use --headless to run it in the terminal."
        )
    if args.trials < 2:  # calibrate() refuses fewer, but only after every trial was cued
        raise ConfigError(f"--trials: expected 2 or more trials per class (the cross-validated "
                          f"accuracy needs at least 2 of each class), got {args.trials}. Fix: "
                          "pass --trials 20 (default).")
    if args.seed < 0:  # numpy's generators refuse it, with a traceback, once the source opens
        raise ConfigError(f"--seed: expected an integer >= 0 (it fixes the trial order and the "
                          f"rest durations), got {args.seed}. Fix: pass --seed 0 (default) or "
                          "another non-negative number.")
    if args.cv_folds < 2:  # before the session: calibrate() refuses it after every trial
        raise ConfigError(f"--cv-folds: expected 2 or more folds of the cross-validated "
                          f"accuracy, got {args.cv_folds}. Fix: pass --cv-folds 5 (default).")
    from ..profiles import check_profile_target

    # before the session: a bad user id or profiles folder must not cost the calibration
    check_profile_target(args.user, args.profiles_dir)
    if not args.no_record:  # nor a recording that cannot be written (checked after the connect)
        _check_record_option(args.record)
    import torch  # (after the option checks: importing it takes seconds)

    torch.set_num_threads(max(1, args.threads))
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    timings = None
    if args.timings:
        try:
            timings = [float(v) for v in args.timings.split(",")]
        except ValueError:
            raise ConfigError(f"--timings: expected 5 numbers, got {args.timings!r}.") from None
    speed = parse_speed(args.speed)
    try:
        runs = [int(r) for r in args.runs.split(",")]
    except ValueError:
        raise ConfigError(f"--runs: expected e.g. 4,8,12; got {args.runs!r}.") from None
    pre_path = Path(args.pretrained) if args.pretrained else default_pretrained()
    from . import refuse_text_bundle

    refuse_text_bundle(pre_path, "--pretrained", "calibration adapts a motor-imagery decoder "
                       "to the user's cued trials. Fix: pass a bundle written by `bci-app train "
                       "--out`, or leave --pretrained out for the shipped one.")
    pretrained = load_bundle(pre_path)
    from ..protocol import Timings

    t = Timings.coerce(timings)
    buffer_s = 2 * len(classes) * args.trials * (t.mean_trial + 1.0) + 120.0
    source = make_calibration_source(args.source, speed=speed, runs=runs,
                                     data_dir=args.data_dir, buffer_seconds=buffer_s,
                                     seed=args.seed, compliance=args.compliance)

    warning = training_data_warning(args.source, pretrained)
    if warning:
        print(f"note: {warning}", flush=True)

    def print_cue(p, cls, i):
        if not args.quiet:
            print(f"[{p.n_done + 1:>3}/{p.n_trials}] cue: {cls.upper()}", flush=True)

    settings = {k: v for k, v in vars(args).items() if k != "func"}
    print(f"calibration: {len(classes) * args.trials} trials ({', '.join(classes)}) on "
          f"{args.source}, pretrained {pre_path}", flush=True)
    run_ = run_calibration(
        source, pretrained, classes=classes, trials_per_class=args.trials, timings=timings,
        seed=args.seed, user=args.user, profiles_root=args.profiles_dir,
        record=None if args.no_record else args.record, stimulus=args.stimulus,
        finetune_epochs=args.finetune_epochs, cv_folds=args.cv_folds, choose=args.choose,
        source_spec=args.source, timeout=args.timeout, print_cue=print_cue, settings=settings,
    )
    res = run_.result
    print(res.text(), flush=True)
    for name, s in res.scores.items():
        cm = s.confusion
        print(f"  confusion ({name}; rows true {res.classes}, columns predicted): "
              f"{cm.tolist()}")
    print(f"profile: {run_.profile} (uses the {run_.chosen} decoder)")
    if run_.recording:
        print(f"recording: {run_.recording}")
    # (res.text() above accounts for every cued trial: kept, dropped with the reason, or kept
    # without its pre-cue reference; the scores leave the dropped ones out)
    dropped = {k: v for k, v in run_.epochs.dropped.items() if v}
    summary = {"profile": str(run_.profile), "recording": str(run_.recording or ""),
               "chosen": run_.chosen, "n_trials": res.n_trials, "dropped_trials": dropped,
               "trials": res.trials,
               "scores": {k: v.to_dict() for k, v in res.scores.items()},
               "seconds": {k: round(v, 2) for k, v in run_.seconds.items()},
               "training_seconds": {k: round(v, 2) for k, v in res.seconds.items()}}
    if warning:
        summary["warning"] = warning
    if parse_simulated(args.source) is not None:
        held = score_unplayed(run_.source, load_profile_bundle(run_.profile))
        summary["held_out"] = held.to_dict()
        summary["played"] = [p.trial.key for p in run_.source.played]
        print("simulated subject, trials never played: " + held.text())
    if args.json:
        print(json.dumps(summary), flush=True)
    sys.stdout.flush()
    return 0


def _check_record_option(record: str) -> None:
    """``--record`` as ``attach_recorder`` takes it (a file, a folder, or "" for
    ``recordings/``), checked before the session: ConfigError when it cannot be written."""
    from ..recording import check_recording_target, recording_path

    check_recording_target(recording_path(record, "calibration"), "--record")


def load_profile_bundle(path):
    from ..profiles import load_profile

    return load_profile(path).bundle
