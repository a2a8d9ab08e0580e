"""Prediction panel: class probabilities, the current command, feedback ball, history, text.

A text decoder (EEG-to-text retrieval) has one class per candidate sentence (120 for a bundle
of ``bci-app evaluate-text --bundle-out``): the panel shows its :data:`TOP_SENTENCES` most
probable sentences instead of a bar per class, and the generated text with its confidence. A
classifier with many classes shows at most :data:`MAX_VISIBLE_BARS` bars at once (the others
scroll): the panel's height does not grow with the number of classes.

Predictions arrive from the decoder thread through :class:`ui.qt_bridge.PredictionBridge` as a
queued signal; :meth:`PredictionPanel.on_prediction` runs in the GUI thread and only stores and
draws. The panel depends on the *shape* of a prediction (duck typing), so the real
``Prediction`` of the decoder worker and the stand-in :class:`Prediction` below both work.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from .controls import scrollable

#: Colours of classes by position (Okabe–Ito, readable by colour-blind users).
CLASS_COLOURS = ("#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#F0E442", "#0072B2", "#D55E00", "#999999")
#: Candidate sentences a text decoder's panel lists (the most probable first).
TOP_SENTENCES = 5
#: Probability bars a classifier's panel shows at once; more classes scroll in their box.
MAX_VISIBLE_BARS = 8
#: Colour of the probability bars of the retrieved sentences.
SENTENCE_COLOUR = CLASS_COLOURS[0]
#: Height (px) of the panel its dock always shows (all of a panel whose minimum is smaller):
#: the decision and the probabilities of a classifier stay in view (``ui.controls.
#: VerticalScroll``; the dock scrolls a text decoder's sentences and text on a short screen).
MIN_VISIBLE_HEIGHT = 360
#: Feedback directions of well-known motor-imagery classes (x right, y up).
DIRECTIONS = {
    "left": (-1.0, 0.0), "left_hand": (-1.0, 0.0), "right": (1.0, 0.0), "right_hand": (1.0, 0.0),
    "feet": (0.0, -1.0), "foot": (0.0, -1.0), "both_feet": (0.0, -1.0), "down": (0.0, -1.0),
    "tongue": (0.0, 1.0), "up": (0.0, 1.0), "both_hands": (0.0, 1.0),
    "rest": (0.0, 0.0), "idle": (0.0, 0.0), "none": (0.0, 0.0),
}


@dataclass(frozen=True)
class Prediction:
    """Stand-in for the decoder worker's Prediction (same fields; used by tests and the demo).

    Attributes
    ----------
    window_end : float
        LSL time of the last sample of the decoded window.
    probabilities : ndarray, shape (n_classes,)
    classes : tuple of str
    label : str
        The chosen class (the command).
    text : str | None
        Decoded text, for text decoders.
    latency : dict
        Seconds per stage (``"window_ready"``, ``"inference"``, ``"emitted"``, ``"total"``).
    text_confidence : float | None
        The text decoder's confidence in ``text``, in [0, 1] (the generated tokens' geometric
        mean probability).
    """

    window_end: float
    probabilities: np.ndarray
    classes: tuple[str, ...]
    label: str
    text: str | None = None
    latency: dict = field(default_factory=dict)
    text_confidence: float | None = None


def _bar_style(colour: str) -> str:
    """Style sheet of a probability bar drawn in ``colour``."""
    return f"QProgressBar::chunk {{ background: {colour}; }}"


def _probability_bar(colour: str) -> QtWidgets.QProgressBar:
    """A bar showing a probability in 0.1 % steps as "NN %", drawn in ``colour``."""
    bar = QtWidgets.QProgressBar()
    bar.setRange(0, 1000)
    bar.setFormat("%p %")
    bar.setTextVisible(True)
    bar.setStyleSheet(_bar_style(colour))
    return bar


def format_confidence(confidence: float | None) -> str:
    """``0.123`` -> ``"12 %"`` (the probability bars' style); ``"—"`` when unknown."""
    if confidence is None or not np.isfinite(confidence):
        return "—"
    return f"{100 * float(confidence):.0f} %"


def class_directions(classes: tuple[str, ...]) -> np.ndarray:
    """Unit feedback direction per class, shape (n_classes, 2): known MI names, else a circle."""
    out = np.zeros((len(classes), 2))
    unknown = [i for i, c in enumerate(classes) if c.lower() not in DIRECTIONS]
    for i, c in enumerate(classes):
        if c.lower() in DIRECTIONS:
            out[i] = DIRECTIONS[c.lower()]
    if len(unknown) == 2 and len(classes) == 2:
        out[unknown[0]], out[unknown[1]] = (-1.0, 0.0), (1.0, 0.0)
    elif unknown:
        for j, i in enumerate(unknown):
            a = math.pi - 2 * math.pi * j / len(unknown)
            out[i] = (math.cos(a), math.sin(a))
    return out


class FeedbackView(QtWidgets.QWidget):
    """A ball that moves with the smoothed control signal (a point in [-1, 1]²)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 120)
        self.position = np.zeros(2)
        self.targets: list[tuple[str, tuple[float, float], str]] = []
        self.active = False

    def set_targets(self, classes: tuple[str, ...], directions: np.ndarray) -> None:
        self.targets = [(c, (float(d[0]), float(d[1])), CLASS_COLOURS[i % len(CLASS_COLOURS)])
                        for i, (c, d) in enumerate(zip(classes, directions))]
        self.update()

    def set_position(self, pos: np.ndarray, active: bool = True) -> None:
        self.position = np.clip(np.asarray(pos, dtype=float), -1.0, 1.0)
        self.active = active
        self.update()

    def _geometry(self) -> tuple[float, float, float, float, float]:
        """Centre, half-extents and ball radius in pixels: (cx, cy, sx, sy, radius)."""
        r = self.rect().adjusted(6, 6, -6, -6)
        sx, sy = (r.width() / 2) * 0.85, (r.height() / 2) * 0.85
        radius = max(6, min(r.width(), r.height()) // 12)
        return r.center().x(), r.center().y(), sx, sy, radius

    def ball_rect(self) -> QtCore.QRectF:
        """Where the ball is drawn (widget pixels)."""
        cx, cy, sx, sy, radius = self._geometry()
        bx, by = cx + self.position[0] * sx, cy - self.position[1] * sy
        return QtCore.QRectF(bx - radius, by - radius, 2 * radius, 2 * radius)

    def label_rect(self, name: str) -> QtCore.QRectF | None:
        """Where the target ``name`` is written: beside its target point, away from the centre
        (above for left/right), so the ball sitting on the target does not hide it."""
        cx, cy, sx, sy, radius = self._geometry()
        for n, (dx, dy), _ in self.targets:
            if n != name or (dx == 0 and dy == 0):
                continue
            x, y = cx + dx * sx, cy - dy * sy
            h = self.fontMetrics().height() + 2
            w = max(80, self.fontMetrics().horizontalAdvance(n) + 8)
            y = y + radius + 2 + h / 2 if dy < 0 else y - radius - 2 - h / 2
            y = min(max(y, h / 2), self.height() - h / 2)  # stay inside the widget
            x = min(max(x, w / 2), self.width() - w / 2)
            return QtCore.QRectF(x - w / 2, y - h / 2, w, h)
        return None

    def paintEvent(self, ev) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        r = self.rect().adjusted(6, 6, -6, -6)
        p.fillRect(self.rect(), QtGui.QColor(24, 24, 30))
        p.setPen(QtGui.QPen(QtGui.QColor(80, 80, 90), 1))
        p.drawRect(r)
        cx, cy, sx, sy, radius = self._geometry()
        p.drawLine(int(cx - sx), int(cy), int(cx + sx), int(cy))
        p.drawLine(int(cx), int(cy - sy), int(cx), int(cy + sy))
        for _name, (dx, dy), colour in self.targets:  # target points under the ball
            if dx or dy:
                p.setPen(QtGui.QPen(QtGui.QColor(colour), 2))
                p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
                p.drawEllipse(QtCore.QPointF(cx + dx * sx, cy - dy * sy), radius + 3, radius + 3)
        colour = QtGui.QColor(240, 240, 240) if self.active else QtGui.QColor(90, 90, 90)
        p.setBrush(colour)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.drawEllipse(self.ball_rect())
        for name, _, colour in self.targets:  # labels last: never hidden by the ball
            rect = self.label_rect(name)
            if rect is not None:
                p.setPen(QtGui.QColor(colour))
                p.drawText(rect, QtCore.Qt.AlignmentFlag.AlignCenter, name)
        p.end()


class HistoryStrip(QtWidgets.QWidget):
    """The last predictions as coloured blocks, oldest left, with the label's initial."""

    def __init__(self, length: int = 40, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: deque[tuple[str, str, float]] = deque(maxlen=length)
        self.setMinimumHeight(26)
        self.setMaximumHeight(30)

    def add(self, label: str, colour: str, confidence: float) -> None:
        self.entries.append((label, colour, confidence))
        self.update()

    def clear(self) -> None:
        self.entries.clear()
        self.update()

    def paintEvent(self, ev) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor(24, 24, 30))
        n = self.entries.maxlen or 1
        w = self.width() / n
        h = self.height()
        for i, (label, colour, conf) in enumerate(self.entries):
            c = QtGui.QColor(colour)
            c.setAlphaF(0.35 + 0.65 * float(np.clip(conf, 0, 1)))
            rect = QtCore.QRectF(i * w + 1, 2, max(1.0, w - 2), h - 4)
            p.fillRect(rect, c)
            if w >= 10:
                p.setPen(QtGui.QColor(10, 10, 10))
                p.drawText(rect, QtCore.Qt.AlignmentFlag.AlignCenter, label[:1].upper())
        p.end()


class PredictionPanel(QtWidgets.QWidget):
    """Everything the user sees of the decoder.

    Parameters
    ----------
    smoothing : float
        Weight of each new prediction in the feedback position (exponential smoothing, 0–1].
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, smoothing: float = 0.3) -> None:
        super().__init__(parent)
        if not 0 < smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}.")
        self.smoothing = smoothing
        self.classes: tuple[str, ...] = ()
        self.model_name: str | None = None
        self.text_decoder = False
        self.control = np.zeros(2)
        self.n_predictions = 0
        self.last: object | None = None
        self.last_command: str | None = None
        self._dirs = np.zeros((0, 2))
        self._bars: list[QtWidgets.QProgressBar] = []
        #: The classes the bars (or the sentence rows) were built for, and in which mode.
        self._built: tuple[tuple[str, ...], bool] | None = None
        self._last_text = None
        #: A text decoder's most probable sentences shown now, most probable first.
        self.top: list[tuple[str, float]] = []
        #: The text decoder's confidence in the text shown last (None: not given).
        self.text_confidence: float | None = None
        #: True after :meth:`reset` (decoding stopped): late predictions are not shown.
        self._stopped = False
        #: Predictions shown since decoding last started.
        self.n_predictions_since_start = 0
        #: True after :meth:`mark_stale`: the decision shown is the last one of a decoder that
        #: stopped (a replay ended), not the current output.
        self.stale = False

        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.model_label = QtWidgets.QLabel()
        self.model_label.setWordWrap(True)
        lay.addWidget(self.model_label)
        self.no_model = QtWidgets.QLabel("NO MODEL LOADED")
        self.no_model.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.no_model.setStyleSheet(
            "QLabel { color: #ffb000; font-size: 20px; font-weight: bold; border: 2px dashed #ffb000; "
            "padding: 12px; }")
        self.no_model.setToolTip("Load a model bundle (File ▸ Load model bundle…, Ctrl+L) to decode")
        lay.addWidget(self.no_model)
        self.command = QtWidgets.QLabel("—")
        self.command.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.command.setWordWrap(True)  # a long "(unreliable: …)" reason must not widen the dock
        self.command.setStyleSheet("QLabel { font-size: 28px; font-weight: bold; padding: 4px; }")
        lay.addWidget(self.command)
        # a classifier: one bar per class, at most MAX_VISIBLE_BARS at once (the rest scroll)
        self.bars_box = QtWidgets.QWidget()
        self.bars_layout = QtWidgets.QFormLayout(self.bars_box)
        self.bars_layout.setContentsMargins(0, 0, 0, 0)
        self.bars_area = scrollable(self.bars_box)
        lay.addWidget(self.bars_area)
        # a text decoder: its most probable candidate sentences, then the generated text
        self.top_box = QtWidgets.QGroupBox(f"Top {TOP_SENTENCES} retrieved sentences")
        self.top_box.setToolTip("The candidate sentences the decoder finds most probable for "
                                "the last window, with their probabilities")
        top_layout = QtWidgets.QGridLayout(self.top_box)
        top_layout.setContentsMargins(4, 4, 4, 4)
        top_layout.setColumnStretch(0, 1)
        self._top_rows: list[tuple[QtWidgets.QLabel, QtWidgets.QProgressBar]] = []
        for i in range(TOP_SENTENCES):
            sentence = QtWidgets.QLabel("—")
            sentence.setWordWrap(True)  # a long sentence wraps instead of widening the dock
            bar = _probability_bar(SENTENCE_COLOUR)
            bar.setFixedWidth(max(70, bar.fontMetrics().horizontalAdvance("100 %") + 36))
            top_layout.addWidget(sentence, i, 0)
            top_layout.addWidget(bar, i, 1)
            self._top_rows.append((sentence, bar))
        lay.addWidget(self.top_box)
        self.text_label = QtWidgets.QLabel()
        self.text_label.setWordWrap(True)
        self.text_label.setToolTip(
            "Text generated by the decoder for the last window. Confidence: the geometric mean "
            "of its tokens' probabilities (low values: the text is mostly a guess)")
        lay.addWidget(self.text_label)
        self.text_box = QtWidgets.QPlainTextEdit()
        self.text_box.setReadOnly(True)
        self.text_box.setPlaceholderText("decoded text")
        self.text_box.setMinimumHeight(3 * self.text_box.fontMetrics().lineSpacing() + 12)
        lay.addWidget(self.text_box, 1)
        self.feedback = FeedbackView()
        lay.addWidget(self.feedback, 1)
        lay.addWidget(QtWidgets.QLabel("Recent predictions"))
        self.history = HistoryStrip()
        lay.addWidget(self.history)
        self.latency_label = QtWidgets.QLabel("")
        self.latency_label.setStyleSheet("color: #aaaaaa;")
        self.latency_label.setWordWrap(True)  # the alignment and "stopped" notes are sentences
        lay.addWidget(self.latency_label)
        self.set_model(None)

    # ------------------------------------------------------------------ model
    def set_model(self, name: str | None, classes: tuple[str, ...] | list[str] | None = None,
                  *, text_decoder: bool = False) -> None:
        """Show a loaded model (or ``None``: the "no model loaded" state).

        The decoded text of the previous model is cleared: it is not this model's output."""
        self.model_name = name
        self.text_box.clear()
        self._last_text = None
        self._show_text_confidence(None)
        self.text_decoder = bool(text_decoder)
        self.no_model.setVisible(name is None)
        self.model_label.setText("" if name is None else f"Model: <b>{name}</b>")
        self._set_classes(tuple(classes or ()))
        self.command.setText("—")
        self.last_command = None
        self._set_stale(False)
        self.history.clear()
        self.control = np.zeros(2)
        self.feedback.set_position(self.control, active=False)
        self.latency_label.setText("" if name is None else "waiting for predictions — start decoding")

    def _set_classes(self, classes: tuple[str, ...]) -> None:
        """Build what shows the classes: a bar per class for a classifier (at most
        :data:`MAX_VISIBLE_BARS` visible at once, the others scroll), the rows of the
        :data:`TOP_SENTENCES` most probable sentences for a text decoder (its classes are its
        candidate sentences: a bar and a feedback target each made the panel thousands of pixels
        tall)."""
        self.classes = classes
        text = self.text_decoder
        if self._built == (classes, text):
            return
        self._built = (classes, text)
        while self.bars_layout.rowCount():
            self.bars_layout.removeRow(0)
        self._bars = []
        if not text:
            for i, c in enumerate(classes):
                bar = _probability_bar(CLASS_COLOURS[i % len(CLASS_COLOURS)])
                self.bars_layout.addRow(c, bar)
                self._bars.append(bar)
        self._fit_bars_area()
        self.bars_area.setVisible(bool(self._bars))
        n_rows = min(TOP_SENTENCES, len(classes)) if text else 0
        for i, (sentence, bar) in enumerate(self._top_rows):
            sentence.setVisible(i < n_rows)
            bar.setVisible(i < n_rows)
        self.top_box.setTitle(f"Top {n_rows} retrieved sentences" if n_rows > 1
                              else "Retrieved sentence")
        self.top_box.setVisible(n_rows > 0)
        self._show_top([])
        self.text_label.setVisible(text)
        self.text_box.setVisible(text)
        # a text decoder's candidates are no directions: no ball, no targets
        self._dirs = np.zeros((0, 2)) if text else class_directions(classes)
        self.feedback.set_targets(() if text else classes, self._dirs)
        self.feedback.setVisible(not text)

    def _command_style(self, colour: str) -> str:
        """Style of the decision label in ``colour``: large for a class name, smaller for a
        text decoder's sentence (it wraps over lines)."""
        size = 18 if self.text_decoder else 28
        return (f"QLabel {{ font-size: {size}px; font-weight: bold; padding: 4px; "
                f"color: {colour}; }}")

    def _fit_bars_area(self) -> None:
        """The bars' box shows every bar up to :data:`MAX_VISIBLE_BARS`; more scroll."""
        n = len(self._bars)
        if not n:
            self.bars_area.setFixedHeight(0)
            return
        full = self.bars_box.sizeHint().height()
        if n > MAX_VISIBLE_BARS:  # rows of equal height: the first MAX_VISIBLE_BARS of them
            label = self.bars_layout.labelForField(self._bars[0])
            row = max(self._bars[0].sizeHint().height(),
                      label.sizeHint().height() if label is not None else 0)
            spacing = (full - n * row) / (n - 1)
            full = int(round(MAX_VISIBLE_BARS * row + (MAX_VISIBLE_BARS - 1) * spacing))
        self.bars_area.setFixedHeight(full)

    def _show_top(self, top: list[tuple[str, float]]) -> None:
        """Fill the sentence rows with ``top`` ((sentence, probability), most probable first)."""
        self.top = list(top)
        for i, (sentence, bar) in enumerate(self._top_rows):
            if i < len(top):
                sentence.setText(f"{i + 1}. {top[i][0]}")
                bar.setValue(int(round(1000 * float(np.clip(top[i][1], 0, 1)))))
            else:
                sentence.setText("—")
                bar.setValue(0)

    def _show_text_confidence(self, confidence: float | None) -> None:
        self.text_confidence = None if confidence is None else float(confidence)
        self.text_label.setText(f"Decoded text — confidence {format_confidence(confidence)}"
                                if confidence is not None else "Decoded text")

    def shown_sentences(self) -> list[tuple[str, float]]:
        """The sentences and probabilities the rows show now (the bars' 0.1 % steps)."""
        out = []
        for sentence, bar in self._top_rows[:len(self.top)]:
            text = sentence.text()
            out.append((text.split(". ", 1)[1] if ". " in text else text, bar.value() / 1000))
        return out

    # ------------------------------------------------------------------ predictions
    def set_decoding(self, on: bool) -> None:
        """Decoding started (the panel accepts predictions) or stopped (:meth:`reset`)."""
        if not on:
            self.reset("stopped — start decoding to see predictions", drop_late=True)
            return
        self._stopped = False
        self.n_predictions_since_start = 0
        self._set_stale(False)
        if self.model_name is not None:
            self.latency_label.setText("decoding — waiting for the first window…")

    def reset(self, status: str = "stopped", *, drop_late: bool = False) -> None:
        """Show that no decoder runs: grey ball at the centre, no decision, empty bars and history.

        With ``drop_late`` (a decoder was just stopped), predictions still queued from it are
        dropped until :meth:`set_decoding` (``True``) is called again."""
        self._stopped = self._stopped or drop_late
        self.n_predictions_since_start = 0
        self._set_stale(False)
        self.command.setText("—")
        self.command.setStyleSheet(self._command_style("#777777"))
        self.last_command = None
        self.last = None
        for bar in self._bars:
            bar.setValue(0)
        self._show_top([])
        self.history.clear()
        self.control = np.zeros(2)
        self.feedback.set_position(self.control, active=False)
        self.latency_label.setText("" if self.model_name is None else status)

    def mark_stale(self, note: str) -> None:
        """Keep the last decision on screen, shown as no longer the current output.

        For a decoder that stopped because no new windows can come (a replay reached the end of
        its file): the decision and the bars stay, greyed, and the history stays; the ball stays
        where it was, inactive; ``note`` (e.g. "replay ended — last decision at t = 121.3 s")
        replaces the latency line and is the decision's tooltip. Predictions still queued are
        dropped until :meth:`set_decoding` (``True``).

        GUI thread.
        """
        self._stopped = True
        self._set_stale(True, note)
        self.command.setStyleSheet(self._command_style("#777777"))
        self.feedback.set_position(self.control, active=False)
        self.latency_label.setText(note)

    def _set_stale(self, stale: bool, note: str = "") -> None:
        self.stale = stale
        self.command.setToolTip(note if stale else "")
        for i, bar in enumerate(self._bars):
            bar.setEnabled(not stale)
            colour = "#777777" if stale else CLASS_COLOURS[i % len(CLASS_COLOURS)]
            bar.setStyleSheet(_bar_style(colour))
        for _sentence, bar in self._top_rows:
            bar.setEnabled(not stale)
            bar.setStyleSheet(_bar_style("#777777" if stale else SENTENCE_COLOUR))

    def set_alignment_progress(self, collected: int, needed: int, seconds: float) -> None:
        """Explain the alignment phase of a decoder that adapts to the user (no predictions yet).

        Called from the GUI thread with counts read from the decoder worker."""
        if self._stopped or self.n_predictions_since_start:
            return
        self.latency_label.setText(
            f"Fitting your alignment: collecting {seconds:g} s of EEG "
            f"({min(collected, needed)}/{needed} windows) — no labels needed; "
            "predictions start right after.")

    def on_prediction(self, pred) -> None:
        """Show one prediction (GUI thread; connect the PredictionBridge's signal here).

        Uses what the prediction carries: ``smoothed`` probabilities for the bars when present
        (else the raw ones), the decoder's own ``control`` signal for the ball (else an
        exponential smoothing of probabilities × class directions here), ``command`` (the dwell
        rule's decision, held until the next one), ``reliable``/``reason``, ``text`` and
        ``text_confidence``. For a text decoder, the :data:`TOP_SENTENCES` most probable
        candidate sentences of the window (its raw probabilities) replace the bars.
        """
        if self._stopped:  # queued before the worker stopped: the panel shows "stopped"
            return
        self.n_predictions_since_start += 1
        text = getattr(pred, "text", None)
        if text is not None and not self.text_decoder:  # a model that turned out to write text
            self.text_decoder = True
            self._set_classes(self.classes)
        classes = tuple(getattr(pred, "classes", ()) or ())
        if classes and classes != self.classes:
            self._set_classes(classes)
        raw = np.asarray(getattr(pred, "probabilities", np.zeros(len(self.classes))), dtype=float)
        smoothed = getattr(pred, "smoothed", None)
        probs = raw if smoothed is None else np.asarray(smoothed, dtype=float)
        self.n_predictions += 1
        self.last = pred
        reliable = bool(getattr(pred, "reliable", True))
        if probs.shape == (len(self._bars),) and reliable:
            for bar, p in zip(self._bars, probs):
                bar.setValue(int(round(1000 * float(np.clip(p, 0, 1)))))
        if self.text_decoder and reliable:  # the window's own ranking, as the label is
            from decoders.text.bundle import rank_candidates  # (loaded with the text bundle)

            self._show_top(rank_candidates(raw, self.classes, TOP_SENTENCES))
        label = str(getattr(pred, "label", ""))
        conf = float(raw[self.classes.index(label)]) if label in self.classes and raw.size else 0.0
        colour = CLASS_COLOURS[self.classes.index(label) % len(CLASS_COLOURS)] if label in self.classes else "#999999"
        command = getattr(pred, "command", None)
        if command:
            self.last_command = str(command)
        shown = self.last_command or label
        if not reliable:
            self.command.setText(f"({getattr(pred, 'reason', '') or 'unreliable'})")
            self.command.setStyleSheet("QLabel { font-size: 16px; padding: 4px; color: #888888; }")
        else:
            c_colour = (CLASS_COLOURS[self.classes.index(shown) % len(CLASS_COLOURS)]
                        if shown in self.classes else colour)
            self.command.setText(shown or "—")
            self.command.setStyleSheet(self._command_style(
                SENTENCE_COLOUR if self.text_decoder else c_colour))
        control = getattr(pred, "control", None)
        if reliable:
            if control is not None and np.isfinite(control) and len(self._dirs) == 2:
                # the decoder's own smoothed control signal, along the axis of the two classes
                axis = 0.5 * (self._dirs[1] - self._dirs[0])
                self.control = float(control) * axis
            elif probs.shape == (len(self._dirs),) and len(self._dirs):
                target = probs @ self._dirs
                self.control = self.control + self.smoothing * (target - self.control)
        self.feedback.set_position(self.control, active=reliable)
        self.history.add(label or "?", colour if reliable else "#555555", conf if reliable else 0.0)
        if text is not None:
            if text and text != self._last_text:
                self.text_box.appendPlainText(text)
                self._last_text = text
            self._show_text_confidence(getattr(pred, "text_confidence", None))
        lat = getattr(pred, "latency", {}) or {}
        if "total" in lat:
            parts = ", ".join(f"{k} {1e3 * v:.1f}" for k, v in lat.items() if k != "total")
            self.latency_label.setText(f"latency {1e3 * lat['total']:.1f} ms ({parts})" if parts
                                       else f"latency {1e3 * lat['total']:.1f} ms")
