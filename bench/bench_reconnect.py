"""Recovery from a killed LSL device (issue 11 fault table).

An outlet process (8 ch x 250 Hz, counter channel) is killed with SIGKILL; we record when the
LSLSource reported stalled and lost, wait 1 s, start a new outlet process with the same name and
measure how long until samples flow again, and the gap the source registered.

Run: .venv/bin/python bench/bench_reconnect.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

from _common import machine

from acquisition.base import SourceState
from acquisition.lsl_source import LSLSource
from tests.helpers.processes import start_outlet, stop_process, wait_until


def once(k: int) -> tuple[float, float, float, float, int]:
    name = f"bench-reconnect-{k}-{time.time():.0f}"
    proc = start_outlet(name, channels=8, rate=250, duration=0)
    src = LSLSource(name)
    src.connect(timeout=10)
    try:
        wait_until(lambda: src.n_samples > 500, 10, what="data")
        proc.kill()
        t_kill = time.monotonic()
        proc.wait()
        wait_until(lambda: src.state == SourceState.RECONNECTING, 5, what="reconnecting")
        t_stall = next(t for t, s, _ in src.state_history if s == SourceState.STALLED) - t_kill
        t_lost = next(t for t, s, _ in src.state_history if s == SourceState.LOST) - t_kill
        time.sleep(1.0)
        n = src.n_samples
        t_start = time.monotonic()
        proc = start_outlet(name, channels=8, rate=250, duration=0, start=10**6)
        wait_until(lambda: src.n_samples > n, 20, what="data after reconnection")
        gap = src.gaps[-1]
        return t_stall, t_lost, time.monotonic() - t_start, gap.duration, gap.samples_missing
    finally:
        src.disconnect()
        stop_process(proc)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(f"# LSL device killed and restarted — {time.strftime('%Y-%m-%d %H:%M')} — {machine()}")
    for k in range(a.repeats):
        r = once(k)
        print("stalled %.3f s, lost %.3f s after the kill; data again %.2f s after the new outlet "
              "process started; gap %.3f s (%d samples)" % r, flush=True)
