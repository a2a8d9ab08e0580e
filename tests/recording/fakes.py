"""A tiny in-process Source for recorder tests: counter in channel 0, float64 signals in volts.

Samples are generated from the monotonic clock (``rate`` per second) with timestamps on the LSL
clock, so the acquisition thread of :class:`~acquisition.base.Source` drives it like a device.
``drop(n)`` skips ``n`` samples (the base class then records a gap marker).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from acquisition.base import Source
from acquisition.lsl_env import import_pylsl
from acquisition.stream_info import StreamInfo


def fake_values(idx: np.ndarray, n_channels: int) -> np.ndarray:
    """Deterministic float64 samples: counter, then sines with irrational-looking bits (volts)."""
    idx = np.asarray(idx, dtype=np.float64)
    out = np.empty((idx.size, n_channels))
    out[:, 0] = idx
    k = np.arange(1, n_channels)[None, :]
    out[:, 1:] = 1e-5 * np.sin(idx[:, None] * 0.0731 * k + k) + 1e-7 * np.cos(idx[:, None] * 1.7)
    return out


class FakeSource(Source):
    kind = "fake"

    def __init__(
        self, name: str = "fake-eeg", n_channels: int = 8, rate: float = 250.0, **kw
    ) -> None:
        super().__init__(**kw)
        self.name = name
        self.n_channels = n_channels
        self.rate = rate
        self._lock = threading.Lock()
        self._skip = 0
        self._idx = 0

    def _open(self, timeout: float) -> StreamInfo:
        self._clock = import_pylsl().local_clock
        self._t0 = time.monotonic()
        self._lsl0 = self._clock()
        self._idx = 0
        names = ["counter"] + [f"EEG{i:02d}" for i in range(1, self.n_channels)]
        types = ["misc"] + ["eeg"] * (self.n_channels - 1)
        units = ["n/a"] + ["V"] * (self.n_channels - 1)
        return StreamInfo(
            self.name,
            self.kind,
            names,
            types,
            units,
            self.rate,
            metadata={"device": "fake", "serial": "0001"},
        )

    def drop(self, n: int) -> None:
        with self._lock:
            self._skip += int(n)

    def _pull(self):
        due = int((time.monotonic() - self._t0) * self.rate)
        with self._lock:
            skip, self._skip = self._skip, 0
        self._idx += skip
        if due <= self._idx:
            return None
        idx = np.arange(self._idx, due)
        self._idx = due
        return fake_values(idx, self.n_channels), self._lsl0 + idx / self.rate

    def _close(self) -> None:
        pass
