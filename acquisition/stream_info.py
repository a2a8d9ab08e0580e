"""Description of a multichannel stream: the contract every consumer checks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from collections.abc import Sequence
from typing import Any

from bci_app.errors import ConfigError, StreamMismatchError

#: Voltage units (lower case) and their factor to volts.
VOLT_SCALE: dict[str, float] = {
    "v": 1.0, "volt": 1.0, "volts": 1.0,
    "mv": 1e-3, "millivolt": 1e-3, "millivolts": 1e-3,
    "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "microvolt": 1e-6, "microvolts": 1e-6,
    "nv": 1e-9, "nanovolt": 1e-9, "nanovolts": 1e-9,
}
#: MNE channel types accepted as they are when a stream or file names them.
MNE_TYPES = frozenset({
    "eeg", "eog", "emg", "ecg", "misc", "stim", "resp", "bio", "ref_meg", "seeg", "ecog", "dbs",
    "fnirs_cw_amplitude", "gsr", "temperature", "syst", "chpi",
})
#: Other channel type names seen in LSL streams and files (XDF, LabRecorder, OpenBCI), mapped
#: to MNE types. ``ExG`` is the LSL convention for a biosignal amplifier's channels.
TYPE_ALIASES: dict[str, str] = {
    "exg": "eeg", "ref": "eeg",
    "trg": "stim", "trigger": "stim", "marker": "stim", "markers": "stim", "event": "stim",
    "aux": "misc", "accel": "misc", "acc": "misc", "accelerometer": "misc", "gyro": "misc",
    "counter": "misc",
}


def unique_channel_names(names: Sequence[Any]) -> list[str]:
    """Channel labels made unique as MNE needs them (some devices send identical labels):
    stripped, an empty one becomes ``"ch"``, and a repeat gets ``-1``, ``-2`` ... skipping any
    label the stream already has (``C3, C3, C3-1`` gives ``C3, C3-2, C3-1``). The live
    sources, the file readers and ``load_recording`` all name channels with this."""
    given = [str(n).strip() or "ch" for n in names]
    reserved, used, count = set(given), set(), {}
    out = []
    for name in given:
        if name in used:
            k = count.get(name, 0)
            while f"{name}-{k + 1}" in used or f"{name}-{k + 1}" in reserved:
                k += 1
            count[name] = k + 1
            name = f"{name}-{k + 1}"
        used.add(name)
        out.append(name)
    return out


def mne_channel_type(name: Any, default: str = "misc") -> str:
    """The MNE channel type for a type name given by a stream or file (``default`` when it
    gives none; ``"misc"`` for a name MNE and :data:`TYPE_ALIASES` do not know). The live
    sources, the file readers and ``load_recording`` all map types with this, so a stream is
    typed (and scaled to volts) the same live and read back."""
    if not name:
        return default
    key = str(name).strip().lower()
    if key in MNE_TYPES:
        return key
    return TYPE_ALIASES.get(key, "misc")


@dataclass(frozen=True)
class StreamInfo:
    """What a source delivers.

    Parameters
    ----------
    name : str
        Human-readable stream name (LSL name, board name, file name).
    source_kind : str
        ``"brainflow"``, ``"lsl"``, ``"replay"``, ``"simulated"`` ...
    ch_names : tuple of str
        One label per channel, in column order of the ring buffer.
    ch_types : tuple of str
        MNE channel types (``"eeg"``, ``"misc"``, ``"stim"`` ...), one per channel.
    units : tuple of str
        Unit per channel. EEG is always delivered in volts (``"V"``), as MNE expects.
    sfreq : float
        Nominal sampling rate in Hz (``0.0`` for irregular streams).
    source_id : str
        Stable identifier (LSL source id, board id + serial port, file path). Empty means
        "derive one from the other fields".
    metadata : dict
        Free-form extra information (device serial, file header fields, ...).
    """

    name: str
    source_kind: str
    ch_names: tuple[str, ...]
    ch_types: tuple[str, ...]
    units: tuple[str, ...]
    sfreq: float
    source_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_names", tuple(str(c) for c in self.ch_names))
        object.__setattr__(self, "ch_types", tuple(str(c) for c in self.ch_types))
        object.__setattr__(self, "units", tuple(str(c) for c in self.units))
        n = len(self.ch_names)
        if n == 0:
            raise ValueError(f"StreamInfo {self.name!r} has no channels; a stream needs at least one.")
        if len(self.ch_types) != n or len(self.units) != n:
            raise ValueError(
                f"StreamInfo {self.name!r}: ch_names ({n}), ch_types ({len(self.ch_types)}) and "
                f"units ({len(self.units)}) must have the same length."
            )
        if len(set(self.ch_names)) != n:
            dup = sorted({c for c in self.ch_names if self.ch_names.count(c) > 1})
            raise ValueError(f"StreamInfo {self.name!r}: duplicate channel names {dup}.")
        if not (self.sfreq >= 0):
            raise ValueError(f"StreamInfo {self.name!r}: sfreq must be >= 0, got {self.sfreq}.")
        if not self.source_id:
            digest = hashlib.sha1(
                f"{self.source_kind}|{self.name}|{','.join(self.ch_names)}|{self.sfreq}".encode()
            ).hexdigest()[:12]
            object.__setattr__(self, "source_id", f"{self.source_kind}:{digest}")

    @property
    def n_channels(self) -> int:
        return len(self.ch_names)

    def picks(self, ch_type: str = "eeg") -> list[int]:
        """Indices of channels of one type."""
        return [i for i, t in enumerate(self.ch_types) if t == ch_type]

    def check_compatible(self, other: StreamInfo) -> None:
        """Raise :class:`StreamMismatchError` unless ``other`` has the same channels and rate.

        Used when a source reconnects: a device that comes back with another layout is refused.
        """
        problems = []
        if other.ch_names != self.ch_names:
            problems.append(
                f"channels changed from {self.n_channels} ({', '.join(self.ch_names[:4])}...) "
                f"to {other.n_channels} ({', '.join(other.ch_names[:4])}...)"
            )
        elif other.ch_types != self.ch_types or other.units != self.units:
            # the same names with another type or unit: the samples would change scale (an LSL
            # channel that is no longer EEG is no longer converted from microvolts to volts)
            changed = [f"{n}: {t} in {u} -> {t2} in {u2}" for n, t, u, t2, u2 in zip(
                self.ch_names, self.ch_types, self.units, other.ch_types, other.units)
                if (t, u) != (t2, u2)]
            problems.append(f"channel types or units changed ({'; '.join(changed[:4])}"
                            f"{'...' if len(changed) > 4 else ''})")
        if abs(other.sfreq - self.sfreq) > 1e-6 * max(1.0, self.sfreq):
            problems.append(f"sampling rate changed from {self.sfreq:g} Hz to {other.sfreq:g} Hz")
        if problems:
            raise StreamMismatchError(
                f"Stream {other.name!r} is not the stream this session started with: "
                + "; ".join(problems)
                + ". Stop the session and start a new one for the new device layout."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source_kind": self.source_kind,
            "ch_names": list(self.ch_names),
            "ch_types": list(self.ch_types),
            "units": list(self.units),
            "sfreq": self.sfreq,
            "source_id": self.source_id,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamInfo:
        return cls(
            name=d["name"],
            source_kind=d["source_kind"],
            ch_names=tuple(d["ch_names"]),
            ch_types=tuple(d["ch_types"]),
            units=tuple(d["units"]),
            sfreq=float(d["sfreq"]),
            source_id=d.get("source_id", ""),
            metadata=dict(d.get("metadata", {})),
        )


def check_channel_names(names) -> tuple[str, ...] | None:
    """``names`` as a tuple of distinct, non-empty labels (None stays None); ConfigError else."""
    if names is None:
        return None
    if isinstance(names, str):
        names = names.split(",")
    out = tuple(str(n).strip() for n in names)
    dup = sorted({n for n in out if out.count(n) > 1})
    if not out or any(not n for n in out) or dup or any("," in n for n in out):
        raise ConfigError(
            f"channels: expected distinct, non-empty channel names separated by commas, got "
            f"{list(names)!r}" + (f" ({', '.join(dup)} repeated)" if dup else "") + ". Fix: "
            "name every channel once, in stream order, e.g. channels=C3,Cz,C4,FC3,FC4,CP3,CP4,"
            "Pz."
        )
    return out


def with_channel_names(info: StreamInfo, names: tuple[str, ...] | None) -> StreamInfo:
    """``info`` with its channels renamed to ``names`` (the user's electrode names, in stream
    order); the device's own names are kept in ``metadata["device_ch_names"]``.

    Raises
    ------
    ConfigError
        When the count differs from the stream's channels, naming both.
    """
    if names is None:
        return info
    if len(names) != info.n_channels:
        raise ConfigError(
            f"channels: {info.name} has {info.n_channels} channels ({', '.join(info.ch_names)}), "
            f"but {len(names)} names were given ({', '.join(names)}). Fix: give exactly "
            f"{info.n_channels} names, one per channel in stream order (SOURCE?channels=...)."
        )
    return replace(info, ch_names=tuple(names),
                   metadata={**info.metadata, "device_ch_names": list(info.ch_names)})
