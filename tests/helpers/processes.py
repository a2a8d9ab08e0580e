"""Start and stop helper processes (LSL outlets, CLI runs) with bounded waits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_outlet(name: str, *, channels: int = 8, rate: float = 250.0, duration: float = 0.0,
                 start: int = 0, chunk: int = 0, wait_consumer: float = 10.0) -> subprocess.Popen:
    """An LSL outlet with a counter in channel 0, in its own process (see lsl_outlet.py)."""
    cmd = [sys.executable, "-m", "tests.helpers.lsl_outlet", "--name", name,
           "--channels", str(channels), "--rate", str(rate), "--duration", str(duration),
           "--start", str(start), "--wait-consumer", str(wait_consumer)]
    if chunk:
        cmd += ["--chunk", str(chunk)]
    return subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass
    if proc.stdout:
        proc.stdout.close()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01,
               what: str = "condition") -> float:
    """Poll ``predicate`` until true; return the seconds waited; fail after ``timeout``."""
    t0 = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
