"""``bci-app gui`` (also ``bci-app`` alone): the desktop window on the embedded default source."""

from __future__ import annotations

import importlib
import sys


def register(sub) -> None:
    p = sub.add_parser("gui", help="open the desktop GUI (default when no command is given)")
    p.add_argument("--source", default="synthetic",
                   help="source to open at start (default: BrainFlow synthetic board)")
    p.add_argument("--model", default=None, help="model bundle to load at start")
    p.set_defaults(func=launch_gui, headless=False, duration=None)


def launch_gui(args) -> int:
    """Start the Qt application (the only place bci_app hands over to ``ui``)."""
    try:
        app = importlib.import_module("ui.app")
    except ModuleNotFoundError as err:
        if err.name not in ("ui.app", "PySide6", "pyqtgraph"):
            raise
        print(f"GUI not available ({err}); running the headless live session instead.",
              file=sys.stderr)
        from .live import run as run_live

        args.headless = True
        for name, default in (("timeout", 10.0), ("speed", 1.0), ("record", None),
                              ("markers", None), ("subject", "anonymous")):
            if not hasattr(args, name):
                setattr(args, name, default)
        return run_live(args)
    return int(app.main(args) or 0)
