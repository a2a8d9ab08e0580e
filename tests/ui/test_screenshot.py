"""Screenshot of the real main window under Xvfb (skipped where Xvfb is not installed).

``BCI_APP_SCREENSHOT_DIR=bench/out`` keeps the PNG. The picture described in the GUI report was
taken with the tool directly, decoding on::

    DISPLAY=:N QT_QPA_PLATFORM=xcb python -m ui.screenshot --out bench/out/main_window.png \
        --seconds 13 --model <bundle> --decode
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ui.xvfb import have_xvfb, x11_env, xvfb

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not have_xvfb(), reason="Xvfb not installed (apt-get install xvfb libxcb-icccm4 "
                    "libxcb-keysyms1 libxcb-cursor0)")
def test_main_window_screenshot_under_xvfb(tmp_path, gui_bundle_path):
    """The real window on the synthetic board with a model bundle loaded, under X11 (the
    picture in bench/out/ was taken with ``--decode`` as well: see the module docstring)."""
    out = tmp_path / "main_window.png"
    with xvfb(1600, 1000) as display:
        env = x11_env(display)
        env["BCI_APP_SETTINGS"] = str(tmp_path / "settings.ini")
        seconds = os.environ.get("BCI_APP_SCREENSHOT_SECONDS", "3")  # 12 fills the 10 s scope
        cmd = [sys.executable, "-m", "ui.screenshot", "--out", str(out), "--seconds", seconds,
               "--model", str(gui_bundle_path)]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "platform xcb" in proc.stdout and "state streaming" in proc.stdout, proc.stdout
    assert "16 channels" in proc.stdout and "model ts_lr" in proc.stdout, proc.stdout
    # predictions start after the model's 2 s window and warm-up: on a loaded CI machine a 6 s
    # run may end before the first one, so they are shown when present but not required here
    # (tests/ui/test_panels.py checks decoding in the window)
    from PySide6 import QtGui

    img = QtGui.QImage(str(out))
    assert (img.width(), img.height()) == (1600, 1000)
    colours = {img.pixel(x, y) for x in range(0, 1600, 37) for y in range(0, 1000, 23)}
    assert len(colours) > 20  # a real picture, not a blank screen
    keep = os.environ.get("BCI_APP_SCREENSHOT_DIR")  # e.g. bench/out to keep the PNG
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(keep) / out.name)
