"""The speller engine: a state machine from commands to text (no Qt, no threads, no clock).

State: the text written so far, the current layout (a tree of :class:`~.trees.Node` rebuilt from
the language model after every selection), the node the user has reached inside it, and the
history of selections (for undo). Input: :meth:`SpellerEngine.command` with a command label
(e.g. the decoder class ``"left"``) or a command index. Output: :class:`SpellerEvent` objects
(returned, kept in :attr:`SpellerEngine.events`, and passed to listeners).

Items a selection can produce (:class:`Item`):

* ``char``: one symbol of the language model's alphabet (space and punctuation included);
* ``word``: a word completion (the rest of the word plus a space), top-``completions`` of the
  language model for the current prefix;
* ``undo``: takes back the last selection (a letter or a whole completed word). With only two
  commands undo is a leaf of the layout with a reserved probability ``undo_weight``; with a
  third command mapped to ``"undo"`` it is a command: in the middle of a selection it cancels the
  selection (back to the root), at the root it undoes the last selection.

Layout weights at the root: characters ``P(c | text)`` scaled to ``1 - undo - completions``,
completions ``completion_weight * P(word | prefix)`` (together at most ``max_completion_mass``),
undo ``undo_weight`` (only when there is something to undo). The layout is the k-ary Huffman
tree of these weights (``scheme="huffman"``, k = number of choice commands), a Hex-o-Spell-like
ring layout (``scheme="scan"``, commands 0 = next, 1 = select), see :mod:`.trees`, or the
noisy-channel scheme ``scheme="posterior"``.

Why a posterior scheme
----------------------
In a tree every command is final: a letter at depth d comes out right with probability
``accuracy**d``, and undo itself costs commands that can fail. At 80 % command accuracy and
2.7 commands per letter (Huffman with the language model) more than 45 % of selections are wrong
and undo (4-5 commands deep) fails about as often as it works: the text never converges
(measured in ``bench/bench_speller.py``). The posterior scheme treats every command as a noisy
answer to "is your symbol in group i?" (probabilistic bisection, Horstein 1963; the same
idea as Bayesian BCI typing interfaces such as RSVP Keyboard, Orhan et al. 2012): the items'
probabilities start at the language model's and are multiplied by ``accuracy`` for the chosen
group and ``(1 - accuracy) / (k - 1)`` for the others; the groups are re-split to equal
probability after each command; an item is selected when its probability reaches
``confidence`` by a command for a group holding it alone (so a likely item that merely shared
the chosen group with the intended one is never selected by accident). A wrong command only costs time, not a wrong letter, and the language model's
prior makes likely letters need few commands. With ``accuracy`` set to the user's measured
command accuracy the scheme adapts its number of commands per letter to the channel.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from bci_app.errors import ConfigError

from .lm import LanguageModel, UniformModel
from .trees import Node, huffman_tree, path_to, scan_tree

logger = logging.getLogger(__name__)

#: Default mapping of decoder classes to speller commands (two-class left/right imagery).
DEFAULT_COMMAND_MAP = {"left": 0, "right": 1}
UNDO = "undo"

#: Command accuracy the posterior scheme assumes when the model has no measured one.
DEFAULT_ACCURACY = 0.8
#: Most of a measured (cross-validated) accuracy the speller trusts: a calibration's
#: cross-validated accuracy is optimistic online (measured: S007 100 % CV -> 79 % online).
MAX_TRUSTED_ACCURACY = 0.9


def assumed_accuracy(measured: float | None, n_choice: int = 2) -> float:
    """The command accuracy the posterior scheme assumes for a model (``bci-app spell``
    without ``--accuracy``, and the GUI's speller).

    The model's measured accuracy capped at :data:`MAX_TRUSTED_ACCURACY`, else
    :data:`DEFAULT_ACCURACY`; then at least a little above chance (``1 / n_choice + 0.05``) and
    at most 0.97 (one command is never final).

    Parameters
    ----------
    measured : float | None
        The user's cross-validated accuracy, a fraction; None (or not a finite number) when
        unknown.
    n_choice : int
        Choice commands of the speller (its engine's ``arity``).
    """
    if measured is not None and not math.isfinite(float(measured)):
        measured = None
    acc = min(measured or DEFAULT_ACCURACY, MAX_TRUSTED_ACCURACY)
    return min(max(acc, 1.0 / n_choice + 0.05), 0.97)


def assumed_accuracy_note(acc: float, measured: float | None, origin: str,
                          unknown: str = "no measured accuracy for this model") -> str:
    """Why the speller assumes ``acc`` (:func:`assumed_accuracy` of ``measured``), in words:
    ``origin`` names where ``measured`` comes from; ``unknown`` is said when there is none."""
    def pct(x: float) -> str:
        return f"{100 * x:.0f} %"

    if measured is None:
        return f"{unknown}: the default {pct(DEFAULT_ACCURACY)}"
    if acc < measured:
        return (f"{origin} is {pct(measured)}, trusted up to {pct(MAX_TRUSTED_ACCURACY)}: "
                "cross-validation is optimistic online")
    if acc > measured:
        return f"{origin} is {pct(measured)}, raised to just above chance"
    return f"{origin}, {pct(measured)}"


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class Item:
    """Something a selection writes: ``kind`` is ``"char"``, ``"word"`` or ``"undo"`` (and
    ``"clear"`` in the history, for :meth:`SpellerEngine.clear`)."""

    kind: str
    value: str = ""

    @property
    def label(self) -> str:
        """Short display text: ``␣`` for space, ``word…`` for completions, ``⌫`` for undo,
        ``◌ि`` for a combining mark (a vowel sign shown on a dotted circle, not on whatever
        precedes it in the layout)."""
        if self.kind == "undo":
            return "⌫"
        if self.kind == "clear":
            return "⌧"
        if self.kind == "word":
            return self.value + "…"
        if self.value == " ":
            return "␣"
        if len(self.value) == 1 and unicodedata.category(self.value).startswith("M"):
            return "\u25cc" + self.value
        return self.value


@dataclass(frozen=True)
class SpellerEvent:
    """What one command did.

    ``kind``: ``"move"`` (went one level down), ``"select"`` (an item was chosen and written),
    ``"undo"`` (the last selection was taken back), ``"cancel"`` (explicit undo command in the
    middle of a selection), ``"ignored"`` (no such command at this node), ``"clear"`` (the text
    was cleared by :meth:`SpellerEngine.clear`, not a command).
    """

    kind: str
    command: int | str
    text: str
    item: Item | None = None
    t: float | None = None
    n_commands: int = 0


@dataclass(frozen=True)
class Option:
    """One command's option at the current node: where it leads (for display)."""

    command: int
    label: str  # "" for a Huffman group; "next" / "select" for the scan layout
    items: tuple[Item, ...]
    weight: float


@dataclass
class _Selection:
    text_before: str
    item: Item


class SpellerEngine:
    """Text entry with a few discrete commands and a language model.

    Parameters
    ----------
    lm : LanguageModel | UniformModel | None
        Next-character model and completions (None: :class:`~.lm.UniformModel`, the
        no-language-model baseline, which also turns completions off).
    command_map : mapping str -> int | "undo"
        Decoder class name -> command index (0..k-1) or ``"undo"``. Default
        ``{"left": 0, "right": 1}``. The number of distinct indices is the tree's arity ``k``.
    scheme : "huffman" | "scan" | "posterior"
    accuracy : float
        Posterior scheme: the assumed probability that a command is the one the user meant
        (the calibrated decoder's accuracy), in (1/k, 1).
    confidence : float
        Posterior scheme: probability at which an item is selected, in (0.5, 1).
    completions : int
        Word completions offered per layout (0: none).
    completion_weight : float
        Multiplies a completion's ``P(word | prefix)`` in the layout weights.
    max_completion_mass : float
        Cap on the completions' total layout weight.
    undo_weight : float
        Layout weight of the undo leaf (two-command maps only), in (0, 0.5).
    n_groups : int
        Groups of the scan layout (6 = Hex-o-Spell's hexagons).
    text : str
        Initial text.
    """

    def __init__(self, lm: LanguageModel | UniformModel | None = None, *,
                 command_map: Mapping[str, int | str] | None = None, scheme: str = "huffman",
                 completions: int = 3, completion_weight: float = 1.0,
                 max_completion_mass: float = 0.5, undo_weight: float = 0.05,
                 n_groups: int = 6, accuracy: float = 0.85, confidence: float = 0.9,
                 text: str = "") -> None:
        self.lm = lm if lm is not None else UniformModel()
        cmap = dict(DEFAULT_COMMAND_MAP if command_map is None else command_map)
        idx = sorted({v for v in cmap.values() if v != UNDO})
        bad = [v for v in cmap.values() if v != UNDO and not (isinstance(v, int) and v >= 0)]
        if bad or idx != list(range(len(idx))) or len(idx) < 2:
            raise ConfigError(
                f"command_map: expected class -> command index 0..k-1 (k >= 2, no gaps) or "
                f"'undo', got {cmap}. Example: {{'left': 0, 'right': 1, 'feet': 'undo'}}."
            )
        self.command_map = cmap
        self.arity = len(idx)
        self.undo_command = UNDO in cmap.values()
        if scheme not in ("huffman", "scan", "posterior"):
            raise ConfigError(f"scheme: expected 'huffman', 'scan' or 'posterior', got {scheme!r}.")
        if not 1.0 / self.arity < accuracy < 1:
            raise ConfigError(f"accuracy: expected in (1/{self.arity}, 1), got {accuracy!r}.")
        if not 0.5 < confidence < 1:
            raise ConfigError(f"confidence: expected in (0.5, 1), got {confidence!r}.")
        self.accuracy, self.confidence = float(accuracy), float(confidence)
        if scheme == "scan" and self.arity != 2:
            raise ConfigError(
                f"scheme='scan' uses exactly two choice commands (0 = next, 1 = select); the "
                f"command_map has {self.arity}. Use scheme='huffman' for 3-4 commands."
            )
        self.scheme = scheme
        if not 0 < undo_weight < 0.5:
            raise ConfigError(f"undo_weight: expected in (0, 0.5), got {undo_weight!r}.")
        if completions < 0 or completion_weight < 0 or not 0 <= max_completion_mass < 0.9:
            raise ConfigError(
                "completions, completion_weight: expected >= 0; max_completion_mass in [0, 0.9); "
                f"got {completions}, {completion_weight}, {max_completion_mass}."
            )
        if not self.undo_command and max_completion_mass + undo_weight >= 1:
            # the letters get 1 - completions - undo of the layout: it must stay positive
            raise ConfigError(
                f"max_completion_mass + undo_weight: expected < 1 (the rest of the layout is the "
                f"letters'), got {max_completion_mass} + {undo_weight}. Fix: lower either.")
        self.n_completions = int(completions) if not isinstance(self.lm, UniformModel) else 0
        self.completion_weight = float(completion_weight)
        self.max_completion_mass = float(max_completion_mass)
        self.undo_weight = float(undo_weight)
        self.n_groups = int(n_groups)
        self.symbols = self.lm.symbols
        self._listeners: list[Callable[[SpellerEvent], None]] = []
        self.reset(text)

    # ------------------------------------------------------------------ state
    def reset(self, text: str = "") -> None:
        """Start over with ``text`` (history, counters and events cleared)."""
        self.text = text
        self.initial_text = text
        self.history: list[_Selection] = []
        self.events: list[SpellerEvent] = []
        self.n_commands = 0
        self.n_selections = 0
        self.n_undos = 0
        self.t_first: float | None = None
        self.t_last: float | None = None
        self._rebuild()

    def add_listener(self, callback: Callable[[SpellerEvent], None]) -> None:
        """``callback(event)`` after every command (same thread as :meth:`command`)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[SpellerEvent], None]) -> None:
        self._listeners.remove(callback)

    def layout_weights(self) -> tuple[list[Item], np.ndarray]:
        """Items of the next layout and their weights (sum 1), from the language model."""
        p = np.asarray(self.lm.next_char_probs(self.text), dtype=float)
        items = [Item("char", c) for c in self.symbols]
        weights = list(p)
        comp_items, comp_w = [], []
        if self.n_completions:
            for word, q in self.lm.completions(self.text, self.n_completions):
                comp_items.append(Item("word", word))
                comp_w.append(self.completion_weight * q)
        cm = float(sum(comp_w))
        if cm > self.max_completion_mass:
            comp_w = [w * self.max_completion_mass / cm for w in comp_w]
            cm = self.max_completion_mass
        undo = self.undo_weight if (self.history or self.text) and not self.undo_command else 0.0
        w = np.array(weights) / max(p.sum(), 1e-12) * (1.0 - cm - undo)
        items += comp_items
        w = np.concatenate([w, comp_w])
        if undo:
            items.append(Item("undo"))
            w = np.append(w, undo)
        return items, w / w.sum()

    def _rebuild(self) -> None:
        items, w = self.layout_weights()
        self.path: list[int] = []
        if self.scheme == "posterior":
            self._items, self._prior = items, w
            self.posterior = w.copy()
            self._split()
            return
        if self.scheme == "huffman":
            self.root = huffman_tree(items, w, self.arity)
        else:
            self.root = scan_tree(items, w, self.n_groups)
        self.node = self.root

    def _split(self) -> None:
        """Posterior scheme: deal the items into ``arity`` groups of about equal probability
        (most probable first, each to the lightest group) and show them as a one-level tree."""
        groups: list[list[int]] = [[] for _ in range(self.arity)]
        mass = np.zeros(self.arity)
        for j in np.argsort(-self.posterior, kind="stable"):
            g = int(np.argmin(mass))
            groups[g].append(int(j))
            mass[g] += self.posterior[j]
        self._groups = groups
        self.root = Node(children=[
            Node(children=[Node(item=self._items[j], weight=float(self.posterior[j]))
                           for j in g], weight=float(m)) for g, m in zip(groups, mass)
        ], weight=1.0)
        self.node = self.root

    def _posterior_command(self, action: int, command, t) -> SpellerEvent:
        lik = np.full(len(self._items), (1 - self.accuracy) / (self.arity - 1))
        lik[self._groups[action]] = self.accuracy
        post = self.posterior * lik
        self.posterior = post / post.sum()
        self.path.append(action)
        best = int(np.argmax(self.posterior))
        # select only an item the user confirmed on its own (alone in the chosen group): a
        # likely item that shared the group with the intended one is never selected by accident
        if self.posterior[best] >= self.confidence and self._groups[action] == [best]:
            return self._select(self._items[best], command, t)
        self._split()
        return SpellerEvent("move", command, self.text, None, t, self.n_commands)

    @property
    def selection_progress(self) -> float:
        """How far the current selection is, in [0, 1]: 0 until a command was given in this
        selection (every selection starts at 0, whatever the language model expects).

        Posterior scheme: the evidence the commands so far gave the most probable item, in
        log-odds from its prior to ``confidence`` (1 when it reached ``confidence``; each
        command that confirms it adds about the same step). Trees: the fraction of the way down
        (depth so far / depth of the most likely remaining item).
        """
        if not self.path:
            return 0.0
        if self.scheme == "posterior":
            best = int(np.argmax(self.posterior))
            post, prior = float(self.posterior[best]), float(self._prior[best])
            if post >= self.confidence:
                return 1.0
            if prior >= self.confidence:  # it was there already and lost evidence since
                return 0.0
            gained = _logit(post) - _logit(prior)
            return float(min(1.0, max(0.0, gained / (_logit(self.confidence) - _logit(prior)))))
        rest = path_to(self.node, lambda it: True) or []
        return len(self.path) / (len(self.path) + len(rest))

    # ------------------------------------------------------------------ commands
    def resolve(self, command: int | str) -> int | str:
        """A class label or index -> command index or ``"undo"`` (ConfigError if unknown)."""
        if isinstance(command, str):
            if command in self.command_map:
                return self.command_map[command]
            if command == UNDO and self.undo_command:
                return UNDO
            raise ConfigError(
                f"command: {command!r} is not mapped; known labels {sorted(self.command_map)}."
            )
        if isinstance(command, (int, np.integer)) and 0 <= command < self.arity:
            return int(command)
        raise ConfigError(f"command: expected a label or an index in 0..{self.arity - 1}, "
                          f"got {command!r}.")

    def command(self, command: int | str, t: float | None = None) -> SpellerEvent:
        """Apply one command (a class label from the decoder, an index, or ``"undo"``).

        ``t`` (seconds, any clock) is used for chars/min; it never drives the state machine.
        """
        action = self.resolve(command)
        self.n_commands += 1
        if t is not None:
            self.t_first = t if self.t_first is None else self.t_first
            self.t_last = t
        if action == UNDO:
            if self.path and self.scheme == "posterior":
                self.posterior = self._prior.copy()
                self.path = []
                self._split()
                ev = SpellerEvent("cancel", command, self.text, None, t, self.n_commands)
            elif self.path:
                self._rebuild_same()
                ev = SpellerEvent("cancel", command, self.text, None, t, self.n_commands)
            else:
                ev = self._undo(command, t)
            return self._emit(ev)
        if self.scheme == "posterior":
            return self._emit(self._posterior_command(action, command, t))
        if action >= len(self.node.children):
            return self._emit(SpellerEvent("ignored", command, self.text, None, t,
                                           self.n_commands))
        child = self.node.children[action]
        if child.is_leaf:
            return self._emit(self._select(child.item, command, t))
        self.node = child
        self.path.append(action)
        return self._emit(SpellerEvent("move", command, self.text, None, t, self.n_commands))

    def _rebuild_same(self) -> None:
        self.node = self.root
        self.path = []

    def _select(self, item: Item, command, t) -> SpellerEvent:
        if item.kind == "undo":
            return self._undo(command, t)
        before = self.text
        if item.kind == "char":
            self.text += item.value
        else:
            word = LanguageModel.current_word(self.text)
            self.text += item.value[len(word):] + " "
        self.history.append(_Selection(before, item))
        self.n_selections += 1
        self._rebuild()
        return SpellerEvent("select", command, self.text, item, t, self.n_commands)

    def _undo(self, command, t) -> SpellerEvent:
        self.n_selections += 1
        self.n_undos += 1
        if self.history:
            self.text = self.history.pop().text_before
        else:
            self.text = self.text[:-1]
        self._rebuild()
        return SpellerEvent("undo", command, self.text, Item("undo"), t, self.n_commands)

    def undo(self, t: float | None = None) -> SpellerEvent:
        """Take back the last selection directly (a keyboard/GUI undo; not counted as a
        command)."""
        return self._emit(self._undo(UNDO, t))

    def clear(self, t: float | None = None) -> SpellerEvent:
        """Clear the text directly (the GUI's Clear button; not counted as a command).

        Unlike :meth:`reset` it is undoable: the text before goes into the history like a
        selection, so the next undo (:meth:`undo` or an undo command) restores it exactly, and
        the selections before it stay undoable. Counters and rates go on. A selection in
        progress starts over. Returns the ``"clear"`` event (passed to the listeners).
        """
        if self.text:
            self.history.append(_Selection(self.text, Item("clear")))
            self.text = ""
        self._rebuild()
        return self._emit(SpellerEvent("clear", "clear", self.text, Item("clear"), t,
                                       self.n_commands))

    def _emit(self, ev: SpellerEvent) -> SpellerEvent:
        self.events.append(ev)
        for cb in list(self._listeners):
            try:
                cb(ev)
            except Exception:
                logger.exception("Speller listener %r failed", cb)
        return ev

    # ------------------------------------------------------------------ views
    def options(self) -> list[Option]:
        """Where each command leads from the current node (for display)."""
        out = []
        for i, child in enumerate(self.node.children):
            if self.scheme == "scan":
                label = "next" if i == 0 else "select"
                items = (child.item,) if child.is_leaf else (
                    () if i == 0 else tuple(child.leaves()))
                if i == 1 and not child.is_leaf and child.label == "back":
                    label = "back"
                out.append(Option(i, label, items, child.weight))
            else:
                out.append(Option(i, "", tuple(child.leaves()) if not child.is_leaf
                                  else (child.item,), child.weight))
        return out

    def candidates(self) -> list[Item]:
        """Items still reachable from the current node."""
        return self.node.leaves()

    def path_to(self, goal: Callable[[Item], bool]) -> list[int] | None:
        """Shortest command-index sequence from the current node to an item satisfying
        ``goal`` (None when the current subtree has no such item). Posterior scheme: the one
        command whose group holds the most probable such item (every item is always in some
        group)."""
        if self.scheme == "posterior":
            best = None
            for g, members in enumerate(self._groups):
                for j in members:
                    if goal(self._items[j]) and (best is None or
                                                 self.posterior[j] > self.posterior[best[1]]):
                        best = (g, j)
            return None if best is None else [best[0]]
        return path_to(self.node, goal)

    def stats(self, seconds_per_command: float | None = None) -> dict:
        """Counts and rates. ``chars`` counts the characters beyond the initial text;
        ``chars_per_min`` uses ``seconds_per_command`` when given, else the times passed to
        :meth:`command` (first to last; NaN before two timed commands)."""
        if seconds_per_command is not None:
            minutes = self.n_commands * seconds_per_command / 60.0
        elif self.t_first is not None and self.t_last is not None and self.t_last > self.t_first:
            minutes = (self.t_last - self.t_first) / 60.0
        else:
            minutes = 0.0
        # characters written here: the text beyond what it started with
        n = max(0, len(self.text) - len(self.initial_text))
        return {
            "text": self.text, "chars": n, "commands": self.n_commands,
            "selections": self.n_selections, "undos": self.n_undos,
            "commands_per_char": self.n_commands / max(1, n),
            "chars_per_min": n / minutes if minutes > 0 else float("nan"),
        }


__all__ = ["DEFAULT_COMMAND_MAP", "UNDO", "Item", "Option", "SpellerEngine", "SpellerEvent"]
