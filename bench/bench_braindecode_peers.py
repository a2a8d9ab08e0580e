"""Inference latency of our models beside braindecode's implementation of the same architecture.

Batch 1, one thread, untrained weights (latency does not depend on them), the two configurations
of ``bench_inference_latency.py``: 64 ch x 2 s at 160 Hz and 8 ch x 2 s at 250 Hz. Each
braindecode peer is built with our model's hyper-parameters wherever its API takes them (kernel,
pooling and filter sizes in samples at that rate, depth, heads), and both parameter counts are
printed so the match can be checked. Engines: PyTorch eager and ONNX Runtime for both, and our
online worker's ONNX engine (the exact fused rewrite of ``decoders/fused.py``, exported)
for the models that have one.

braindecode is an optional peer (``pip install -e ".[bench]"`` on a machine where torchaudio has
a wheel matching the installed torch). On this project's CPU-only machines torchaudio's PyPI
wheels are CUDA builds whose compiled extension cannot load beside CPU torch; none of the four
models timed here uses that extension, so a throwaway install outside the venv works:

    .venv/bin/pip install --no-deps --target /tmp/bd braindecode torchaudio skorch torchinfo \\
        pandas wfdb linear_attention_transformer docstring_inheritance axial-positional-embedding \\
        linformer local-attention product-key-memory einops tabulate hyper-connections \\
        colt5-attention
    rm /tmp/bd/torchaudio/lib/*.so      # pure-Python torchaudio: no CUDA extension to load
    PYTHONPATH=/tmp/bd .venv/bin/python bench/bench_braindecode_peers.py --repeats 300
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def peer(name: str, ours, n_chans: int, sfreq: float, n_times: int):
    """braindecode's module for our model ``name``, with the kernel, pooling and filter sizes
    read off our built net ``ours`` (so the two cannot drift apart)."""
    import braindecode.models as bd

    common = dict(n_chans=n_chans, n_outputs=2, n_times=n_times, sfreq=sfreq)
    if name == "eegnet":
        return bd.EEGNet(**common, F1=ours.block1[0].out_channels, D=2,
                         kernel_length=ours.block1[0].kernel_size[1],
                         depthwise_kernel_length=ours.block2[0].kernel_size[1],
                         pool1_kernel_size=ours.block1[5].kernel_size[1],
                         pool2_kernel_size=ours.block2[4].kernel_size[1])
    if name == "shallowconvnet":
        return bd.ShallowFBCSPNet(**common, n_filters_time=ours.temporal.out_channels,
                                  filter_time_length=ours.temporal.kernel_size[1],
                                  n_filters_spat=ours.spatial.out_channels,
                                  pool_time_length=ours.pool.kernel_size[1],
                                  pool_time_stride=ours.pool.stride[1], final_conv_length="auto")
    if name == "eeg_simpleconv":
        stem = ours.stem[0]
        return bd.EEGSimpleConv(n_chans=n_chans, n_outputs=2, sfreq=sfreq,
                                feature_maps=stem.out_channels, n_convs=len(ours.blocks),
                                resampling_freq=sfreq, kernel_size=stem.kernel_size[0])
    if name == "eeg_conformer":
        conv_t, pool = ours.patch[0], ours.patch[4]
        return bd.EEGConformer(**common, n_filters_time=conv_t.out_channels,
                               filter_time_length=conv_t.kernel_size[1],
                               pool_time_length=pool.kernel_size[1],
                               pool_time_stride=pool.stride[1], num_layers=len(ours.encoder),
                               num_heads=ours.hparams["heads"])
    if name == "fbcnet":  # the same bands, filters per band and segments; FIR filter bank
        return bd.FBCNet(**common, n_bands=[tuple(b) for b in ours.hparams["bands"]],
                         n_filters_spat=ours.n_filters, stride_factor=ours.n_segments,
                         filter_parameters=dict(method="fir"))
    raise KeyError(name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--models",
                    default="eegnet,shallowconvnet,eeg_simpleconv,eeg_conformer,fbcnet")
    args = ap.parse_args(argv)
    try:
        import braindecode
    except ImportError as err:
        sys.exit(f"braindecode is not importable ({err}); see this script's docstring for how "
                 "to install it for this comparison.")
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from bench_inference_latency import _time
    from decoders.export import export_onnx, onnx_session
    from decoders.fused import fuse_for_inference
    from decoders.registry import build_model

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    threadpool_limits(1)
    rng = np.random.default_rng(0)
    print(f"braindecode {braindecode.__version__}, torch {torch.__version__}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    print(f"{'model':15s} {'config':16s} {'impl':12s} {'params':>8s} {'torch p50':>9s} {'p99':>7s} "
          f"{'onnx p50':>9s} {'p99':>7s}  (ms, batch 1, 1 thread)")

    def quiet(fn):
        """Run fn with file descriptors 1 and 2 silenced (the exporters print whole graphs)."""
        saved = os.dup(1), os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        sys.stdout.flush()
        os.dup2(null, 1), os.dup2(null, 2)
        try:
            return fn()
        finally:
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(null), os.close(saved[0]), os.close(saved[1])

    def session(net, n_chans, n_t, x1, d):
        """Our exporter (TorchScript-based, what bundles use); the dynamo exporter if its graph
        does not export or does not load in ONNX Runtime."""
        target = SimpleNamespace(net_=net, scale_=1.0, n_chans=n_chans, n_times=n_t)
        try:
            path = quiet(lambda: export_onnx(target, Path(d) / "a.onnx"))
            sess = onnx_session(path, n_threads=1)
            sess.run(["proba"], {"input": x1})
            return sess, ""
        except Exception:
            path = Path(d) / "b.onnx"
            quiet(lambda: torch.onnx.export(
                torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval(),
                (torch.zeros(1, n_chans, n_t),), str(path), input_names=["input"],
                output_names=["proba"], dynamo=True, opset_version=18))
            return onnx_session(path, n_threads=1), " (dynamo export)"

    def onnx_time(net, n_chans, n_t, x1):
        try:
            with tempfile.TemporaryDirectory() as d:
                sess, how = session(net, n_chans, n_t, x1, d)
        except Exception as err:  # an export the peer does not support
            return f"{'fails':>9s} {'':>7s}  ({type(err).__name__})"
        with torch.inference_mode():
            ref = torch.softmax(net(torch.from_numpy(x1)), dim=1).numpy()
        diff = float(np.abs(sess.run(["proba"], {"input": x1})[0] - ref).max())
        o = _time(lambda: sess.run(["proba"], {"input": x1}), args.repeats)
        return f"{o[0]:9.3f} {o[1]:7.3f}  |onnx-torch| {diff:.0e}{how}"

    for n_chans, sfreq in ((64, 160.0), (8, 250.0)):
        n_t = int(2 * sfreq)
        x1 = rng.standard_normal((1, n_chans, n_t)).astype(np.float32)
        xt = torch.from_numpy(x1)
        cfg = f"{n_chans}ch 2s@{sfreq:.0f}Hz"
        for name in args.models.split(","):
            ours = build_model(name, n_chans, 2, sfreq, 2.0).eval()
            nets = {"bci_app": ours, "braindecode": peer(name, ours, n_chans, sfreq, n_t).eval()}
            fused = fuse_for_inference(nets["bci_app"], n_chans, n_t)
            for impl, net in nets.items():
                with torch.inference_mode():
                    assert net(xt).shape == (1, 2), (impl, name)

                def run(net=net):
                    with torch.inference_mode():
                        net(xt)

                t = _time(run, args.repeats)
                n_par = sum(p.numel() for p in net.parameters())
                print(f"{name:15s} {cfg:16s} {impl:12s} {n_par:8d} {t[0]:9.3f} {t[1]:7.3f} "
                      f"{onnx_time(net, n_chans, n_t, x1)}", flush=True)
            if fused is not None:
                print(f"{name:15s} {cfg:16s} {'bci_app fused':12s} {'':8s} {'':9s} {'':7s} "
                      f"{onnx_time(fused, n_chans, n_t, x1)}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
