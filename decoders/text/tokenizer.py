"""A small word-level tokenizer built from the training sentences (saved in the bundle JSON).

Words are lower-cased and split on white space after separating punctuation, so ``decode``
gives back a normalised sentence (``"The cat, sat."`` -> ``"the cat , sat ."``). BLEU/ROUGE are
computed on these normalised words for references and hypotheses alike.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from bci_app.errors import ConfigError

__all__ = ["BOS", "EOS", "PAD", "UNK", "WordTokenizer", "normalize_words"]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
_SPECIALS = (PAD, BOS, EOS, UNK)
_PUNCT = re.compile(r"([.,;:!?\"()])")


def normalize_words(sentence: str) -> list[str]:
    """Lower-cased words with punctuation as separate tokens."""
    return _PUNCT.sub(r" \1 ", sentence.lower()).split()


class WordTokenizer:
    """Word-level vocabulary: ``<pad>=0, <bos>=1, <eos>=2, <unk>=3``, then words by frequency."""

    def __init__(self, words: Sequence[str]) -> None:
        words = list(words)
        if tuple(words[:4]) != _SPECIALS:
            raise ConfigError(f"tokenizer: vocabulary must start with {_SPECIALS}, got "
                              f"{words[:4]}")
        if len(set(words)) != len(words):
            raise ConfigError("tokenizer: vocabulary has duplicate words")
        self.itos = words
        self.stoi = {w: i for i, w in enumerate(words)}

    @classmethod
    def fit(cls, sentences: Iterable[str], min_count: int = 1) -> WordTokenizer:
        counts = Counter(w for s in sentences for w in normalize_words(s))
        vocab = sorted((w for w, c in counts.items() if c >= min_count),
                       key=lambda w: (-counts[w], w))
        return cls([*_SPECIALS, *vocab])

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, sentence: str, max_len: int | None = None) -> list[int]:
        """Token ids ``[<bos>, w1, ..., wn, <eos>]`` (truncated to ``max_len`` incl. both)."""
        ids = [self.stoi.get(w, self.unk_id) for w in normalize_words(sentence)]
        if max_len is not None:
            ids = ids[: max_len - 2]
        return [self.bos_id, *ids, self.eos_id]

    def decode(self, ids: Iterable[int]) -> str:
        """Words up to the first ``<eos>``; specials other than ``<unk>`` dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return " ".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "word", "vocab": list(self.itos)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WordTokenizer:
        if d.get("kind") != "word":
            raise ConfigError(f"tokenizer: expected kind 'word', got {d.get('kind')!r}")
        return cls(d["vocab"])
