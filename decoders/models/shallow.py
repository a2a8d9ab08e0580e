"""ShallowConvNet (Schirrmeister et al. 2017, Hum. Brain Mapp. 38:5391), FBCSP-like.

Kernel and pooling lengths are in seconds (the paper's 25/75/15 samples at 250 Hz).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from .base import EEGModel


@register_model("shallowconvnet")
class ShallowConvNet(EEGModel):
    """Temporal conv -> spatial conv -> square -> mean pool -> log -> linear.

    Input (batch, n_chans, n_times) -> logits (batch, n_outputs).
    """

    model_version = 1

    def _build(self, n_filters: int = 40, kernel_s: float = 0.1, pool_s: float = 0.3,
               stride_s: float = 0.06, dropout: float = 0.5) -> dict:
        k = max(2, int(round(kernel_s * self.sfreq)))
        p = max(1, int(round(pool_s * self.sfreq)))
        s = max(1, int(round(stride_s * self.sfreq)))
        n_conv = self.n_times - k + 1
        self._check_length(n_conv - p + 1, f"a {k}-sample kernel then {p}-sample pooling")
        n_out = (n_conv - p) // s + 1
        self.temporal = nn.Conv2d(1, n_filters, (1, k))
        self.spatial = nn.Conv2d(n_filters, n_filters, (self.n_chans, 1), bias=False)
        self.bn = nn.BatchNorm2d(n_filters)
        self.pool = nn.AvgPool2d((1, p), stride=(1, s))
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(n_filters * n_out, self.n_outputs)
        return dict(n_filters=n_filters, kernel_s=kernel_s, pool_s=pool_s, stride_s=stride_s,
                    dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.spatial(self.temporal(x.unsqueeze(1))))
        x = torch.log(torch.clamp(self.pool(x * x), min=1e-6))
        return self.classifier(self.drop(x).flatten(1))
