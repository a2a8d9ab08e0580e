"""``bci-app live``: a live session on any source, headless or in the GUI."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from ..argtypes import check_hop, number
from ..sources import SPEC_HELP

logger = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser(
        "live",
        help="run a live session (GUI, or --headless with a status line per second)",
        description="Stream from a source into the ring buffer; print status every second.",
    )
    p.add_argument("--source", default="synthetic", help=f"where EEG comes from: {SPEC_HELP}")
    p.add_argument("--headless", action="store_true", help="no GUI: print status lines")
    p.add_argument("--duration", type=number, default=None, help="stop after S seconds")
    p.add_argument("--timeout", type=number, default=10.0, help="seconds to wait for the device")
    p.add_argument("--speed", type=number, default=1.0, help="replay speed for file: sources")
    p.add_argument("--stream", default=None, metavar="NAME",
                   help="file: sources (XDF): the stream to replay as EEG")
    p.add_argument("--record", nargs="?", const="", default=None, metavar="PATH",
                   help="record the session to XDF (default: recordings/<timestamp>.xdf)")
    p.add_argument("--subject", default="anonymous", help="subject id stored in the recording")
    p.add_argument("--markers", default=None, metavar="NAME",
                   help="also read an LSL marker stream with this name")
    p.add_argument("--model", default=None, metavar="BUNDLE",
                   help="decode with this model bundle or user profile (prints predictions)")
    p.add_argument("--hop", type=number, default=0.1, help="seconds between predictions")
    p.add_argument("--map", action="append", metavar="MODEL_CH=SOURCE_CH", default=None,
                   help="explicit channel mapping when the source names channels differently")
    p.add_argument("--publish", default=None, metavar="NAME",
                   help="publish predictions as an LSL stream with this name")
    p.add_argument("--print-predictions", action="store_true",
                   help="print every prediction (default: the latest one in the status line)")
    p.set_defaults(func=run)


def build_session(args):
    """Create the session the live/record commands describe (not started)."""
    from ..session import Session
    from ..sources import make_source

    source = make_source(args.source, **file_source_kwargs(args))
    session = Session(source)
    if getattr(args, "markers", None):
        from acquisition.lsl_source import LSLMarkerInlet

        inlet = LSLMarkerInlet(source.markers, args.markers)
        session.add_component(_InletComponent(inlet, args.timeout))
    rec = None
    if getattr(args, "record", None) is not None:
        from ..recording import attach_recorder, check_recording_target

        settings = {k: v for k, v in vars(args).items() if k != "func"}
        rec = attach_recorder(session, args.record, subject=args.subject, settings=settings,
                              model_bundle=getattr(args, "model", None))
        check_recording_target(rec.path, "--record")
        session.recorder = rec
    if getattr(args, "model", None):
        from ..profiles import load_model
        from ..session import DecoderComponent

        bundle = load_model(args.model)
        mapping = _parse_map(getattr(args, "map", None))
        comp = DecoderComponent(session, bundle, hop=args.hop, mapping=mapping,
                                publish=getattr(args, "publish", None))
        session.add_component(comp)
        session.add_status_hook(comp.status)
        if rec is not None:
            from ..recording import prediction_recorder

            comp.add_callback(prediction_recorder(rec, bundle.classes))
        if getattr(args, "print_predictions", False):
            comp.add_callback(_print_prediction)
    return session


def file_source_kwargs(args) -> dict:
    """``speed``/``stream`` for a ``file:`` source; ``--stream`` with any other is an error."""
    from ..errors import ConfigError

    if args.source.startswith("file:"):
        kwargs = {"speed": args.speed}
        if getattr(args, "stream", None):
            kwargs["stream"] = args.stream
        return kwargs
    if getattr(args, "stream", None):
        raise ConfigError(f"--stream picks a stream inside a file: source (XDF); the source "
                          f"{args.source!r} is not a file. Leave --stream out.")
    return {}


def _parse_map(items) -> dict[str, str] | None:
    from ..errors import ConfigError

    if not items:
        return None
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key or not value:
            raise ConfigError(f"--map expects MODEL_CH=SOURCE_CH, e.g. C3=EEG3; got {item!r}.")
        out[key] = value
    return out


def _print_prediction(pred) -> None:
    probs = " ".join(f"{c}={p:.2f}" for c, p in zip(pred.classes, pred.probabilities))
    extra = f" command={pred.command}" if pred.command else ""
    flag = "" if pred.reliable else f" UNRELIABLE ({pred.reason})"
    print(f"  t={pred.window_end:.3f} {pred.label:<10} {probs}{extra}"
          f" latency={pred.latency['total'] * 1e3:.1f} ms{flag}", flush=True)


class _InletComponent:
    def __init__(self, inlet, timeout: float) -> None:
        self.inlet, self.timeout = inlet, timeout

    def start(self):
        self.inlet.connect(self.timeout)

    def stop(self):
        self.inlet.disconnect()


#: Options the GUI does not take from the command line (its own controls do these).
_HEADLESS_ONLY = {
    "duration": (None, "--duration"), "record": (None, "--record (GUI: the Record button)"),
    "markers": (None, "--markers"), "map": (None, "--map"), "hop": (0.1, "--hop"),
    "publish": (None, "--publish"), "print_predictions": (False, "--print-predictions"),
    "subject": ("anonymous", "--subject"), "speed": (1.0, "--speed (GUI: the replay controls)"),
    "timeout": (10.0, "--timeout"), "stream": (None, "--stream"),
}


def run(args) -> int:
    from ..errors import ConfigError

    if not args.headless:
        given = [flag for name, (default, flag) in _HEADLESS_ONLY.items()
                 if getattr(args, name, default) != default]
        if given:
            raise ConfigError(
                f"{', '.join(given)} only apply with --headless; the GUI takes --source and "
                "--model only. Add --headless (e.g. bci-app live --headless --record ...), or "
                "leave them out and use the GUI's own controls.")
        from .gui import launch_gui

        return launch_gui(args)
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration}.")
    if args.model:
        check_hop(args.hop)  # before the source is connected
    session = build_session(args)
    stop = threading.Event()

    def _on_term(signum, frame):  # a polite kill: stop and finish the recording's footers
        stop.set()

    old = signal.signal(signal.SIGTERM, _on_term)
    try:
        session.start(timeout=args.timeout)
        print(f"streaming from {session.source.info.name}: {session.source.info.n_channels} ch "
              f"@ {session.source.info.sfreq:g} Hz ({args.source})", flush=True)
        rec = getattr(session, "recorder", None)
        if rec is not None:
            print(f"recording to {rec.path}", flush=True)
        try:
            session.run_headless(args.duration, stop_event=stop,
                                 out=lambda s: print(s, flush=True))
        except KeyboardInterrupt:
            pass
    finally:
        session.stop()
        signal.signal(signal.SIGTERM, old)
        rec = getattr(session, "recorder", None)
        if rec is not None and Path(rec.path).is_file():  # none when the session failed to start
            print(f"recorded {rec.path}", flush=True)
    st = session.status()
    print(
        f"summary: {st.samples} samples in {st.elapsed:.1f} s, mean rate "
        f"{(st.samples / st.elapsed if st.elapsed else 0):.1f} Hz (nominal {st.nominal_rate:g}), "
        f"gaps {st.gaps}, samples lost {st.samples_missing}, markers {st.markers}, "
        f"final state {st.state.value}",
        flush=True,
    )
    return 0
