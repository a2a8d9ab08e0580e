"""Text entry by motor imagery: a speller engine driven by a few decoder commands and a language
model (no Qt).

* :mod:`.lm`: next-character probabilities and word completions from wordfreq word frequencies
  (word unigram + character n-gram, Witten-Bell), user vocabulary;
* :mod:`.trees`: selection layouts (k-ary Huffman tree, Hex-o-Spell-like rings);
* :mod:`.engine`: the state machine (commands -> text, undo, completions, events);
* :mod:`.control`: decoder predictions -> commands (threshold, dwell, refractory);
* :mod:`.simulation`: simulated users (confusion matrix) and the closed loop with real EEG.
"""

from .control import SpellerInput
from .engine import DEFAULT_COMMAND_MAP, Item, Option, SpellerEngine, SpellerEvent
from .lm import LanguageModel, UniformModel
from .simulation import (
    SimulatedUser,
    SimulationResult,
    closed_loop,
    confusion_from_accuracy,
    simulate,
)

__all__ = ["DEFAULT_COMMAND_MAP", "Item", "LanguageModel", "Option", "SimulatedUser",
           "SimulationResult", "SpellerEngine", "SpellerEvent", "SpellerInput", "UniformModel",
           "closed_loop", "confusion_from_accuracy", "simulate"]
