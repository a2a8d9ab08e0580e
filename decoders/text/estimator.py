"""``EEGTextDecoder``: fit / predict_proba / decode_text around :class:`EEGTextModel`.

Training (``fit``) uses teacher forcing for the decoder's cross-entropy, as every seq2seq model
does; **inference and evaluation never do** (:func:`decoders.text.inference.generate`). The loss
is ``CE(next word) + clip_weight * CLIP(EEG embedding, MiniLM sentence embedding) + VQ loss``.
Early stopping watches the same loss on a validation split that the caller carves from training
data only.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from bci_app.errors import ConfigError

from .embeddings import EMBED_DIM, embed_sentences
from .inference import generate
from .model import EEGTextModel
from .tokenizer import WordTokenizer

logger = logging.getLogger(__name__)

__all__ = ["EEGTextDecoder", "TextTrainSettings"]


@dataclass
class TextTrainSettings:
    """Optimisation settings (saved in the bundle)."""

    max_epochs: int = 60
    patience: int = 8
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-2
    clip_weight: float = 1.0
    word_dropout: float = 0.25  # decoder inputs replaced by <unk> (training only)
    seed: int = 0
    max_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clip_loss(e: torch.Tensor, t: torch.Tensor, sid: torch.Tensor,
               scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE; trials of the same sentence in a batch are all positives."""
    logits = scale.exp().clamp(max=100) * e @ t.T
    pos = (sid[:, None] == sid[None, :]).float()
    tgt = pos / pos.sum(1, keepdim=True)
    return 0.5 * (torch.sum(-tgt * F.log_softmax(logits, 1), 1).mean()
                  + torch.sum(-tgt * F.log_softmax(logits.T, 1), 1).mean())


class EEGTextDecoder:
    """EEG window -> (retrieval over candidate sentences, generated text).

    Parameters
    ----------
    n_chans, sfreq, window_s : signal parameters of the (preprocessed) windows.
    model_params : dict
        Hyper-parameters of :class:`EEGTextModel` (``vocab_size`` is set by ``fit``).
    settings : TextTrainSettings
    beam : int
        Beam width of ``decode_text`` (1 = greedy).

    Attributes (after ``fit`` or loading)
    ----------
    model_ : EEGTextModel (eval mode)
    tokenizer_ : WordTokenizer
    candidates_ : list of str ; candidate_embeddings_ : ndarray (n_candidates, 384)
    history_ : list of dict (epoch, train/val loss)
    model_params : dict
        After ``fit``, every hyper-parameter of the fitted model; ``derived_params`` names those
        that ``fit`` derived from its data (``vocab_size``, and ``max_len`` unless given), which
        the next ``fit`` derives again from its own sentences.
    """

    kind = "text"
    name = "eeg2text"
    model_version = EEGTextModel.model_version

    def __init__(self, n_chans: int, sfreq: float, window_s: float,
                 model_params: dict | None = None, settings: TextTrainSettings | None = None,
                 beam: int = 1) -> None:
        self.n_chans, self.sfreq, self.window_s = int(n_chans), float(sfreq), float(window_s)
        self.model_params = dict(model_params or {})
        self.settings = settings or TextTrainSettings()
        self.beam = _check_beam(beam, "beam")
        # keys of model_params that fit derived from its data (not the caller's choice): a
        # later fit derives them again from its own sentences
        self.derived_params: tuple[str, ...] = ()

    @property
    def n_times(self) -> int:
        return round(self.sfreq * self.window_s)

    # -- training -----------------------------------------------------------------------------
    def fit(self, X: np.ndarray, sentences: Sequence[str], X_val: np.ndarray | None = None,
            sentences_val: Sequence[str] | None = None,
            candidates: Sequence[str] | None = None) -> EEGTextDecoder:
        """Train on windows X (n, C, T) and their sentences; early-stop on (X_val, sentences_val)
        (carved from training data by the caller). ``candidates`` (default: the training
        sentences) become the retrieval set stored with the model."""
        X = self._check_train_X(X, "X")
        sentences = list(sentences)
        if len(sentences) != len(X):
            raise ConfigError(f"sentences: expected {len(X)} (one per window), got "
                              f"{len(sentences)}")
        if X_val is not None and len(X_val):
            X_val = self._check_train_X(X_val, "X_val")
            if sentences_val is None or len(sentences_val) != len(X_val):
                raise ConfigError(
                    f"sentences_val: expected {len(X_val)} (one per X_val window), got "
                    f"{None if sentences_val is None else len(sentences_val)}")
        s = self.settings
        self.tokenizer_ = WordTokenizer.fit(sentences)
        longest = max(len(self.tokenizer_.encode(t)) for t in sentences)
        given = {k: v for k, v in self.model_params.items() if k not in self.derived_params}
        params = {"max_len": min(longest + 2, 64), **given, "vocab_size": len(self.tokenizer_)}
        with torch.random.fork_rng():
            torch.manual_seed(s.seed)
            model = EEGTextModel(self.n_chans, EMBED_DIM, self.sfreq, self.window_s, **params)
        model.set_input_stats(X.mean(axis=(0, 2)), X.std(axis=(0, 2)))
        self.model_params = dict(model.hparams)
        self.derived_params = ("vocab_size",) + (() if "max_len" in given else ("max_len",))
        uniq = sorted(set(sentences) | set(sentences_val or []))
        emb = dict(zip(uniq, embed_sentences(uniq)))
        data = self._tensors(X, sentences, emb, model.max_len)
        val = (self._tensors(X_val, list(sentences_val), emb, model.max_len)
               if X_val is not None and len(X_val) else None)
        opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        gen = torch.Generator().manual_seed(s.seed)
        best, best_state, bad = np.inf, None, 0
        self.history_ = []
        t0 = time.perf_counter()
        with torch.random.fork_rng():
            torch.manual_seed(s.seed)
            for epoch in range(s.max_epochs):
                model.train()
                perm = torch.randperm(len(X), generator=gen)
                tot = 0.0
                for i in range(0, len(X), s.batch_size):
                    idx = perm[i:i + s.batch_size]
                    loss = self._loss(model, *(d[idx] for d in data))
                    opt.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    opt.step()
                    tot += float(loss.detach()) * len(idx)
                rec = {"epoch": epoch, "train_loss": tot / len(X)}
                if val is not None:
                    model.eval()
                    with torch.inference_mode():
                        rec["val_loss"] = float(self._loss(model, *val))
                    if rec["val_loss"] < best - 1e-4:
                        best, best_state, bad = rec["val_loss"], copy.deepcopy(
                            model.state_dict()), 0
                    else:
                        bad += 1
                self.history_.append(rec)
                logger.debug("eeg2text epoch %s: %s", epoch, rec)
                if val is not None and bad >= s.patience:
                    break
                if s.max_seconds and time.perf_counter() - t0 > s.max_seconds:
                    logger.info("eeg2text: stopped at the time limit after %d epochs", epoch + 1)
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        self.model_ = model.eval()
        self.fit_seconds_ = time.perf_counter() - t0
        cands = list(candidates) if candidates is not None else sorted(set(sentences))
        self.set_candidates(cands, np.stack([emb[c] for c in cands]) if all(
            c in emb for c in cands) else None)
        return self

    def _tensors(self, X, sentences, emb, max_len):
        return (torch.as_tensor(X, dtype=torch.float32),
                torch.as_tensor(np.stack([emb[s] for s in sentences]), dtype=torch.float32),
                torch.as_tensor(_sentence_ids(sentences)),
                _pad([self.tokenizer_.encode(s, max_len) for s in sentences], max_len))

    def _loss(self, model, x, t, sid, ids):
        memory, _, vq_loss = model.encode(x)
        inp = ids[:, :-1]
        if model.training and self.settings.word_dropout > 0:
            drop = (torch.rand(inp.shape) < self.settings.word_dropout) & (inp > 2)
            inp = torch.where(drop, torch.full_like(inp, self.tokenizer_.unk_id), inp)
        logits = model.decode_logits(memory, inp)  # teacher forcing: training only
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                             ignore_index=self.tokenizer_.pad_id)
        e = model.semantic(memory)
        return ce + self.settings.clip_weight * _clip_loss(e, t, sid, model.logit_scale) + vq_loss

    # -- inference ----------------------------------------------------------------------------
    def set_candidates(self, sentences: Sequence[str],
                       embeddings: np.ndarray | None = None) -> EEGTextDecoder:
        """Set the retrieval candidates (embedded with MiniLM unless ``embeddings`` given)."""
        sentences = list(sentences)
        if not sentences:
            raise ConfigError("candidates: expected at least one sentence")
        emb = embed_sentences(sentences) if embeddings is None else np.asarray(embeddings)
        if emb.shape != (len(sentences), EMBED_DIM):
            raise ConfigError(f"candidate embeddings: expected ({len(sentences)}, {EMBED_DIM}), "
                              f"got {emb.shape}")
        self.candidates_ = sentences
        self.candidate_embeddings_ = emb.astype(np.float32)
        return self

    def _check_X(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[1:] != (self.n_chans, self.n_times):
            raise ConfigError(f"X: expected (n, {self.n_chans}, {self.n_times}) windows, got "
                              f"{X.shape}")
        return X

    def _check_train_X(self, X, name: str) -> np.ndarray:
        """Training windows: the shape of :meth:`_check_X`, at least one, all finite (one NaN
        would make the input statistics, hence every weight and every output, NaN)."""
        X = self._check_X(X)
        if not len(X):
            raise ConfigError(f"{name}: expected at least one training window, got none")
        finite = np.isfinite(X)
        if not finite.all():
            bad = np.flatnonzero(~finite.all(axis=(1, 2)))
            raise ConfigError(
                f"{name}: {len(bad)} of {len(X)} windows hold NaN or infinite samples (first: "
                f"window {int(bad[0])}). Fix: drop or repair them (e.g. np.nan_to_num, or "
                f"interpolate the bad channels) before fitting.")
        return X

    @torch.inference_mode()
    def embed(self, X: np.ndarray) -> np.ndarray:
        """Unit-norm semantic embeddings (n, 384)."""
        return self.model_(torch.as_tensor(self._check_X(X))).numpy()

    def similarities(self, X: np.ndarray, candidate_embeddings: np.ndarray | None = None):
        """Cosine similarity (n, n_candidates) to the candidates (or to the given embeddings)."""
        c = self.candidate_embeddings_ if candidate_embeddings is None else candidate_embeddings
        return self.embed(X) @ np.asarray(c, np.float32).T

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Retrieval probabilities over ``candidates_``: softmax of the learned-temperature
        cosine similarities, shape (n, n_candidates)."""
        sim = self.similarities(X) * float(self.model_.logit_scale.detach().exp().clamp(max=100))
        sim -= sim.max(1, keepdims=True)
        p = np.exp(sim)
        return p / p.sum(1, keepdims=True)

    def zero_shot(self, X: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """Zero-shot classification (GLIM / EEG-CLIP style): probabilities (n, n_labels) over
        classes described in words (e.g. ``["a sentence about a person", "a sentence about a
        place"]``), from the semantic head and MiniLM embeddings of the descriptions. Needs
        MiniLM (not for the bundle's stored candidates)."""
        sim = self.similarities(X, embed_sentences(list(labels)))
        sim = sim * float(self.model_.logit_scale.detach().exp().clamp(max=100))
        sim -= sim.max(1, keepdims=True)
        p = np.exp(sim)
        return p / p.sum(1, keepdims=True)

    def decode_ids(self, X: np.ndarray, beam: int | None = None):
        return generate(self.model_, torch.as_tensor(self._check_X(X)), self.model_.max_len,
                        self.tokenizer_.bos_id, self.tokenizer_.eos_id,
                        self.beam if beam is None else _check_beam(beam, "beam"))

    def decode_text(self, X: np.ndarray, beam: int | None = None) -> list[tuple[str, float]]:
        """Free-running generated text and its confidence (exp mean token log-prob) per window."""
        ids, conf = self.decode_ids(X, beam)
        return [(self.tokenizer_.decode(i), float(c)) for i, c in zip(ids, conf)]


def _check_beam(beam, name: str) -> int:
    if isinstance(beam, bool) or int(beam) != beam or beam < 1:
        raise ConfigError(f"{name}: expected an integer >= 1 (1 = greedy, > 1 = beam search), "
                          f"got {beam!r}")
    return int(beam)


def _sentence_ids(sentences: Sequence[str]) -> np.ndarray:
    lookup: dict[str, int] = {}
    return np.asarray([lookup.setdefault(s, len(lookup)) for s in sentences])


def _pad(seqs: list[list[int]], max_len: int) -> torch.Tensor:
    out = torch.zeros(len(seqs), max_len, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.as_tensor(s[:max_len])
    return out
