"""The ``bci-app`` command line.

``bci-app`` with no sub-command opens the GUI on the embedded default source (BrainFlow's
synthetic board); ``bci-app live --headless`` runs the same session without a screen.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from . import __version__
from .errors import BciAppError

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bci-app",
        description="Real-time EEG brain-computer interface: live sessions, recording, decoding.",
    )
    parser.add_argument("--version", action="version", version=f"bci-app {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)"
    )
    parser.add_argument(
        "--lsl-scope",
        choices=["machine", "lan"],
        default=None,
        help="LSL visibility: 'machine' (default; this computer only) or 'lan' (whole network)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import commands

    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{mod.name}")
        module.register(sub)
    return parser


def setup_logging(verbosity: int) -> None:
    """Install log handlers: the application (not the libraries) decides this."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    #: the words after ``bci-app`` (global options included): what a bundle records as the
    #: command that reproduces it
    args.argv = list(argv if argv is not None else sys.argv[1:])
    setup_logging(args.verbose)
    from acquisition.lsl_env import configure_lsl

    try:
        configure_lsl(args.lsl_scope)
        if args.command is None:
            # No sub-command: the GUI on the embedded default source.
            args = parser.parse_args(["gui", *(argv if argv is not None else sys.argv[1:])])
        return int(args.func(args) or 0)
    except BciAppError as err:
        print(f"bci-app: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bci-app: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_closed():  # another pipe or socket: an unexpected error, shown as one
            raise
        # stdout closed by its reader (`bci-app devices | head`). Python's recipe: point stdout
        # at devnull so the flush at exit does not fail again
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE


def _stdout_closed() -> bool:
    """True when stdout is a pipe whose reader has gone (POLLERR on its write end); where that
    cannot be asked (Windows), a broken pipe is taken to be stdout."""
    import select

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # (replaced by a stream without a descriptor)
        return False
    if not hasattr(select, "poll"):
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(ev & select.POLLERR for _, ev in poller.poll(0))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
