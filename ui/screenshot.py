"""Save a PNG of the main window after it has run for a few seconds.

Usage (under a real or virtual X server, e.g. Xvfb)::

    DISPLAY=:99 QT_QPA_PLATFORM=xcb python -m ui.screenshot --out bench/out/main_window.png

Under X11 the picture is grabbed from the screen (what the X server shows); elsewhere (offscreen)
the window renders itself. ``--demo-predictions`` feeds the prediction panel made-up predictions
(stand-in :class:`ui.prediction.Prediction` objects, labelled as such in the panel) to show the
panel's look before an online decoder exists; it is never used by the app itself.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ui.screenshot")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--source", default="synthetic")
    p.add_argument("--model", default=None, help="model bundle folder to load")
    p.add_argument("--seconds", type=float, default=4.0, help="run this long before the grab")
    p.add_argument("--size", default="1600x1000")
    p.add_argument("--decode", action="store_true", help="start the online decoder (needs --model)")
    p.add_argument("--demo-predictions", action="store_true")
    p.add_argument("--marker-every", type=float, default=1.5, help="add a user marker every N s (0: none)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from acquisition.lsl_env import configure_lsl

    configure_lsl()
    from PySide6 import QtCore, QtGui

    from .app import create_app
    from .main_window import MainWindow
    from .prediction import Prediction

    app = create_app()
    w, h = (int(v) for v in a.size.lower().split("x"))
    win = MainWindow(a.source, model=a.model)
    win.setGeometry(0, 0, w, h)
    win.show()
    win.raise_()

    if a.model:  # the bundle loads on a background thread: wait for it (bounded) before timing
        t_end = time.monotonic() + 60
        while win.prediction.model_name is None and time.monotonic() < t_end:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)
    timers = []
    if a.marker_every > 0:
        labels = iter(["rest", "left", "right", "rest", "left", "right"] * 10)
        t = QtCore.QTimer()
        t.timeout.connect(lambda: win.add_marker(next(labels)))
        t.start(int(a.marker_every * 1000))
        timers.append(t)
    if a.decode:
        def start_decoding():
            if win.source is not None and win.source.state.value == "streaming" and win.bundle is not None:
                win.set_decoding(True)
            else:
                QtCore.QTimer.singleShot(100, start_decoding)

        QtCore.QTimer.singleShot(100, start_decoding)
    if a.demo_predictions:
        classes = tuple(win.prediction.classes) or ("left", "right")
        if win.prediction.model_name is None:
            win.prediction.set_model("demo predictions (no decoder running)", classes)
        rng = np.random.default_rng(0)
        state = {"phase": 0.0}

        def feed():
            state["phase"] += 0.15
            bias = np.sin(state["phase"])
            logits = rng.normal(0, 0.4, len(classes))
            logits[0] -= bias
            logits[-1] += bias
            probs = np.exp(logits) / np.exp(logits).sum()
            win.prediction.on_prediction(Prediction(
                window_end=time.time(), probabilities=probs, classes=classes,
                label=classes[int(np.argmax(probs))], text=None,
                latency={"window_ready": 0.0012, "inference": 0.0021, "emitted": 0.0003, "total": 0.0036}))

        t = QtCore.QTimer()
        t.timeout.connect(feed)
        t.start(100)
        timers.append(t)

    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.005)
    app.processEvents()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pix = None
    if QtGui.QGuiApplication.platformName() == "xcb":
        screen = QtGui.QGuiApplication.primaryScreen()
        pix = screen.grabWindow(0, 0, 0, w, h)
    if pix is None or pix.isNull():
        pix = win.grab()
    ok = pix.save(str(out), "PNG")
    print(f"{'saved' if ok else 'FAILED to save'} {out} ({pix.width()}x{pix.height()}, "
          f"platform {QtGui.QGuiApplication.platformName()}, state {win.status_snapshot().state}, "
          f"{win.scope.n_channels} channels, {win.scope.paint_count} scope paints, "
          f"{win.prediction.n_predictions} predictions, model {win.prediction.model_name})")
    for t in timers:
        t.stop()
    win.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
