"""``bci-app record``: record a source (and its markers) to XDF, without decoding."""

from __future__ import annotations

import logging
import signal
import threading

from ..argtypes import number
from ..sources import SPEC_HELP

logger = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser(
        "record",
        help="record a source to a crash-safe XDF file (no decoding)",
        description=(
            "Stream from a source and record EEG, markers and session metadata to XDF. "
            "The file is flushed and fsync'ed every 0.5 s: after a crash or a kill it loads "
            "(run `bci-app repair FILE` if a tool refuses it). Stops after --duration, at the "
            "end of a file replay, on Ctrl-C / SIGTERM, or when the disk is full."
        ),
    )
    p.add_argument("--source", required=True, help=f"where EEG comes from: {SPEC_HELP}")
    p.add_argument(
        "--out",
        default=None,
        metavar="PATH",
        help="XDF file to create (default: recordings/<subject>_<UTC time>.xdf)",
    )
    p.add_argument("--duration", type=number, default=None, help="stop after S seconds")
    p.add_argument("--subject", default="anonymous", help="subject id stored in the recording")
    p.add_argument("--timeout", type=number, default=10.0, help="seconds to wait for the device")
    p.add_argument("--speed", type=number, default=1.0, help="replay speed for file: sources")
    p.add_argument("--stream", default=None, metavar="NAME",
                   help="file: sources (XDF): the stream to replay as EEG")
    p.add_argument(
        "--markers",
        default=None,
        metavar="NAME",
        help="also record an LSL marker stream with this name",
    )
    p.add_argument("--quiet", action="store_true", help="no status line every second")
    p.set_defaults(func=run)


def run(args) -> int:
    from acquisition.recorder import RecorderState

    from ..errors import ConfigError
    from ..recording import attach_recorder, check_recording_target
    from ..session import Session
    from ..sources import make_source
    from .live import file_source_kwargs

    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration}.")
    source = make_source(args.source, **file_source_kwargs(args))
    session = Session(source)
    if args.markers:
        from acquisition.lsl_source import LSLMarkerInlet

        from .live import _InletComponent

        session.add_component(
            _InletComponent(LSLMarkerInlet(source.markers, args.markers), args.timeout)
        )
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    rec = attach_recorder(
        session, args.out, subject=args.subject, settings=settings, prefix=args.subject
    )
    check_recording_target(rec.path, "--out")
    stop = threading.Event()
    rec.add_state_callback(
        lambda r, state, msg: stop.set() if state == RecorderState.FAILED else None
    )

    def _on_term(signum, frame):  # a polite kill: finish the file with its footers
        stop.set()

    old = signal.signal(signal.SIGTERM, _on_term)
    try:
        session.start(timeout=args.timeout)
        info = source.info
        print(
            f"recording {info.name} ({info.n_channels} ch @ {info.sfreq:g} Hz, {args.source}) "
            f"to {rec.path}",
            flush=True,
        )
        try:
            session.run_headless(
                args.duration,
                stop_event=stop,
                out=(lambda s: None) if args.quiet else (lambda s: print(s, flush=True)),
            )
        except KeyboardInterrupt:
            pass
    finally:
        session.stop()
        signal.signal(signal.SIGTERM, old)
    st = rec.stats()
    print(
        f"recorded {rec.path}: {st['bytes']} bytes, "
        + ", ".join(f"{k} {v['samples']} samples" for k, v in st["signals"].items())
        + ", "
        + ", ".join(f"{k} {v}" for k, v in st["markers"].items()),
        flush=True,
    )
    if rec.error is not None:
        print(f"bci-app: error: {rec.error}", flush=True)
        return 1
    return 0
