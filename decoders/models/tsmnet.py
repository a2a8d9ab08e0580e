"""TSMNet (Kobler et al. 2022, "SPD domain-specific batch normalization to crack interpretable
unsupervised domain adaptation in EEG", NeurIPS 35): a CNN front end followed by a Riemannian
(SPD-matrix) back end, the deep counterpart of the tangent-space pipeline.

Temporal conv (4 kernels, 0.1 s, "same" length) → spatial conv (40 virtual channels over every
kernel × electrode) → covariance pooling over the window → BiMap (a learned projection
``W C Wᵀ`` to 20 dimensions, ``W`` with orthonormal rows) → ReEig (eigenvalues clamped from
below) → SPD batch normalisation → matrix logarithm → lower triangle → linear. The back end runs
in float64, as in the paper's code.

Differences from the paper's code, all documented in the hyper-parameters:

* SPD batch normalisation uses the log-Euclidean mean (the mean of the matrix logarithms)
  instead of a Karcher-flow Riemannian mean, and BatchNorm's usual semantics (batch statistics
  while training, running statistics with momentum 0.1 at prediction) instead of the paper's
  domain-specific momentum schedule: one domain per decoder here (Euclidean alignment per
  subject is done outside the net). It re-centres the matrices at their mean (whitening by
  ``expm(-M/2)``), takes the matrix logarithm and rescales by a learned standard deviation over
  the batch's scalar dispersion (the paper's ``learn_std=True``, ``dispersion=SCALAR``).
* The orthonormal rows of ``W`` are kept with :func:`torch.nn.utils.parametrizations.orthogonal`
  so that a plain Adam optimiser trains it (the paper uses geoopt's Riemannian Adam on the
  Stiefel manifold; no extra dependency here).

Eigen-decompositions are not ONNX operators, so the model has no ONNX export
(``onnx_exportable = False``); the online worker runs it in PyTorch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register_model
from .base import EEGModel


class _EigFunction(torch.autograd.Function):
    """``U diag(f(s)) Uᵀ`` for a symmetric matrix ``X = U diag(s) Uᵀ``, with the
    Daleckii-Krein gradient ``U (L ∘ Uᵀ Ḡ U) Uᵀ`` (``L`` the Loewner matrix of ``f``), which
    stays finite for repeated eigenvalues (where ``torch.linalg.eigh``'s own gradient is not)."""

    @staticmethod
    def forward(ctx, X, fn, eps):  # noqa: D401 - autograd signature
        s, U = torch.linalg.eigh(X)
        f, df = _apply(fn, s, eps)
        ctx.save_for_backward(s, U, f, df)
        return (U * f.unsqueeze(-2)) @ U.transpose(-1, -2)

    @staticmethod
    def backward(ctx, G):
        s, U, f, df = ctx.saved_tensors
        G = 0.5 * (G + G.transpose(-1, -2))
        ds = s.unsqueeze(-1) - s.unsqueeze(-2)
        dfs = f.unsqueeze(-1) - f.unsqueeze(-2)
        tol = 1e-10 * s.abs().amax(-1, keepdim=True).unsqueeze(-1).clamp_min(1e-30)
        close = ds.abs() <= tol
        mean_df = 0.5 * (df.unsqueeze(-1) + df.unsqueeze(-2))
        L = torch.where(close, mean_df, dfs / torch.where(close, torch.ones_like(ds), ds))
        Ut = U.transpose(-1, -2)
        return U @ (L * (Ut @ G @ U)) @ Ut, None, None


def _apply(fn: str, s: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(s)`` and ``f'(s)`` for the eigenvalue functions the net uses."""
    if fn == "log":
        return torch.log(s), 1.0 / s
    if fn == "reeig":
        keep = s > eps
        return torch.where(keep, s, torch.full_like(s, eps)), keep.to(s.dtype)
    if fn == "exp_half_neg":  # exp(-s/2): the inverse square root of expm(M) from M
        e = torch.exp(-0.5 * s)
        return e, -0.5 * e
    raise ValueError(fn)  # pragma: no cover - internal


def sym_fn(X: torch.Tensor, fn: str, eps: float = 0.0) -> torch.Tensor:
    """Matrix function of symmetric matrices (batched): ``log``, ``reeig`` (eigenvalues
    clamped at ``eps``), ``exp_half_neg`` (``expm(-X/2)``)."""
    return _EigFunction.apply(X, fn, eps)


def tril_vector(S: torch.Tensor) -> torch.Tensor:
    """Lower triangle of symmetric matrices as vectors, off-diagonal terms × √2 (so the
    Euclidean norm of the vector is the Frobenius norm of the matrix)."""
    n = S.shape[-1]
    i, j = torch.tril_indices(n, n, device=S.device)
    w = torch.full(i.shape, math.sqrt(2.0), dtype=S.dtype, device=S.device)
    w[i == j] = 1.0
    return S[..., i, j] * w


class SPDBatchNormLog(nn.Module):
    """SPD batch normalisation followed by the matrix logarithm (log-Euclidean statistics).

    Input: SPD matrices (batch, n, n). Output: symmetric matrices (batch, n, n), the logarithms
    of the matrices re-centred at the (batch or running) log-Euclidean mean and scaled to a
    learned dispersion. Behaves like BatchNorm: batch statistics in training mode (running
    statistics updated with ``momentum``), running statistics in eval mode; the fine-tuning
    code freezes it like BatchNorm (``is_batch_norm``).
    """

    is_batch_norm = True

    def __init__(self, n: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = float(momentum), float(eps)
        self.register_buffer("running_log_mean", torch.zeros(n, n, dtype=torch.float64))
        self.register_buffer("running_var", torch.ones((), dtype=torch.float64))
        self.log_std = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, C: torch.Tensor) -> torch.Tensor:
        batch_stats = self.training and C.shape[0] > 1
        M = sym_fn(C, "log").mean(0) if batch_stats else self.running_log_mean
        W = sym_fn(M, "exp_half_neg")  # expm(M)^(-1/2)
        T = sym_fn(W @ C @ W, "log")
        if batch_stats:
            var = (T * T).sum((-1, -2)).mean()
            with torch.no_grad():
                m = self.momentum
                self.running_log_mean.mul_(1 - m).add_(m * M.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach())
        else:
            var = self.running_var
        return T * (torch.exp(self.log_std) / torch.sqrt(var + self.eps))


@register_model("tsmnet")
class TSMNet(EEGModel):
    """Temporal conv → spatial conv → covariance → BiMap → ReEig → SPD BatchNorm → LogEig →
    linear. Input (batch, n_chans, n_times) → logits (batch, n_outputs)."""

    model_version = 1
    onnx_exportable = False

    def _build(self, n_temporal: int = 4, kernel_s: float = 0.1, n_spatial: int = 40,
               n_subspace: int = 20, reeig_eps: float = 1e-4,
               bn_momentum: float = 0.1) -> dict:
        k = max(3, int(round(kernel_s * self.sfreq)))
        k += 1 - k % 2  # odd, so "same" padding is symmetric
        if n_subspace > n_spatial:
            from bci_app.errors import ConfigError

            raise ConfigError(f"model_params: n_subspace ({n_subspace}) must be <= n_spatial "
                              f"({n_spatial})")
        self._check_length(self.n_times - k + 1, f"a {k}-sample temporal kernel")
        self._check_length(self.n_times - n_spatial,
                           f"a covariance of {n_spatial} virtual channels")
        self.temporal = nn.Conv2d(1, n_temporal, (1, k), padding="same", padding_mode="reflect")
        self.spatial = nn.Conv2d(n_temporal, n_spatial, (self.n_chans, 1))
        bimap = nn.Linear(n_spatial, n_subspace, bias=False, dtype=torch.float64)
        self.bimap = nn.utils.parametrizations.orthogonal(bimap)
        self.reeig_eps = float(reeig_eps)
        self.bn = SPDBatchNormLog(n_subspace, momentum=bn_momentum)
        self.classifier = nn.Linear(n_subspace * (n_subspace + 1) // 2, self.n_outputs)
        return dict(n_temporal=n_temporal, kernel_s=kernel_s, n_spatial=n_spatial,
                    n_subspace=n_subspace, reeig_eps=reeig_eps, bn_momentum=bn_momentum)

    def no_weight_decay(self) -> list[nn.Parameter]:
        """The BiMap's raw orthogonal parametrization: weight decay on it is meaningless (the
        projection has orthonormal rows whatever its magnitude) and breaks training."""
        return list(self.bimap.parametrizations.weight.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.spatial(self.temporal(x.unsqueeze(1))).squeeze(2).to(torch.float64)
        h = h - h.mean(-1, keepdim=True)
        C = h @ h.transpose(-1, -2) / (h.shape[-1] - 1)
        W = self.bimap.weight  # (n_subspace, n_spatial), orthonormal rows
        C = sym_fn(W @ C @ W.T, "reeig", self.reeig_eps)
        T = self.bn(C)
        return self.classifier(tril_vector(T).to(x.dtype))
