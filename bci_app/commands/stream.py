"""``bci-app stream FILE``: publish a recording as LSL streams (a stand-in device).

An EEG outlet (labels, units, types in its description; volts sent as microvolts) and a marker
outlet (type ``Markers``, strings) carrying the file's markers at the timestamps of the samples
they belong to. Pacing and timestamps come from :class:`~acquisition.replay.ReplaySource`, so the
published stream is exactly what a replay inside the app would deliver.

The command prints ``READY <eeg name> <marker name>`` once both outlets exist (and, with
``--wait-consumers``, once inlets are connected), and ``DONE <samples> <markers>`` at the end.
"""

from __future__ import annotations

import argparse
import logging
import math
import time

from bci_app.argtypes import number
from bci_app.errors import ConfigError

logger = logging.getLogger(__name__)


def _speed(text: str) -> float | str:
    if text.strip().lower() == "max":
        return "max"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--speed must be a positive number or 'max', got {text!r}"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--speed must be > 0 (1 = real time), got {text!r}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stream",
        help="publish a recording as an LSL EEG stream + marker stream (stand-in device)",
        description="Publish a recording as LSL streams: an EEG outlet and a marker outlet "
        "(a stand-in device).",
    )
    p.add_argument(
        "file", metavar="FILE",
        help="recording: FIF/EDF/BDF/BrainVision/XDF/OpenBCI txt/BrainFlow CSV/OpenViBE mat",
    )
    p.add_argument("--name", default=None, help="LSL stream name (default: the recording's name)")
    p.add_argument("--speed", type=_speed, default=1.0, help="1 = real time, N = N x faster, 'max'")
    p.add_argument("--loop", action="store_true", help="start again at the end of the file")
    p.add_argument("--chunk", type=int, default=None, help="samples per chunk (default 20 ms)")
    p.add_argument("--stream", default=None, help="XDF: name of the stream to publish as EEG")
    p.add_argument("--board-id", type=int, default=-1, help="BrainFlow CSV: board id (default -1)")
    p.add_argument(
        "--wait-consumers", type=number, default=0.0, metavar="SECONDS",
        help="wait up to SECONDS for an EEG and a marker inlet before streaming (default: don't)",
    )
    p.add_argument(
        "--duration", type=number, default=0.0, metavar="SECONDS",
        help="stop after SECONDS of wall time (default: end of file, or never with --loop)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Publish ``args.file`` until its end (or ``--duration``, or Ctrl-C). Returns 0."""
    from acquisition.files import read_file
    from acquisition.lsl_outlet import EEGOutlet, MarkerOutlet
    from acquisition.replay import ReplaySource

    if args.chunk is not None and args.chunk < 1:
        raise ConfigError(f"--chunk must be a positive number of samples, got {args.chunk}.")
    if args.duration < 0 or args.wait_consumers < 0:
        raise ConfigError("--duration and --wait-consumers must be >= 0 seconds.")
    rec = read_file(args.file, stream=args.stream, board_id=args.board_id)
    name = args.name or rec.info.name
    # one acquire() delivers everything due since the last: at N x a pause of the loop of
    # 10 / N s overflowed a 10 s buffer and those samples were never published. The buffer
    # holds 10 s of wall time at the speed (never more than the file: one acquire() delivers
    # at most the rest of it)
    wall_10s = 10.0 * args.speed if args.speed != "max" else 10.0
    source = ReplaySource(
        rec, speed=args.speed, chunk_samples=args.chunk, loop=args.loop, name=name,
        buffer_seconds=max(10.0, 2.0 * (args.chunk or 0) / rec.sfreq,
                           min(wall_10s, rec.n_samples / rec.sfreq + 1.0)),
    )
    eeg = EEGOutlet(rec.info, name=name)
    markers = MarkerOutlet(f"{name}-markers")
    try:
        if args.wait_consumers > 0:
            deadline = time.monotonic() + args.wait_consumers
            eeg.wait_for_consumers(args.wait_consumers)
            markers.wait_for_consumers(max(0.0, deadline - time.monotonic()))
            if not (eeg.have_consumers() and markers.have_consumers()):
                logger.warning("Not every outlet has a consumer after %.1f s; streaming anyway",
                               args.wait_consumers)
        source.connect(acquisition=False)  # anchors the first sample at local_clock() now
        print(f"READY {name} {name}-markers", flush=True)
        if args.speed == "max":
            period = 0.0  # one chunk per iteration, as fast as LSL takes it
        else:  # each acquire() delivers everything due; no need to spin faster than 2 ms
            period = max(0.002, source.chunk_samples / (rec.sfreq * args.speed))
        t_end = time.monotonic() + args.duration if args.duration > 0 else math.inf
        k = 0
        j = 0
        target = time.monotonic()
        while time.monotonic() < t_end:
            source.acquire()
            new = source.markers.since(j)
            j += len(new)
            for m in new:
                if m.source == "file":
                    markers.push(m.label, m.timestamp)
            chunk = source.buffer.since(k)
            if chunk.lost:
                logger.warning("%d samples were not published: the loop fell more than the "
                               "buffer behind (a pause of over 10 s of wall time)", chunk.lost)
            if chunk.n_samples:
                eeg.push_chunk(chunk.data, chunk.timestamps)
                k = chunk.stop
            if source.finished:
                break
            target += period
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # scheduled against a monotonic target, not a fixed sleep
            else:
                target = time.monotonic()
        print(f"DONE {eeg.n_pushed} {markers.n_pushed}", flush=True)
        time.sleep(0.5)  # let the last chunks leave before the outlets disappear
    finally:
        source.disconnect()
        eeg.close()
        markers.close()
    return 0
