"""A stand-in EEG device for tests: an LSL outlet in its own process.

Channel 0 carries a sample counter (0, 1, 2, ... continuing across restarts when ``--start`` is
given), the other channels a sine per channel, so tests can check that every sample arrives once
and in order. Pushes chunks on a monotonic schedule (target += period) until ``--duration`` is
over or the process is killed.

Usage::

    python -m tests.helpers.lsl_outlet --name NAME --channels 64 --rate 1000 --duration 10
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from acquisition.lsl_env import MACHINE_CFG  # noqa: E402

os.environ.setdefault("LSLAPICFG", str(MACHINE_CFG))

import numpy as np  # noqa: E402
import pylsl  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--type", default="EEG")
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--rate", type=float, default=250.0)
    p.add_argument("--duration", type=float, default=10.0, help="seconds; <= 0 runs until killed")
    p.add_argument("--chunk", type=int, default=0, help="samples per push (default rate/100)")
    p.add_argument("--start", type=int, default=0, help="first counter value")
    p.add_argument("--source-id", default="")
    p.add_argument("--wait-consumer", type=float, default=10.0,
                   help="seconds to wait for an inlet before streaming (0: don't wait)")
    a = p.parse_args(argv)

    info = pylsl.StreamInfo(a.name, a.type, a.channels, a.rate, pylsl.cf_float32,
                            a.source_id or f"{a.name}-sid")
    chans = info.desc().append_child("channels")
    for i in range(a.channels):
        ch = chans.append_child("channel")
        ch.append_child_value("label", "counter" if i == 0 else f"EEG{i:03d}")
        ch.append_child_value("unit", "microvolts")
        ch.append_child_value("type", "MISC" if i == 0 else "EEG")
    outlet = pylsl.StreamOutlet(info, max(1, a.chunk or int(a.rate // 100)), 360)
    if a.wait_consumer > 0:
        outlet.wait_for_consumers(a.wait_consumer)
    print("READY", flush=True)

    chunk = max(1, a.chunk or int(a.rate // 100))
    period = chunk / a.rate
    counter = a.start
    phases = np.arange(a.channels - 1)[None, :] * 0.1
    t_start = time.monotonic()
    target = t_start
    while a.duration <= 0 or counter - a.start < int(a.duration * a.rate):
        n = chunk if a.duration <= 0 else min(chunk, int(a.duration * a.rate) - (counter - a.start))
        idx = np.arange(counter, counter + n)
        data = np.empty((n, a.channels), dtype=np.float32)
        data[:, 0] = idx
        if a.channels > 1:
            data[:, 1:] = 10.0 * np.sin(2 * np.pi * 10 * idx[:, None] / a.rate + phases)
        stamp = pylsl.local_clock()
        outlet.push_chunk(data, stamp)
        counter += n
        target += period
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print("DONE", counter, flush=True)
    time.sleep(0.5)  # let the last chunk leave before the outlet closes
    return 0


if __name__ == "__main__":
    sys.exit(main())
