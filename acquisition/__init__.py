"""Acquisition layer: sources, ring buffers, markers, recording. No model code, no Qt."""

from __future__ import annotations

from .base import Gap, Source, SourceLostError, SourceState
from .markers import GAP_LABEL, Marker, MarkerLog
from .ring_buffer import Chunk, RingBuffer
from .stream_info import StreamInfo

__all__ = [
    "GAP_LABEL",
    "Chunk",
    "Gap",
    "Marker",
    "MarkerLog",
    "RingBuffer",
    "Source",
    "SourceLostError",
    "SourceState",
    "StreamInfo",
]
