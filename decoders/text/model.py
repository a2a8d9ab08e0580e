"""EEG-to-text model: conv patching + Transformer encoder, a VQ codex, a semantic head and an
autoregressive text decoder.

::

    X (B, C, T) ──normalise──► Conv1d patches (B, N, d) + pos ──► TransformerEncoder ──► z (B, N, d)
                                                                                          │
                                      VQ codex (K codes, cosine nearest, straight-through) ◄┘
                                                     │ q (B, N, d), codes (B, N)
                         ┌───────────────────────────┴───────────────────────────┐
          semantic head: mean-pool → MLP → 384-d, unit norm        text decoder: TransformerDecoder
          (contrastive with MiniLM sentence embeddings;            over words, cross-attending to q
           retrieval / zero-shot classification, GLIM line)        (free-running at inference only)

The discrete codex follows DeWave (Duan et al. 2023); both heads read only the quantised codes, so
whatever the model knows about the text has passed through the codex.

``forward(x)`` returns the semantic embedding (B, embed_dim) so the model fits the registry's
contract (``n_outputs`` = embedding size, dry forward pass at construction).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from bci_app.errors import ConfigError
from decoders.models.base import EEGModel
from decoders.registry import register_model

from .embeddings import EMBED_DIM

__all__ = ["EEGTextModel", "VectorQuantizer", "check_d_model"]


def check_d_model(d_model: Any, n_heads: int = 4, n_groups: int = 4,
                  name: str = "d_model") -> int:
    """``d_model`` as an int: positive and a multiple of ``n_heads`` (attention heads) and of
    ``n_groups`` (product-VQ groups), which both split it evenly. ConfigError naming ``name``
    (e.g. ``--d-model``) with the nearest valid values otherwise."""
    step = math.lcm(int(n_heads), int(n_groups))
    ok = (not isinstance(d_model, bool) and isinstance(d_model, (int, float))
          and float(d_model).is_integer() and d_model > 0 and int(d_model) % step == 0)
    if not ok:
        near = [32, 64]
        if isinstance(d_model, (int, float)) and not isinstance(d_model, bool) \
                and math.isfinite(d_model) and d_model > step:
            lo = int(d_model) // step * step
            near = [lo, lo + step]
        raise ConfigError(
            f"{name}: expected a positive multiple of {step} (the model splits it into "
            f"{n_heads} attention heads and {n_groups} codebook groups), got {d_model!r}. Fix: "
            f"e.g. {name} {near[0]} or {near[1]} (the default is 64).")
    return int(d_model)


class VectorQuantizer(nn.Module):
    """Cosine-similarity (product) vector quantiser with a straight-through gradient.

    Each token vector is cut into ``n_groups`` sub-vectors, each replaced by the nearest of
    ``n_codes`` codes of its group's codebook (product quantisation: ``n_codes ** n_groups``
    distinct token codes from small codebooks). Sub-vectors and codes are L2-normalised (as in
    improved VQGAN), which keeps codes in use without EMA tricks. ``loss`` = codebook term +
    ``beta`` x commitment term.
    """

    def __init__(self, n_codes: int, dim: int, beta: float = 0.25, n_groups: int = 1) -> None:
        super().__init__()
        if dim % n_groups:
            raise ValueError(f"n_groups: {n_groups} does not divide d_model {dim}")
        self.n_groups = n_groups
        self.codebook = nn.Parameter(torch.randn(n_groups, n_codes, dim // n_groups))
        self.beta = beta

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, N, d) -> (quantised (B, N, d), code indices (B, N, n_groups), loss scalar)."""
        B, N, d = z.shape
        zg = F.normalize(z.view(B, N, self.n_groups, d // self.n_groups), dim=-1)
        cb = F.normalize(self.codebook, dim=-1)  # (G, K, d/G)
        idx = torch.einsum("bngc,gkc->bngk", zg, cb).argmax(-1)  # (B, N, G)
        q = cb[torch.arange(self.n_groups), idx]  # (B, N, G, d/G)
        loss = F.mse_loss(q, zg.detach()) + self.beta * F.mse_loss(zg, q.detach())
        q = zg + (q - zg).detach()
        return q.reshape(B, N, d), idx, loss


@register_model("eeg2text")
class EEGTextModel(EEGModel):
    """EEG encoder + VQ codex + semantic head + word-level autoregressive decoder.

    Parameters (hyper-parameters, besides the signal parameters of ``EEGModel``;
    ``n_outputs`` is the sentence-embedding size, 384 for MiniLM)
    ----------
    vocab_size : int
        Size of the word tokenizer (ids 0..3 are pad/bos/eos/unk).
    d_model, n_heads, n_layers, dec_layers : Transformer sizes.
    patch_s, stride_s : float
        Convolutional patch length and hop (s).
    n_codes, n_groups : int
        Codebook size per group and number of groups of the (product) VQ codex.
    max_len : int
        Longest token sequence (incl. <bos>/<eos>) the decoder handles.
    dropout : float
    """

    model_version = 1

    def __init__(self, n_chans: int, n_outputs: int = EMBED_DIM, sfreq: float = 160.0,
                 window_s: float = 2.0, **hparams: Any) -> None:
        super().__init__(n_chans, n_outputs, sfreq, window_s, **hparams)

    def _build(self, vocab_size: int = 64, d_model: int = 64, n_heads: int = 4,
               n_layers: int = 2, dec_layers: int = 2, patch_s: float = 0.25,
               stride_s: float = 0.125, n_codes: int = 64, n_groups: int = 4,
               max_len: int = 16, dropout: float = 0.1, beta: float = 0.25) -> dict[str, Any]:
        d = check_d_model(d_model, n_heads, n_groups)
        self.patch = max(1, round(patch_s * self.sfreq))
        self.stride = max(1, round(stride_s * self.sfreq))
        n_tok = (self.n_times - self.patch) // self.stride + 1
        self._check_length(n_tok, f"patching ({self.patch} samples, hop {self.stride})")
        self.n_tokens = n_tok
        self.max_len = int(max_len)
        self.vocab_size = int(vocab_size)
        self.register_buffer("in_mean", torch.zeros(self.n_chans))
        self.register_buffer("in_std", torch.ones(self.n_chans))
        self.patchify = nn.Conv1d(self.n_chans, d, self.patch, stride=self.stride)
        self.patch_norm = nn.LayerNorm(d)
        self.enc_pos = nn.Parameter(torch.zeros(1, n_tok, d))
        nn.init.normal_(self.enc_pos, std=0.02)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, n_heads, 2 * d, dropout, batch_first=True,
                                       norm_first=True, activation="gelu"),
            n_layers, enable_nested_tensor=False)
        self.pre_vq = nn.Linear(d, d)
        self.vq = VectorQuantizer(n_codes, d, beta, n_groups)
        self.sem_head = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(dropout),
                                      nn.Linear(2 * d, self.n_outputs))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.tok_emb = nn.Embedding(self.vocab_size, d)
        self.dec_pos = nn.Parameter(torch.zeros(1, self.max_len, d))
        nn.init.normal_(self.dec_pos, std=0.02)
        self.mem_pos = nn.Parameter(torch.zeros(1, n_tok, d))
        nn.init.normal_(self.mem_pos, std=0.02)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, n_heads, 2 * d, dropout, batch_first=True,
                                       norm_first=True, activation="gelu"),
            dec_layers)
        self.dec_norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, self.vocab_size)
        return {"vocab_size": self.vocab_size, "d_model": d, "n_heads": int(n_heads),
                "n_layers": int(n_layers), "dec_layers": int(dec_layers),
                "patch_s": float(patch_s), "stride_s": float(stride_s), "n_codes": int(n_codes),
                "n_groups": int(n_groups), "max_len": self.max_len, "dropout": float(dropout),
                "beta": float(beta)}

    # -- encoder ------------------------------------------------------------------------------
    def set_input_stats(self, mean, std) -> None:
        """Per-channel normalisation (from training windows only), shapes (n_chans,)."""
        with torch.no_grad():
            self.in_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.in_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp(min=1e-6))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, C, T) -> quantised memory (B, N, d), codes (B, N), VQ loss."""
        x = (x - self.in_mean[:, None]) / self.in_std[:, None]
        h = self.patch_norm(self.patchify(x).transpose(1, 2)) + self.enc_pos
        z = self.pre_vq(self.encoder(h))
        return self.vq(z)

    def semantic(self, memory: torch.Tensor) -> torch.Tensor:
        """Memory (B, N, d) -> unit-norm sentence embedding (B, n_outputs)."""
        return F.normalize(self.sem_head(memory.mean(1)), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) -> unit-norm semantic embedding (B, n_outputs)."""
        memory, _, _ = self.encode(x)
        return self.semantic(memory)

    # -- decoder ------------------------------------------------------------------------------
    def decode_logits(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Causal next-token logits (B, L, V) given memory (B, N, d) and tokens (B, L).

        Position ``t`` sees tokens ``0..t`` only. Training feeds the reference (teacher forcing);
        inference feeds the model's own previous outputs (:meth:`generate`).
        """
        L = tokens.shape[1]
        if L > self.max_len:
            raise ValueError(f"tokens: at most max_len={self.max_len}, got {L}")
        h = self.tok_emb(tokens) + self.dec_pos[:, :L]
        causal = torch.triu(torch.full((L, L), float("-inf")), diagonal=1)
        out = self.decoder(h, memory + self.mem_pos, tgt_mask=causal,
                           tgt_is_causal=True)
        return self.lm_head(self.dec_norm(out))

    def next_token_logits(self, memory: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) of the token after ``prefix`` (B, L)."""
        return self.decode_logits(memory, prefix)[:, -1]
