"""Inference latency per window (batch 1, one thread) in PyTorch and ONNX Runtime.

    nice -n 10 .venv/bin/python bench/bench_inference_latency.py --repeats 300

Configurations: 64 ch x 2 s at 160 Hz (EEGMMIDB) and 8 ch x 2 s at 250 Hz (OpenBCI Cyton).
Models are untrained (latency does not depend on the weights); the sklearn baselines are timed
through ``predict_proba`` (numpy/pyriemann). Prints p50 / p99 in milliseconds, for PyTorch eager,
ONNX Runtime and, where the model has one (EEGNet, ShallowConvNet, EEG Conformer), the exact
fused rewrite of ``decoders/fused.py`` in PyTorch and exported to ONNX Runtime: the engines the
online worker picks from.

    .venv/bin/python bench/bench_inference_latency.py --bundle decoders/pretrained/mi_left_right_eegnet_ea

times a saved bundle instead, with every engine the online ``DecoderWorker`` can pick for it
(PyTorch eager, the fused EEGNet rewrite, ONNX Runtime), on one window of its own shape.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _time(fn, repeats: int, warmup: int = 20):
    import numpy as np

    for _ in range(warmup):
        fn()
    ts, cs = np.empty(repeats), np.empty(repeats)
    for i in range(repeats):
        c = time.thread_time()
        t = time.perf_counter()
        fn()
        ts[i] = time.perf_counter() - t
        cs[i] = time.thread_time() - c
    # wall-clock p50/p99, and the p50 of this thread's CPU time (robust to a busy machine)
    return 1e3 * np.percentile(ts, 50), 1e3 * np.percentile(ts, 99), 1e3 * np.percentile(cs, 50)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=300)
    p.add_argument("--models", default=None, help="comma list (default: all registered)")
    p.add_argument("--bundle", default=None, help="time this saved bundle's online engines")
    args = p.parse_args(argv)
    if args.bundle:
        return _bundle(args.bundle, args.repeats)

    import numpy as np
    import torch

    from decoders.estimators import DeepDecoder, make_decoder
    from decoders.export import export_onnx, onnx_exportable, onnx_session
    from decoders.fused import fuse_for_inference
    from decoders.registry import list_models

    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)  # numpy/scipy BLAS too (the sklearn baselines), not only torch
    models = args.models.split(",") if args.models else list_models()
    rng = np.random.default_rng(0)
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    print(f"{'model':16s} {'config':18s} {'torch p50':>10s} {'p99':>8s} {'cpu p50':>8s} "
          f"{'onnx p50':>10s} {'p99':>8s} {'cpu p50':>8s} "
          f"{'fused p50':>10s} {'p99':>8s} {'cpu p50':>8s} "
          f"{'f-onnx p50':>10s} {'p99':>8s} {'cpu p50':>8s}  (ms, batch 1, 1 thread)")
    na = f"{'n/a':>10s} {'n/a':>8s} {'n/a':>8s}"
    for n_chans, sfreq in ((64, 160.0), (8, 250.0)):
        n_t = int(2 * sfreq)
        Xfit = (rng.standard_normal((40, n_chans, n_t)) * 1e-5).astype(np.float32)
        yfit = np.arange(40) % 2
        x1 = Xfit[:1]
        for name in models:
            cfg = f"{n_chans}ch x 2s@{sfreq:.0f}Hz"
            dec = make_decoder(name, n_chans, 2, sfreq, 2.0)
            if isinstance(dec, DeepDecoder):
                dec.scale_, dec.fitted_ = 1e5, True
                dec.net_.eval()
                net, xt = dec.net_, torch.from_numpy(x1 * 1e5)

                def run_torch():
                    with torch.inference_mode():
                        torch.softmax(net(xt), dim=1)

                tp = _time(run_torch, args.repeats)
                ocol = na
                if onnx_exportable(net):  # not TSMNet (eigen-decompositions)
                    with tempfile.TemporaryDirectory() as d:
                        export_onnx(dec, Path(d) / "m.onnx")
                        sess = onnx_session(Path(d) / "m.onnx", n_threads=1)
                        op = _time(lambda: sess.run(["proba"], {"input": x1}), args.repeats)
                    ocol = f"{op[0]:10.3f} {op[1]:8.3f} {op[2]:8.3f}"
                fused = fuse_for_inference(net, n_chans, n_t)
                fcol = f"{na} {na}"
                if fused is not None:
                    def run_fused():
                        with torch.inference_mode():
                            torch.softmax(fused(xt), dim=1)

                    fp = _time(run_fused, args.repeats)
                    with tempfile.TemporaryDirectory() as d:
                        target = SimpleNamespace(net_=fused, scale_=dec.scale_, n_chans=n_chans,
                                                 n_times=n_t)
                        fsess = onnx_session(export_onnx(target, Path(d) / "f.onnx"), n_threads=1)
                    fo = _time(lambda: fsess.run(["proba"], {"input": x1}), args.repeats)
                    fcol = (f"{fp[0]:10.3f} {fp[1]:8.3f} {fp[2]:8.3f} "
                            f"{fo[0]:10.3f} {fo[1]:8.3f} {fo[2]:8.3f}")
                print(f"{name:16s} {cfg:18s} {tp[0]:10.3f} {tp[1]:8.3f} {tp[2]:8.3f} "
                      f"{ocol} {fcol}", flush=True)
            else:
                dec.fit(Xfit, yfit)
                tp = _time(lambda: dec.predict_proba(x1), args.repeats)
                print(f"{name:16s} {cfg:18s} {tp[0]:10.3f} {tp[1]:8.3f} {tp[2]:8.3f} "
                      f"{na} {na} {na}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


def _bundle(path: str, repeats: int) -> int:
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from decoders.bundle import load_bundle
    from decoders.online import _fast_engines

    torch.set_num_threads(1)
    threadpool_limits(1)
    b = load_bundle(path)
    dec = b.decoder
    x1 = (np.random.default_rng(0).standard_normal((1, len(b.channels), b.n_times)) * 1e-5
          ).astype(np.float32)
    engines = {"torch": dec.predict_proba}
    engines.update(_fast_engines(dec, "auto") if hasattr(dec, "net_") else {})
    n = getattr(dec, "n_ensemble", 1)
    print(f"{path}: {b.config.get('model')} x {n}, {len(b.channels)} ch x {b.n_times} samples "
          "(batch 1, 1 thread; ms)")
    for name, fn in engines.items():
        p50, p99, c50 = _time(lambda fn=fn: fn(x1), repeats)
        print(f"  {name:14s} p50 {p50:7.3f}  p99 {p99:7.3f}  cpu p50 {c50:7.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
