"""Widgets of the calibration wizard: cue display, traffic-light channel grid, topomaps."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ui.prediction import CLASS_COLOURS, class_directions

logger = logging.getLogger(__name__)

STATUS_COLOURS = {"good": "#2e9e4f", "warn": "#e0b000", "bad": "#d23c3c"}


class CueWidget(QtWidgets.QWidget):
    """Full-area Graz cue display: fixation cross, arrow of the cued class, blank rest.

    ``set_state(state, cls)`` with the protocol's state value (``fixation``, ``cue``,
    ``imagery``, ``rest``, ``paused``, ``done``, ``aborted``, ``idle``).
    """

    def __init__(self, classes=("left", "right"), parent=None) -> None:
        super().__init__(parent)
        self.setMinimumSize(480, 320)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding,
                           QtWidgets.QSizePolicy.Policy.Expanding)
        self.state = "idle"
        self.cls: str | None = None
        self.message = "Press Start when you are ready"
        self.set_classes(classes)

    def set_classes(self, classes) -> None:
        self.classes = tuple(classes)
        self.directions = class_directions(self.classes)

    def set_state(self, state: str, cls: str | None = None, message: str = "") -> None:
        self.state = state
        if cls is not None:
            self.cls = cls
        self.message = message
        self.update()

    def paintEvent(self, ev) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QtGui.QColor(0, 0, 0))
        w, h = self.width(), self.height()
        cx, cy = w / 2, h / 2
        size = min(w, h) * 0.18
        if self.state in ("fixation", "cue", "imagery"):
            pen = QtGui.QPen(QtGui.QColor(235, 235, 235), max(3.0, size / 12))
            p.setPen(pen)
            p.drawLine(QtCore.QPointF(cx - size, cy), QtCore.QPointF(cx + size, cy))
            p.drawLine(QtCore.QPointF(cx, cy - size), QtCore.QPointF(cx, cy + size))
        if self.state == "cue" and self.cls in self.classes:
            i = self.classes.index(self.cls)
            dx, dy = self.directions[i]
            colour = QtGui.QColor(CLASS_COLOURS[i % len(CLASS_COLOURS)])
            self._arrow(p, cx, cy, dx, -dy, size * 2.2, colour)
            p.setPen(colour)
            f = p.font()
            f.setPointSizeF(max(12.0, size / 3))
            f.setBold(True)
            p.setFont(f)
            p.drawText(QtCore.QRectF(0, cy + size * 1.4, w, size), QtCore.Qt.AlignmentFlag.AlignHCenter,
                       self.cls.upper())
        if self.state not in ("fixation", "cue", "imagery") and self.message:
            p.setPen(QtGui.QColor(200, 200, 200))
            f = p.font()
            f.setPointSizeF(max(11.0, size / 5))
            p.setFont(f)
            p.drawText(self.rect(), QtCore.Qt.AlignmentFlag.AlignCenter, self.message)
        p.end()

    @staticmethod
    def _arrow(p, cx, cy, dx, dy, length, colour) -> None:
        if dx == 0 and dy == 0:
            p.setBrush(colour)
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.drawEllipse(QtCore.QPointF(cx, cy), length / 5, length / 5)
            return
        n = math.hypot(dx, dy)
        ux, uy = dx / n, dy / n
        px, py = -uy, ux
        shaft, head_w, body_w = length * 0.65, length * 0.28, length * 0.09
        tip = (cx + ux * length, cy + uy * length)
        base = (cx + ux * shaft, cy + uy * shaft)
        pts = [
            (cx + px * body_w, cy + py * body_w), (base[0] + px * body_w, base[1] + py * body_w),
            (base[0] + px * head_w, base[1] + py * head_w), tip,
            (base[0] - px * head_w, base[1] - py * head_w), (base[0] - px * body_w, base[1] - py * body_w),
            (cx - px * body_w, cy - py * body_w),
        ]
        poly = QtGui.QPolygonF([QtCore.QPointF(x, y) for x, y in pts])
        p.setBrush(colour)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.drawPolygon(poly)


class QualityGrid(QtWidgets.QWidget):
    """Channels as coloured tiles (green / yellow / red) with the problem as tooltip."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._layout = QtWidgets.QGridLayout(self)
        self._layout.setSpacing(3)
        self.tiles: dict[str, QtWidgets.QLabel] = {}
        self.statuses: dict[str, str] = {}

    def set_quality(self, items) -> None:
        names = [q.name for q in items]
        if list(self.tiles) != names:
            for t in self.tiles.values():
                t.deleteLater()
            self.tiles = {}
            cols = max(4, int(math.ceil(math.sqrt(len(names) * 1.6))))
            for i, n in enumerate(names):
                lab = QtWidgets.QLabel(n)
                lab.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                lab.setMinimumSize(46, 26)
                self._layout.addWidget(lab, i // cols, i % cols)
                self.tiles[n] = lab
        for q in items:
            lab = self.tiles[q.name]
            self.statuses[q.name] = q.status
            lab.setStyleSheet(f"background:{STATUS_COLOURS[q.status]}; color:white; "
                              "border-radius:4px; font-weight:bold;")
            tip = f"{q.name}: {q.status}; {q.std_uv:.1f} uV rms"
            if q.problems:
                tip += f"; {', '.join(q.problems)}: {q.advice}"
            lab.setToolTip(tip)


def topomap_image(values: np.ndarray, ch_names, titles, montage: str = "standard_1005",
                  width: int = 900, height: int = 300, unit: str = "%") -> QtGui.QImage:
    """Render one MNE topomap per row of ``values`` (n_maps, n_channels) into a QImage."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import mne
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    info = mne.create_info(list(ch_names), 100.0, "eeg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info.set_montage(mne.channels.make_standard_montage(montage), on_missing="ignore")
    vals = np.asarray(values, dtype=float)
    lim = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    n = len(vals)
    axes = [fig.add_subplot(1, n + 1, i + 1) for i in range(n)]
    im = None
    for ax, v, title in zip(axes, vals, titles):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im, _ = mne.viz.plot_topomap(v, info, axes=ax, show=False, cmap="RdBu_r",
                                         vlim=(-lim, lim), contours=4, sensors=True)
        ax.set_title(title, fontsize=10)
    cax = fig.add_subplot(1, n + 1, n + 1)
    cax.set_position([0.92, 0.15, 0.015, 0.7]) if n else None
    if im is not None:
        fig.colorbar(im, cax=cax, label=unit)
    fig.subplots_adjust(left=0.02, right=0.9, wspace=0.15)
    fig.canvas.draw()
    buf = np.asarray(fig.canvas.buffer_rgba())
    h, w = buf.shape[:2]
    img = QtGui.QImage(buf.tobytes(), w, h, 4 * w, QtGui.QImage.Format.Format_RGBA8888)
    return img.copy()


class ConfusionTable(QtWidgets.QTableWidget):
    """Confusion matrix: rows true class, columns predicted class; diagonal tinted."""

    def set_matrix(self, cm: np.ndarray, classes) -> None:
        n = len(classes)
        self.setRowCount(n)
        self.setColumnCount(n)
        self.setHorizontalHeaderLabels([f"→ {c}" for c in classes])
        self.setVerticalHeaderLabels([f"{c}" for c in classes])
        for i in range(n):
            for j in range(n):
                it = QtWidgets.QTableWidgetItem(str(int(cm[i, j])))
                it.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                if i == j:
                    it.setBackground(QtGui.QColor(46, 158, 79, 90))
                self.setItem(i, j, it)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.resizeColumnsToContents()
        self.setMaximumHeight(40 + 30 * n)
