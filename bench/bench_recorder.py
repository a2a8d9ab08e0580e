"""Recorder overhead: CPU time per second of 64 ch x 1 kHz recorded, bytes per second written.

Part 1 (real time): a feeder thread writes 64 ch x 1 kHz float64 into a RingBuffer in chunks of
10 samples every 10 ms (scheduled on a monotonic clock, like a device) plus one marker per second;
a :class:`Recorder` with its defaults (read every 0.25 s, fsync every 0.5 s) records it to XDF.
We report the recorder thread's CPU time (``time.thread_time`` around each step: encoding, write,
fsync) per second of signal, the wall time of each step, and the bytes written per second.

Part 2 (throughput): 60 s of the same signal already in the buffer, recorded in one step
(encode + write + fsync) — how much faster than real time the writer can go.

Run: .venv/bin/python bench/bench_recorder.py [--seconds 30] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import machine, pct

from acquisition.markers import MarkerLog
from acquisition.recorder import Recorder
from acquisition.ring_buffer import RingBuffer
from acquisition.stream_info import StreamInfo

N_CH, SFREQ, CHUNK = 64, 1000, 10


def _info() -> StreamInfo:
    names = [f"EEG{i:03d}" for i in range(N_CH)]
    return StreamInfo("bench", "bench", names, ["eeg"] * N_CH, ["V"] * N_CH, float(SFREQ))


def realtime(seconds: float, folder: Path) -> dict:
    info = _info()
    buf = RingBuffer(30 * SFREQ, N_CH)
    log = MarkerLog()
    rng = np.random.default_rng(0)
    block = rng.standard_normal((SFREQ, N_CH)) * 1e-5
    stop = threading.Event()

    def feed() -> None:
        t0 = time.monotonic()
        target, i = t0, 0
        while not stop.is_set():
            j = i % SFREQ
            ts = 1000.0 + (i + np.arange(CHUNK)) / SFREQ
            buf.write(block[j : j + CHUNK], ts)
            if i % SFREQ == 0:
                log.add(ts[0], "tick")
            i += CHUNK
            target += CHUNK / SFREQ
            stop.wait(max(0.0, target - time.monotonic()))

    path = folder / "bench_rt.xdf"
    rec = Recorder(path, overwrite=True)
    rec.add_buffer(info, buf, marker_log=log)
    walls: list[float] = []
    step = rec.step

    def timed_step() -> int:
        t = time.perf_counter()
        n = step()
        walls.append(time.perf_counter() - t)
        return n

    rec.step = timed_step  # type: ignore[method-assign]
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    time.sleep(0.05)
    rec.start()
    t_start = time.monotonic()
    time.sleep(seconds)
    stop.set()
    feeder.join()
    rec.stop()
    elapsed = time.monotonic() - t_start
    st = rec.stats()
    recorded = st["signals"]["bench"]["samples"] / SFREQ
    size = path.stat().st_size
    path.unlink()
    return {
        "seconds": recorded,
        "cpu_per_s": rec.cpu_time / recorded,
        "bytes_per_s": size / recorded,
        "payload_per_s": N_CH * 8 * SFREQ,
        "step_p50_ms": pct(walls, 50) * 1e3,
        "step_p99_ms": pct(walls, 99) * 1e3,
        "step_max_ms": max(walls) * 1e3,
        "steps": len(walls),
        "elapsed": elapsed,
        "lost": st["signals"]["bench"]["lost"],
    }


def throughput(folder: Path, seconds: int = 60) -> dict:
    info = _info()
    buf = RingBuffer(seconds * SFREQ, N_CH)
    data = np.random.default_rng(1).standard_normal((seconds * SFREQ, N_CH)) * 1e-5
    buf.write(data, 1000.0 + np.arange(seconds * SFREQ) / SFREQ)
    path = folder / "bench_tp.xdf"
    rec = Recorder(path, overwrite=True, history=True)
    rec.add_buffer(info, buf)
    t = time.perf_counter()
    c = time.process_time()
    rec.start()  # the first step runs synchronously: reads, encodes, writes, fsyncs 60 s
    wall = time.perf_counter() - t
    cpu = time.process_time() - c
    rec.stop()
    path.unlink()
    return {"seconds": seconds, "wall": wall, "cpu": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--dir", default=None, help="folder for the XDF files (default: a temp dir)")
    a = ap.parse_args()
    folder = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="bench_rec_"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"folder: {folder} ({os.statvfs(folder).f_bsize} B blocks)")
    r = realtime(a.seconds, folder)
    print(
        f"## real time: 64 ch x 1 kHz float64 for {r['seconds']:.1f} s, defaults "
        "(read every 0.25 s, fsync every 0.5 s)"
    )
    print(
        "| recorder CPU per s recorded | CPU share | bytes/s written | payload bytes/s | "
        "overhead | step wall p50 / p99 / max | samples lost |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {r['cpu_per_s'] * 1e3:.2f} ms | {r['cpu_per_s'] * 100:.2f} % of one core | "
        f"{r['bytes_per_s'] / 1e3:.1f} kB/s | {r['payload_per_s'] / 1e3:.1f} kB/s | "
        f"{(r['bytes_per_s'] / r['payload_per_s'] - 1) * 100:.1f} % | "
        f"{r['step_p50_ms']:.2f} / {r['step_p99_ms']:.2f} / {r['step_max_ms']:.2f} ms "
        f"({r['steps']} steps) | {r['lost']} |"
    )
    t = throughput(folder)
    print(f"## throughput: {t['seconds']} s of 64 ch x 1 kHz recorded in one step")
    print(
        f"wall {t['wall']:.3f} s, CPU {t['cpu']:.3f} s -> {t['seconds'] / t['wall']:.0f}x real time"
    )


if __name__ == "__main__":
    main()
