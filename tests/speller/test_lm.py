"""Language model: distributions, completions, user vocabulary, languages."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bci_app.errors import ConfigError
from bci_app.speller.lm import ENGLISH_ALPHABET, LanguageModel, UniformModel

from .texts import COMMON_TEXT


def test_next_char_is_a_distribution_over_the_alphabet(lm):
    assert lm.symbols == ENGLISH_ALPHABET
    for text in ["", "th", "the ", "hello, ", "xqz", "don'", "end."]:
        p = lm.next_char_probs(text)
        assert p.shape == (len(lm.symbols),)
        assert np.isclose(p.sum(), 1.0)
        assert (p > 0).all()  # every symbol stays reachable


def test_predictions_are_english(lm):
    def top(text):
        p = lm.next_char_probs(text)
        return lm.symbols[int(np.argmax(p))]

    assert top("th") == "e"
    assert top("the q") == "u"
    assert top("the") == " "
    assert top("end.") == " "  # a space follows punctuation
    words = [w for w, _ in lm.completions("i would li")]
    assert "like" in words
    assert [w for w, _ in lm.completions("")][:3] == ["the", "to", "and"]
    probs = [q for _, q in lm.completions("qu", k=5)]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1


def test_cross_entropy_beats_uniform(lm):
    bits = lm.cross_entropy(COMMON_TEXT)
    assert bits < 0.6 * math.log2(len(lm.symbols)), bits  # ~2.4 vs 4.95 bits per symbol


def test_user_vocabulary(lm):
    from bci_app.speller.lm import LanguageModel

    own = LanguageModel(words={"hello": 1e-3, "help": 5e-4, "world": 1e-3})
    assert own.vocabulary_size == 3
    before = own.char_prob("zor", "b")
    assert own.completions("zor") == []
    assert own.add_words(["Zorblax", "zorblaxian"]) == 2
    assert next(w for w, _ in own.completions("zor")) == "zorblax"
    assert own.char_prob("zor", "b") > 5 * before
    assert own.add_text("Zorblax, hello zorblax.") == 3
    assert own.word_frequency("zorblax") > own.word_frequency("zorblaxian")
    with pytest.raises(ConfigError, match="outside the speller's alphabet"):
        own.add_words(["naïve"])


def test_other_language_and_errors():
    de = LanguageModel("de", n_words=3000)
    assert "ü" in de.symbols and " " in de.symbols
    assert de.symbols[int(np.argmax(de.next_char_probs("sc")))] == "h"
    with pytest.raises(ConfigError, match="wordfreq has no word list"):
        LanguageModel("xx")
    with pytest.raises(ConfigError, match="order"):
        LanguageModel(words={"a": 1.0}, order=0)
    uni = UniformModel()
    assert np.allclose(uni.next_char_probs("abc"), 1 / len(uni.symbols))
