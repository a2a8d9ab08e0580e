"""Publish bci_app data as LSL streams: EEG (from a :class:`StreamInfo`) and string markers.

Used by ``bci-app stream`` (a recording as a stand-in device) and, later, to broadcast predictions.

Conventions on the wire (what :class:`~acquisition.lsl_source.LSLSource` and other LSL tools
expect):
channels whose unit is volts are sent in **microvolts** with ``unit = "microvolts"`` in the
stream's ``desc/channels/channel`` entries, together with ``label`` and ``type`` (MNE type, upper
case as in the XDF specification, e.g. ``EEG``, ``MISC``, ``STIM``). Other channels are sent as
they are with their own unit.

Threads: an outlet may be pushed from one thread at a time (LSL outlets are thread-safe, but the
order of chunks pushed from several threads is undefined).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from bci_app.errors import ConfigError

from .lsl_env import import_pylsl
from .stream_info import StreamInfo

logger = logging.getLogger(__name__)

_FORMATS = ("float32", "double64")


class _Outlet:
    """What both outlets share: consumers, closing, context manager."""

    name: str

    def have_consumers(self) -> bool:
        return bool(self._outlet.have_consumers())

    def wait_for_consumers(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until an inlet is connected. Returns whether one is."""
        return bool(self._outlet.wait_for_consumers(float(timeout)))

    def close(self) -> None:
        """Destroy the outlet (inlets see the stream disappear)."""
        self._outlet = _Closed(self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EEGOutlet(_Outlet):
    """An LSL outlet for a multichannel stream described by a :class:`StreamInfo`.

    Parameters
    ----------
    info : StreamInfo
        Channels, types, units and rate of the data that will be pushed.
    name : str | None
        LSL stream name (default ``info.name``).
    stream_type : str
        LSL content type (default ``"EEG"``).
    source_id : str | None
        LSL source id; default derived from ``info.source_id`` so that a restarted publisher of
        the same recording is recognised by inlets.
    channel_format : "double64" | "float32"
        Sample type on the wire. ``double64`` (default) keeps microvolt values exact.
    chunk_size : int
        Preferred chunk size of the outlet (0 = as pushed).
    max_buffered : float
        Seconds of data the outlet keeps for slow consumers.
    """

    def __init__(
        self,
        info: StreamInfo,
        *,
        name: str | None = None,
        stream_type: str = "EEG",
        source_id: str | None = None,
        channel_format: str = "double64",
        chunk_size: int = 0,
        max_buffered: float = 360,
    ) -> None:
        if channel_format not in _FORMATS:
            raise ConfigError(
                f"EEGOutlet channel_format must be one of {_FORMATS}, got {channel_format!r}."
            )
        pylsl = import_pylsl()
        self.info = info
        self.name = name or info.name
        self.scale = np.array([1e6 if u == "V" else 1.0 for u in info.units])
        self.units = tuple("microvolts" if u == "V" else u for u in info.units)
        fmt = pylsl.cf_double64 if channel_format == "double64" else pylsl.cf_float32
        self._dtype = np.float64 if channel_format == "double64" else np.float32
        lsl_info = pylsl.StreamInfo(
            self.name, stream_type, info.n_channels, float(info.sfreq), fmt,
            source_id or f"bci_app:{info.source_id}",
        )
        desc = lsl_info.desc()
        chans = desc.append_child("channels")
        for label, ctype, unit in zip(info.ch_names, info.ch_types, self.units):
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", unit)
            ch.append_child_value("type", ctype.upper())
        acq = desc.append_child("acquisition")
        acq.append_child_value("manufacturer", "bci_app")
        acq.append_child_value("source_kind", info.source_kind)
        acq.append_child_value("source_id", info.source_id)
        self._outlet = pylsl.StreamOutlet(lsl_info, int(chunk_size), int(max_buffered))
        self.n_pushed = 0
        logger.info(
            "LSL outlet %r: %d ch @ %g Hz (%s, source_id %s)", self.name, info.n_channels,
            info.sfreq, channel_format, lsl_info.source_id(),
        )

    def push_chunk(
        self, data: np.ndarray, timestamps: Sequence[float] | np.ndarray | None = None
    ) -> None:
        """Send samples.

        Parameters
        ----------
        data : ndarray, shape (n_samples, n_channels)
            In the units of ``info`` (EEG in volts; converted to microvolts here).
        timestamps : array, shape (n_samples,), or None
            LSL time of every sample; ``None`` stamps the chunk with ``local_clock()`` now.
        """
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self.info.n_channels:
            raise ValueError(
                f"EEGOutlet {self.name!r}: push_chunk expects data of shape (n_samples, "
                f"{self.info.n_channels}), got {data.shape}."
            )
        n = data.shape[0]
        if n == 0:
            return
        out = np.ascontiguousarray(data * self.scale[None, :], dtype=self._dtype)
        if timestamps is None:
            self._outlet.push_chunk(out)
        else:
            ts = np.asarray(timestamps, dtype=np.float64)
            if ts.shape != (n,):
                raise ValueError(
                    f"EEGOutlet {self.name!r}: {n} samples need {n} timestamps, "
                    f"got shape {ts.shape}."
                )
            self._outlet.push_chunk(out, ts.tolist())
        self.n_pushed += n


class MarkerOutlet(_Outlet):
    """An LSL outlet of string markers (type ``"Markers"``, 1 channel, irregular rate).

    Parameters
    ----------
    name : str
        LSL stream name.
    source_id : str | None
        LSL source id (default ``"bci_app:markers:<name>"``).
    stream_type : str
        LSL content type (default ``"Markers"``).
    """

    def __init__(
        self, name: str, *, source_id: str | None = None, stream_type: str = "Markers"
    ) -> None:
        pylsl = import_pylsl()
        self._pylsl = pylsl
        self.name = name
        info = pylsl.StreamInfo(
            name, stream_type, 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
            source_id or f"bci_app:markers:{name}",
        )
        info.desc().append_child("acquisition").append_child_value("manufacturer", "bci_app")
        self._outlet = pylsl.StreamOutlet(info)
        self.n_pushed = 0
        logger.info("LSL marker outlet %r", name)

    def push(self, label: str, timestamp: float | None = None) -> None:
        """Send one marker at ``timestamp`` (LSL clock; default now)."""
        ts = self._pylsl.local_clock() if timestamp is None else float(timestamp)
        self._outlet.push_sample([str(label)], ts)
        self.n_pushed += 1


class _Closed:
    """Stand-in after close(): using a closed outlet is a clear error, not a crash in liblsl."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, item):
        raise RuntimeError(f"LSL outlet {self._name!r} is closed; create a new one.")


__all__ = ["EEGOutlet", "MarkerOutlet"]
