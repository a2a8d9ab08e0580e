"""Spectrum (PSD per channel, log scale) and band power bars, updated about 4 times a second.

Runs in the GUI thread on a copy of the last two seconds of raw samples (Welch, 1 s segments):
for 64 channels × 2 s × 1 kHz that is a few milliseconds, four times a second.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets
from scipy import signal

logger = logging.getLogger(__name__)

#: Classic EEG bands (Hz); gamma is shown when the sampling rate allows it.
BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}
BAND_COLOURS = ((86, 180, 233), (0, 158, 115), (230, 159, 0), (204, 121, 167), (213, 94, 0))


def welch_psd(data: np.ndarray, sfreq: float, segment_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """PSD of each channel.

    Parameters
    ----------
    data : ndarray, shape (n_samples, n_channels)
    sfreq : float
        Hz.
    segment_s : float
        Welch segment length in seconds (frequency resolution 1 / segment_s).

    Returns
    -------
    freqs : ndarray, shape (n_freqs,)
    psd : ndarray, shape (n_channels, n_freqs)
        Power spectral density in (unit of data)² / Hz.
    """
    if data.ndim != 2:
        raise ValueError(f"welch_psd expects (n_samples, n_channels), got {data.shape}.")
    if sfreq <= 0:
        raise ValueError(f"welch_psd needs a positive sampling rate, got {sfreq}.")
    nper = int(min(data.shape[0], max(8, round(segment_s * sfreq))))
    freqs, psd = signal.welch(data, fs=sfreq, nperseg=nper, axis=0, detrend="constant")
    return freqs, psd.T


def band_powers(freqs: np.ndarray, psd: np.ndarray, bands: dict[str, tuple[float, float]] = BANDS
                ) -> tuple[list[str], np.ndarray]:
    """Absolute power per band (integral of the PSD), shape (n_channels, n_bands).

    Bands above the highest frequency are left out (their names are not returned).
    """
    names, cols = [], []
    df = float(freqs[1] - freqs[0]) if len(freqs) > 1 else 1.0
    for name, (lo, hi) in bands.items():
        if hi > freqs[-1]:
            continue
        sel = (freqs >= lo) & (freqs < hi)
        names.append(name)
        cols.append(psd[:, sel].sum(axis=1) * df)
    return names, (np.stack(cols, axis=1) if cols else np.zeros((psd.shape[0], 0)))


#: Smallest height (px) at which the PSD and band-power plots stay readable.
MIN_HEIGHT = 180
#: Room (px) of the band-power plot's left axis (its label and "100") beside the bars.
BAR_AXIS_PX = 56
#: Smallest width (px) of the PSD plot: its axes and a readable stretch of the curves.
PSD_MIN_WIDTH = 180


class SpectrumWidget(QtWidgets.QWidget):
    """PSD plot (log power) and a relative band-power bar chart of one source.

    Has its own 4 Hz timer (:meth:`start`); tests call :meth:`refresh` directly.
    """

    #: Smallest upper frequency (Hz) of the PSD plot a stored state may set: above the
    #: coarsest Welch resolution :meth:`refresh` uses (2 Hz, half-second segments).
    MIN_MAX_FREQ = 5.0

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, interval_ms: int = 250) -> None:
        super().__init__(parent)
        self.source = None
        self.hidden: set[int] = set()
        self.max_freq = 60.0
        self.seconds = 2.0
        self.updates = 0
        self.freqs: np.ndarray | None = None
        self.psd: np.ndarray | None = None
        self.band_names: list[str] = []
        self.relative: np.ndarray | None = None
        self.last_ms = 0.0

        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.setMinimumHeight(MIN_HEIGHT)  # axes, ticks and bars stay readable
        # All channels are one NaN-separated curve of log10(PSD) (one path to draw, not 64); the
        # left axis labels the log values as powers of ten. Ranges are set by us, with hysteresis,
        # so the axes (and their text) are not re-laid out four times a second.
        self.psd_plot = pg.PlotWidget(background=(18, 18, 22))
        self.psd_plot.getAxis("left").setLogMode(False, True)
        # the axis shows powers of ten of µV²/Hz: no SI prefix ("x1e+09") on top of the unit
        self.psd_plot.getAxis("left").enableAutoSIPrefix(False)
        self.psd_plot.setLabel("bottom", "frequency", units="Hz")
        self.psd_plot.setLabel("left", "PSD (µV²/Hz)")
        self.psd_plot.showGrid(x=True, y=True, alpha=0.2)
        self.psd_plot.setMouseEnabled(False, False)
        self.psd_plot.enableAutoRange(False)
        self.psd_plot.hideButtons()
        self.psd_curve = pg.PlotCurveItem(pen=pg.mkPen((70, 120, 160), width=1), connect="finite")
        self.psd_plot.addItem(self.psd_curve)
        self.mean_curve = pg.PlotCurveItem(pen=pg.mkPen((255, 255, 255), width=2))
        self.psd_plot.addItem(self.mean_curve)
        self._yrange: tuple[float, float] | None = None
        self.bar_plot = pg.PlotWidget(background=(18, 18, 22))
        self.bar_plot.setLabel("left", "relative power (%)")
        self.bar_plot.setMouseEnabled(False, False)
        self.bar_plot.hideButtons()
        self.bar_plot.setYRange(0, 100, padding=0)
        self.bar_plot.enableAutoRange(False)
        for plot in (self.psd_plot, self.bar_plot):
            for name in ("left", "bottom"):
                plot.getAxis(name).setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        self.bar_plot.addItem(self.bars)
        # the band names under the bars stay apart when the dock is narrow (the speller beside it)
        axis = self.bar_plot.getAxis("bottom")
        fm = QtGui.QFontMetrics(axis.style.get("tickFont") or self.bar_plot.font())
        per_band = max(fm.horizontalAdvance(n) for n in BANDS) + 6
        self.bar_plot.setMinimumWidth(BAR_AXIS_PX + len(BANDS) * per_band)
        self.psd_plot.setMinimumWidth(PSD_MIN_WIDTH)
        lay.addWidget(self.psd_plot, 3)
        lay.addWidget(self.bar_plot, 2)
        self.n_curves = 0
        self._bar_names: list[str] = []

        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.refresh)

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def set_source(self, source) -> None:
        self.source = source
        self.freqs = self.psd = self.relative = None
        self.n_curves = 0
        self._yrange = None
        self.psd_curve.setData([], [])
        self.mean_curve.setData([], [])

    def state(self) -> dict:
        return {"max_freq": self.max_freq}

    def restore(self, state: dict) -> None:
        """Apply a stored :meth:`state` (the settings file: edited by hand, values may be
        strings). An invalid ``max_freq`` (not a number, not finite, below
        :attr:`MIN_MAX_FREQ`) is ignored and the current value kept."""
        stored = state.get("max_freq") if isinstance(state, dict) else None
        if stored is None:
            return
        try:
            value = math.nan if isinstance(stored, bool) else float(stored)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and value >= self.MIN_MAX_FREQ):
            logger.warning("spectrum: stored max_freq %r ignored (expected a number of Hz >= "
                           "%g); keeping %g Hz", stored, self.MIN_MAX_FREQ, self.max_freq)
            return
        self.max_freq = value

    def refresh(self) -> None:
        """Recompute from the newest ``seconds`` of raw samples and redraw."""
        src = self.source
        buf, info = getattr(src, "buffer", None), getattr(src, "info", None)
        if buf is None or info is None or not info.sfreq or not self.isVisible():
            return
        t0 = time.perf_counter()
        picks = [i for i in info.picks("eeg") if i not in self.hidden] or \
                [i for i, u in enumerate(info.units) if u == "V" and i not in self.hidden]
        n = min(buf.capacity, int(self.seconds * info.sfreq))
        chunk = buf.latest(n)
        if chunk.n_samples < max(16, int(0.5 * info.sfreq)) or not picks:
            return
        data = chunk.data[:, picks] * 1e6  # V -> µV (EEG channels are in volts)
        freqs, psd = welch_psd(data, info.sfreq)
        keep = freqs <= min(self.max_freq, info.sfreq / 2)
        if np.count_nonzero(keep) < 2:  # nothing above 0 Hz to draw (a tiny max_freq)
            return
        self.freqs, self.psd = freqs[keep], psd[:, keep]
        names, bp = band_powers(freqs, psd)
        total = bp.sum(axis=1)
        # the mean share over the channels that have power in the bands: a flat channel (an
        # unused input of the board, a disconnected electrode) has no shares, and counted as
        # 0 % in every band it made the bars add up to less than 100 %
        live = total > 0
        rel = (100.0 * bp[live] / total[live, None]).mean(axis=0) if live.any() \
            else np.zeros(len(names))
        self.band_names, self.relative = names, rel
        self._draw(picks, info)
        self.updates += 1
        self.last_ms = 1e3 * (time.perf_counter() - t0)

    def _draw(self, picks: list[int], info) -> None:
        freqs = self.freqs[1:]
        logp = np.log10(np.maximum(self.psd[:, 1:], 1e-6))
        n_ch, n_f = logp.shape
        y = np.empty((n_ch, n_f + 1))
        y[:, :n_f] = logp
        y[:, n_f] = np.nan
        x = np.empty((n_ch, n_f + 1))
        x[:, :n_f] = freqs
        x[:, n_f] = np.nan
        self.psd_curve.setData(x.ravel(), y.ravel(), connect="finite")
        self.mean_curve.setData(freqs, np.log10(np.maximum(self.psd[:, 1:].mean(axis=0), 1e-6)))
        self.n_curves = n_ch
        lo, hi = float(np.floor(np.percentile(logp, 1))), float(np.ceil(logp.max()))
        if self._yrange is None or lo < self._yrange[0] or hi > self._yrange[1] or \
                (self._yrange[1] - self._yrange[0]) > 2 * max(1.0, hi - lo):
            self._yrange = (lo - 0.25, hi + 0.25)
            self.psd_plot.setRange(xRange=(0, float(freqs[-1]) if len(freqs) else 1.0),
                                   yRange=self._yrange, padding=0)
        xb = np.arange(len(self.band_names))
        self.bars.setOpts(x=xb, height=self.relative, width=0.7,
                          brushes=[pg.mkBrush(*BAND_COLOURS[i % len(BAND_COLOURS)]) for i in xb])
        if self.band_names != self._bar_names:
            self._bar_names = list(self.band_names)
            self.bar_plot.getAxis("bottom").setTicks([[(int(i), n) for i, n in zip(xb, self.band_names)]])
            self.bar_plot.setXRange(-0.6, max(0.6, len(xb) - 0.4), padding=0)
