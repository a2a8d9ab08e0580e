"""ONNX export of torch decoders (input: scaled windows, output: class probabilities)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bci_app.errors import ConfigError


def onnx_exportable(net) -> bool:
    """False for nets built from operators ONNX lacks (e.g. TSMNet's eigen-decompositions);
    for a seed ensemble, whether every member is exportable."""
    members = getattr(net, "members", None)
    if members is not None:
        return all(onnx_exportable(m) for m in members)
    return bool(getattr(net, "onnx_exportable", True))


def export_onnx(decoder, path: str | Path, opset: int = 18) -> Path:
    """Export ``decoder`` (a fitted DeepDecoder) to ONNX.

    The graph takes raw preprocessed windows ``input`` (batch, n_chans, n_times) float32 in
    volts, applies the decoder's input scale, and returns ``proba`` (batch, n_classes).
    """
    import torch
    from torch import nn

    class Wrapper(nn.Module):
        def __init__(self, net, scale):
            super().__init__()
            self.net = net
            self.scale = float(scale)

        def forward(self, x):
            return torch.softmax(self.net(x * self.scale), dim=1)

    path = Path(path)
    net = decoder.net_.eval()
    if not onnx_exportable(net):
        raise ConfigError(
            f"ONNX export: {type(net).__name__} uses operators ONNX does not have (symmetric "
            "eigen-decomposition); fix: run it with PyTorch (the online worker does so "
            "automatically) or leave out the ONNX export"
        )
    w = Wrapper(net, decoder.scale_).eval()
    x = torch.zeros(1, decoder.n_chans, decoder.n_times)
    torch.onnx.export(w, (x,), str(path), input_names=["input"], output_names=["proba"],
                      dynamic_axes={"input": {0: "batch"}, "proba": {0: "batch"}},
                      opset_version=opset, dynamo=False)
    return path


def onnx_session(path: str | Path, n_threads: int = 1):
    """An onnxruntime InferenceSession on CPU with ``n_threads`` intra-op threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = n_threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def onnx_predict_proba(session, X: np.ndarray) -> np.ndarray:
    return session.run(["proba"], {"input": np.asarray(X, dtype=np.float32)})[0]
