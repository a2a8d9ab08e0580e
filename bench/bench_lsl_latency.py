"""LSL end-to-end latency: outlet push (another process) -> sample readable in our RingBuffer.

The outlet process writes its ``local_clock()`` at push time into channel 0 (double precision);
``local_clock`` is a steady clock shared by processes on one machine. A thin LSLSource subclass
records ``local_clock()`` right after each chunk is written to the ring buffer (the moment a reader
can see it). Latency = write time - push time, per chunk, for every chunk received.

Run: .venv/bin/python bench/bench_lsl_latency.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _common import ROOT, machine, pct

import numpy as np


def outlet(name: str, n_ch: int, rate: float, seconds: float, chunk: int) -> None:
    from acquisition.lsl_env import import_pylsl

    pylsl = import_pylsl()
    info = pylsl.StreamInfo(name, "EEG", n_ch, rate, pylsl.cf_double64, name)
    out = pylsl.StreamOutlet(info, chunk)
    out.wait_for_consumers(20)
    period = chunk / rate
    target = time.monotonic()
    data = np.zeros((chunk, n_ch))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now = pylsl.local_clock()
        data[:, 0] = now
        out.push_chunk(data, now)
        target += period
        time.sleep(max(0.0, target - time.monotonic()))
    time.sleep(0.5)


def measure(n_ch: int, rate: float, seconds: float, chunk: int, poll: float) -> dict:
    from acquisition.lsl_env import import_pylsl
    from acquisition.lsl_source import LSLSource

    pylsl = import_pylsl()

    class TimedLSLSource(LSLSource):
        def acquire(self) -> int:
            n = super().acquire()
            if n:
                t = pylsl.local_clock()
                pushed = self.buffer.latest(n).data[:, 0]
                self.lat.extend((t - pushed[np.r_[np.nonzero(np.diff(pushed))[0], n - 1]]).tolist())
            return n

    name = f"bench-lat-{n_ch}-{int(rate)}-{int(time.time() * 1000) % 100000}"
    proc = subprocess.Popen([sys.executable, __file__, "--outlet", name, "--channels", str(n_ch),
                             "--rate", str(rate), "--seconds", str(seconds), "--chunk", str(chunk)],
                            cwd=ROOT)
    src = TimedLSLSource(name, units="V", poll_interval=poll)
    src.lat = []
    src.connect(timeout=20)
    proc.wait(seconds + 30)
    src.disconnect()
    lat = np.asarray(src.lat[int(len(src.lat) * 0.05):])  # drop the connection warm-up
    return {"n": len(lat), "p50": pct(lat, 50) * 1e3, "p99": pct(lat, 99) * 1e3,
            "max": float(lat.max()) * 1e3, "samples": src.n_samples}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--outlet", default=None)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--rate", type=float, default=250)
    ap.add_argument("--chunk", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--poll", type=float, default=None, help="acquisition poll interval (s)")
    a = ap.parse_args()
    if a.outlet:
        outlet(a.outlet, a.channels, a.rate, a.seconds, a.chunk)
        sys.exit(0)
    from acquisition.lsl_source import LSLSource

    poll = a.poll if a.poll is not None else LSLSource(name="x").poll_interval
    print(f"# LSL latency push -> RingBuffer — {time.strftime('%Y-%m-%d %H:%M')} — {machine()}")
    print(f"acquisition poll interval {poll * 1e3:g} ms, {a.seconds:g} s per configuration")
    print("| stream | outlet chunk | chunks measured | p50 | p99 | max |")
    print("|---|---|---|---|---|---|")
    for n_ch, rate, chunk in ((8, 250, 1), (64, 1000, 1), (64, 1000, 10)):
        r = measure(n_ch, rate, a.seconds, chunk, poll)
        print(f"| {n_ch} ch x {rate:g} Hz | {chunk} | {r['n']} | {r['p50']:.2f} ms | "
              f"{r['p99']:.2f} ms | {r['max']:.2f} ms |", flush=True)
