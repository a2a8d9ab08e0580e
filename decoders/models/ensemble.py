"""Several independently trained copies of one model, averaged in probability space.

Deep decoders trained on a few hundred EEG trials vary a lot with the random initialisation and
batch order (several points of accuracy between seeds); averaging the class probabilities of
members trained from different seeds removes much of that variance (the "deep ensembles" of
Lakshminarayanan et al. 2017). :class:`ProbabilityAverage` is the inference graph: it outputs
``log(mean_i softmax(member_i(x)))``, which the rest of the code treats as logits (a softmax of it
gives the averaged probabilities exactly), so prediction, bundles and ONNX export need no special
case. Members are trained one by one, each on its own loss (see ``DeepDecoder(n_ensemble=...)``).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ProbabilityAverage(nn.Module):
    """``log`` of the mean of the members' softmax outputs (members are ``EEGModel``s)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("ProbabilityAverage needs at least one member")
        self.members = nn.ModuleList(members)
        first = members[0]
        self.model_version = int(getattr(first, "model_version", 0))
        self.hparams = dict(getattr(first, "hparams", {}))
        self.n_outputs = int(getattr(first, "n_outputs", 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([torch.log_softmax(m(x), dim=1) for m in self.members])
        return torch.logsumexp(logp, dim=0) - math.log(len(self.members))

    def apply_constraints(self) -> None:
        for m in self.members:
            fn = getattr(m, "apply_constraints", None)
            if fn is not None:
                fn()
