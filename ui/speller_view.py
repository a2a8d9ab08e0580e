"""Speller view: the layout, the text being written, the selection's progress and chars/min.

:class:`SpellerView` shows a :class:`bci_app.speller.engine.SpellerEngine` and drives it from
decoder predictions. It holds no speller logic: the engine is the state machine, and a
:class:`bci_app.speller.control.SpellerInput` turns predictions into commands (threshold, dwell,
refractory). Predictions reach :meth:`SpellerView.on_prediction` in the GUI thread (connect it
to :attr:`ui.qt_bridge.PredictionBridge.predicted`, a queued signal), so the engine is only ever
used from the GUI thread.

Hook for the main window::

    view = SpellerView(SpellerEngine(LanguageModel("en")))
    dock.setWidget(view)
    prediction_bridge.predicted.connect(view.on_prediction)
    dock.visibilityChanged.connect(view.set_active)  # a closed speller does not write

Layout of the widget: the text (large, with a cursor) on top; below it one box per command
(the class that issues it, e.g. "left", and the symbols that command leads to, most likely
first); then the selection progress (how far the current selection is), the dwell progress of
the class currently above threshold, and a status line (commands, selections, undos, chars/min).
"""

from __future__ import annotations

import math
import time

from PySide6 import QtCore, QtWidgets

from bci_app.errors import ConfigError
from bci_app.speller.control import SpellerInput
from bci_app.speller.engine import SpellerEngine, SpellerEvent

from .controls import VerticalScroll
from .prediction import CLASS_COLOURS

#: Symbols shown per command box before an ellipsis.
MAX_ITEMS = 16


class SpellerView(QtWidgets.QWidget):
    """A QWidget showing and driving a speller engine.

    Parameters
    ----------
    engine : SpellerEngine
    parent : QWidget | None
    threshold, dwell, refractory : float
        Command rule applied to the smoothed predictions (see
        :class:`~bci_app.speller.control.SpellerInput`); the input is created on the first
        prediction, when the decoder's classes are known (or now, with ``classes``).
    classes : sequence of str | None

    Signals
    -------
    textChanged(str)
        After every command (or Undo / Clear) that changed the text.

    Notes
    -----
    While inactive (:meth:`set_active`, e.g. the dock holding the view is closed) predictions
    are ignored: a hidden speller never writes words nobody chose.
    """

    textChanged = QtCore.Signal(str)

    def __init__(self, engine: SpellerEngine, parent: QtWidgets.QWidget | None = None, *,
                 threshold: float = 0.7, dwell: float = 1.0, refractory: float = 1.5,
                 classes=None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._rule = {"threshold": threshold, "dwell": dwell, "refractory": refractory}
        self.input: SpellerInput | None = None
        self._refused: tuple[str, ...] | None = None  # classes whose model the map does not fit
        self._last_text = engine.text
        self._active = True

        self.text_label = QtWidgets.QLabel()
        self.text_label.setObjectName("spellerText")
        self.text_label.setWordWrap(True)
        self.text_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.text_label.font()
        font.setPointSize(max(18, font.pointSize() * 2))
        self.text_label.setFont(font)
        self.text_label.setMinimumHeight(60)

        self.boxes_layout = QtWidgets.QHBoxLayout()
        self._boxes: list[tuple[QtWidgets.QGroupBox, QtWidgets.QLabel]] = []

        self.selection_bar = QtWidgets.QProgressBar()
        self.selection_bar.setRange(0, 1000)
        self.selection_bar.setFormat("selection %p%")
        self.dwell_bar = QtWidgets.QProgressBar()
        self.dwell_bar.setRange(0, 1000)
        self.hint = QtWidgets.QLabel(self.hint_text())
        self.hint.setObjectName("spellerHint")
        self.hint.setWordWrap(True)
        self.dwell_bar.setToolTip(self.hint.text())
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)  # a narrow dock wraps the counts instead of widening
        self.undo_button = QtWidgets.QPushButton("Undo")
        self.clear_button = QtWidgets.QPushButton("Clear")
        self.undo_button.clicked.connect(self._undo_clicked)
        self.clear_button.clicked.connect(self._clear_clicked)

        bars = QtWidgets.QHBoxLayout()
        bars.addWidget(self.selection_bar, 2)
        bars.addWidget(self.dwell_bar, 1)
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.undo_button)
        bottom.addWidget(self.clear_button)
        #: What the view shows, in a vertical scroll area: a short dock (a small screen) scrolls
        #: it instead of squeezing and clipping its word-wrapped lines.
        self.content = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(self.content)
        lay.addWidget(self.text_label)
        lay.addLayout(self.boxes_layout, 1)
        lay.addWidget(self.hint)
        lay.addLayout(bars)
        lay.addLayout(bottom)
        self.scroll = VerticalScroll(self.content)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)

        if classes is not None:
            self._make_input(tuple(classes))
        engine.add_listener(self._on_event)
        self.refresh()
        # the bars' texts stay whole in a narrow dock
        fm = self.dwell_bar.fontMetrics()
        self.dwell_bar.setMinimumWidth(fm.horizontalAdvance(self.dwell_bar.format()) + 24)
        self.selection_bar.setMinimumWidth(fm.horizontalAdvance("selection 100 %") + 24)

    def needed_height(self) -> int:
        """Height (px) at which everything shows without scrolling, at the current width."""
        c = self.content
        width = self.scroll.viewport().width()
        hfw = c.heightForWidth(width) if c.hasHeightForWidth() and width > 0 else -1
        return max(hfw, c.sizeHint().height()) + 2 * self.scroll.frameWidth()

    # ------------------------------------------------------------------ input
    def _make_input(self, classes: tuple[str, ...]) -> None:
        self.input = SpellerInput(self.engine, classes, **self._rule)

    @property
    def active(self) -> bool:
        """Whether predictions drive the speller (see :meth:`set_active`)."""
        return self._active

    @QtCore.Slot(bool)
    def set_active(self, active: bool) -> None:
        """Let predictions drive the speller (True, the default) or ignore them (False).

        GUI thread; connect e.g. the dock's ``visibilityChanged``. Deactivating interrupts a
        dwell in progress (the refractory period after the last command still holds), so
        reactivating never completes a command on evidence from before."""
        active = bool(active)
        if active == self._active:
            return
        self._active = active
        if not active and self.input is not None:
            self.input.interrupt()
        self._update_dwell()

    @QtCore.Slot(object)
    def on_prediction(self, pred) -> None:
        """Feed one decoder prediction (GUI thread; connect to PredictionBridge.predicted).

        Ignored while the view is inactive (:meth:`set_active`). A model with other classes
        (the user loaded another bundle) gets a new input: its dwell starts from nothing. When
        the speller's command map does not fit the model's classes, the hint line says so and
        the predictions are ignored until a model that fits."""
        if not self._active:
            return
        classes = tuple(pred.classes)
        if self.input is None or self.input.classes != classes:
            if classes == self._refused:
                return
            try:
                self._make_input(classes)
            except ConfigError as err:
                self.input, self._refused = None, classes
                self.hint.setText(f"The speller cannot use this model: {err}")
                self.hint.setStyleSheet("color: #d04040;")
                self._update_dwell()
                return
            if self._refused is not None:
                self._refused = None
                self.hint.setText(self.hint_text())
                self.hint.setStyleSheet("")
        self.input.on_prediction(pred)
        self._update_dwell()

    def command(self, label) -> SpellerEvent:
        """Apply a command directly (keyboard/mouse fallback, demos)."""
        return self.engine.command(label, t=time.monotonic())

    def _undo_clicked(self) -> None:
        self.engine.undo(t=time.monotonic())

    def _clear_clicked(self) -> None:
        # undoable (the engine keeps the text in its history); the event refreshes the view
        # and emits textChanged("")
        self.engine.clear(t=time.monotonic())

    def _on_event(self, ev: SpellerEvent) -> None:
        self.refresh()
        if ev.text != self._last_text:
            self._last_text = ev.text
            self.textChanged.emit(ev.text)

    def hint_text(self) -> str:
        """How to select, from the command map and the rule the input applies.

        E.g. "Imagine LEFT or RIGHT until the dwell bar fills: ≥ 70 % for 1.0 s selects a box
        (then 1.5 s pause)." plus the undo class when the map has one.
        """
        rule = self._rule
        moves = [c.upper() for c, a in self.engine.command_map.items() if a != "undo"]
        undo = [c.upper() for c, a in self.engine.command_map.items() if a == "undo"]
        who = " or ".join(moves) if len(moves) <= 2 else ", ".join(moves[:-1]) + " or " + moves[-1]
        text = (f"Imagine {who} until the dwell bar fills: ≥ {rule['threshold']:.0%} for "
                f"{rule['dwell']:.1f} s selects that box (then {rule['refractory']:.1f} s pause).")
        if undo:
            text += f" {' or '.join(undo)} undoes."
        return text.replace("%", " %")

    # ------------------------------------------------------------------ drawing
    def _command_names(self) -> dict[int, str]:
        names: dict[int, list[str]] = {}
        for label, action in self.engine.command_map.items():
            if action != "undo":
                names.setdefault(int(action), []).append(label)
        return {k: " / ".join(v) for k, v in names.items()}

    def _ensure_boxes(self, n: int) -> None:
        while len(self._boxes) < n:
            box = QtWidgets.QGroupBox()
            label = QtWidgets.QLabel()
            label.setWordWrap(True)
            label.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
            f = label.font()
            f.setPointSize(max(14, int(f.pointSize() * 1.5)))
            label.setFont(f)
            # two lines of symbols stay visible in a short dock (the box is not squeezed to one)
            label.setMinimumHeight(2 * label.fontMetrics().lineSpacing())
            QtWidgets.QVBoxLayout(box).addWidget(label)
            colour = CLASS_COLOURS[len(self._boxes) % len(CLASS_COLOURS)]
            box.setStyleSheet(f"QGroupBox {{ border: 2px solid {colour}; margin-top: 1.2em; }}"
                              "QGroupBox::title { subcontrol-origin: margin; left: 8px; }")
            self.boxes_layout.addWidget(box, 1)
            self._boxes.append((box, label))
        for i, (box, _) in enumerate(self._boxes):
            box.setVisible(i < n)

    def refresh(self) -> None:
        """Redraw text, options, progress and status from the engine."""
        eng = self.engine
        self.text_label.setText(eng.text + "\u258f")  # text and a cursor
        opts = eng.options()
        names = self._command_names()
        self._ensure_boxes(len(opts))
        for opt, (box, label) in zip(opts, self._boxes):
            who = names.get(opt.command, str(opt.command))
            what = f" — {opt.label}" if opt.label else ""
            box.setTitle(f"{who}{what}  ({opt.weight:.0%})")
            shown = [it.label for it in opt.items[:MAX_ITEMS]]
            more = f"  … +{len(opt.items) - MAX_ITEMS}" if len(opt.items) > MAX_ITEMS else ""
            label.setText("  ".join(shown) + more if shown else "(rotate)")
        self.selection_bar.setValue(int(1000 * eng.selection_progress))
        st = eng.stats()  # chars/min over the commands' own times (prediction clock)
        self.chars_per_min = float(st["chars_per_min"])
        rate = "–" if math.isnan(self.chars_per_min) else f"{self.chars_per_min:.1f}"
        self.status.setText(f"{st['commands']} commands · {st['selections']} selections · "
                            f"{st['undos']} undos · {rate} chars/min")
        self._update_dwell()

    def _update_dwell(self) -> None:
        idle = f"dwell: ≥ {100 * self._rule['threshold']:.0f} % for {self._rule['dwell']:.1f} s"
        if self.input is None:
            self.dwell_bar.setValue(0)
            self.dwell_bar.setFormat(idle)
            return
        self.dwell_bar.setValue(int(1000 * self.input.progress))
        cand = self.input.candidate
        self.dwell_bar.setFormat(f"dwell {cand} %p%" if cand else idle)

    # ------------------------------------------------------------------ inspection (tests)
    def option_texts(self) -> list[tuple[str, str]]:
        """(title, items) of the visible command boxes."""
        return [(box.title(), label.text()) for box, label in self._boxes if box.isVisibleTo(self)]


__all__ = ["SpellerView"]
