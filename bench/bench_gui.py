"""GUI benchmark: frames per second and CPU share of the GUI process.

For each configuration (channels × sampling rate, 10 s scope window) a fresh process opens the
real MainWindow (scope + spectrum + prediction panel + status bar) on an in-process simulated
source (a real ``Source`` with its own acquisition thread, pre-filled with a full window) and
measures, over ``--seconds``:

- ``60 Hz``: the app as shipped (display timer at 60 Hz): scope paints per second, process CPU
  share (all threads: GUI + acquisition + Qt) and GUI-thread CPU share;
- ``max``: the display timer at 0 ms (refresh as fast as the event loop allows): the headroom.

Platforms: ``offscreen`` (Qt's offscreen plugin) and ``xcb`` under a private Xvfb (when
installed). Usage::

    .venv/bin/python bench/bench_gui.py                       # everything
    .venv/bin/python bench/bench_gui.py --channels 64 --rates 1000 --platforms offscreen
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def worker(a: argparse.Namespace) -> dict:
    """Run one configuration in this process and return its figures."""
    from acquisition.lsl_env import configure_lsl

    configure_lsl()
    import tempfile

    os.environ.setdefault("BCI_APP_SETTINGS", str(Path(tempfile.mkdtemp()) / "bench_settings.ini"))
    from PySide6 import QtCore, QtGui

    from tests.ui.fakes import SimulatedSource
    from ui.app import create_app
    from ui.main_window import MainWindow

    app = create_app()
    src = SimulatedSource(a.channels, a.rate, prefill_s=a.window + 1.0, cheap=True,
                          buffer_seconds=max(30.0, a.window + 5.0))
    win = MainWindow(source=src)
    win.setGeometry(0, 0, 1600, 1000)
    win.scope.set_window(a.window)
    win.scope.set_scale(50.0)
    win.show()

    def pump(seconds: float) -> None:
        """Run the real event loop (idle waits included) for ``seconds``."""
        loop = QtCore.QEventLoop()
        QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    t_end = time.monotonic() + 15
    while (src.state.value != "streaming" or win.scope._filled < win.scope._wn) and time.monotonic() < t_end:
        pump(0.05)
    assert win.scope._filled == win.scope._wn, "scope window never filled"
    results = {"channels": a.channels, "rate": a.rate, "window_s": a.window,
               "platform": QtGui.QGuiApplication.platformName()}
    for label, interval in (("60hz", 16), ("max", 0)):
        win.display_timer.setInterval(interval)
        pump(1.0)  # settle
        p0, f0 = win.scope.paint_count, win.scope.frame_count
        c0, g0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
        pump(a.seconds)
        wall = time.perf_counter() - w0
        results[label] = {
            "fps": (win.scope.paint_count - p0) / wall,
            "refreshes_per_s": (win.scope.frame_count - f0) / wall,
            "cpu_process": (time.process_time() - c0) / wall,
            "cpu_gui_thread": (time.thread_time() - g0) / wall,
            "renderer": win.scope.render_mode,
            "refresh_ms": win.scope.last_frame_ms,
        }
    results["samples_missing"] = src.samples_missing
    results["loadavg_1min"] = os.getloadavg()[0]
    win.close()
    return results


def run_config(channels: int, rate: float, platform: str, seconds: float, window: float,
               display: str | None) -> dict:
    env = os.environ.copy()
    env["QT_QPA_PLATFORM"] = platform
    if display:
        env["DISPLAY"] = display
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--channels", str(channels),
           "--rates", str(rate), "--seconds", str(seconds), "--window", str(window)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--channels", default="8,32,64")
    p.add_argument("--rates", default="250,1000")
    p.add_argument("--platforms", default="offscreen,xcb")
    p.add_argument("--seconds", type=float, default=5.0, help="measurement time per mode")
    p.add_argument("--window", type=float, default=10.0, help="scope window in seconds")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        a.channels = int(a.channels)
        a.rate = float(a.rates)
        print("RESULT " + json.dumps(worker(a)), flush=True)
        return 0

    chans = [int(c) for c in a.channels.split(",")]
    rates = [float(r) for r in a.rates.split(",")]
    rows = []
    for platform in a.platforms.split(","):
        if platform == "xcb":
            from tests.ui.xvfb import have_xvfb, xvfb

            if not have_xvfb():
                print("Xvfb not installed: skipping xcb", file=sys.stderr)
                continue
            ctx = xvfb(1600, 1000)
        else:
            from contextlib import nullcontext

            ctx = nullcontext(None)
        with ctx as display:
            for c in chans:
                for r in rates:
                    res = run_config(c, r, platform, a.seconds, a.window, display)
                    rows.append(res)
                    print(json.dumps(res), file=sys.stderr, flush=True)
    print(f"| platform | channels | rate (Hz) | window | fps @60 Hz timer | CPU process | CPU GUI thread "
          f"| max fps (timer 0) | CPU at max | renderer | load avg (1 min, 2 cores) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s, m = r["60hz"], r["max"]
        print(f"| {r['platform']} | {r['channels']} | {r['rate']:g} | {r['window_s']:g} s | {s['fps']:.1f} | "
              f"{100 * s['cpu_process']:.0f} % | {100 * s['cpu_gui_thread']:.0f} % | {m['fps']:.1f} | "
              f"{100 * m['cpu_process']:.0f} % | {s['renderer']} | {r['loadavg_1min']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
