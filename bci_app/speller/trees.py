"""Selection layouts: which commands lead to which symbol.

A layout is a graph of :class:`Node` objects. An inner node has one child per command index
(``children[i]`` is where command ``i`` leads); a leaf holds an item (a letter, a word
completion, undo). Two builders:

:func:`huffman_tree` (default)
    A k-ary Huffman code over the items' probabilities (k = number of choice commands, 2 for
    left/right imagery). Each command splits the remaining candidates into k groups of about
    equal probability, so a symbol of probability p costs about ``-log_k p`` commands: the
    minimum expected number of commands per selection for a prefix code (Huffman 1952), and the
    fewer commands a symbol needs, the fewer chances a decoding error has to spoil it. Errors are
    recovered by the **undo** leaf, which is given a reserved probability (``undo_weight``) so it
    is always a few commands away (depth ~ -log2(undo_weight): 4-5 commands at 5 %).

:func:`scan_tree` (Hex-o-Spell-like, 2 commands: 0 = "next", 1 = "select")
    Items sorted by probability are dealt into ``n_groups`` groups (6 hexagons in Hex-o-Spell,
    Blankertz et al. 2006); the pointer rotates over the groups ("next") and "select" opens a
    group, where it rotates over the group's items plus a "back" entry. The rings are cycles: a
    "next" too many costs one more round, never a wrong letter. This is robust to missed
    "select" commands (an asynchronous user who does nothing only waits) but needs more commands
    per letter than the Huffman tree at the same accuracy; ``bench/bench_speller.py`` measures
    both.

Ties are broken by the items' order (deterministic layouts: the same text always gives the same
tree, so a user can learn it).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bci_app.errors import ConfigError


@dataclass(eq=False)
class Node:
    """A layout node: ``item`` for a leaf, ``children`` (index = command) otherwise.

    ``weight`` is the probability mass below the node; ``label`` an optional display name
    (``"next"``, ``"back"``, a group name).
    """

    item: Any = None
    children: list[Node] = field(default_factory=list)
    weight: float = 0.0
    label: str = ""

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def leaves(self) -> list[Any]:
        """Items reachable from this node (each once, in traversal order; cycles are safe)."""
        out, seen, stack = [], set(), [self]
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            if n.is_leaf:
                if n.item is not None:
                    out.append(n.item)
            else:
                stack.extend(reversed(n.children))
        return out


def huffman_tree(items: Sequence[Any], weights: Sequence[float], arity: int = 2) -> Node:
    """k-ary Huffman tree over ``items`` with probabilities ``weights``.

    Children of every node are sorted by weight, heaviest first (command 0 leads to the more
    likely half). Zero weights are allowed (such items end up deepest).

    Raises
    ------
    ConfigError
        ``arity < 2``, no items, or ``weights`` of another length or negative.
    """
    if arity < 2:
        raise ConfigError(f"arity: expected >= 2 commands, got {arity}.")
    w = np.asarray(weights, dtype=float)
    if len(items) == 0 or w.shape != (len(items),) or (w < 0).any():
        raise ConfigError(
            f"huffman_tree: expected one non-negative weight per item, got {len(items)} items "
            f"and weights of shape {w.shape}."
        )
    if len(items) == 1:
        return Node(children=[Node(item=items[0], weight=float(w[0]))], weight=float(w[0]))
    heap: list[tuple[float, int, Node | None]] = [
        (float(wi), i, Node(item=it, weight=float(wi))) for i, (it, wi) in enumerate(zip(items, w))
    ]
    counter = len(heap)
    # pad so that every merge takes exactly `arity` nodes: (n - 1) % (arity - 1) == 0
    while (len(heap) - 1) % (arity - 1):
        heap.append((0.0, -1 - counter, None))  # dummies sort first among zero weights
        counter += 1
    heapq.heapify(heap)
    while len(heap) > 1:
        group = [heapq.heappop(heap) for _ in range(arity)]
        kids = [n for _, _, n in group if n is not None]
        kids.sort(key=lambda n: -n.weight)  # stable: ties keep their (heap) order
        total = sum(g[0] for g in group)
        node = Node(children=kids, weight=total) if len(kids) > 1 else kids[0]
        heapq.heappush(heap, (total, counter, node))
        counter += 1
    root = heap[0][2]
    if root.is_leaf:
        root = Node(children=[root], weight=root.weight)
    return root


def scan_tree(items: Sequence[Any], weights: Sequence[float], n_groups: int = 6) -> Node:
    """Hex-o-Spell-like two-level ring layout for the commands 0 = "next", 1 = "select".

    Items sorted by weight (heaviest first) are dealt into at most ``n_groups`` groups, in
    rank order, ``ceil(n / n_groups)`` per group, so the first group holds the most likely items
    and the pointer starts on it; inside a group the pointer starts on the most likely item and
    the ring ends with a "back" entry to the group ring.
    """
    if n_groups < 1:
        raise ConfigError(f"n_groups: expected >= 1, got {n_groups}.")
    w = np.asarray(weights, dtype=float)
    if len(items) == 0 or w.shape != (len(items),):
        raise ConfigError("scan_tree: expected one weight per item.")
    order = np.argsort(-w, kind="stable")
    per = int(np.ceil(len(items) / n_groups))
    groups = [order[i:i + per] for i in range(0, len(items), per)]

    def ring(entries: list[tuple[Node, float, str]]) -> Node:
        """Cycle of pointer positions; position j: next -> j+1 (wraps), select -> entry j."""
        pos = [Node(label=lab, weight=wt) for _, wt, lab in entries]
        for j, (target, _, _) in enumerate(entries):
            pos[j].children = [pos[(j + 1) % len(pos)], target]
        return pos[0]

    top_entries: list[tuple[Node, float, str]] = []
    group_heads = []
    for gi, g in enumerate(groups):
        leaves = [(Node(item=items[int(i)], weight=float(w[i])), float(w[i]), "") for i in g]
        gw = float(sum(x[1] for x in leaves))
        back = Node(label="back")  # placeholder, pointed at the top ring below
        head = ring(leaves + [(back, 0.0, "back")])
        group_heads.append((back, head))
        top_entries.append((head, gw, f"group {gi + 1}"))
    top = ring(top_entries)
    for back, _ in group_heads:  # "back" selects the top ring again: make it an alias
        back.children = top.children
        back.label = "back"
        back.weight = top.weight
    return top


def path_to(root: Node, goal: Callable[[Any], bool], max_depth: int = 64) -> list[int] | None:
    """Shortest command sequence from ``root`` to a leaf whose item satisfies ``goal``.

    Breadth-first over the (possibly cyclic) layout; None when no such leaf is reachable.
    """
    if root.is_leaf:
        return [] if goal(root.item) else None
    queue: deque[tuple[Node, list[int]]] = deque([(root, [])])
    seen = {id(root.children)}  # aliases ("back") share their children list with another node
    while queue:
        node, path = queue.popleft()
        if len(path) >= max_depth:
            continue
        for i, child in enumerate(node.children):
            if child.is_leaf:
                if child.item is not None and goal(child.item):
                    return path + [i]
                continue
            key = id(child.children)
            if key in seen:
                continue
            seen.add(key)
            queue.append((child, path + [i]))
    return None


def depths(root: Node) -> dict[int, int]:
    """{id(item): depth} for a tree layout (the Huffman code lengths)."""
    out: dict[int, int] = {}
    stack = [(root, 0)]
    while stack:
        n, d = stack.pop()
        if n.is_leaf:
            out[id(n.item)] = d
        else:
            stack.extend((c, d + 1) for c in n.children)
    return out


__all__ = ["Node", "depths", "huffman_tree", "path_to", "scan_tree"]
