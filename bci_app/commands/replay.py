"""``bci-app replay``: run a recording through the full live pipeline (ring buffer, causal
preprocessing, DecoderWorker, smoothing) and report pseudo-online accuracy, accuracy over time
after the cue, command rate and Wolpaw ITR.

With an EEG-to-text bundle (``decoders.text``) there are no cue classes to score: the report is
the decoded text over time (free-running generated text and the top retrieved sentence of each
reliable window, runs of identical text merged)."""

from __future__ import annotations

import json
import math
import threading
import time

from ..argtypes import check_hop, number
from ..errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser(
        "replay",
        help="pseudo-online evaluation: replay a file through the live decoder",
        description="Replay FILE through the live pipeline with a model bundle. Where the file "
                    "has cue markers, report per-trial accuracy, accuracy over time, command "
                    "rate and the Wolpaw ITR.",
    )
    p.add_argument("file", help="recording (EDF/BDF/FIF/BrainVision/XDF/OpenBCI txt/BrainFlow CSV)")
    p.add_argument("--model", required=True, help="model bundle folder or user profile folder")
    p.add_argument("--speed", default="max", help="replay speed: 1 (real time), N, or max")
    p.add_argument("--hop", type=number, default=0.1, help="seconds between predictions")
    p.add_argument("--cue", action="append", metavar="MARKER=CLASS",
                   help="map a marker label to a class (default: class names; T1/T2 for left/right)")
    p.add_argument("--trial", default="0.5:4.0", metavar="START:END",
                   help="imagery period after the cue, in seconds (default 0.5:4.0)")
    p.add_argument("--decision", choices=["mean", "majority"], default="mean",
                   help="per-trial decision over the windows in the imagery period")
    p.add_argument("--threshold", type=number, default=0.7, help="command threshold (smoothed)")
    p.add_argument("--dwell", type=number, default=0.5, help="seconds above threshold for a command")
    p.add_argument("--smoothing", type=number, default=0.5, help="EMA time constant (s)")
    p.add_argument("--json", action="store_true", help="print machine-readable results")
    p.set_defaults(func=run)


def _parse_trial(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split(":"))
    except ValueError:
        raise ConfigError(f"--trial expects START:END in seconds, e.g. 0.5:4.0; got {text!r}.") from None
    if not b > a:
        raise ConfigError(f"--trial END must be after START, got {text!r}.")
    return a, b


def _parse_speed(speed) -> str | float:
    if speed == "max":
        return speed
    try:
        value = float(speed)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"--speed expects a number > 0 (1 = real time, 20 = twenty times "
                          f"faster) or 'max', got {speed!r}; e.g. --speed 1.")
    return value


def training_overlap(path: str, bundle) -> str | None:
    """A warning when ``path`` is an EEGMMIDB file (``SxxxRyy.edf``) of a subject the bundle
    was trained on (its ``training`` config names the dataset and subjects; for a text bundle,
    the subjects whose rest EEG carried its synthetic reading EEG), else None: a result
    measured on it is on training data, hence optimistic."""
    import re
    from pathlib import Path

    m = re.fullmatch(r"S(\d{3})R(\d{2})\.edf", Path(path).name, flags=re.IGNORECASE)
    if m is None or int(m.group(1)) not in getattr(bundle, "eegmmidb_training_subjects", set()):
        return None
    if _is_text(bundle):
        return (f"{Path(path).name} is EEGMMIDB subject {int(m.group(1))}, whose rest EEG this "
                "text bundle was trained on (the background of its synthetic reading EEG): "
                "its windows are not unseen data. Fix: replay another person's recording.")
    return (f"{Path(path).name} is EEGMMIDB subject {int(m.group(1))}, one of this bundle's "
            "training subjects: the accuracy below is on training data and optimistic. Fix: "
            "replay another person's recording, or measure with `bci-app evaluate --protocol "
            "loso`.")


def _is_text(bundle) -> bool:
    return getattr(bundle, "kind", None) == "text"


TEXT_NO_SCORING = ("text bundle: no motor-imagery trial scoring (its classes are candidate "
                   "sentences, not cue classes); the report is the decoded text over time")


def text_segments(preds, sfreq_in: float) -> list[dict]:
    """Decoded text over time: runs of reliable windows with the same generated text.

    Each segment: ``start_s``/``end_s`` (end of its first/last window, seconds of signal from
    the file's start, from ``Prediction.seq``), ``n_windows``, ``text``, ``confidence`` (mean
    text confidence), ``top_sentence`` (most frequent top retrieved candidate) and its mean
    probability ``top_p``."""
    from collections import Counter

    import numpy as np

    segs: list[dict] = []
    run: list = []

    def close():
        if not run:
            return
        top = Counter(p.label for p in run).most_common(1)[0][0]
        segs.append({
            "start_s": round(run[0].seq / sfreq_in, 3), "end_s": round(run[-1].seq / sfreq_in, 3),
            "n_windows": len(run), "text": run[0].text,
            "confidence": float(np.mean([p.text_confidence for p in run])),
            "top_sentence": top,
            "top_p": float(np.mean([float(np.max(p.probabilities)) for p in run
                                    if p.label == top])),
        })

    for p in preds:
        if not p.reliable or p.text is None:
            close()
            run = []
            continue
        if run and p.text != run[-1].text:
            close()
            run = []
        run.append(p)
    close()
    return segs


def replay_file(path: str, bundle, *, speed="max", hop=0.1, smoothing=0.5, threshold=0.7,
                dwell=0.5, progress=None):
    """Replay ``path`` through a DecoderWorker; returns (source, worker, predictions, wall_s)."""
    from acquisition.replay import ReplaySource
    from decoders.online import DecoderWorker
    from decoders.smoothing import DwellCommander

    import dataclasses

    # a copy: the worker fits the user's alignment (if the bundle needs one) on this file only
    bundle = dataclasses.replace(bundle)
    sp = _parse_speed(speed)
    manual = sp == "max" or (isinstance(sp, float) and math.isinf(sp))
    # at max speed, one acquire() delivers one chunk: 1 s chunks let the worker batch windows
    src = ReplaySource(path, speed=sp, chunk_samples=None if not manual else 512)
    preds = []
    t0 = time.monotonic()
    # acquisition starts once the worker is ready: the source's own thread, started at
    # connect, ran while the worker was built (its warm-up and inference engine choice take
    # seconds), and the worker decodes from what arrives after its start: at 20x the first
    # 40 s of the file were never decoded
    src.connect(timeout=10, acquisition=False)
    try:
        commander = DwellCommander(bundle.classes, threshold=threshold, dwell=dwell)
        worker = DecoderWorker(src, bundle, hop=hop, smoothing=smoothing, commander=commander)
        if manual:
            while not src.finished:
                src.acquire()
                preds.extend(worker.step(catch_up=True))
        else:
            worker.add_callback(preds.append)
            worker.start()
            src.set_speed(sp)  # pacing starts now, at the file's first sample
            deadline = time.monotonic() + src.duration / float(sp) + 30
            failed: list[BaseException] = []
            acq = threading.Thread(target=_acquire_until_end, args=(src, deadline, failed),
                                   name="replay-acquisition", daemon=True)
            acq.start()
            acq.join()
            worker.drain(5.0)  # the last samples' windows are decoded before it stops
            if failed:
                raise failed[0]
    finally:
        src.disconnect()
    return src, worker, preds, time.monotonic() - t0


def _acquire_until_end(src, deadline: float, failed: list) -> None:
    """The acquisition loop of a paced replay in manual mode: ``acquire()`` (which writes what
    is due at the replay's speed) on a monotonic schedule until the file ends or ``deadline``;
    an exception is appended to ``failed`` for the caller to raise. Its own thread, as a
    source's: run from the main thread, the worker thread skipped a third of the windows at
    20x."""
    target = time.monotonic()
    while not src.finished and time.monotonic() < deadline:
        try:
            src.acquire()
        except BaseException as err:
            failed.append(err)
            return
        target += src.poll_interval
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            target = time.monotonic()  # fell behind: no burst


def run(args) -> int:
    import numpy as np

    from decoders.pseudo_online import parse_cue_map, score_trials, trials_from_markers

    from ..profiles import load_model

    # the options first: a typo is named before the model and the file are loaded
    _parse_speed(args.speed)
    check_hop(args.hop)
    start, end = _parse_trial(args.trial)
    bundle = load_model(args.model)
    text = _is_text(bundle)
    if text and args.cue:
        raise ConfigError(f"--cue: {args.model} is an EEG-to-text bundle; its classes are "
                          "candidate sentences, not cue classes, so there are no trials to "
                          "score. Fix: drop --cue (replay reports the decoded text over time).")
    cue_map = {} if text else parse_cue_map(args.cue, bundle.classes)
    src, worker, preds, wall = replay_file(args.file, bundle, speed=args.speed, hop=args.hop,
                                           smoothing=args.smoothing, threshold=args.threshold,
                                           dwell=args.dwell)
    signal_s = src.n_samples / src.info.sfreq
    st = worker.stats()
    summary = {
        "file": args.file, "model": args.model, "speed": args.speed,
        "signal_seconds": signal_s, "wall_seconds": wall,
        "realtime_factor": signal_s / wall if wall > 0 else None,
        "predictions": st["predictions"], "skipped_windows": st["skipped"],
        "unreliable_windows": st["unreliable"],
        # a profile brings the user's alignment: then no window is spent fitting one
        "aligned_on_first_windows": bool(bundle.needs_alignment and bundle.alignment is None),
    }
    overlap = training_overlap(args.file, bundle)
    if overlap:
        summary["warning"] = overlap
    if text:
        segments = text_segments(preds, src.info.sfreq)
        summary.update(kind="text", trial_scoring=TEXT_NO_SCORING, text_segments=segments)
    trials = [] if text else trials_from_markers(src.markers.all(), cue_map, bundle.classes)
    report = None
    if trials and preds:
        report = score_trials(
            np.array([p.window_end for p in preds]), np.stack([p.probabilities for p in preds]),
            trials, window_s=bundle.window_s, trial_start=start, trial_end=end,
            decision=args.decision, reliable=np.array([p.reliable for p in preds]),
            commands=[(p.window_end, p.command) for p in preds if p.command],
            classes=bundle.classes, total_seconds=signal_s,
        )
        summary.update(report.to_dict())
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    if overlap:
        print(f"note: {overlap}")
    print(f"replayed {signal_s:.1f} s of {src.info.n_channels} ch @ {src.info.sfreq:g} Hz in "
          f"{wall:.2f} s ({summary['realtime_factor']:.0f}x real time); "
          f"{st['predictions']} predictions, {st['skipped']} skipped, {st['unreliable']} unreliable")
    if text:
        print(_text_report(segments))
    elif report is None:
        print(f"no cue markers matching {sorted(cue_map)} in the file: no accuracy to report "
              "(use --cue MARKER=CLASS).")
    else:
        print(report.text())
    return 0


def _text_report(segments: list[dict], max_lines: int = 40) -> str:
    lines = [f"{TEXT_NO_SCORING}: free-running text of each reliable window, runs of the same "
             f"text merged, {len(segments)} segment(s); times are window ends, s of the file:"]
    if not segments:
        lines.append("  (no reliable window)")
    for seg in segments[:max_lines]:
        lines.append(f"  {seg['start_s']:7.1f} - {seg['end_s']:7.1f} s  {seg['text']!r}  "
                     f"(confidence {seg['confidence']:.2f}, {seg['n_windows']} window(s); top "
                     f"sentence {seg['top_sentence']!r} {100 * seg['top_p']:.0f} %)")
    if len(segments) > max_lines:
        lines.append(f"  ... {len(segments) - max_lines} more segment(s): --json lists them all")
    return "\n".join(lines)
