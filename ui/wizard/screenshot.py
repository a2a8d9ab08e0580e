"""Drive the calibration wizard on a simulated subject and save PNGs of the cue and results pages.

Usage (under a real or virtual X server)::

    DISPLAY=:99 QT_QPA_PLATFORM=xcb python -m ui.wizard.screenshot --out-dir bench/out \
        --pretrained decoders/pretrained/<bundle> --source simulated:1 --speed 10

Under X11 the picture is grabbed from the screen (what the X server shows); elsewhere the window
renders itself. Every wait is bounded; exit status 1 when a step does not happen in time.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ui.wizard.screenshot")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--pretrained", default=None)
    p.add_argument("--source", default="simulated:1")
    p.add_argument("--speed", default="max",
                   help="'max' (default): the wizard is held still on a cue for the picture")
    p.add_argument("--trials", type=int, default=5, help="trials per class")
    p.add_argument("--finetune-epochs", type=int, default=10)
    p.add_argument("--size", default="1100x820")
    p.add_argument("--profiles-dir", default=None)
    p.add_argument("--record-dir", default=None)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from acquisition.lsl_env import configure_lsl

    configure_lsl()
    from PySide6 import QtCore, QtGui

    from ui.app import create_app

    from . import CalibrationWizard

    app = create_app()
    w, h = (int(v) for v in a.size.lower().split("x"))
    wiz = CalibrationWizard(source_spec=a.source, pretrained=a.pretrained, speed=a.speed,
                            user="screenshot", trials_per_class=a.trials,
                            finetune_epochs=a.finetune_epochs, profiles_root=a.profiles_dir,
                            record_dir=a.record_dir)
    wiz.setGeometry(0, 0, w, h)
    wiz.show()
    wiz.raise_()
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def spin(cond, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError(f"{what} did not happen within {timeout:g} s")
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.005)

    def grab(name: str) -> Path:
        for _ in range(10):
            app.processEvents()
            time.sleep(0.02)
        pix = None
        if QtGui.QGuiApplication.platformName() == "xcb":
            pix = QtGui.QGuiApplication.primaryScreen().grabWindow(0, 0, 0, w, h)
        if pix is None or pix.isNull():
            pix = wiz.grab()
        path = out / name
        ok = pix.save(str(path), "PNG")
        print(f"{'saved' if ok else 'FAILED to save'} {path} ({pix.width()}x{pix.height()}, "
              f"platform {QtGui.QGuiApplication.platformName()})", flush=True)
        return path

    try:
        wiz.device.connect_source()
        spin(lambda: wiz.device.isComplete() and wiz.device.connect_btn.isEnabled(), 30,
             "connecting")
        wiz.next()
        spin(lambda: bool(wiz.signal.last), 20, "signal check")
        grab("wizard_signal_check.png")
        wiz.next()
        wiz.next()
        wiz.acquisition.start_btn.click()
        c = wiz.controller
        held = []

        def hold_on_cue(cls, trial):  # runs inside the pump: stop it on the second cue
            if trial == 1 and c.manual and not held:
                c.hold = True
                held.append(cls)

        c.cue.connect(hold_on_cue)
        spin(lambda: c.protocol.trial >= 1 and wiz.acquisition.cue.state == "cue", 60, "a cue")
        grab("wizard_cue.png")
        c.hold = False
        spin(wiz.acquisition.isComplete, 300, "the cued recording")
        wiz.next()
        spin(wiz.training.isComplete, 300, "training")
        wiz.next()
        grab("wizard_results.png")
        print(wiz.results.scores.text().replace("<br>", "\n"), flush=True)
    except TimeoutError as err:
        print(f"error: {err}", flush=True)
        grab("wizard_timeout.png")
        return 1
    finally:
        wiz.shutdown()  # never asks (the close question would wait forever under Xvfb)
        wiz.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
