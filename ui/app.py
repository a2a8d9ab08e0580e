"""Entry point of the desktop GUI: ``bci-app`` / ``bci-app gui [--source SPEC] [--model BUNDLE]``."""

from __future__ import annotations

import argparse
import logging
import sys

logger = logging.getLogger(__name__)


def configure_pyqtgraph() -> None:
    """Display options chosen for speed: no antialiasing, our own decimation, no OpenGL."""
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=False, foreground=(210, 210, 210), background=(18, 18, 22),
                        useOpenGL=False, exitCleanup=False)


def tune_allocator() -> bool:
    """Keep freed buffers in the heap (glibc only; best effort).

    Each display frame allocates a few MB of short-lived numpy arrays. With glibc's default
    dynamic thresholds those come from fresh ``mmap`` pages, and the page faults cost more than
    the computation (measured: a 4 MB ``bincount`` 8-16 ms instead of 0.5 ms). Raising the mmap
    and trim thresholds makes them reuse heap memory.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 64 << 20) == 1
        ok &= libc.mallopt(m_trim_threshold, 256 << 20) == 1
        return bool(ok)
    except (OSError, AttributeError):
        return False


def create_app(argv: list[str] | None = None):
    """The QApplication (created once)."""
    from PySide6 import QtWidgets

    tune_allocator()
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(list(argv or sys.argv[:1]))
        app.setApplicationName("bci_app")
        app.setOrganizationName("bci_app")
        app.setStyle("Fusion")
    configure_pyqtgraph()
    return app


def main(args: argparse.Namespace | None = None) -> int:
    """Open the main window on ``args.source`` (default: BrainFlow synthetic board) and run.

    ``args.model`` (a bundle folder) is loaded at start when given.
    """
    from acquisition.lsl_env import configure_lsl

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_lsl()  # LSL on loopback unless the user chose otherwise, before pylsl is used
    spec = getattr(args, "source", None) or "synthetic"
    model = getattr(args, "model", None)
    app = create_app()
    from .main_window import MainWindow

    win = MainWindow(spec, model=model)
    win.show()
    return int(app.exec())


if __name__ == "__main__":  # python -m ui.app [--source SPEC] [--model PATH]
    p = argparse.ArgumentParser(prog="python -m ui.app")
    p.add_argument("--source", default="synthetic")
    p.add_argument("--model", default=None)
    sys.exit(main(p.parse_args()))
