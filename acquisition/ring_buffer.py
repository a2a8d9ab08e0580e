"""Preallocated circular buffer of multichannel samples with parallel timestamps.

One writer (a source's acquisition thread), many readers (decoder, GUI, recorder). Every sample
ever written has a sequence number: the total counter before it was written. Readers ask for "the
latest n samples" or "everything since counter k" and always get copies; a reader that fell more
than ``capacity`` samples behind is told exactly how many samples it lost.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """A copy of consecutive samples taken from a :class:`RingBuffer`.

    Attributes
    ----------
    data : ndarray, shape (n_samples, n_channels)
    timestamps : ndarray, shape (n_samples,)
        LSL clock (seconds) of each sample.
    start : int
        Sequence number of the first sample (total counter before it was written).
    stop : int
        Sequence number one past the last sample (``start + n_samples``).
    lost : int
        Samples the reader asked for that were already overwritten (0 unless it fell behind).
    """

    data: np.ndarray
    timestamps: np.ndarray
    start: int
    stop: int
    lost: int = 0

    @property
    def n_samples(self) -> int:
        return self.stop - self.start


class RingBuffer:
    """Thread-safe circular buffer of ``capacity`` samples × ``n_channels``.

    Parameters
    ----------
    capacity : int
        Number of samples kept (e.g. ``int(30 * sfreq)`` for 30 s).
    n_channels : int
        Number of channels (columns).
    dtype : numpy dtype
        Sample type; ``float64`` by default (volts).

    Notes
    -----
    Writes and reads copy under one short lock: a reader never sees a torn or reordered window.
    Computation on the copies happens after the lock is released.
    """

    def __init__(self, capacity: int, n_channels: int, dtype: np.dtype | type = np.float64) -> None:
        if int(capacity) <= 0:
            raise ValueError(f"RingBuffer capacity must be a positive number of samples, got {capacity}.")
        if int(n_channels) <= 0:
            raise ValueError(f"RingBuffer n_channels must be positive, got {n_channels}.")
        self._capacity = int(capacity)
        self._n_channels = int(n_channels)
        self._data = np.zeros((self._capacity, self._n_channels), dtype=dtype)
        self._ts = np.zeros(self._capacity, dtype=np.float64)
        self._total = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ properties
    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def n_channels(self) -> int:
        return self._n_channels

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def counter(self) -> int:
        """Total number of samples ever written (sequence number of the next sample)."""
        return self._total

    def __len__(self) -> int:
        """Number of samples currently held (at most ``capacity``)."""
        return min(self._total, self._capacity)

    # ------------------------------------------------------------------ writer
    def write(self, data: np.ndarray, timestamps: np.ndarray) -> int:
        """Append samples. Called by the single writer thread.

        Parameters
        ----------
        data : array, shape (n_samples, n_channels)
        timestamps : array, shape (n_samples,)

        Returns
        -------
        int
            The counter after the write.
        """
        data = np.asarray(data)
        timestamps = np.asarray(timestamps, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self._n_channels:
            raise ValueError(
                f"RingBuffer.write expects data of shape (n_samples, {self._n_channels}), "
                f"got {data.shape}."
            )
        n = data.shape[0]
        if timestamps.shape != (n,):
            raise ValueError(
                f"RingBuffer.write expects {n} timestamps (one per sample), got shape {timestamps.shape}."
            )
        if n == 0:
            return self._total
        if n > self._capacity:  # only the newest `capacity` samples can be kept
            skip = n - self._capacity
            data, timestamps = data[skip:], timestamps[skip:]
        else:
            skip = 0
        m = data.shape[0]
        with self._lock:
            start = (self._total + skip) % self._capacity
            first = min(m, self._capacity - start)
            self._data[start : start + first] = data[:first]
            self._ts[start : start + first] = timestamps[:first]
            if first < m:
                self._data[: m - first] = data[first:]
                self._ts[: m - first] = timestamps[first:]
            self._total += n
            return self._total

    # ------------------------------------------------------------------ readers
    def _copy(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        # caller holds the lock; start/stop are sequence numbers within the held range
        n = stop - start
        i0 = start % self._capacity
        if i0 + n <= self._capacity:
            return self._data[i0 : i0 + n].copy(), self._ts[i0 : i0 + n].copy()
        first = self._capacity - i0
        data = np.concatenate((self._data[i0:], self._data[: n - first]))
        ts = np.concatenate((self._ts[i0:], self._ts[: n - first]))
        return data, ts

    def latest(self, n: int) -> Chunk:
        """Copy of the newest ``n`` samples (fewer if fewer were ever written).

        Raises
        ------
        ValueError
            If ``n`` exceeds the capacity: the window can never be complete.
        """
        n = int(n)
        if n < 0:
            raise ValueError(f"latest(n) needs n >= 0, got {n}.")
        if n > self._capacity:
            raise ValueError(
                f"Asked for the latest {n} samples but the buffer holds at most {self._capacity}; "
                "create the source with a longer buffer (buffer_seconds)."
            )
        with self._lock:
            stop = self._total
            start = max(stop - n, stop - min(stop, self._capacity))
            data, ts = self._copy(start, stop)
        return Chunk(data, ts, start, stop, 0)

    def since(self, k: int, max_samples: int | None = None) -> Chunk:
        """Copy of every sample with sequence number >= ``k`` (oldest first).

        Parameters
        ----------
        k : int
            The reader's position: the ``stop`` of the previous chunk it read (0 at start).
        max_samples : int | None
            Return at most this many samples (the oldest ones); read again for the rest.

        Returns
        -------
        Chunk
            ``lost`` > 0 when samples from ``k`` on were already overwritten; ``start`` is then
            the oldest sample still held.
        """
        k = int(k)
        if k < 0:
            raise ValueError(f"since(k) needs k >= 0, got {k}.")
        with self._lock:
            total = self._total
            if k > total:
                raise ValueError(
                    f"since({k}) is ahead of the buffer (counter={total}); pass the stop of a "
                    "chunk read from this buffer."
                )
            oldest = total - min(total, self._capacity)
            lost = max(0, oldest - k)
            start = max(k, oldest)
            stop = total if max_samples is None else min(total, start + int(max_samples))
            data, ts = self._copy(start, stop)
        return Chunk(data, ts, start, stop, lost)
