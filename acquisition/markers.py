"""Markers: (timestamp, label) events from LSL marker streams, protocols, replayed files, the user."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Marker:
    """One event on the LSL clock.

    Attributes
    ----------
    timestamp : float
        Onset, seconds on the LSL clock (``pylsl.local_clock()``).
    label : str
        Event label (``"left"``, ``"T1"``, ``"gap"``, ...).
    duration : float
        Duration in seconds (0 for point events; the length of a gap for ``"gap"`` markers).
    source : str
        Who produced it: ``"lsl:<name>"``, ``"protocol"``, ``"replay"``, ``"user"``, ``"source"``,
        ``"file"`` (a replayed file's events), ``"board"`` (a BrainFlow board's marker row).
    extra : dict
        Optional details (e.g. ``{"samples_missing": 120}`` for gaps).
    """

    timestamp: float
    label: str
    duration: float = 0.0
    source: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


#: Label used for markers that record a gap in the data (stall, reconnection, dropped samples).
GAP_LABEL = "bci_app/gap"
#: Label of the marker a source writes at its first sample on a new clock (timestamps that
#: jump back: a device or clock restart).
CLOCK_JUMP_LABEL = "bci_app/clock_jump"


class MarkerLog:
    """Thread-safe, append-only list of markers with the same "since k" reading as RingBuffer.

    Several producers may append; readers keep their own position and read ``since(k)``.
    """

    def __init__(self) -> None:
        self._markers: list[Marker] = []
        self._lock = threading.Lock()

    def append(self, marker: Marker) -> int:
        """Add a marker; returns its sequence number."""
        if not isinstance(marker, Marker):
            raise TypeError(f"MarkerLog.append expects a Marker, got {type(marker).__name__}.")
        with self._lock:
            self._markers.append(marker)
            return len(self._markers) - 1

    def add(self, timestamp: float, label: str, duration: float = 0.0, source: str = "",
            **extra) -> Marker:
        """Create and append a marker; returns it."""
        m = Marker(float(timestamp), str(label), float(duration), source, dict(extra))
        self.append(m)
        return m

    @property
    def counter(self) -> int:
        return len(self._markers)

    def __len__(self) -> int:
        return len(self._markers)

    def since(self, k: int) -> list[Marker]:
        """Markers with sequence number >= k, in insertion order."""
        with self._lock:
            return list(self._markers[int(k):])

    def all(self) -> list[Marker]:
        with self._lock:
            return list(self._markers)

    def between(self, t0: float, t1: float) -> list[Marker]:
        """Markers with ``t0 <= timestamp < t1``, sorted by time."""
        with self._lock:
            sel = [m for m in self._markers if t0 <= m.timestamp < t1]
        return sorted(sel, key=lambda m: m.timestamp)
