"""Exact inference-time rewrites of trained models (same outputs, less arithmetic).

EEGNet's first block is temporal conv (F1 kernels over every channel) → BatchNorm →
depthwise spatial conv (D spatial filters per kernel) → BatchNorm. All four are linear, so the
spatial filters can be applied first: ``u_o = s_o · x`` (F1·D virtual channels), then each virtual
channel is convolved with its group's temporal kernel, with both BatchNorms folded into weights
and bias. For 64 channels this does about 12× fewer multiply-adds than the trained graph, and
gives the same logits to float rounding (checked by :func:`fuse_for_inference`).

ShallowConvNet and the EEG Conformer's patch embedding start with temporal conv (F kernels) →
spatial conv (F × F filters over the channels) → BatchNorm, also linear: the three fold into one
convolution with F spatio-temporal kernels (braindecode's ``CombinedConv`` does the same), about
2.5× fewer multiply-adds for ShallowConvNet at 64 channels.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return a, bn.bias - bn.running_mean * a


class FusedEEGNet(nn.Module):
    """Spatial-first, BatchNorm-folded EEGNet for inference (eval mode only)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        conv_t, bn1, conv_s, bn2, elu1, pool1 = list(net.block1)[:6]
        sep_dw, sep_pw, bn3, elu2, pool2 = list(net.block2)[:5]
        F1, k1 = conv_t.weight.shape[0], conv_t.weight.shape[-1]
        FD, C = conv_s.weight.shape[0], conv_s.weight.shape[2]
        D = FD // F1
        with torch.no_grad():
            a1, b1 = _bn_affine(bn1)
            a2, b2 = _bn_affine(bn2)
            S = conv_s.weight[:, 0, :, 0]  # (FD, C)
            group = torch.arange(FD) // D
            w_t = conv_t.weight[:, 0, 0, :]  # (F1, k1)
            self.spatial = nn.Conv1d(C, FD, 1, bias=False)
            self.spatial.weight.copy_(S[:, :, None])
            self.temporal = nn.Conv1d(FD, FD, k1, padding=k1 // 2, groups=FD, bias=True)
            self.temporal.weight.copy_((a2 * a1[group])[:, None, None] * w_t[group][:, None, :])
            self.temporal.bias.copy_(a2 * b1[group] * S.sum(dim=1) + b2)
            k2 = sep_dw.weight.shape[-1]
            self.sep = nn.Conv1d(FD, FD, k2, padding=k2 // 2, groups=FD, bias=False)
            self.sep.weight.copy_(sep_dw.weight[:, :, 0, :])
            a3, b3 = _bn_affine(bn3)
            F2 = sep_pw.weight.shape[0]
            self.point = nn.Conv1d(FD, F2, 1, bias=True)
            self.point.weight.copy_(a3[:, None, None] * sep_pw.weight[:, :, 0, :])
            self.point.bias.copy_(b3)
        self.elu = nn.ELU()
        self.pool1 = nn.AvgPool1d(pool1.kernel_size[1])
        self.pool2 = nn.AvgPool1d(pool2.kernel_size[1])
        self.classifier = net.classifier
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.elu(self.temporal(self.spatial(x))))
        x = self.pool2(self.elu(self.point(self.sep(x))))
        return self.classifier(x.flatten(1))


def _fold_temporal_spatial(conv_t: nn.Conv2d, conv_s: nn.Conv2d,
                           bn: nn.BatchNorm2d) -> nn.Conv2d:
    """temporal Conv2d(1, G, (1, k)) → spatial Conv2d(G, F, (C, 1)) → BatchNorm2d(F) as one
    Conv2d(1, F, (C, k)) (ONNX Runtime runs this form faster than a Conv1d(C, F, k))."""
    with torch.no_grad():
        w_t = conv_t.weight[:, 0, 0, :]  # (G, k)
        w_s = conv_s.weight[:, :, :, 0]  # (F, G, C)
        b_t = conv_t.bias if conv_t.bias is not None else torch.zeros(w_t.shape[0])
        b_s = conv_s.bias if conv_s.bias is not None else torch.zeros(w_s.shape[0])
        a, b = _bn_affine(bn)
        F, _, C = w_s.shape
        conv = nn.Conv2d(1, F, (C, w_t.shape[1]), bias=True)
        conv.weight.copy_(a[:, None, None, None] * torch.einsum("fgc,gt->fct", w_s, w_t)[:, None])
        conv.bias.copy_(a * (torch.einsum("fgc,g->f", w_s, b_t) + b_s) + b)
    return conv


class FusedShallowConvNet(nn.Module):
    """ShallowConvNet with its temporal conv, spatial conv and BatchNorm folded into one conv."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.conv = _fold_temporal_spatial(net.temporal, net.spatial, net.bn)
        self.pool = net.pool  # 2-D, as trained: ONNX Runtime pools (b, F, 1, t) faster than 1-D
        self.classifier = net.classifier
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x.unsqueeze(1))  # (b, F, 1, t)
        x = torch.log(torch.clamp(self.pool(x * x), min=1e-6))
        return self.classifier(x.flatten(1))


class FusedConformer(nn.Module):
    """EEG Conformer with the patch embedding's first two convs and BatchNorm folded into one."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        conv_t, conv_s, bn, elu, pool, _drop, proj = list(net.patch)
        self.patch = nn.Sequential(_fold_temporal_spatial(conv_t, conv_s, bn), elu, pool, proj)
        self.encoder, self.norm, self.head = net.encoder, net.norm, net.head
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x.unsqueeze(1)).squeeze(2).transpose(1, 2)  # (b, n_tok, emb)
        return self.head(self.norm(self.encoder(x)).flatten(1))


def _fused(net: nn.Module) -> nn.Module | None:
    from .models.conformer import EEGConformer
    from .models.eegnet import EEGNet
    from .models.shallow import ShallowConvNet

    for cls, rewrite in ((EEGNet, FusedEEGNet), (ShallowConvNet, FusedShallowConvNet),
                         (EEGConformer, FusedConformer)):
        if type(net) is cls:
            return rewrite(net)
    return None


def fuse_for_inference(net: nn.Module, n_chans: int, n_times: int,
                       atol: float = 1e-4) -> nn.Module | None:
    """An exact faster equivalent of ``net`` for inference, or None if there is none.

    The rewrite is checked on random windows: logits must agree within ``atol``.
    """
    from .models.ensemble import ProbabilityAverage

    net = net.eval()
    if isinstance(net, ProbabilityAverage):  # a seed ensemble: rewrite every member
        members = [_fused(m) for m in net.members]
        if any(m is None for m in members):
            return None
        fused = ProbabilityAverage(members).eval()
    else:
        fused = _fused(net)
    if fused is None:
        return None
    x = torch.randn(8, n_chans, n_times, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        diff = float((fused(x) - net(x)).abs().max())
    if not np.isfinite(diff) or diff > atol:
        logger.warning("Fused %s differs from the trained net by %.2e; not used",
                       type(net).__name__, diff)
        return None
    return fused
