"""Entry point of the desktop GUI: ``bci-app`` / ``bci-app gui [--source SPEC] [--model BUNDLE]``."""

from __future__ import annotations

import argparse
import logging
import os
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


def display_problem(env: dict | None = None, platform: str | None = None,
                    plugin_error=None, connect_error=None) -> str | None:
    """Why Qt could not open a window on this Linux machine, with the fix; None if it can.

    Without this, Qt ends the process with its own "could not load the Qt platform plugin"
    abort (whose hint names libxcb-cursor0 even when another library is missing). Checked in
    order: a display is set at all (``DISPLAY``/``WAYLAND_DISPLAY``); Qt's X11 plugin loads (the
    system libraries it links, e.g. libxcb-icccm4, libxcb-keysyms1, libxcb-cursor0); the X
    server at ``DISPLAY`` accepts a connection. An explicit ``QT_QPA_PLATFORM`` other than
    ``xcb`` (``offscreen``, ``wayland``, ``vnc``...) is the user's choice and is not checked.
    ``plugin_error()`` and ``connect_error(display)`` return an error text or None (defaults:
    :func:`_xcb_plugin_error`, :func:`_x_connect_error`).
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "")
    if qpa and not qpa.startswith("xcb"):
        return None
    if not qpa and env.get("WAYLAND_DISPLAY"):
        return None
    headless = "or run without a GUI: `bci-app live --headless`"
    display = env.get("DISPLAY")
    if not display:
        return ("no display: neither DISPLAY nor WAYLAND_DISPLAY is set, so the GUI cannot open "
                "a window. Fix: start it from a desktop session (or `ssh -X`), or under a "
                f"virtual display (`xvfb-run bci-app`), {headless}. (`QT_QPA_PLATFORM=offscreen` "
                "runs the GUI without showing it, as the tests do.)")
    err = (plugin_error or _xcb_plugin_error)()
    if err:
        return (f"Qt's X11 plugin cannot be loaded: {err}. Fix: install the X11 libraries Qt "
                "needs, e.g. `sudo apt-get install libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 "
                f"libxkbcommon-x11-0` (Debian/Ubuntu), {headless}.")
    err = (connect_error or _x_connect_error)(display)
    if err:
        return (f"cannot connect to the X display {display!r} ({err}). Fix: check DISPLAY and "
                f"that the X server (or Xvfb) is running and allows this user, {headless}.")
    return None


def _xcb_plugin_error() -> str | None:
    """dlopen Qt's X11 platform plugin: the loader's message names a missing library."""
    import ctypes
    from pathlib import Path

    from PySide6.QtCore import QLibraryInfo

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    found = sorted(plugins.glob("libqxcb*.so*"))
    if not found:
        return f"no libqxcb plugin in {plugins}"
    try:
        ctypes.CDLL(str(found[0]))
    except OSError as err:
        return str(err)
    return None


def _x_connect_error(display: str) -> str | None:
    """Open and close one connection to the X server with libxcb."""
    import ctypes

    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError as err:
        return str(err)
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    code = xcb.xcb_connection_has_error(conn)
    xcb.xcb_disconnect(conn)
    return f"xcb error {code}" if code else None


_gc_collector = None


def collect_garbage_on_gui_thread(interval: float = 1.0):
    """Turn off Python's automatic cyclic garbage collection and run it from a timer on the GUI
    thread instead (pyqtgraph's :class:`~pyqtgraph.util.garbage_collector.GarbageCollector`).

    The automatic collector runs in whichever thread happens to allocate. When it frees a
    reference cycle that holds a Qt object (a closed dialog, a plot with its context menus), the
    C++ object is destroyed in that thread: the decoder worker, an LSL reader, a training job.
    Qt forbids that. Here it hung the app (a worker inside ``~QObject`` holding Qt's signal-slot
    mutex while waiting for the GIL; the GUI thread holding the GIL while waiting for that mutex,
    so nothing, not even a watchdog thread, ran again) and crashed it (a segfault after a plot
    widget was destroyed off the GUI thread). Objects without cycles are still freed at once by
    reference counting; only the cycle collector moves. Idempotent; returns the collector.
    Call it once a QApplication exists."""
    global _gc_collector
    if _gc_collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _gc_collector = GarbageCollector(interval=interval)
    return _gc_collector


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
    collect_garbage_on_gui_thread()
    return app


def main(args: argparse.Namespace | None = None) -> int:
    """Open the main window on ``args.source`` (default: BrainFlow synthetic board) and run.

    ``args.model`` (a bundle folder) is loaded at start when given.
    """
    from acquisition.lsl_env import configure_lsl

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_lsl()  # LSL on loopback unless the user chose otherwise, before pylsl is used
    problem = display_problem()
    if problem:
        from bci_app.errors import ConfigError

        raise ConfigError(problem)
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
