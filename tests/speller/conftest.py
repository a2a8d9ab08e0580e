"""Shared speller fixtures: the English language model is built once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def lm():
    from bci_app.speller.lm import LanguageModel

    return LanguageModel("en", n_words=20000)

