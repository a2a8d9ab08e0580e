"""Subprocess helpers with bounded waits (no bare sleeps for synchronisation)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    e["PYTHONUNBUFFERED"] = "1"
    return e


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, args: list[str], **kw) -> None:
        self.args = args
        self.p = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **kw,
        )
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))
            self._q.put(line)
        self._q.put(None)

    def wait_line(self, prefix: str, timeout: float) -> str:
        """Block until a stdout line starts with ``prefix``; fail after ``timeout`` seconds."""
        import time

        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(
                    f"{self.args[:3]} exited (rc={self.p.poll()}) before "
                    f"printing {prefix!r}; output:\n" + "\n".join(self.lines)
                )
            if line.startswith(prefix):
                return line.rstrip("\n")
        raise AssertionError(
            f"{self.args[:3]} did not print {prefix!r} within {timeout} s; "
            "output:\n" + "\n".join(self.lines)
        )

    def finish(self, timeout: float = 10.0) -> int:
        try:
            return self.p.wait(timeout)
        finally:
            self._t.join(2)

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
        self._t.join(2)

    def output(self) -> str:
        return "\n".join(self.lines)
