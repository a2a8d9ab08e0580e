"""Online decoding benchmarks (issue 6).

1. End-to-end latency, hop 100 ms, EEGNet: prediction emitted - moment the window's last sample
   was written to the ring buffer (``Prediction.latency["total"]``), p50/p99:
   a. 64 ch x 1 kHz from an LSL outlet in another process (chunks of 10 samples), bundle
      ``eegnet64`` (64 EEGMMIDB channels, resampled causally to 80 Hz, 2 s windows);
   b. 8 ch x 250 Hz from BrainFlow's synthetic board, bundle ``eegnet8`` (250 Hz, 2 s windows).
2. Replay throughput at --speed max: seconds of EEG decoded per second of wall time, EEGMMIDB
   S001R04 (64 ch x 160 Hz), hop 100 ms, EEGNet.
3. Memory: resident set size over 60 minutes of replayed signal (a looping replay of the same
   run) through the DecoderWorker at max speed.

Bundles are trained first if missing (3 epochs on S001-S003; accuracy is irrelevant here):
    bci-app train --model eegnet --subjects 1-3 --epochs 3 --channels all --no-align \
        --out bench/out/eegnet64
    bci-app train --model eegnet --subjects 1-3 --epochs 3 --sfreq 250 --no-align \
        --channels Fz,C3,Cz,C4,Pz,PO7,Oz,PO8 --out bench/out/eegnet8

Run: .venv/bin/python bench/bench_online.py [--seconds 30] [--minutes 60]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, machine, open_main_window, pct

import numpy as np

OUT = ROOT / "bench" / "out"


def ensure_bundles() -> None:
    specs = {
        "eegnet64": ["--channels", "all"],
        "eegnet8": ["--channels", "Fz,C3,Cz,C4,Pz,PO7,Oz,PO8", "--sfreq", "250"],
    }
    for name, extra in specs.items():
        if not (OUT / name / "config.json").exists():
            subprocess.run([sys.executable, "-m", "bci_app.cli", "train", "--model", "eegnet",
                            "--subjects", "1-3", "--epochs", "3", "--no-align", *extra,
                            "--out", str(OUT / name)], cwd=ROOT, check=True)


def outlet_process(name: str, ch_names: list[str], rate: float, seconds: float, chunk: int) -> None:
    from acquisition.lsl_outlet import EEGOutlet
    from acquisition.stream_info import StreamInfo

    info = StreamInfo(name, "bench", tuple(ch_names), ("eeg",) * len(ch_names),
                      ("V",) * len(ch_names), rate)
    out = EEGOutlet(info, channel_format="float32")
    out.wait_for_consumers(30)
    rng = np.random.default_rng(0)
    period = chunk / rate
    target = time.monotonic()
    end = target + seconds
    while time.monotonic() < end:
        out.push_chunk(rng.standard_normal((chunk, len(ch_names))) * 2e-5)
        target += period
        time.sleep(max(0.0, target - time.monotonic()))
    time.sleep(0.5)


def latency(source, bundle, seconds: float) -> dict:
    from decoders.online import DecoderWorker

    lat = []
    with source:
        worker = DecoderWorker(source, bundle, hop=0.1)
        worker.add_callback(lambda p: lat.append(p.latency["total"]))
        with worker:
            time.sleep(seconds)
        st = worker.stats()
    lat = np.asarray(lat[5:])  # the first windows include start-up
    return {"n": len(lat), "p50": pct(lat, 50) * 1e3, "p99": pct(lat, 99) * 1e3,
            "max": float(lat.max()) * 1e3, "skipped": st["skipped"],
            "inference_p50": st["inference_p50"] * 1e3, "lost": source.samples_missing}


def latency_gui(source, bundle_path, seconds: float) -> dict:
    """The same measurement with the MainWindow open (offscreen) on the source, decoding, and
    the GUI's own "shown" delay (prediction emitted -> prediction panel slot ran)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app, win = open_main_window(source, (1600, 1000), 30.0)
    win.load_model(str(bundle_path))
    shown, lat = [], []
    original = win.prediction.on_prediction

    def on_prediction(pred):
        original(pred)
        shown.append(time.monotonic() - pred.emitted_at)
        lat.append(pred.latency["total"])

    win.prediction_bridge.predicted.disconnect(original)
    win.prediction_bridge.predicted.connect(on_prediction)
    win.set_decoding(True)
    end = time.monotonic() + seconds + 10
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.002)
    st = win.decoder.stats() if win.decoder is not None else {}
    win.close()
    app.processEvents()
    lat, shown = np.asarray(lat[20:]), np.asarray(shown[20:])
    return {"n": len(lat), "p50": pct(lat, 50) * 1e3, "p99": pct(lat, 99) * 1e3,
            "max": float(lat.max()) * 1e3, "shown_p50": pct(shown, 50) * 1e3,
            "shown_p99": pct(shown, 99) * 1e3, "skipped": st.get("skipped"),
            "lost": source.samples_missing}


def bench_latency_gui(seconds: float) -> None:
    from acquisition.brainflow_source import BrainFlowSource
    from acquisition.lsl_source import LSLSource

    print(f"\n## End-to-end latency with the GUI open (offscreen, scope at 60 Hz), hop 100 ms, "
          f"{seconds:g} s")
    print("| source | bundle | predictions | p50 | p99 | max | emitted -> shown p50 / p99 | "
          "skipped | samples lost |")
    print("|---|---|---|---|---|---|---|---|---|")
    name = f"bench-online-gui-{int(time.time())}"
    proc = subprocess.Popen([sys.executable, __file__, "--outlet", name, "--seconds",
                             str(seconds + 40)], cwd=ROOT)
    try:
        r = latency_gui(LSLSource(name, buffer_seconds=30), OUT / "eegnet64", seconds)
    finally:
        proc.kill()
        proc.wait()
    print(f"| LSL outlet process, 64 ch x 1 kHz | EEGNet 64 ch | {r['n']} | {r['p50']:.2f} ms | "
          f"{r['p99']:.2f} ms | {r['max']:.2f} ms | {r['shown_p50']:.2f} / {r['shown_p99']:.2f} ms"
          f" | {r['skipped']} | {r['lost']} |", flush=True)


def bench_latency(seconds: float) -> None:
    from acquisition.brainflow_source import BrainFlowSource
    from acquisition.lsl_source import LSLSource
    from decoders.bundle import load_bundle

    print(f"\n## End-to-end latency, hop 100 ms, GUI closed ({seconds:g} s each)")
    print("| source | bundle | predictions | p50 | p99 | max | inference p50 | skipped | samples lost |")
    print("|---|---|---|---|---|---|---|---|---|")
    b64 = load_bundle(OUT / "eegnet64")
    name = f"bench-online-{int(time.time())}"
    proc = subprocess.Popen([sys.executable, __file__, "--outlet", name, "--seconds",
                             str(seconds + 15)], cwd=ROOT)
    try:
        r = latency(LSLSource(name, buffer_seconds=30), b64, seconds)
    finally:
        proc.kill()
        proc.wait()
    print(f"| LSL outlet process, 64 ch x 1 kHz (chunks of 10) | EEGNet 64 ch, 1 kHz -> 80 Hz | "
          f"{r['n']} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['max']:.2f} ms | "
          f"{r['inference_p50']:.2f} ms | {r['skipped']} | {r['lost']} |", flush=True)
    b8 = load_bundle(OUT / "eegnet8")
    r = latency(BrainFlowSource("synthetic"), b8, seconds)
    print(f"| BrainFlow synthetic, 8 of 16 ch x 250 Hz | EEGNet 8 ch, 250 Hz | {r['n']} | "
          f"{r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['max']:.2f} ms | "
          f"{r['inference_p50']:.2f} ms | {r['skipped']} | {r['lost']} |", flush=True)


def _edf(subject: int, run: int) -> str:
    import mne

    from bci_app.config import eegmmidb_dir

    return mne.datasets.eegbci.load_data(subject, [run], path=str(eegmmidb_dir()),
                                         update_path=False)[0]


def bench_throughput() -> None:
    import torch

    from acquisition.files import read_file
    from acquisition.replay import ReplaySource
    from decoders.bundle import load_bundle
    from decoders.online import DecoderWorker

    torch.set_num_threads(1)
    bundle = load_bundle(OUT / "eegnet64")
    rec = read_file(_edf(1, 4))
    print("\n## Replay throughput at --speed max (EEGNet, hop 100 ms, one torch thread)")
    print("| recording | signal | wall (decode loop) | x real time | predictions |")
    print("|---|---|---|---|---|")
    best = None
    for _ in range(3):
        src = ReplaySource(rec, speed="max", chunk_samples=512)
        src.connect(timeout=5, acquisition=False)
        worker = DecoderWorker(src, bundle, hop=0.1)
        n = 0
        t0 = time.perf_counter()
        while not src.finished:
            src.acquire()
            n += len(worker.step(catch_up=True))
        wall = time.perf_counter() - t0
        src.disconnect()
        best = wall if best is None else min(best, wall)
    sig = rec.n_samples / rec.info.sfreq
    print(f"| EEGMMIDB S001R04, 64 ch x 160 Hz | {sig:.1f} s | {best:.2f} s | {sig / best:.0f}x | "
          f"{n} |", flush=True)


def bench_memory(minutes: float) -> None:
    import psutil
    import torch

    from acquisition.files import read_file
    from acquisition.replay import ReplaySource
    from decoders.bundle import load_bundle
    from decoders.online import DecoderWorker

    torch.set_num_threads(1)
    proc = psutil.Process()
    bundle = load_bundle(OUT / "eegnet64")
    rec = read_file(_edf(1, 4))
    src = ReplaySource(rec, speed="max", chunk_samples=512, loop=True, buffer_seconds=30)
    src.connect(timeout=5, acquisition=False)
    worker = DecoderWorker(src, bundle, hop=0.1)
    target = minutes * 60 * rec.info.sfreq
    rss, marks = [], []
    next_mark = 0.0
    t0 = time.perf_counter()
    while src.n_samples < target:
        src.acquire()
        worker.step(catch_up=True)
        if src.n_samples >= next_mark:
            rss.append(proc.memory_info().rss / 2**20)
            marks.append(src.n_samples / rec.info.sfreq / 60)
            next_mark += 60 * rec.info.sfreq
    rss.append(proc.memory_info().rss / 2**20)
    wall = time.perf_counter() - t0
    src.disconnect()
    print(f"\n## Memory over {minutes:g} min of replayed signal (looping S001R04, EEGNet, max speed)")
    print(f"RSS start {rss[0]:.1f} MiB, after 5 min {rss[min(5, len(rss) - 1)]:.1f} MiB, "
          f"end {rss[-1]:.1f} MiB, max {max(rss):.1f} MiB; growth after the first 5 min "
          f"{rss[-1] - rss[min(5, len(rss) - 1)]:+.1f} MiB; {worker.n_predictions} predictions "
          f"in {wall:.0f} s wall")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--outlet", default=None)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--only", choices=["latency", "gui", "throughput", "memory"], default=None)
    a = ap.parse_args()
    if a.outlet:
        import mne

        from decoders.bundle import load_bundle

        names = load_bundle(OUT / "eegnet64").channels
        outlet_process(a.outlet, names, 1000.0, a.seconds, 10)
        sys.exit(0)
    print(f"# Online decoding benchmark — {time.strftime('%Y-%m-%d %H:%M')} — {machine()}")
    ensure_bundles()
    if a.only in (None, "latency"):
        bench_latency(a.seconds)
    if a.only in (None, "gui"):
        bench_latency_gui(a.seconds)
    if a.only in (None, "throughput"):
        bench_throughput()
    if a.only in (None, "memory"):
        bench_memory(a.minutes)
