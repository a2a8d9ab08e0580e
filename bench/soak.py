"""Soak test (issue 11): hours of signal replayed at high speed through the live pipeline.

A looping ReplaySource (EEGMMIDB S001R04, 64 ch x 160 Hz) runs on its own acquisition thread at
``--speed`` x real time; a DecoderWorker thread (EEGNet bundle, hop 100 ms, real-time mode) and a
Recorder thread (XDF) consume it, optionally with the GUI's MainWindow open offscreen
(``--gui``). Every few seconds of wall time the process's resident memory, thread count and
open file descriptors are sampled. At the end the XDF is read back and compared with what the
source delivered, sample for sample.

Run: .venv/bin/python bench/soak.py --hours 2 --speed 60 [--gui]
"""

from __future__ import annotations

import argparse
import os
import time

from _common import ROOT, machine, open_main_window

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--speed", type=float, default=60.0)
    ap.add_argument("--gui", action="store_true", help="also run the MainWindow offscreen")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "soak.xdf"))
    a = ap.parse_args()

    import mne
    import psutil
    import pyxdf

    from acquisition.files import read_file
    from acquisition.recorder import Recorder
    from acquisition.replay import ReplaySource
    from bci_app.config import eegmmidb_dir
    from decoders.bundle import load_bundle
    from decoders.online import DecoderWorker

    bundle_path = ROOT / "bench" / "out" / "eegnet64"
    if not (bundle_path / "config.json").exists():
        import subprocess
        import sys

        subprocess.run([sys.executable, "-m", "bci_app.cli", "train", "--model", "eegnet",
                        "--subjects", "1-3", "--epochs", "3", "--no-align", "--channels", "all",
                        "--out", str(bundle_path)], cwd=ROOT, check=True)
    rec_file = read_file(mne.datasets.eegbci.load_data(1, [4], path=str(eegmmidb_dir()),
                                                       update_path=False)[0])
    out = ROOT / a.out if not os.path.isabs(a.out) else a.out
    if os.path.exists(out):
        os.remove(out)
    proc = psutil.Process()
    target = int(a.hours * 3600 * rec_file.info.sfreq)

    # the buffer holds 20 s of wall time at this speed, so a consumer may stall briefly
    src = ReplaySource(rec_file, speed=a.speed, loop=True, buffer_seconds=20 * a.speed)
    app = window = None
    if a.gui:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app, window = open_main_window(src, (1400, 900), 20.0, pyqtgraph_config=False)
        # the window's replay panel sets a replay's speed; it keeps a source's own (the soak
        # once ran at the panel's 1x without noticing)
        if abs(src.speed - a.speed) > 1e-9:
            raise SystemExit(f"the GUI replays at {src.speed}x, not the {a.speed}x asked for")
    else:
        src.connect(timeout=10)
    src.pause()  # model warm-up and recorder start happen before the clock runs
    worker = DecoderWorker(src, load_bundle(bundle_path), hop=0.1)
    recorder = Recorder(out, session_meta={"subject": "soak"}, history=True)
    recorder.add_source(src)
    recorder.start()
    worker.start()
    src.resume()
    samples = []  # (wall s, signal min, rss MiB, threads, fds)
    t0 = time.monotonic()
    next_sample = t0
    while src.n_samples < target:
        if app is not None:
            app.processEvents()
            time.sleep(0.005)
        else:
            time.sleep(0.05)
        if time.monotonic() >= next_sample:
            next_sample += 5.0
            samples.append((time.monotonic() - t0, src.n_samples / rec_file.info.sfreq / 60,
                            proc.memory_info().rss / 2**20, proc.num_threads(), proc.num_fds()))
    src.pause()
    delivered = src.n_samples
    time.sleep(0.5)
    worker.stop()
    recorder.stop()
    st = worker.stats()
    if window is not None:
        window.close()
        app.processEvents()
    src.disconnect()
    wall = time.monotonic() - t0
    samples.append((wall, delivered / rec_file.info.sfreq / 60, proc.memory_info().rss / 2**20,
                    proc.num_threads(), proc.num_fds()))

    streams, _ = pyxdf.load_xdf(str(out), dejitter_timestamps=False)
    eeg = next(s for s in streams if s["info"]["type"][0] == "EEG")
    data = np.asarray(eeg["time_series"])
    n_rec = data.shape[0]
    reps = int(np.ceil(n_rec / rec_file.n_samples))
    expected = np.tile(rec_file.data, (reps, 1))[:n_rec]
    identical = bool(np.array_equal(data, expected))
    steps = np.diff(np.asarray(eeg["time_stamps"]))
    regular = bool(np.allclose(steps, 1 / rec_file.info.sfreq, atol=1e-6))

    rss = [s[2] for s in samples]
    warm = next((i for i, s in enumerate(samples) if s[0] >= 30), 0)
    print(f"# Soak — {time.strftime('%Y-%m-%d %H:%M')} — {machine()}")
    print(f"{a.hours:g} h of 64 ch x 160 Hz at {a.speed:g}x ({'GUI offscreen' if a.gui else 'no GUI'}),"
          f" wall {wall:.0f} s")
    print(f"RSS start {rss[0]:.1f} MiB, after 30 s {rss[warm]:.1f} MiB, end {rss[-1]:.1f} MiB, "
          f"max {max(rss):.1f} MiB")
    print(f"threads start/end/max {samples[0][3]}/{samples[-1][3]}/{max(s[3] for s in samples)}; "
          f"open fds start/end/max {samples[0][4]}/{samples[-1][4]}/{max(s[4] for s in samples)}")
    print(f"decoder: {st['predictions']} predictions, {st['skipped']} skipped windows, "
          f"{st['errors']} errors, latency p50 {st['latency_p50'] * 1e3:.1f} ms p99 "
          f"{st['latency_p99'] * 1e3:.1f} ms")
    print(f"source delivered {delivered} samples; recording holds {n_rec} "
          f"(lost {delivered - n_rec}); bit-identical to the source: {identical}; "
          f"timestamps regular: {regular}; recorder state {recorder.state.value}")


if __name__ == "__main__":
    main()
