"""Start and stop a private Xvfb server (bounded waits); used by the screenshot test and the bench."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
from contextlib import contextmanager


def have_xvfb() -> bool:
    return shutil.which("Xvfb") is not None


@contextmanager
def xvfb(width: int = 1600, height: int = 1000, timeout: float = 10.0):
    """Yield the DISPLAY string of a fresh Xvfb; Xvfb picks a free display number itself."""
    if not have_xvfb():
        raise RuntimeError("Xvfb is not installed (apt-get install xvfb libxcb-icccm4 "
                           "libxcb-keysyms1 libxcb-cursor0).")
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", "1", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"Xvfb did not report a display within {timeout:g} s.")
        number = proc.stdout.readline().strip()
        if not number.isdigit():
            raise RuntimeError(f"Xvfb did not start (said {number!r}).")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout:
            proc.stdout.close()


def x11_env(display: str) -> dict[str, str]:
    env = os.environ.copy()
    env["DISPLAY"] = display
    env["QT_QPA_PLATFORM"] = "xcb"
    return env
