"""Signal scope: stacked channels, scrolling or sweep, display-only filters, markers, flags.

Data path (GUI thread, once per display frame, never waiting on anything):

1. ``buffer.since(k)`` copies the samples that arrived since the last frame (a few ms worth);
2. :class:`StreamingDisplayFilter` filters only those new samples with a stored state per channel
   (``sosfilt`` + ``zi``) into the scope's *own* circular display store — the ring buffer, and so
   what is recorded and decoded, is never touched;
3. :func:`minmax_decimate` reduces the visible window to two points (min, max) per pixel column,
   so a 64 ch × 10 s × 1 kHz window (640,000 samples) is drawn as ~130,000 points, peaks kept;
4. all channels of one style go into **one** curve item (NaN-separated), so Qt draws 1–4 paths a
   frame instead of 64.

Changing the filter, the window or the source re-reads ``buffer.latest(window)`` once and filters
it from scratch. Railed / flat channels are checked four times a second on the raw samples.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets
from scipy import signal

logger = logging.getLogger(__name__)

#: Band-pass presets of the display filter (label -> (low Hz, high Hz); None = off).
BANDPASS_PRESETS: dict[str, tuple[float, float] | None] = {
    "off": None,
    "0.5–45 Hz": (0.5, 45.0),
    "1–40 Hz": (1.0, 40.0),
    "1–30 Hz": (1.0, 30.0),
    "4–40 Hz": (4.0, 40.0),
    "8–30 Hz (mu/beta)": (8.0, 30.0),
    "0.1–100 Hz": (0.1, 100.0),
}
NOTCH_CHOICES = (0, 50, 60)  # 0 = off
MODES = ("scroll", "sweep")
#: Width range of the channel-name axis (px); it fits the longest name (and flag) within it.
NAME_AXIS_MIN, NAME_AXIS_MAX = 50, 200
_Y_PAD = 0.2  # divisions of free space above the first and below the last channel
WINDOW_RANGE = (1.0, 30.0)

#: Colours of the channel styles (one curve item each).
STYLE_PENS = {
    "normal": (120, 200, 255),
    "bad": (95, 95, 95),
    "flat": (255, 170, 0),
    "railed": (255, 70, 70),
}
BACKGROUND = (18, 18, 22)
GRID_PEN = (52, 52, 62)
_BACKGROUND = (0xFF << 24) | (BACKGROUND[0] << 16) | (BACKGROUND[1] << 8) | BACKGROUND[2]
_COLOURS = {k: (0xFF << 24) | (r << 16) | (g << 8) | b for k, (r, g, b) in STYLE_PENS.items()}
MARKER_COLOURS = {"user": (80, 230, 120), "gap": (255, 80, 80), "other": (255, 220, 90)}


# --------------------------------------------------------------------------- pure functions
def minmax_decimate(data: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Peak-preserving decimation for display.

    Parameters
    ----------
    data : ndarray, shape (n_samples, n_channels)
        The samples of the visible window (NaN allowed: a bin holding a NaN becomes NaN).
    n_bins : int
        Number of output bins (about the plot width in pixels).

    Returns
    -------
    index : ndarray of float, shape (n_out,)
        Sample position (in input samples) of each output point.
    out : ndarray, shape (n_out, n_channels)
        For each bin its minimum then its maximum, so every peak of the input survives:
        ``out.max(0) == data.max(0)`` and ``out.min(0) == data.min(0)``. When the input already
        has no more than ``2 * n_bins`` samples it is returned unchanged.
    """
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"minmax_decimate expects data of shape (n_samples, n_channels), got {data.shape}.")
    n_bins = int(n_bins)
    if n_bins < 1:
        raise ValueError(f"minmax_decimate needs n_bins >= 1, got {n_bins}.")
    n = data.shape[0]
    if n <= 2 * n_bins:
        return np.arange(n, dtype=np.float64), data
    b = -(-n // n_bins)  # samples per bin (ceil)
    m = n // b  # full bins
    main = data[: m * b].reshape(m, b, data.shape[1])
    mn = main.min(axis=1)
    mx = main.max(axis=1)
    starts = np.arange(m, dtype=np.float64) * b
    if m * b < n:  # a partial last bin
        tail = data[m * b:]
        mn = np.concatenate((mn, tail.min(axis=0, keepdims=True)))
        mx = np.concatenate((mx, tail.max(axis=0, keepdims=True)))
        starts = np.append(starts, m * b)
    width = np.diff(np.append(starts, n)) - 1
    out = np.empty((2 * len(starts), data.shape[1]), dtype=data.dtype)
    out[0::2] = mn
    out[1::2] = mx
    index = np.empty(2 * len(starts))
    index[0::2] = starts
    index[1::2] = starts + width
    return index, out


def rasterize_spans(r_lo: np.ndarray, r_hi: np.ndarray, cols: np.ndarray, height: int,
                    width: int) -> np.ndarray:
    """Pixels covered by vertical spans, one per (column, channel).

    Parameters
    ----------
    r_lo, r_hi : ndarray of int, shape (n,)
        First and last row of each span (0 <= r_lo <= r_hi < height).
    cols : ndarray of int, shape (n,)
        Column of each span (0 <= cols < width).
    height, width : int
        Size of the raster in pixels.

    Returns
    -------
    ndarray of bool, shape (width, height)
        Column-major coverage: ``cov[col, row]`` is True where at least one span covers the
        pixel. Cost is O(n + height × width): two ``bincount`` calls and one cumulative sum
        along memory, whatever the number of samples behind it.
    """
    # column-major difference image: each column's rows are contiguous, so the cumulative sum
    # runs along memory (several times faster than down the rows of a row-major image)
    size = width * (height + 1)
    base = cols * (height + 1)
    cnt = np.bincount(base + r_lo, minlength=size)
    cnt -= np.bincount(base + r_hi + 1, minlength=size)
    return np.cumsum(cnt.reshape(width, height + 1), axis=1, dtype=np.int32)[:, :height] > 0


def spans_to_argb(mn: np.ndarray, mx: np.ndarray, groups: dict, scales: np.ndarray, dc: np.ndarray,
                  clip_div: float, yrange: tuple[float, float], height: int, cols: np.ndarray,
                  width: int, colours: dict[str, int], prev: tuple[np.ndarray, np.ndarray] | None = None,
                  background: int = 0) -> np.ndarray:
    """Column-major ARGB raster (width, height) of min/max bins of stacked channels.

    Parameters
    ----------
    mn, mx : ndarray, shape (n_bins, n_channels)
        Minimum and maximum of each bin (µV); NaN bins are not drawn.
    groups : dict
        Style name -> list of (row, channel) drawn in that style (row 0 at the top, y = -row).
    scales : ndarray, shape (n_channels,)
        µV per division of each channel; ``dc`` its baseline (µV).
    clip_div : float
        Traces are clipped to ± this many divisions around their row.
    yrange : (y0, y1)
        View range in divisions; image row 0 is y0 (the bottom).
    cols : ndarray of int, shape (n_bins,)
        Image column of each bin (several bins may share a column).
    prev : (mn, mx) of the bin before the first one, or None
        Lets the first column join the previous one.
    background : int
        ARGB of uncovered pixels (0: transparent).
    """
    if prev is not None:
        mn = np.vstack((prev[0][None, :], mn))
        mx = np.vstack((prev[1][None, :], mx))
    y0, y1 = yrange
    to_px = height / (y1 - y0)
    argb = np.full((width, height), background, dtype=np.uint32)
    skip = 1 if prev is not None else 0
    for style, members in groups.items():
        if not members:
            continue
        rows = np.array([r for r, _ in members], dtype=np.float64)
        chs = np.array([c for _, c in members])
        with np.errstate(invalid="ignore"):
            lo = np.clip((mn[:, chs] - dc[chs]) / scales[chs], -clip_div, clip_div) - rows
            hi = np.clip((mx[:, chs] - dc[chs]) / scales[chs], -clip_div, clip_div) - rows
            # join each column to the previous one so the trace stays continuous
            centre = 0.5 * (lo + hi)
            before = np.vstack((centre[:1], centre[:-1]))
            lo = np.fmin(lo, before)[skip:]
            hi = np.fmax(hi, before)[skip:]
            ok = np.isfinite(lo) & np.isfinite(hi)
            r_lo = np.clip((lo - y0) * to_px, 0, height - 1)
            r_hi = np.clip((hi - y0) * to_px, 0, height - 1)
        c_idx = np.broadcast_to(cols[:, None], lo.shape)[ok]
        cov = rasterize_spans(r_lo[ok].astype(np.int64), r_hi[ok].astype(np.int64), c_idx, height, width)
        np.copyto(argb, np.uint32(colours[style]), where=cov)
    return argb


@dataclass(frozen=True)
class DisplayFilter:
    """What the display filter does: a notch (0 = off, 50 or 60 Hz) and a band-pass preset."""

    notch: int = 0
    bandpass: str = "off"

    def __post_init__(self) -> None:
        if self.notch not in NOTCH_CHOICES:
            raise ValueError(f"notch must be one of {NOTCH_CHOICES} (0 = off), got {self.notch!r}.")
        if self.bandpass not in BANDPASS_PRESETS:
            raise ValueError(
                f"bandpass must be one of {list(BANDPASS_PRESETS)}, got {self.bandpass!r}."
            )

    @property
    def active(self) -> bool:
        return bool(self.notch) or BANDPASS_PRESETS[self.bandpass] is not None

    def sos(self, sfreq: float) -> np.ndarray | None:
        """Second-order sections for ``sfreq``, or None when the filter is off.

        Bands above the Nyquist frequency are cut to a high-pass (logged), notches above it are
        skipped: this filter only changes what is drawn.
        """
        if not self.active or sfreq <= 0:
            return None
        nyq = sfreq / 2.0
        parts = []
        band = BANDPASS_PRESETS[self.bandpass]
        if band is not None:
            lo, hi = band
            if hi < 0.95 * nyq:
                parts.append(signal.butter(4, [lo, hi], btype="bandpass", fs=sfreq, output="sos"))
            else:
                logger.info("Display band %s above Nyquist (%.0f Hz): high-pass at %g Hz only",
                            self.bandpass, nyq, lo)
                parts.append(signal.butter(4, lo, btype="highpass", fs=sfreq, output="sos"))
        if self.notch and self.notch < 0.95 * nyq:
            b, a = signal.iirnotch(self.notch, 30.0, fs=sfreq)
            parts.append(signal.tf2sos(b, a))
        return np.concatenate(parts) if parts else None


class StreamingDisplayFilter:
    """Causal filter over successive chunks with a stored state per channel (display only)."""

    def __init__(self, spec: DisplayFilter, sfreq: float, n_channels: int) -> None:
        self.spec = spec
        self.sos = spec.sos(sfreq)
        self.n_channels = n_channels
        self._zi: np.ndarray | None = None

    def reset(self) -> None:
        self._zi = None

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter ``x`` (n_samples, n_channels); returns a new array (``x`` is not modified)."""
        if self.sos is None or x.shape[0] == 0:
            return x
        if self._zi is None:  # start in steady state for the first sample: no big transient
            self._zi = signal.sosfilt_zi(self.sos)[:, :, None] * x[0][None, None, :]
        y, self._zi = signal.sosfilt(self.sos, x, axis=0, zi=self._zi)
        return y


def channel_flags(data_uv: np.ndarray, check: np.ndarray, *, flat_uv: float = 0.5,
                  railed_uv: float = 0.9 * 187_500.0) -> dict[int, str]:
    """Railed / flat channels in about a second of raw samples (µV).

    Parameters
    ----------
    data_uv : ndarray, shape (n_samples, n_channels)
    check : ndarray of bool, shape (n_channels,)
        Channels to check (EEG-like ones; a counter or trigger channel is never flagged).
    flat_uv : float
        Peak-to-peak below this is "flat" (disconnected, or a dead amplifier channel).
    railed_uv : float
        Absolute value at or above this is "railed" (default: 90 % of the ±187.5 mV range of
        the OpenBCI Cyton's ADS1299 at gain 24, the rule OpenBCI GUI uses).
    """
    if data_uv.shape[0] < 2:
        return {}
    with np.errstate(invalid="ignore"):
        ptp = np.ptp(data_uv, axis=0)
        peak = np.max(np.abs(data_uv), axis=0)
    flags: dict[int, str] = {}
    for i in np.nonzero(check)[0]:
        if peak[i] >= railed_uv:
            flags[int(i)] = "railed"
        elif ptp[i] < flat_uv:
            flags[int(i)] = "flat"
    return flags


def montage_order(ch_names: list[str] | tuple[str, ...], montage: str) -> list[int]:
    """Display order of channels: as streamed, or front-to-back / left-to-right in a montage.

    Channels the montage does not know keep their order after the known ones.
    """
    n = len(ch_names)
    if not montage or montage == "as streamed":
        return list(range(n))
    import mne

    builtin = set(mne.channels.get_builtin_montages())
    name = next((m for m in _MONTAGE_NAMES.get(montage, (montage,)) if m in builtin), montage)
    pos = mne.channels.make_standard_montage(name).get_positions()["ch_pos"]
    lower = {k.lower(): v for k, v in pos.items()}
    known = [(i, lower[c.lower()]) for i, c in enumerate(ch_names) if c.lower() in lower]
    known.sort(key=lambda t: (-round(float(t[1][1]), 3), float(t[1][0])))
    order = [i for i, _ in known]
    return order + [i for i in range(n) if i not in set(order)]


MONTAGES = ("as streamed", "10-20", "10-05", "biosemi64", "biosemi32")
#: MNE names of the montages (renamed colin27_* in MNE 1.13, standard_* before).
_MONTAGE_NAMES = {"10-20": ("colin27_1020", "standard_1020"), "10-05": ("colin27_1005", "standard_1005")}


# --------------------------------------------------------------------------- widgets
def _bin_pieces(k_from: int, k_to: int, seq_offset: int, b: int, n_cols: int, sfreq: float
                ) -> list[tuple[int, int, float, float]]:
    """Image pieces for bins ``k_from..k_to`` of a circular image of ``n_cols`` columns.

    Bin ``k`` (samples ``k*b .. k*b+b-1``) sits in column ``k % n_cols`` and is drawn from
    x = ``(k * b + seq_offset) / sfreq`` to one bin later. Returns (first column, number of
    columns, x left, x right) runs that never wrap around the image.
    """
    pieces = []
    k = k_from
    while k <= k_to:
        c0 = k % n_cols
        n = min(k_to + 1 - k, n_cols - c0)
        xl = (k * b + seq_offset) / sfreq
        pieces.append((c0, n, xl, xl + n * b / sfreq))
        k += n
    return pieces


def _argb(rgb: tuple[int, int, int]) -> int:
    return (0xFF << 24) | (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]


class _RasterItem(pg.GraphicsObject):
    """Draws a premultiplied ARGB raster (numpy uint32, shape (height, n_cols), row 0 at the
    bottom of the view) as one or more pieces: runs of columns, each stretched over its own x
    range. A circular strip chart thus scrolls by moving pieces, never by redrawing pixels, and
    every piece is a plain scaled blit (no rotation in the paint path).
    """

    def __init__(self) -> None:
        super().__init__()
        self._qimage: QtGui.QImage | None = None
        self._array: np.ndarray | None = None
        self._pieces: list[tuple[int, int, float, float]] = []
        self._y = (0.0, 1.0)
        self._rect = QtCore.QRectF()
        #: The image is fully opaque (background included): painted with CompositionMode_Source.
        self.opaque = False

    def set_image(self, argb_cm: np.ndarray, rect: QtCore.QRectF) -> None:
        """A column-major raster (n_cols, height) drawn whole into ``rect`` (x0, y0, w, h)."""
        self.set_pieces(np.ascontiguousarray(argb_cm.T), (rect.y(), rect.y() + rect.height()),
                        [(0, argb_cm.shape[0], rect.x(), rect.x() + rect.width())])

    def set_pieces(self, argb: np.ndarray, yrange: tuple[float, float],
                   pieces: list[tuple[int, int, float, float]]) -> None:
        """``pieces``: (first column, number of columns, x left, x right) drawn over ``yrange``."""
        self._array = argb if argb.flags.c_contiguous else np.ascontiguousarray(argb)
        self._qimage = pg.functions.ndarray_to_qimage(
            self._array, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        self._pieces = list(pieces)
        self._y = (float(yrange[0]), float(yrange[1]))
        xl = min((p[2] for p in self._pieces), default=0.0)
        xr = max((p[3] for p in self._pieces), default=0.0)
        rect = QtCore.QRectF(xl, self._y[0], xr - xl, self._y[1] - self._y[0])
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
        self.update()

    def clear(self) -> None:
        if self._qimage is not None:
            self._qimage = None
            self._array = None
            self._pieces = []
            self.update()

    @property
    def image(self) -> np.ndarray | None:
        """The raster as drawn, columns in x order, column-major: shape (n_cols, height)."""
        if self._array is None:
            return None
        return np.concatenate([self._array[:, c0:c0 + n] for c0, n, _, _ in self._pieces], axis=1).T

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802
        return QtCore.QRectF(self._rect)

    def paint(self, p, *args) -> None:
        if self._qimage is None:
            return
        y0, y1 = self._y
        height = self._array.shape[0]
        if self.opaque:  # the raster carries the background: a plain copy, no blending
            p.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_Source)
        for c0, n, xl, xr in self._pieces:
            p.drawImage(QtCore.QRectF(xl, y0, xr - xl, y1 - y0), self._qimage,
                        QtCore.QRectF(c0, 0, n, height))


class _CountingPlotWidget(pg.PlotWidget):
    """PlotWidget that counts its paints (the real frame rate) and can be made slow (test hook)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.paint_count = 0
        #: Test hook: busy-wait this long in every paint (holds the GIL like a heavy paint would).
        self.slow_paint_s = 0.0

    def paintEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        if self.slow_paint_s > 0:
            end = time.perf_counter() + self.slow_paint_s
            while time.perf_counter() < end:
                pass
        super().paintEvent(ev)
        self.paint_count += 1


class FlowLayout(QtWidgets.QLayout):
    """Items left to right, wrapping onto the next line when the width runs out (a tool row that
    stays whole in a narrow window instead of widening it).

    The layout's minimum width is its widest item; its height follows the width
    (``heightForWidth``), which a parent box layout honours when it places it. Items keep their
    size hint and are centred vertically on their line.
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, h_spacing: int = 6,
                 v_spacing: int = 2) -> None:
        super().__init__(parent)
        self._items: list[QtWidgets.QLayoutItem] = []
        self._h, self._v = int(h_spacing), int(v_spacing)

    def addItem(self, item: QtWidgets.QLayoutItem) -> None:  # noqa: N802 (Qt name)
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> QtCore.Qt.Orientation:  # noqa: N802
        return QtCore.Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._arrange(QtCore.QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QtCore.QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def _visible(self) -> list[QtWidgets.QLayoutItem]:
        return [it for it in self._items if not it.isEmpty()]

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802
        """One line: every item side by side."""
        items = self._visible()
        m = self.contentsMargins()
        w = sum(it.sizeHint().width() for it in items) + self._h * max(0, len(items) - 1)
        h = max((it.sizeHint().height() for it in items), default=0)
        return QtCore.QSize(w + m.left() + m.right(), h + m.top() + m.bottom())

    def minimumSize(self) -> QtCore.QSize:  # noqa: N802
        """The widest item (an item is never squeezed below its size hint)."""
        size = QtCore.QSize()
        for it in self._visible():
            size = size.expandedTo(it.sizeHint())
        m = self.contentsMargins()
        return size + QtCore.QSize(m.left() + m.right(), m.top() + m.bottom())

    def _arrange(self, rect: QtCore.QRect, apply: bool) -> int:
        """Place (``apply``) or only measure the items in ``rect``; returns the height used."""
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        lines: list[list[tuple[QtWidgets.QLayoutItem, QtCore.QSize]]] = [[]]
        x = 0
        for it in self._visible():
            hint = it.sizeHint()
            if lines[-1] and x + hint.width() > area.width():
                lines.append([])
                x = 0
            lines[-1].append((it, hint))
            x += hint.width() + self._h
        y = area.y()
        for line in lines:
            if not line:
                continue
            line_h = max(h.height() for _, h in line)
            x = area.x()
            for it, hint in line:
                if apply:
                    it.setGeometry(QtCore.QRect(x, y + (line_h - hint.height()) // 2,
                                                hint.width(), hint.height()))
                x += hint.width() + self._h
            y += line_h + self._v
        used = y - self._v - area.y() if any(lines) else 0
        return used + m.top() + m.bottom()


class ScopeWidget(QtWidgets.QWidget):
    """Stacked-channel scope of a source's ring buffer.

    The widget has no timer of its own: the main window's display timer calls :meth:`refresh`
    (tests call it directly). Everything here runs in the GUI thread and only reads copies.

    Signals
    -------
    settingsChanged()
        A display setting changed (window, mode, scales, filter, channel set-up).
    """

    settingsChanged = QtCore.Signal()
    channelsChanged = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = None
        self.window_s = 10.0
        self.mode = "scroll"
        self.scale_uv = 100.0  # µV per division (one division = channel spacing)
        #: Traces are clipped to ± this many divisions around their baseline: half a division,
        #: so a large channel stays in its own row and never paints over its neighbours.
        self.clip_div = 0.5
        self.display_filter = DisplayFilter()
        self.channel_scale: dict[int, float] = {}  # per-channel µV/div overriding the global one
        self.hidden: set[int] = set()
        self.bad: set[int] = set()
        self.montage = "as streamed"
        self.flags: dict[int, str] = {}
        self.flat_uv = 0.5
        self.railed_uv = 0.9 * 187_500.0
        self.frame_count = 0
        self.last_frame_ms = 0.0
        #: "auto": a pixel raster of min/max spans when there are >= 2 samples per pixel column
        #: (cost independent of the point count), curves otherwise; or force "raster"/"curves".
        self.renderer = "auto"
        self.render_mode = ""
        self.drawn: dict[str, list[int]] = {}
        self._seg_key = None
        #: Scroll-mode raster keeps a circular image and renders only new bins (see _draw_strip).
        self.incremental = True
        self._strip: dict | None = None
        self._store_gen = 0
        self._seg_starts = np.zeros(0, int)
        self._seg_cols = np.zeros(0, int)

        self._info = None
        self._buffer = None
        #: Channel names of the stream that ``hidden``, ``bad`` and ``channel_scale`` refer to
        #: (they hold indices: another stream's channel 3 is another electrode).
        self._channels_for: tuple[str, ...] | None = None
        self._order: list[int] = []
        self._unit_scale = np.ones(0)
        self._check_flags = np.zeros(0, bool)
        self._store: np.ndarray | None = None
        self._store_ts: np.ndarray | None = None
        self._wn = 0
        self._k = 0  # next sequence number to read from the ring buffer
        self._filled = 0
        self._filter: StreamingDisplayFilter | None = None
        self._markers: list = []  # sorted by timestamp
        self._marker_times: list[float] = []
        self._marker_k = 0
        self._marker_items: list[tuple[pg.InfiniteLine, pg.TextItem]] = []
        self._marker_positions: list[tuple[str, float]] = []
        self._last_flag_check = 0.0
        self._ticks_key = None
        self._flag_items: list[pg.TextItem] = []

        self._build_ui()

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        # the tool row wraps onto a second line in a narrow window (a laptop screen with the
        # speller open) instead of setting the window's minimum width
        bar = FlowLayout(h_spacing=10, v_spacing=2)
        bar.setContentsMargins(4, 2, 4, 0)
        self.tool_row = bar
        self.window_spin = QtWidgets.QDoubleSpinBox()
        self.window_spin.setRange(*WINDOW_RANGE)
        self.window_spin.setDecimals(0)
        self.window_spin.setSuffix(" s")
        self.window_spin.setValue(self.window_s)
        self.window_spin.setToolTip("Time window shown (1–30 s)")
        self.mode_combo = QtWidgets.QComboBox()
        self.mode_combo.addItems(MODES)
        self.mode_combo.setToolTip("Scroll: newest at the right. Sweep: a cursor overwrites the oldest.")
        self.scale_spin = QtWidgets.QDoubleSpinBox()
        self.scale_spin.setRange(0.5, 100_000.0)
        self.scale_spin.setDecimals(1)
        self.scale_spin.setSuffix(" µV/div")
        self.scale_spin.setValue(self.scale_uv)
        self.scale_spin.setToolTip("Global amplitude scale (channel spacing = one division)")
        self.notch_combo = QtWidgets.QComboBox()
        self.notch_combo.addItems(["notch off", "notch 50 Hz", "notch 60 Hz"])
        self.band_combo = QtWidgets.QComboBox()
        self.band_combo.addItems([f"band {k}" if k != "off" else "band-pass off" for k in BANDPASS_PRESETS])
        for w, tip in ((self.notch_combo, "Display-only notch (the recording is never filtered)"),
                       (self.band_combo, "Display-only band-pass (the recording is never filtered)")):
            w.setToolTip(tip)
        self.auto_btn = QtWidgets.QPushButton("Auto")
        self.auto_btn.setToolTip("Set the global scale from the signal (about ±2 SD per channel lane)")
        self.auto_btn.clicked.connect(self.auto_scale)
        # a label stays on the line of its control: each group wraps as a whole
        for label, widgets in (("Window", (self.window_spin,)), ("Mode", (self.mode_combo,)),
                               ("Scale", (self.scale_spin, self.auto_btn)),
                               ("Filter", (self.notch_combo,)), (None, (self.band_combo,))):
            group = QtWidgets.QWidget()
            row = QtWidgets.QHBoxLayout(group)
            row.setContentsMargins(0, 0, 0, 0)
            row.setSpacing(4)
            if label:
                row.addWidget(QtWidgets.QLabel(label))
            for w in widgets:
                row.addWidget(w)
            bar.addWidget(group)
        lay.addLayout(bar)

        self.plot_widget = _CountingPlotWidget(background=BACKGROUND)
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setMouseEnabled(False, False)
        self.plot.enableAutoRange(False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        # time grid as a few static lines above the raster (the axis' own grid would be covered)
        self._grid: list[pg.InfiniteLine] = []
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.getAxis("left").setWidth(90)  # until the names are known (_fit_name_axis)
        self.name_axis_elided = False
        for name in ("left", "bottom"):
            # the axes (and the grid they draw) change rarely: cache them as pixmaps instead of
            # replaying their text every frame
            self.plot.getAxis(name).setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        lay.addWidget(self.plot_widget, 1)

        self._curves: dict[str, pg.PlotCurveItem] = {}
        for style, colour in STYLE_PENS.items():
            item = pg.PlotCurveItem(pen=pg.mkPen(colour, width=1), connect="finite",
                                    skipFiniteCheck=False)
            item.setZValue(1 if style == "normal" else 2)
            self.plot.addItem(item)
            self._curves[style] = item
        self._raster = _RasterItem()
        self._raster.setZValue(1)
        self.plot.addItem(self._raster)
        self._cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((230, 230, 230), width=1))
        self._cursor.setVisible(False)
        self._cursor.setZValue(3)
        self.plot.addItem(self._cursor)
        self._message = pg.TextItem("No signal — waiting for a source", color=(200, 200, 200),
                                    anchor=(0.5, 0.5))
        self.plot.addItem(self._message)
        self._apply_ranges()

        self.window_spin.valueChanged.connect(self._on_window)
        self.mode_combo.currentTextChanged.connect(self._on_mode)
        self.scale_spin.valueChanged.connect(self._on_scale)
        self.notch_combo.currentIndexChanged.connect(self._on_filter)
        self.band_combo.currentIndexChanged.connect(self._on_filter)

    # ------------------------------------------------------------------ public API
    def set_source(self, source) -> None:
        """Show ``source`` (anything with ``.buffer``, ``.info`` and ``.markers``; may be unconnected)."""
        self.source = source
        self._info = None
        self._buffer = None
        self._store = None
        self._markers, self._marker_times, self._marker_k = [], [], 0
        self.flags = {}
        self._ticks_key = None
        self._ensure_stream()
        self.update_view()

    def set_paint_delay(self, seconds: float) -> None:
        """Test hook: make every paint of the plot take at least ``seconds`` (busy wait)."""
        self.plot_widget.slow_paint_s = float(seconds)

    @property
    def paint_count(self) -> int:
        return self.plot_widget.paint_count

    @property
    def n_channels(self) -> int:
        """Channels of the current stream (0 before it is connected)."""
        return 0 if self._info is None else self._info.n_channels

    @property
    def visible_channels(self) -> list[int]:
        """Indices of the channels drawn, top to bottom."""
        return [i for i in self._order if i not in self.hidden]

    def set_window(self, seconds: float) -> None:
        self.window_spin.setValue(float(seconds))

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        self.mode_combo.setCurrentText(mode)

    def set_scale(self, uv_per_div: float) -> None:
        self.scale_spin.setValue(float(uv_per_div))

    def set_filter(self, notch: int = 0, bandpass: str = "off") -> None:
        spec = DisplayFilter(int(notch), bandpass)  # validates
        self.notch_combo.blockSignals(True)
        self.band_combo.blockSignals(True)
        self.notch_combo.setCurrentIndex(NOTCH_CHOICES.index(spec.notch))
        self.band_combo.setCurrentIndex(list(BANDPASS_PRESETS).index(spec.bandpass))
        self.notch_combo.blockSignals(False)
        self.band_combo.blockSignals(False)
        self._on_filter()

    def auto_scale(self) -> float | None:
        """Set the global µV/div to a round value near 4 × the median channel SD; returns it."""
        data = self.displayed_data()
        chans = [c for c in self.visible_channels if c not in self.bad]
        if data is None or len(data) < 2 or not chans:
            return None
        sd = np.nanstd(data[:, chans], axis=0)
        sd = sd[np.isfinite(sd) & (sd > 0)]
        if not len(sd):
            return None
        target = 4.0 * float(np.median(sd))
        exp = 10.0 ** np.floor(np.log10(target))
        nice = min((1, 2, 5, 10), key=lambda m: abs(m * exp - target)) * exp
        self.set_scale(float(np.clip(nice, self.scale_spin.minimum(), self.scale_spin.maximum())))
        return self.scale_uv

    def set_channel_scale(self, ch: int, uv_per_div: float | None) -> None:
        """Per-channel µV/div (None or 0: follow the global scale)."""
        if uv_per_div:
            self.channel_scale[int(ch)] = float(uv_per_div)
        else:
            self.channel_scale.pop(int(ch), None)
        self._changed(layout=False)

    def set_channel_visible(self, ch: int, visible: bool) -> None:
        (self.hidden.discard if visible else self.hidden.add)(int(ch))
        self._changed(layout=True)

    def set_channel_bad(self, ch: int, bad: bool) -> None:
        (self.bad.add if bad else self.bad.discard)(int(ch))
        self._changed(layout=True)

    def set_montage(self, montage: str) -> None:
        if montage not in MONTAGES:
            raise ValueError(f"montage must be one of {MONTAGES}, got {montage!r}.")
        self.montage = montage
        if self._info is not None:
            try:
                self._order = montage_order(self._info.ch_names, montage)
            except Exception:
                logger.exception("Montage %s could not order the channels", montage)
                self._order = list(range(self._info.n_channels))
        self._changed(layout=True)

    def marker_positions(self) -> list[tuple[str, float]]:
        """(label, x) of the marker lines drawn in the last frame (x in plot seconds)."""
        return list(self._marker_positions)

    def displayed_data(self) -> np.ndarray | None:
        """Copy of the (filtered) display store in time order, shape (n, n_channels), in µV."""
        if self._store is None:
            return None
        p0 = self._k % self._wn
        out = np.concatenate((self._store[p0:], self._store[:p0]))
        return out[-self._filled:] if self._filled else out[:0]

    def state(self) -> dict:
        """Display settings as plain values (for QSettings)."""
        return {
            "window_s": self.window_s, "mode": self.mode, "scale_uv": self.scale_uv,
            "notch": self.display_filter.notch, "bandpass": self.display_filter.bandpass,
            "montage": self.montage,
        }

    def restore(self, state: dict) -> None:
        """Apply stored display settings; each one that is invalid (an edited settings file) is
        skipped with a warning, and the others are still restored."""
        steps = (
            ("window_s", lambda: self.set_window(float(state.get("window_s", self.window_s)))),
            ("mode", lambda: self.set_mode(str(state.get("mode", self.mode)))),
            ("scale_uv", lambda: self.set_scale(float(state.get("scale_uv", self.scale_uv)))),
            ("notch/bandpass", lambda: self.set_filter(int(state.get("notch", 0)),
                                                       str(state.get("bandpass", "off")))),
            ("montage", lambda: self.set_montage(str(state.get("montage", self.montage)))),
        )
        for key, apply in steps:
            try:
                apply()
            except (ValueError, TypeError) as err:
                logger.warning("Ignoring the stored scope setting %s: %s", key, err)

    def channel_state(self) -> dict:
        """Per-stream channel set-up (hidden, bad, per-channel scales) by channel name."""
        if self._info is None:
            return {}
        names = self._info.ch_names
        return {
            "hidden": [names[i] for i in sorted(self.hidden)],
            "bad": [names[i] for i in sorted(self.bad)],
            "scales": {names[i]: s for i, s in self.channel_scale.items()},
        }

    def restore_channels(self, state: dict) -> None:
        self._ensure_stream()
        if self._info is None or not state:
            return
        idx = {n: i for i, n in enumerate(self._info.ch_names)}

        def indices(key: str) -> set[int]:  # (an edited settings file: not a list is ignored)
            names = state.get(key)
            return {idx[n] for n in names if isinstance(n, str) and n in idx} \
                if isinstance(names, list) else set()

        self.hidden = indices("hidden")
        self.bad = indices("bad")
        self.channel_scale = {}
        scales = state.get("scales")
        for n, s in (scales.items() if isinstance(scales, dict) else ()):
            try:
                s = float(s)
            except (TypeError, ValueError):  # an edited settings file: that scale is ignored
                continue
            if n in idx and math.isfinite(s) and s > 0:
                self.channel_scale[idx[n]] = s
        self._changed(layout=True)

    # ------------------------------------------------------------------ control slots
    def _changed(self, *, layout: bool) -> None:
        if layout:
            self._ticks_key = None
            self._apply_ranges()
            self.channelsChanged.emit()
        self.settingsChanged.emit()
        self.update_view()

    def _on_window(self, value: float) -> None:
        self.window_s = float(value)
        self._store = None  # re-read the window from the buffer
        self._apply_ranges()
        self.settingsChanged.emit()
        self.update_view()

    def _on_mode(self, mode: str) -> None:
        self.mode = mode
        self._apply_ranges()
        self.settingsChanged.emit()
        self.update_view()

    def _on_scale(self, value: float) -> None:
        self.scale_uv = float(value)
        self.settingsChanged.emit()
        self.update_view()

    def _on_filter(self, *_: object) -> None:
        band = list(BANDPASS_PRESETS)[max(0, self.band_combo.currentIndex())]
        notch = NOTCH_CHOICES[max(0, self.notch_combo.currentIndex())]
        self.display_filter = DisplayFilter(notch, band)
        self._store = None  # refilter the visible window from the (untouched) ring buffer
        self.settingsChanged.emit()
        self.update_view()

    # ------------------------------------------------------------------ frame
    def _ensure_stream(self) -> bool:
        src = self.source
        if src is None or getattr(src, "buffer", None) is None or getattr(src, "info", None) is None:
            return False
        if src.buffer is self._buffer and src.info is self._info:
            return True
        self._buffer, self._info = src.buffer, src.info
        n = self._info.n_channels
        self._unit_scale = np.array([1e6 if u == "V" else 1.0 for u in self._info.units])
        self._check_flags = np.array([u == "V" for u in self._info.units], bool)
        names = tuple(self._info.ch_names)
        if self._channels_for is not None and names != self._channels_for:
            # another stream (the user chose another source): the channels hidden, marked bad
            # or scaled were the previous stream's; by index they named other electrodes here
            # (the new stream's own set-up is restored by the window from the settings)
            self.hidden, self.bad, self.channel_scale = set(), set(), {}
        self._channels_for = names
        self.hidden = {i for i in self.hidden if i < n}
        self.bad = {i for i in self.bad if i < n}
        self.channel_scale = {i: s for i, s in self.channel_scale.items() if i < n}
        try:
            self._order = montage_order(self._info.ch_names, self.montage)
        except Exception:
            logger.exception("Montage %s could not order the channels", self.montage)
            self._order = list(range(n))
        self._store = None
        self._ticks_key = None
        self._apply_ranges()
        self.channelsChanged.emit()
        return True

    def _reset_store(self) -> None:
        self._store_gen += 1
        info, buf = self._info, self._buffer
        sfreq = info.sfreq or 1.0
        self._wn = max(2, min(int(round(self.window_s * sfreq)), buf.capacity))
        self._store = np.full((self._wn, info.n_channels), np.nan, dtype=np.float32)
        self._store_ts = np.full(self._wn, np.nan)
        self._filter = StreamingDisplayFilter(self.display_filter, sfreq, info.n_channels)
        self._filled = 0
        chunk = buf.latest(self._wn)
        self._k = chunk.start
        self._ingest(chunk)

    def _ingest(self, chunk) -> None:
        n = chunk.stop - chunk.start
        if n <= 0:
            self._k = chunk.stop
            return
        x = chunk.data * self._unit_scale  # a new array in µV: the buffer's copy is not reused
        y = self._filter.process(x)
        ts = chunk.timestamps
        if n > self._wn:
            y, ts = y[-self._wn:], ts[-self._wn:]
        start = chunk.stop - len(ts)
        p = start % self._wn
        m = len(ts)
        first = min(m, self._wn - p)
        self._store[p:p + first] = y[:first]
        self._store_ts[p:p + first] = ts[:first]
        if first < m:
            self._store[:m - first] = y[first:]
            self._store_ts[:m - first] = ts[first:]
        self._k = chunk.stop
        self._filled = min(self._wn, self._filled + n)

    def refresh(self) -> None:
        """Pull what is new from the buffer and redraw (one display frame)."""
        t0 = time.perf_counter()
        if self._ensure_stream():
            if self._store is None:
                self._reset_store()
            else:
                chunk = self._buffer.since(self._k)
                if chunk.lost:
                    logger.debug("Scope fell %d samples behind; re-reading the window", chunk.lost)
                    self._reset_store()
                else:
                    self._ingest(chunk)
            self._read_markers()
            now = time.monotonic()
            if now - self._last_flag_check >= 0.25:
                self._last_flag_check = now
                self._update_flags()
        self.update_view()
        self.frame_count += 1
        self.last_frame_ms = 1e3 * (time.perf_counter() - t0)

    def _update_flags(self) -> None:
        n = max(2, int(self._info.sfreq or 2))
        chunk = self._buffer.latest(min(n, self._buffer.capacity))
        flags = channel_flags(chunk.data * self._unit_scale, self._check_flags,
                              flat_uv=self.flat_uv, railed_uv=self.railed_uv)
        if flags != self.flags:
            self.flags = flags
            self._ticks_key = None

    def _read_markers(self) -> None:
        log = getattr(self.source, "markers", None)
        if log is None:
            return
        new = log.since(self._marker_k)
        self._marker_k += len(new)
        for m in new:
            i = bisect.bisect_right(self._marker_times, m.timestamp)
            self._marker_times.insert(i, m.timestamp)
            self._markers.insert(i, m)

    # ------------------------------------------------------------------ drawing
    def _apply_ranges(self) -> None:
        nvis = max(1, len(self.visible_channels)) if self._info is not None else 1
        vb = self.plot.getViewBox()
        pad = 0.004 * self.window_s
        y_range = (-(nvis - 1) - 0.5 - _Y_PAD, 0.5 + _Y_PAD)
        if self.mode == "scroll":
            self._xrange = (-self.window_s - pad, pad)
        else:
            self._xrange = (-pad, self.window_s + pad)
        self._yrange = y_range
        vb.setRange(xRange=self._xrange, yRange=y_range, padding=0)
        self._message.setPos(-self.window_s / 2 if self.mode == "scroll" else self.window_s / 2,
                             -(nvis - 1) / 2)
        step = 1.0 if self.window_s <= 12 else (2.0 if self.window_s <= 20 else 5.0)
        xs = np.arange(0.0, self.window_s + 1e-9, step)
        xs = -xs if self.mode == "scroll" else xs
        while len(self._grid) < len(xs):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(GRID_PEN, width=1))
            line.setZValue(1.5)
            self.plot.addItem(line)
            self._grid.append(line)
        for i, line in enumerate(self._grid):
            line.setVisible(i < len(xs))
            if i < len(xs):
                line.setPos(float(xs[i]))

    def _update_ticks(self, vis: list[int]) -> None:
        lane_px = (self.plot.getViewBox().height() or 400) / max(1, len(vis) + 2 * _Y_PAD)
        step = max(1, int(np.ceil(13.0 / max(lane_px, 1.0))))  # labels never overlap
        key = (tuple(vis), tuple(sorted(self.flags.items())), tuple(sorted(self.bad)), step)
        if key == self._ticks_key:
            return
        self._ticks_key = key
        names = self._info.ch_names
        ticks = []
        for row, ch in enumerate(vis):
            if row % step and ch not in self.bad and ch not in self.flags:
                continue
            label = names[ch]
            if ch in self.bad:
                label += " (bad)"
            elif ch in self.flags:
                label += " " + self.flags[ch].upper()
            ticks.append((-row, label))
        self._fit_name_axis(ticks)
        self.plot.getAxis("left").setTicks([ticks, []])
        for item in self._flag_items:
            self.plot.removeItem(item)
        self._flag_items = []
        x_right = 0.0 if self.mode == "scroll" else self.window_s
        for row, ch in enumerate(vis):
            flag = self.flags.get(ch)
            if flag and ch not in self.bad:
                item = pg.TextItem(flag.upper(), color=STYLE_PENS[flag], anchor=(1, 0.5))
                item.setPos(x_right, -row)
                self.plot.addItem(item)
                self._flag_items.append(item)

    def _fit_name_axis(self, ticks: list[tuple[float, str]]) -> None:
        """Make the channel-name axis as wide as its longest label (with its flag), up to
        :data:`NAME_AXIS_MAX` px; longer labels are elided with "…" (full names in the tooltip)."""
        axis = self.plot.getAxis("left")
        fm = QtGui.QFontMetrics(axis.style.get("tickFont") or self.plot_widget.font())
        extra = 14  # the tick line and the gap to the text
        limit = NAME_AXIS_MAX - extra
        widest = max((fm.horizontalAdvance(t) for _, t in ticks), default=0)
        elided = False
        for i, (pos, text) in enumerate(ticks):
            if fm.horizontalAdvance(text) > limit:
                ticks[i] = (pos, fm.elidedText(text, QtCore.Qt.TextElideMode.ElideMiddle, limit))
                elided = True
        width = int(np.clip(min(widest, limit) + extra, NAME_AXIS_MIN, NAME_AXIS_MAX))
        if axis.width() != width:
            axis.setWidth(width)
        self.name_axis_elided = elided
        axis.setToolTip("\n".join(self._info.ch_names) if elided else "")

    def update_view(self) -> None:
        """Redraw from the display store (no reading from the buffer)."""
        if self._store is None or self._info is None or self._filled == 0:
            for c in self._curves.values():
                c.setData([], [])
            self._raster.clear()
            self.drawn = {}
            self._cursor.setVisible(False)
            self._message.setVisible(True)
            self._marker_positions = []
            self._draw_markers([])
            return
        self._message.setVisible(False)
        vis = self.visible_channels
        self._update_ticks(vis)
        sfreq = self._info.sfreq or 1.0
        wn = self._wn
        vb = self.plot.getViewBox()
        width_px = int(vb.width()) or 800
        height_px = int(vb.height()) or 400
        scales = np.full(self._info.n_channels, self.scale_uv)
        for ch, s in self.channel_scale.items():
            scales[ch] = s
        groups: dict[str, list[tuple[int, int]]] = {k: [] for k in self._curves}
        for row, ch in enumerate(vis):
            style = "bad" if ch in self.bad else self.flags.get(ch, "normal")
            groups[style].append((row, ch))
        self.drawn = {k: [c for _, c in v] for k, v in groups.items() if v}
        newest = (self._k - 1) % wn
        if self.mode == "sweep":
            self._cursor.setPos(newest / sfreq)
        self._cursor.setVisible(self.mode == "sweep")
        use_raster = self.renderer == "raster" or (self.renderer == "auto" and wn >= 2 * width_px)
        if use_raster and width_px > 1 and height_px > 1 and self.incremental:
            self._draw_strip(groups, scales, sfreq, width_px, height_px)  # reads the store itself
        else:
            if self.mode == "scroll":  # the window in time order (a copy)
                p0 = self._k % wn
                ordered = np.concatenate((self._store[p0:], self._store[:p0])) if p0 else self._store
            else:
                ordered = self._store
            if use_raster and width_px > 1 and height_px > 1:
                self._draw_raster(ordered, groups, scales, sfreq, width_px, height_px, newest)
            else:
                self._draw_curves(ordered, groups, scales, sfreq, width_px, newest)
        self._draw_markers_for_window(sfreq=sfreq)

    def _draw_curves(self, ordered, groups, scales, sfreq, width_px, newest) -> None:
        """One NaN-separated curve per style from min/max-decimated data (low sample density)."""
        self.render_mode = "curves"
        self._raster.clear()
        wn = self._wn
        n_bins = int(np.clip(width_px, 200, 4000))
        idx, dec = minmax_decimate(ordered, n_bins)
        if self.mode == "scroll":
            x = (idx - (wn - 1)) / sfreq
        else:
            x = idx / sfreq
            # break the trace at the write position: the bin holding the newest sample
            j = int(np.searchsorted(idx, newest, side="right")) - 1
            dec = dec.copy()
            dec[max(0, j - (j % 2)): j - (j % 2) + 2] = np.nan
        with np.errstate(invalid="ignore", all="ignore"):
            dc = np.nanmean(dec, axis=0) if np.isnan(dec).any() else dec.mean(axis=0)
        npts = len(x)
        y_lo, y_hi = self._yrange[0] + 0.01, self._yrange[1] - 0.01
        for style, members in groups.items():
            curve = self._curves[style]
            if not members:
                curve.setData([], [])
                continue
            rows = np.array([r for r, _ in members])
            chs = np.array([c for _, c in members])
            with np.errstate(invalid="ignore"):
                y = (dec[:, chs] - dc[chs]) / scales[chs]
                np.clip(y, -self.clip_div, self.clip_div, out=y)
            y = y - rows  # row 0 at the top (y = 0), next at -1, ...
            np.clip(y, y_lo, y_hi, out=y)  # never draw outside the view (nor over the axes)
            yy = np.empty((len(chs), npts + 1), dtype=np.float64)
            yy[:, :npts] = y.T
            yy[:, npts] = np.nan
            xx = np.empty((len(chs), npts + 1), dtype=np.float64)
            xx[:, :npts] = x
            xx[:, npts] = np.nan
            curve.setData(xx.ravel(), yy.ravel(), connect="finite")

    def _segments(self, sfreq: float, width_px: int) -> tuple[int, np.ndarray]:
        """Samples per bin (at least one bin per pixel column) and the column of each bin (cached)."""
        key = (self._wn, width_px, self.mode, self._xrange, sfreq)
        if key != self._seg_key:
            b = max(1, self._wn // width_px)
            n_bins = -(-self._wn // b)
            centre = np.minimum(np.arange(n_bins) * b + 0.5 * (b - 1), self._wn - 1)
            x = (centre - (self._wn - 1)) / sfreq if self.mode == "scroll" else centre / sfreq
            x0, x1 = self._xrange
            col = np.clip(((x - x0) * (width_px / (x1 - x0))).astype(np.int64), 0, width_px - 1)
            self._seg_key, self._seg_starts, self._seg_cols = key, b, col
        return self._seg_starts, self._seg_cols

    def _draw_raster(self, ordered, groups, scales, sfreq, width_px, height_px, newest) -> None:
        """Min/max span per pixel column and channel, rasterised in numpy (high sample density)."""
        self.render_mode = "raster"
        for c in self._curves.values():
            if c.xData is not None and len(c.xData):
                c.setData([], [])
        b, cols = self._segments(sfreq, width_px)
        wn, n_ch = ordered.shape
        m = wn // b
        main = ordered[: m * b].reshape(m, b, n_ch)
        mn, mx = main.min(axis=1), main.max(axis=1)
        if m * b < wn:  # a partial last bin
            mn = np.vstack((mn, ordered[m * b:].min(axis=0, keepdims=True)))
            mx = np.vstack((mx, ordered[m * b:].max(axis=0, keepdims=True)))
        if self.mode == "sweep":  # blank the bin being written
            mn[newest // b] = np.nan
            mx[newest // b] = np.nan
        with np.errstate(invalid="ignore", all="ignore"):
            mid = 0.5 * (mn + mx)
            dc = np.nanmean(mid, axis=0) if np.isnan(mid).any() else mid.mean(axis=0)
        argb = spans_to_argb(mn, mx, groups, scales, dc, self.clip_div, self._yrange, height_px, cols,
                             width_px, _COLOURS, background=_BACKGROUND)
        self._raster.opaque = True
        x0, x1 = self._xrange
        y0, y1 = self._yrange
        self._raster.set_image(argb, QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))

    def _draw_strip(self, groups, scales, sfreq, width_px, height_px) -> None:
        """The raster as a circular strip chart: only bins that changed are rendered.

        Bins of ``b`` samples are anchored to sample sequence numbers, so a bin, once complete,
        never changes: each frame computes the min/max of the new bins only (a few per frame),
        rasterises them into their columns of a circular image, and the image is drawn in
        pieces at the right x (scroll: oldest to newest; sweep: the current pass from the left
        edge, the previous pass after the cursor). Everything is re-rendered from the cached bins when the layout,
        scales or view change, or when a channel's baseline moved by more than 0.05 division.
        """
        self.render_mode = "raster"
        for c in self._curves.values():
            if c.xData is not None and len(c.xData):
                c.setData([], [])
        wn, n_ch = self._wn, self._info.n_channels
        b = -(-wn // width_px)
        n_cols = -(-wn // b) + 1
        geom = (wn, b, n_cols, height_px, self._store_gen, n_ch)
        st = self._strip
        if st is None or st["geom"] != geom:
            st = self._strip = {
                "geom": geom, "mn": np.full((n_cols, n_ch), np.nan, np.float32),
                "mx": np.full((n_cols, n_ch), np.nan, np.float32),
                "argb": np.full((height_px, n_cols), _BACKGROUND, np.uint32), "next": None, "style": None,
                "dc": None,
            }
        k_stop, oldest = self._k, self._k - self._filled
        kb_first = max(0, k_stop - wn) // b
        kb_last = (k_stop - 1) // b
        k_a = st["next"] if st["next"] is not None and kb_first <= st["next"] <= kb_last + 1 else kb_first
        if k_a <= kb_last:  # min/max of the new (and the still partial) bins
            s0 = max(k_a * b, oldest)
            seq = np.arange(s0, k_stop)
            data = self._store[seq % wn]
            front, back = s0 - k_a * b, (kb_last + 1) * b - k_stop
            if front or back:  # edge padding leaves a bin's min and max unchanged
                parts = [np.repeat(data[:1], front, 0)] if front else []
                parts.append(data)
                if back:
                    parts.append(np.repeat(data[-1:], back, 0))
                data = np.concatenate(parts)
            blocks = data.reshape(kb_last + 1 - k_a, b, n_ch)
            cols_new = np.arange(k_a, kb_last + 1) % n_cols
            st["mn"][cols_new] = blocks.min(axis=1)
            st["mx"][cols_new] = blocks.max(axis=1)
        st["next"] = kb_last if k_stop % b else kb_last + 1
        window_cols = np.arange(kb_first, kb_last + 1) % n_cols
        with np.errstate(invalid="ignore", all="ignore"):
            mid = 0.5 * (st["mn"][window_cols] + st["mx"][window_cols])
            dc = np.nanmean(mid, axis=0)
        dc = np.where(np.isfinite(dc), dc, 0.0)
        vis = [c for m in groups.values() for _, c in m]
        style = (tuple((k, tuple(v)) for k, v in groups.items()), tuple(scales[vis]), self.clip_div,
                 self._yrange)
        moved = st["dc"] is None or (np.abs(dc - st["dc"])[vis] / scales[vis] > 0.05).any()
        if style != st["style"] or moved:  # re-render every column from the cached bins
            st["style"], st["dc"] = style, dc
            k_r = kb_first
        else:
            k_r = min(k_a, kb_last)
        ks = np.arange(k_r, kb_last + 1)
        cols = ks % n_cols
        prev = None
        if k_r > kb_first:
            pc = (k_r - 1) % n_cols
            prev = (st["mn"][pc], st["mx"][pc])
        block = spans_to_argb(st["mn"][cols], st["mx"][cols], groups, scales, st["dc"], self.clip_div,
                              self._yrange, height_px, np.arange(len(ks)), len(ks), _COLOURS, prev,
                              background=_BACKGROUND)
        self._raster.opaque = True
        st["argb"][:, cols] = block.T
        if self.mode == "scroll":  # bin k at x = (k * b - (k_stop - 1)) / sfreq
            pieces = _bin_pieces(kb_first, kb_last, -(k_stop - 1), b, n_cols, sfreq)
        else:
            # sweep: the current pass (from S) starts at x = 0, the rest of the previous pass is
            # drawn after the cursor, minus a small erase gap so the write position shows
            start = (k_stop - 1) // wn * wn
            pieces = []
            if start > 0:  # then k_stop > wn: a previous pass exists
                gap = max(1, n_cols // 100)
                pieces = _bin_pieces((k_stop - wn) // b + gap, (start - 1) // b, -(start - wn), b,
                                     n_cols, sfreq)
            pieces += _bin_pieces(start // b, kb_last, -start, b, n_cols, sfreq)
        self._raster.set_pieces(st["argb"], self._yrange, pieces)

    def _ordered_ts(self) -> np.ndarray:
        p0 = self._k % self._wn
        return np.concatenate((self._store_ts[p0:], self._store_ts[:p0])) if p0 else self._store_ts

    def _draw_markers_for_window(self, sfreq: float) -> None:
        wn = self._wn
        n = self._filled
        if n == 0 or not self._markers:
            self._marker_positions = []
            self._draw_markers([])
            return
        ts = self._ordered_ts()[wn - n:]
        t_first, t_last = ts[0], ts[-1] + 1.0 / sfreq
        i0 = bisect.bisect_left(self._marker_times, t_first)
        i1 = bisect.bisect_left(self._marker_times, t_last)
        shown = []
        oldest_seq = self._k - n
        for m in self._markers[i0:i1][-200:]:  # never more than 200 lines a frame
            pos = float(np.interp(m.timestamp, ts, np.arange(n, dtype=np.float64)))
            if self.mode == "scroll":
                x = (pos - (n - 1)) / sfreq
            else:
                x = ((oldest_seq + pos) % wn) / sfreq
            shown.append((m, x))
        self._marker_positions = [(m.label, x) for m, x in shown]
        self._draw_markers(shown)

    def _draw_markers(self, shown: list) -> None:
        while len(self._marker_items) < len(shown):
            line = pg.InfiniteLine(angle=90, movable=False)
            text = pg.TextItem("", anchor=(0, 0))
            line.setZValue(3)
            text.setZValue(3)
            self.plot.addItem(line)
            self.plot.addItem(text)
            self._marker_items.append((line, text))
        for i, (line, text) in enumerate(self._marker_items):
            if i >= len(shown):
                if line.isVisible():
                    line.setVisible(False)
                    text.setVisible(False)
                continue
            m, x = shown[i]
            kind = "gap" if m.label == "bci_app/gap" else ("user" if m.source == "user" else "other")
            colour = MARKER_COLOURS[kind]
            label = "gap" if kind == "gap" else m.label
            if text.toPlainText() != label or getattr(line, "_kind", None) != kind:
                line.setPen(pg.mkPen(colour, width=1, style=QtCore.Qt.PenStyle.DashLine if kind == "gap"
                                     else QtCore.Qt.PenStyle.SolidLine))
                text.setText(label, color=colour)
                line._kind = kind
            line.setPos(x)
            text.setPos(x, 0.5 + 0.15)
            line.setVisible(True)
            text.setVisible(True)


class ChannelPanel(QtWidgets.QWidget):
    """Channel table for the scope: show/hide, bad marking, per-channel µV/div, montage order."""

    def __init__(self, scope: ScopeWidget, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.scope = scope
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Montage"))
        self.montage_combo = QtWidgets.QComboBox()
        self.montage_combo.addItems(MONTAGES)
        self.montage_combo.setToolTip("Channel order: as streamed, or front-to-back in a montage")
        row.addWidget(self.montage_combo, 1)
        lay.addLayout(row)
        btns = QtWidgets.QHBoxLayout()
        self.all_btn = QtWidgets.QPushButton("Show all")
        self.none_btn = QtWidgets.QPushButton("Hide all")
        btns.addWidget(self.all_btn)
        btns.addWidget(self.none_btn)
        lay.addLayout(btns)
        self.table = QtWidgets.QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Show", "Channel", "Bad", "µV/div"])
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        for col in (0, 2, 3):  # the check boxes and the scale: as wide as their content
            header.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        lay.addWidget(self.table, 1)
        self._updating = False
        self.table.itemChanged.connect(self._on_item)
        self.montage_combo.currentTextChanged.connect(self._on_montage)
        self.all_btn.clicked.connect(lambda: self._set_all(True))
        self.none_btn.clicked.connect(lambda: self._set_all(False))
        scope.channelsChanged.connect(self.rebuild)

    def rebuild(self) -> None:
        info = self.scope._info
        self._updating = True
        try:
            self.montage_combo.setCurrentText(self.scope.montage)
            n = 0 if info is None else info.n_channels
            if self.table.rowCount() != n:
                self.table.setRowCount(n)
            for ch in range(n):
                show = self._item(ch, 0, checkable=True)
                show.setCheckState(QtCore.Qt.CheckState.Unchecked if ch in self.scope.hidden
                                   else QtCore.Qt.CheckState.Checked)
                self._item(ch, 1).setText(info.ch_names[ch])
                bad = self._item(ch, 2, checkable=True)
                bad.setCheckState(QtCore.Qt.CheckState.Checked if ch in self.scope.bad
                                  else QtCore.Qt.CheckState.Unchecked)
                spin = self.table.cellWidget(ch, 3)
                if spin is None:
                    spin = QtWidgets.QDoubleSpinBox()
                    spin.setRange(0.0, 100_000.0)
                    spin.setDecimals(1)
                    spin.setSpecialValueText("global")
                    spin.setFrame(False)
                    spin.valueChanged.connect(lambda v, c=ch: self.scope.set_channel_scale(c, v or None))
                    self.table.setCellWidget(ch, 3, spin)
                spin.blockSignals(True)
                spin.setValue(self.scope.channel_scale.get(ch, 0.0))
                spin.blockSignals(False)
        finally:
            self._updating = False
        self._fit_width()

    def _fit_width(self) -> None:
        """Ask for the width that shows every column: the check boxes and the scale at their
        content width, the channel names (up to 160 px) in between."""
        t, h = self.table, self.table.horizontalHeader()
        fixed = sum(max(h.sectionSizeHint(c), t.sizeHintForColumn(c)) for c in (0, 2, 3))
        fm = t.fontMetrics()
        names = [t.item(r, 1).text() for r in range(t.rowCount()) if t.item(r, 1) is not None]
        chan = min(160, max([fm.horizontalAdvance(n) + 12 for n in names]
                            + [h.sectionSizeHint(1)]))
        t.setMinimumWidth(fixed + chan + t.verticalScrollBar().sizeHint().width()
                          + 2 * t.frameWidth())

    def _item(self, row: int, col: int, checkable: bool = False) -> QtWidgets.QTableWidgetItem:
        item = self.table.item(row, col)
        if item is None:
            item = QtWidgets.QTableWidgetItem()
            flags = QtCore.Qt.ItemFlag.ItemIsEnabled
            if checkable:
                flags |= QtCore.Qt.ItemFlag.ItemIsUserCheckable
            item.setFlags(flags)
            self.table.setItem(row, col, item)
        return item

    def _on_item(self, item: QtWidgets.QTableWidgetItem) -> None:
        if self._updating:
            return
        checked = item.checkState() == QtCore.Qt.CheckState.Checked
        if item.column() == 0:
            self.scope.set_channel_visible(item.row(), checked)
        elif item.column() == 2:
            self.scope.set_channel_bad(item.row(), checked)

    def _on_montage(self, text: str) -> None:
        if not self._updating and text:
            self.scope.set_montage(text)

    def _set_all(self, visible: bool) -> None:
        n = self.scope.n_channels
        self.scope.hidden = set() if visible else set(range(n))
        self.scope._changed(layout=True)
