"""Online timestamp dejittering for regular-rate streams that restarts at gaps.

liblsl's own dejittering (``proc_dejitter``) fits one line through *all* timestamps of an inlet.
A real hole in the data (a Bluetooth drop-out, a device that stalls for half a second) is not a
break for it: the hole is smeared over the following seconds (hundreds of ms of timestamp error
after a 0.5 s silence) and no gap is ever visible. pyxdf avoids this offline by splitting the
stream into segments at large timestamp jumps and fitting a line per segment
(``jitter_break_threshold_seconds``). :class:`OnlineDejitter` does the same online: a
recursive, exponentially forgetting least-squares line ``t = a + b k`` (sample index ``k``)
through the raw timestamps of the current gap-free stretch, and a new stretch when a sample
arrives later than the line predicts by more than the stream's own jitter allows.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["OnlineDejitter"]


class OnlineDejitter:
    """Smooth the raw timestamps of a regular stream, restarting at gaps and clock resets.

    Parameters
    ----------
    sfreq : float
        Nominal sampling rate (Hz).
    halftime : float
        Half-life (seconds of samples) of the line fit's memory; liblsl uses 90 s.
    jitter_prior : float
        Timestamp jitter (s, RMS) assumed before the stream has shown its own; it fades with a
        10 s half-life. Keeps burst-pushing devices (a packet of samples stamped at once) from
        being cut into stretches at start-up.
    min_jitter : float
        Floor of the jitter estimate (s) used in the break rule.
    n_sigmas : float
        A sample later than the line by more than ``1.5 periods + n_sigmas * jitter``, and so
        are the (up to two) samples after it in the same chunk, starts a new stretch (the
        samples in between were never sent): a lone late sample is a latency outlier, a gap
        delays every sample after it. Earlier by more than
        ``reset_seconds`` is a clock reset and starts one too; smaller early deviations are
        jitter and are absorbed.
    reset_seconds : float
        See ``n_sigmas``.

    Attributes
    ----------
    breaks : int
        Stretches started after the first one.
    """

    def __init__(self, sfreq: float, *, halftime: float = 90.0, jitter_prior: float = 0.010,
                 min_jitter: float = 0.001, n_sigmas: float = 10.0,
                 reset_seconds: float = 1.0) -> None:
        if not sfreq > 0:
            raise ValueError(f"OnlineDejitter needs a regular rate > 0 Hz, got {sfreq}.")
        self.sfreq = float(sfreq)
        self.period = 1.0 / self.sfreq
        self.lam = 0.5 ** (1.0 / (halftime * self.sfreq))  # forgetting per sample (line)
        self.lam_var = 0.5 ** (1.0 / (10.0 * self.sfreq))  # forgetting per sample (jitter)
        self.jitter_prior = float(jitter_prior)
        self.min_jitter = float(min_jitter)
        self.n_sigmas = float(n_sigmas)
        self.reset_seconds = float(reset_seconds)
        # slope prior: as strong as one second of evenly spread samples at the nominal rate
        self._prior = self.sfreq ** 3 / 12.0
        self.breaks = 0
        self._last_out: float | None = None
        # the jitter estimate belongs to the stream, not to a stretch: it is kept at a break (a
        # restart at the prior made the break rule blind, for seconds, to the next short gap)
        self._var_sum = self.jitter_prior ** 2 * self.sfreq  # prior: 1 s of samples
        self._var_w = self.sfreq
        self._start(None)

    # ------------------------------------------------------------------ state
    def _start(self, t_ref: float | None) -> None:
        self._t_ref = t_ref
        self._k = 0  # samples so far in this stretch
        self._sums = np.zeros(5)  # sum of w, w k, w k^2, w t, w k t (t relative to t_ref)

    @property
    def jitter(self) -> float:
        """Current RMS jitter estimate (seconds)."""
        return math.sqrt(self._var_sum / self._var_w)

    def _line(self) -> tuple[float, float]:
        w, wk, wkk, wt, wkt = self._sums
        if w <= 0:
            return 0.0, self.period
        kbar, tbar = wk / w, wt / w
        skk = wkk - w * kbar * kbar
        skt = wkt - w * kbar * tbar
        b = (skt + self._prior * self.period) / (max(skk, 0.0) + self._prior)
        return tbar - b * kbar, b

    # ------------------------------------------------------------------ processing
    def __call__(self, ts: np.ndarray) -> np.ndarray:
        """Dejittered timestamps for the next chunk's raw timestamps (same shape)."""
        ts = np.asarray(ts, dtype=np.float64)
        out = np.empty_like(ts)
        i = 0
        while i < len(ts):
            n = self._take(ts[i:], out[i:])
            i += n
        if len(out) and self._last_out is not None:
            # never step back inside a stretch (a jittery early chunk)
            floor = self._last_out + 1e-3 * self.period
            if out[0] < floor and ts[0] - self._last_out > -self.reset_seconds:
                out = np.maximum(out, floor + np.arange(len(out)) * 1e-3 * self.period)
        if len(out):
            self._last_out = float(out[-1])
        return out

    def _take(self, ts: np.ndarray, out: np.ndarray) -> int:
        """Process the leading part of ``ts`` that belongs to the current stretch."""
        if self._t_ref is None:
            self._start(float(ts[0]))
        elif self._k > 0:
            a, b = self._line()
            k = self._k + np.arange(len(ts))
            resid = ts - self._t_ref - (a + b * k)
            thr = 1.5 * self.period + self.n_sigmas * max(self.jitter, self.min_jitter)
            late = resid > thr
            # a gap delays the samples after it too; a latency outlier does not
            confirmed = late.copy()
            for lag in (1, 2):
                confirmed[:-lag] &= late[lag:]
            bad = np.flatnonzero(confirmed | (resid < -self.reset_seconds))
            if bad.size and bad[0] == 0:  # this chunk starts a new stretch
                self.breaks += 1
                self._start(float(ts[0]))
                return self._take(ts, out)
            n = int(bad[0]) if bad.size else len(ts)
            r = resid[:n]
            decay = self.lam_var ** np.arange(n - 1, -1, -1)
            self._var_sum = self._var_sum * self.lam_var ** n + float(decay @ (r * r))
            self._var_w = self._var_w * self.lam_var ** n + float(decay.sum())
            ts = ts[:n]
        n = len(ts)
        k = self._k + np.arange(n, dtype=np.float64)
        t = ts - self._t_ref
        wts = self.lam ** np.arange(n - 1, -1, -1)
        self._sums = self._sums * self.lam ** n + np.array([
            wts.sum(), wts @ k, wts @ (k * k), wts @ t, wts @ (k * t)])
        a, b = self._line()
        out[:n] = self._t_ref + a + b * k
        self._k += n
        return n
