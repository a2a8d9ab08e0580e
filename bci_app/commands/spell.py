"""``bci-app spell``: text entry by motor imagery with a language model.

Three ways to run it:

* ``--simulate ACCURACY --target TEXT``: no EEG; a simulated user writes TEXT through a
  symmetric confusion matrix at ACCURACY (or ``--simulate profile`` with ``--model PROFILE``:
  the profile's cross-validated confusion matrix), one command every ``--seconds-per-command``.
* ``--source simulated[:SUBJECTS] --model BUNDLE_OR_PROFILE --target TEXT``: closed loop with
  real EEG; for every command the simulated user intends, the simulated subject plays a real
  recorded EEGMMIDB trial of the mapped class, the real DecoderWorker decodes it, and the
  decoded command drives the speller (paced: one command per trial; see
  :func:`bci_app.speller.simulation.closed_loop`). Runs at max speed.
* ``--source SPEC --model BUNDLE_OR_PROFILE --headless``: live. The DecoderWorker's smoothed
  predictions become commands when a class stays above ``--threshold`` for ``--dwell`` seconds;
  the layout and the text are printed after every command, until ``--duration``, Ctrl-C or
  the end of a replayed file (``file:`` source; its last windows are decoded first); no command
  limit unless ``--max-commands``; the line ``stopped: ...`` says why it ended.

The speller view for the GUI is :class:`ui.speller_view.SpellerView` (added by the main window).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import unicodedata

from ..argtypes import check_hop, number
from ..errors import ConfigError
from ..sources import SPEC_HELP

logger = logging.getLogger(__name__)

#: ``--max-commands`` when it is left out of a simulation (``--simulate``, ``--source
#: simulated``): a simulated user who cannot finish (accuracy near chance) stops there. Live
#: spelling has no limit by default: it goes on until ``--duration``, Ctrl-C or the end of a file.
SIMULATION_MAX_COMMANDS = 1000


def register(sub) -> None:
    p = sub.add_parser(
        "spell",
        help="text entry by motor imagery with a language model (speller)",
        description="Write text with a few motor-imagery commands; a language model (wordfreq "
                    "+ character n-gram) reorders the layout after every selection and offers "
                    "word completions.",
    )
    p.add_argument("--source", default=None,
                   help=f"{SPEC_HELP} | simulated[:SUBJECTS] (real EEGMMIDB trials on cue)")
    p.add_argument("--model", default=None, metavar="BUNDLE_OR_PROFILE",
                   help="model bundle folder, or a calibrated profile (folder or user id)")
    p.add_argument("--headless", action="store_true", help="print the layout and text")
    p.add_argument("--target", default=None, help="sentence the simulated user writes")
    p.add_argument("--simulate", default=None, metavar="ACCURACY",
                   help="no EEG: simulated commands at this accuracy (0.5-1), or 'profile'")
    p.add_argument("--scheme", choices=["posterior", "huffman", "scan"], default="posterior",
                   help="selection scheme (default posterior: robust below ~95%% accuracy)")
    p.add_argument("--accuracy", type=number, default=None,
                   help="command accuracy the posterior scheme assumes, in (1/k, 1) for k "
                        "choice commands, used as given (default: the profile's "
                        "cross-validated accuracy or the --simulate accuracy, at most 0.9 and "
                        "at least 1/k + 0.05; else 0.8)")
    p.add_argument("--confidence", type=number, default=0.9,
                   help="posterior scheme: probability at which a symbol is selected, in "
                        "(0.5, 1) (default 0.9)")
    p.add_argument("--commands", default=None, metavar="CLASS=CMD,...",
                   help="class -> command, e.g. left=0,right=1,feet=undo (default: the "
                        "bundle's classes in order)")
    p.add_argument("--threshold", type=number, default=0.7, help="smoothed probability")
    p.add_argument("--dwell", type=number, default=1.0, help="seconds above threshold")
    p.add_argument("--refractory", type=number, default=1.5, help="seconds after a command")
    p.add_argument("--smoothing", type=number, default=0.5, help="EMA time constant (s)")
    p.add_argument("--hop", type=number, default=0.1, help="seconds between predictions")
    p.add_argument("--lang", default="en", help="wordfreq language code")
    p.add_argument("--vocab", default=None, metavar="FILE",
                   help="the user's own words (one per line, or any text)")
    p.add_argument("--no-lm", action="store_true", help="uniform layout, no completions")
    p.add_argument("--completions", type=int, default=3, help="word completions offered")
    p.add_argument("--seconds-per-command", type=number, default=4.0,
                   help="--simulate: time per command for chars/min and ITR (> 0)")
    p.add_argument("--max-commands", type=int, default=None, metavar="N",
                   help="stop after N commands (closed loop: N cued trials). Default: no limit "
                        "live (spell until --duration, Ctrl-C or the end of a file: source); "
                        f"{SIMULATION_MAX_COMMANDS} in a simulation (--simulate, --source "
                        "simulated), so a simulated user who cannot finish stops")
    p.add_argument("--duration", type=number, default=None, help="live: stop after S seconds")
    p.add_argument("--speed", type=number, default=1.0,
                   help="live from a file: source: replay speed (1 = real time, 4 = four times "
                        "faster)")
    p.add_argument("--runs", default="4,8,12", help="EEGMMIDB runs of a simulated subject")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=number, default=10.0, help="seconds to wait for the device")
    p.add_argument("--quiet", action="store_true", help="only the summary")
    p.set_defaults(func=run)


# ---------------------------------------------------------------------- helpers (importable)
def parse_commands(text: str | None, classes) -> dict[str, int | str]:
    """``"left=0,right=1,feet=undo"`` -> dict; None -> classes in order to 0, 1, ..."""
    if not text:
        return {c: i for i, c in enumerate(classes)}
    out: dict[str, int | str] = {}
    for part in text.split(","):
        key, eq, val = part.strip().partition("=")
        if not eq or not key:
            raise ConfigError(f"--commands expects CLASS=CMD pairs, e.g. left=0,right=1,"
                              f"feet=undo; got {part!r}.")
        key, val = key.strip(), val.strip()
        if key in out:
            raise ConfigError(f"--commands: expected each class once (a class issues one "
                              f"command), got {text!r}: class {key!r} is mapped twice "
                              f"({key}={out[key]} and {key}={val}). Fix: map each class once, "
                              "e.g. left=0,right=1,feet=undo.")
        if val == "undo":
            out[key] = "undo"
        elif val.isdigit():
            out[key] = int(val)
        else:
            raise ConfigError(f"--commands: command for {key!r} must be an index or 'undo', "
                              f"got {val!r}.")
    if classes:
        unknown = [k for k in out if k not in classes]
        if unknown:
            raise ConfigError(f"--commands: {unknown} are not classes of the model {list(classes)}.")
    return out


def load_model(spec: str):
    """A bundle folder or a profile (folder or user id) -> (bundle, profile or None)."""
    from pathlib import Path

    from decoders.bundle import load_bundle

    from . import refuse_text_bundle

    refuse_text_bundle(spec, "--model", "the speller turns motor-imagery classes into "
                       "commands. Fix: pass a bundle written by `bci-app train --out` or a "
                       "profile from `bci-app calibrate`; to decode text from EEG, run the text "
                       "bundle with `bci-app live --model` or `bci-app replay --model`.")
    if (Path(spec) / "config.json").is_file():
        return load_bundle(spec), None
    from ..profiles import load_profile

    prof = load_profile(spec)
    return prof.bundle, prof


def profile_confusion(profile):
    """Row-normalised confusion matrix of the profile's chosen decoder (cross-validated)."""
    import numpy as np

    scores = profile.meta.get("scores", {})
    s = scores.get(profile.meta.get("chosen", "adapted")) or next(iter(scores.values()), None)
    if not s or "confusion" not in s:
        raise ConfigError(f"profile {profile.path} has no confusion matrix; use --simulate "
                          "ACCURACY instead.")
    cm = np.asarray(s["confusion"], dtype=float)
    return cm / cm.sum(axis=1, keepdims=True)


def build_engine(args, classes=None, accuracy: float | None = None):
    from ..speller.engine import SpellerEngine
    from ..speller.lm import LanguageModel

    lm = None
    if not args.no_lm:
        lm = LanguageModel(args.lang)
        if args.vocab:
            _add_vocab(lm, args.vocab)
    # no model (--simulate ACCURACY): the classes are whatever --commands names
    if not classes and not args.commands:
        classes = ["left", "right"]
    cmap = parse_commands(args.commands, classes)
    n_choice = len({v for v in cmap.values() if v != "undo"})
    if n_choice < 2:
        raise ConfigError(f"--commands: at least two classes must map to choice commands 0, 1, "
                          f"...; got {cmap}. Fix: e.g. left=0,right=1,feet=undo.")
    if args.accuracy is not None:
        # the user's number is used as given: the engine needs it above chance, below 1
        acc = args.accuracy
        if not 1.0 / n_choice < acc < 1:
            raise ConfigError(
                f"--accuracy: expected a command accuracy in (1/{n_choice}, 1) = "
                f"({1.0 / n_choice:.3g}, 1), both excluded, for {n_choice} choice commands; got "
                f"{acc:g}. Fix: give the user's measured command accuracy as a fraction, e.g. "
                "--accuracy 0.8, or leave it out for the default.")
    else:
        from ..speller.engine import assumed_accuracy

        acc = assumed_accuracy(accuracy, n_choice)  # the measured one, trusted up to 90 %
    if not 0.5 < args.confidence < 1:
        raise ConfigError(
            f"--confidence: expected the posterior probability at which a symbol is selected, "
            f"in (0.5, 1), both excluded; got {args.confidence:g}. Fix: e.g. --confidence 0.9 "
            "(higher: fewer wrong selections, more commands per letter).")
    return SpellerEngine(lm, command_map=cmap, scheme=args.scheme, accuracy=acc,
                         confidence=args.confidence, completions=args.completions)


def _add_vocab(lm, path: str) -> int:
    """Learn the words of ``--vocab FILE``; the words the speller cannot write (characters
    outside its alphabet) are named on stderr. Returns the number of words learnt."""
    from ..speller.lm import describe_ignored

    text = _read_vocab(path)
    words, ignored = lm.split_text(text)
    n = lm.add_text(text, warn=False)  # the ignored words are reported here, once
    logger.info("Added %d words of the user's vocabulary from %s", n, path)
    if ignored:
        total = len(set(words)) + len(ignored)
        print(f"spell: --vocab {path}: {len(ignored)} of {total} words ignored: "
              f"{describe_ignored(ignored)} (characters outside the speller's alphabet "
              f"{lm.symbols!r}; fix: spell them with these symbols, or choose the --lang that "
              "has them).", file=sys.stderr, flush=True)
    return n


def _read_vocab(path: str) -> str:
    """The text of ``--vocab FILE`` (ConfigError naming the option when it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ConfigError(f"--vocab: cannot read {path!r} ({why}); fix: pass a UTF-8 text file "
                          "with the user's words (one per line, or any text).") from None


def check_target(engine, target: str) -> None:
    """ConfigError when ``target`` (already lower-cased) has characters the speller cannot
    write: its alphabet (the language model's symbols) is all a user can select."""
    allowed = engine.symbols
    bad = sorted({c for c in target if c not in allowed})
    if bad:
        raise ConfigError(
            f"--target: {target!r} has characters the speller cannot write: "
            f"{', '.join(map(repr, bad))}; its alphabet is {allowed!r} (upper case is lowered). "
            "Fix: write the target with these symbols only, e.g. digits as words."
        )


def describe(engine, width: int = 60) -> str:
    """One line: the text and what each command leads to."""
    parts = []
    for opt in engine.options():
        items = " ".join(it.label for it in opt.items[:12])
        more = "…" if len(opt.items) > 12 else ""
        name = f"{opt.command}:{opt.label}" if opt.label else f"{opt.command}"
        parts.append(f"[{name} {items}{more}]"[:width])
    return f"\"{engine.text}\"  " + " ".join(parts)


def _printer(engine, quiet: bool):
    def on_event(ev) -> None:
        if quiet:
            return
        mark = {"select": "+", "undo": "<", "cancel": "x", "move": ".", "ignored": "?",
                "clear": "-"}[ev.kind]
        what = f" {ev.item.label}" if ev.item is not None else ""
        print(f"{engine.n_commands:4d} {ev.command!s:>6} {mark}{what:10s} {describe(engine)}",
              flush=True)
    return on_event


def _summary(res) -> str:
    s = res.summary()
    return (f"summary: \"{s['text']}\" ({'finished' if s['finished'] else 'NOT finished'}), "
            f"{s['commands']} commands ({s['commands_per_char']} per char), command accuracy "
            f"{s['command_accuracy']:.1%}, {s['chars_per_min']:.2f} chars/min, error rate "
            f"{s['error_rate']:.1%}, Wolpaw ITR {s['itr_bits_per_min']:.2f} bits/min")


# ---------------------------------------------------------------------- modes
def run(args) -> int:
    from ..speller.simulation import SimulatedUser

    if args.target is not None:
        # NFC, as the language model's words: "é" typed as "e" + U+0301 is the letter é
        args.target = unicodedata.normalize("NFC", args.target.lower())
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration}; leave it out "
                          "to spell until Ctrl-C.")
    if not (math.isfinite(args.seconds_per_command) and args.seconds_per_command > 0):
        raise ConfigError(f"--seconds-per-command: expected a finite number of seconds > 0 (the "
                          f"time one command takes, for chars/min and ITR), got "
                          f"{args.seconds_per_command:g}. Fix: e.g. --seconds-per-command 4.")
    if args.max_commands is not None and args.max_commands < 1:
        raise ConfigError(f"--max-commands: expected an integer >= 1, got {args.max_commands}. "
                          "Fix: give a positive limit, or leave it out (live: no limit; "
                          f"simulation: {SIMULATION_MAX_COMMANDS}).")
    check_hop(args.hop)
    if args.vocab and not os.path.isfile(args.vocab):
        _read_vocab(args.vocab)  # the clear error, before any model is loaded
    if args.simulate is not None:
        return _run_simulated(args)
    if not args.model or not args.source:
        raise ConfigError("spell: give --source and --model (or --simulate ACCURACY --target).")
    bundle, profile = load_model(args.model)
    from .calibrate import parse_simulated

    from ..profiles import measured_accuracy

    # a profile's accuracy, else a calibrated bundle's own cross-validation (as the GUI)
    acc, origin = measured_accuracy(profile.path if profile is not None else args.model, bundle)
    engine = build_engine(args, bundle.classes, acc)
    if args.scheme == "posterior" and args.accuracy is None:
        from ..speller.engine import assumed_accuracy_note

        print(f"the posterior layout assumes {100 * engine.accuracy:.0f} % command accuracy "
              f"({assumed_accuracy_note(engine.accuracy, acc, origin)}; --accuracy sets it)",
              flush=True)
    engine.add_listener(_printer(engine, args.quiet))
    if parse_simulated(args.source) is not None:
        if not args.target:
            raise ConfigError("spell --source simulated: give --target TEXT (what the simulated "
                              "subject means to write).")
        check_target(engine, args.target)
        return _run_closed_loop(args, engine, bundle, SimulatedUser(args.target))
    if not args.headless:
        raise ConfigError("spell: the speller view lives in the GUI (ui/speller_view.py, a tab "
                          "of the main window); run with --headless for the text interface.")
    return _run_live(args, engine, bundle)


def _run_simulated(args) -> int:
    from ..speller.simulation import SimulatedUser, confusion_from_accuracy, simulate

    if not args.target:
        raise ConfigError("spell --simulate: give --target TEXT.")
    confusion, classes, acc = None, None, None
    if args.simulate == "profile":
        if not args.model:
            raise ConfigError("spell --simulate profile: give --model PROFILE.")
        _, profile = load_model(args.model)
        if profile is None:
            raise ConfigError("spell --simulate profile: --model must be a profile.")
        confusion, classes = profile_confusion(profile), profile.classes
        acc = profile.accuracy
    else:
        try:
            acc = float(args.simulate)
        except ValueError:
            raise ConfigError(f"--simulate: expected an accuracy in [0.5, 1] or 'profile', got "
                              f"{args.simulate!r}.") from None
        if not 0.5 <= acc <= 1:
            raise ConfigError(f"--simulate: expected an accuracy in [0.5, 1], got {acc}.")
    engine = build_engine(args, classes, acc)
    check_target(engine, args.target)
    classes = classes or list(engine.command_map)
    if confusion is None:
        confusion = confusion_from_accuracy(acc, len(classes))
    engine.add_listener(_printer(engine, args.quiet))
    print(f"simulated user writes {args.target!r}: {args.scheme} layout, command accuracy "
          f"{acc:.0%}, {args.seconds_per_command:g} s per command", flush=True)
    limit = _simulation_limit(args)
    res = simulate(engine, SimulatedUser(args.target), confusion=confusion, classes=classes,
                   seconds_per_command=args.seconds_per_command, max_commands=limit,
                   rng=args.seed)
    if not res.finished and res.commands >= limit:
        print(f"stopped: --max-commands {limit} reached", flush=True)
    print(_summary(res), flush=True)
    return 0 if res.finished else 1


def _simulation_limit(args) -> int:
    """``--max-commands`` of a simulation: :data:`SIMULATION_MAX_COMMANDS` when left out."""
    return SIMULATION_MAX_COMMANDS if args.max_commands is None else args.max_commands


def _run_closed_loop(args, engine, bundle, user) -> int:
    from acquisition.simulated import SimulatedSubjectSource
    from decoders.online import DecoderWorker
    from decoders.smoothing import DwellCommander

    from ..speller.simulation import closed_loop
    from .calibrate import parse_simulated

    subjects = parse_simulated(args.source)
    runs = [int(r) for r in args.runs.split(",")]
    src = SimulatedSubjectSource.from_eegmmidb(subjects, runs=runs, speed="max",
                                               chunk_samples=160, seed=args.seed,
                                               buffer_seconds=60.0)
    src.connect(timeout=args.timeout, acquisition=False)
    t0 = time.perf_counter()
    try:
        commander = DwellCommander(bundle.classes, threshold=args.threshold, dwell=args.dwell,
                                   refractory=args.refractory)
        worker = DecoderWorker(src, bundle, hop=args.hop, smoothing=args.smoothing,
                               commander=commander)
        print(f"closed loop: {src.info.name}, {args.scheme} layout, target {user.target!r}",
              flush=True)
        limit = _simulation_limit(args)
        res, trials = closed_loop(engine, user, src, worker, max_commands=limit)
    finally:
        src.disconnect()
    if not res.finished and len(trials) >= limit:
        print(f"stopped: --max-commands {limit} reached", flush=True)
    print(_summary(res) + f"; {res.extra['misses']} misses, {res.extra['forced']} forced; "
          f"{res.seconds:.0f} s of EEG in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0 if res.finished else 1


def _run_live(args, engine, bundle) -> int:
    from ..session import DecoderComponent, Session
    from acquisition.base import SourceState

    from ..sources import make_source
    from ..speller.control import SpellerInput

    kwargs = {"speed": args.speed} if args.source.startswith("file:") else {}
    source = make_source(args.source, **kwargs)
    session = Session(source)
    comp = DecoderComponent(session, bundle, hop=args.hop, smoothing=args.smoothing)
    session.add_component(comp)
    inp = SpellerInput(engine, bundle.classes, threshold=args.threshold, dwell=args.dwell,
                       refractory=args.refractory, max_gap=max(0.5, 5 * args.hop))
    # live: no limit unless --max-commands (spell until --duration, Ctrl-C or the file's end)
    limit = math.inf if args.max_commands is None else args.max_commands

    def feed(pred) -> None:  # decoder thread: the engine is used only there
        if engine.n_commands < limit:  # never a command past the limit
            inp.on_prediction(pred)

    comp.add_callback(feed)
    session.start(timeout=args.timeout)
    print(f"spelling from {source.info.name} with {bundle.path}: {describe(engine)}", flush=True)
    t_end = math.inf if args.duration is None else time.monotonic() + args.duration
    reason = ""
    try:
        while not reason:
            if engine.n_commands >= limit:
                reason = f"--max-commands {args.max_commands} reached"
            elif time.monotonic() >= t_end:
                reason = f"--duration {args.duration:g} s reached"
            elif getattr(source, "finished", False) and source.state is SourceState.STOPPED:
                # a replay (not looping) ended: its last chunk is in the buffer once the state is
                # stopped ("finished" comes a moment before); its last windows reach the speller
                comp.worker.drain(5.0)
                reason = "end of file"
            else:
                time.sleep(0.05)
    except KeyboardInterrupt:
        reason = "Ctrl-C"
    finally:
        session.stop()
    print(f"stopped: {reason}", flush=True)
    st = engine.stats()
    print(f"summary: \"{st['text']}\", {st['commands']} commands, {st['selections']} "
          f"selections, {st['undos']} undos, {st['chars_per_min']:.2f} chars/min", flush=True)
    return 0
