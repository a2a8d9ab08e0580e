"""EEG Conformer (Song et al. 2023, IEEE TNSRE 31:710): a ShallowConvNet-like patch embedding,
a Transformer encoder over the pooled time tokens, and an MLP head.

Defaults are smaller than the paper's (depth 2 instead of 6) for CPU training; attention is
written with plain ops so ONNX export needs no fused kernels.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register_model
from .base import EEGModel


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            from bci_app.errors import ConfigError

            raise ConfigError(f"heads: expected a divisor of emb_size {dim}, got {heads}")
        self.heads, self.dh = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.dh), dim=-1)
        out = (self.drop(att) @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class _EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.att = _SelfAttention(dim, heads, dropout)
        self.ff = nn.Sequential(nn.Linear(dim, ff * dim), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(ff * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.att(self.n1(x)))
        return x + self.drop(self.ff(self.n2(x)))


@register_model("eeg_conformer")
class EEGConformer(EEGModel):
    """Conv patch embedding -> Transformer encoder -> MLP head.

    Input (batch, n_chans, n_times) -> logits (batch, n_outputs).
    """

    model_version = 1

    def _build(self, emb_size: int = 40, depth: int = 2, heads: int = 4, ff_expansion: int = 2,
               kernel_s: float = 0.1, pool_s: float = 0.3, stride_s: float = 0.06,
               dropout: float = 0.5, att_dropout: float = 0.2, hidden: int = 64) -> dict:
        k = max(2, int(round(kernel_s * self.sfreq)))
        p = max(1, int(round(pool_s * self.sfreq)))
        s = max(1, int(round(stride_s * self.sfreq)))
        n_conv = self.n_times - k + 1
        self._check_length(n_conv - p + 1, f"a {k}-sample kernel then {p}-sample pooling")
        n_tok = (n_conv - p) // s + 1
        self.patch = nn.Sequential(
            nn.Conv2d(1, emb_size, (1, k)),
            nn.Conv2d(emb_size, emb_size, (self.n_chans, 1)),
            nn.BatchNorm2d(emb_size), nn.ELU(),
            nn.AvgPool2d((1, p), stride=(1, s)), nn.Dropout(dropout),
            nn.Conv2d(emb_size, emb_size, 1),
        )
        self.encoder = nn.Sequential(
            *[_EncoderLayer(emb_size, heads, ff_expansion, att_dropout) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(emb_size)
        self.head = nn.Sequential(
            nn.Linear(n_tok * emb_size, hidden), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(hidden, self.n_outputs),
        )
        return dict(emb_size=emb_size, depth=depth, heads=heads, ff_expansion=ff_expansion,
                    kernel_s=kernel_s, pool_s=pool_s, stride_s=stride_s, dropout=dropout,
                    att_dropout=att_dropout, hidden=hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x.unsqueeze(1))  # (b, emb, 1, n_tok)
        x = x.squeeze(2).transpose(1, 2)  # (b, n_tok, emb)
        x = self.norm(self.encoder(x))
        return self.head(x.flatten(1))
