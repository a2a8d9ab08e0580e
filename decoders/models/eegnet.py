"""EEGNet (Lawhern et al. 2018, J. Neural Eng. 15:056013), EEGNet-8,2 by default.

Kernel lengths are given in seconds so the same architecture works at any rate (the paper's 64
samples at 128 Hz = 0.5 s). ``max_norm=True`` applies the paper's weight constraints after every
optimiser step (norm of each depthwise spatial filter <= 1, of each output unit's weights
<= 0.25); they shape training only, so the layer layout (and ``model_version``) is unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from .base import EEGModel


def _odd(n: float) -> int:
    n = max(1, int(round(n)))
    return n if n % 2 else n + 1


@register_model("eegnet")
class EEGNet(EEGModel):
    """EEGNet: temporal conv -> depthwise spatial conv -> separable conv -> linear.

    Input (batch, n_chans, n_times) -> logits (batch, n_outputs).
    """

    model_version = 1

    def _build(self, F1: int = 8, D: int = 2, F2: int | None = None, kernel_s: float = 0.5,
               sep_kernel_s: float = 0.125, pool1: int = 4, pool2: int = 8,
               dropout: float = 0.25, max_norm: bool = False) -> dict:
        F2 = F2 or F1 * D
        k1, k2 = _odd(kernel_s * self.sfreq), _odd(sep_kernel_s * self.sfreq)
        self._check_length(self.n_times // pool1 // pool2, f"pooling by {pool1} then {pool2}")
        self.block1 = nn.Sequential(
            nn.Conv2d(1, F1, (1, k1), padding=(0, k1 // 2), bias=False),
            nn.BatchNorm2d(F1),
            nn.Conv2d(F1, F1 * D, (self.n_chans, 1), groups=F1, bias=False),
            nn.BatchNorm2d(F1 * D),
            nn.ELU(),
            nn.AvgPool2d((1, pool1)),
            nn.Dropout(dropout),
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(F1 * D, F1 * D, (1, k2), padding=(0, k2 // 2), groups=F1 * D, bias=False),
            nn.Conv2d(F1 * D, F2, 1, bias=False),
            nn.BatchNorm2d(F2),
            nn.ELU(),
            nn.AvgPool2d((1, pool2)),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(F2 * (self.n_times // pool1 // pool2), self.n_outputs)
        return dict(F1=F1, D=D, F2=F2, kernel_s=kernel_s, sep_kernel_s=sep_kernel_s,
                    pool1=pool1, pool2=pool2, dropout=dropout, max_norm=bool(max_norm))

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """The paper's max-norm constraints (no-op unless built with ``max_norm=True``)."""
        if not self.hparams.get("max_norm"):
            return
        spatial = self.block1[2].weight
        spatial.copy_(torch.renorm(spatial, p=2, dim=0, maxnorm=1.0))
        w = self.classifier.weight
        w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=0.25))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(x.unsqueeze(1)))
        return self.classifier(x.flatten(1))
