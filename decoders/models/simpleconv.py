"""EEG-SimpleConv (El Ouahidi et al. 2023, "A Strong and Simple Deep Learning Baseline for BCI
Motor Imagery Decoding", arXiv:2309.07159): a 1-D CNN over channels-as-features.

The paper resamples to 80 Hz inside the model; here the Preprocessor does that (``sfreq=80``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from .base import EEGModel


@register_model("eeg_simpleconv")
class EEGSimpleConv(EEGModel):
    """Conv1d stem -> ``n_convs`` blocks (max-pool 2, two conv-BN-ReLU) -> global mean -> linear.

    Feature maps grow by 1.414 per block as in the paper. Input (batch, n_chans, n_times).
    """

    model_version = 1

    def _build(self, feature_maps: int = 64, n_convs: int = 2, kernel_s: float = 0.1,
               dropout: float = 0.0) -> dict:
        k = max(3, int(round(kernel_s * self.sfreq)))
        k = k if k % 2 else k + 1
        self._check_length(self.n_times // (2 ** n_convs), f"{n_convs} max-poolings by 2")
        self.stem = nn.Sequential(
            nn.Conv1d(self.n_chans, feature_maps, k, padding=k // 2, bias=False),
            nn.BatchNorm1d(feature_maps), nn.ReLU(),
        )
        blocks, old = [], feature_maps
        for i in range(n_convs):
            new = old if i == 0 else int(round(1.414 * old))
            blocks.append(nn.Sequential(
                nn.MaxPool1d(2),
                nn.Conv1d(old, new, k, padding=k // 2, bias=False), nn.BatchNorm1d(new), nn.ReLU(),
                nn.Conv1d(new, new, k, padding=k // 2, bias=False), nn.BatchNorm1d(new), nn.ReLU(),
            ))
            old = new
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(old, self.n_outputs)
        return dict(feature_maps=feature_maps, n_convs=n_convs, kernel_s=kernel_s, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x)).mean(dim=2)
        return self.classifier(self.drop(x))
