"""Shared helpers for benchmark scripts: LSL config, machine description, percentiles."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from acquisition.lsl_env import configure_lsl  # noqa: E402

configure_lsl()

import numpy as np  # noqa: E402


def machine() -> str:
    try:
        import psutil

        mem = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except Exception:  # pragma: no cover
        mem = "?"
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores ({cpu}), {mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def open_main_window(source, size=(1600, 1000), timeout: float = 30.0, pyqtgraph_config=True):
    """(app, window): the real MainWindow on ``source``, shown, once the source is connected."""
    import time

    from ui.app import configure_pyqtgraph, create_app
    from ui.main_window import MainWindow

    app = create_app([])
    if pyqtgraph_config:
        configure_pyqtgraph()
    window = MainWindow(source=source)
    window.resize(*size)
    window.show()
    deadline = time.monotonic() + timeout
    while not source.connected and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    return app, window
