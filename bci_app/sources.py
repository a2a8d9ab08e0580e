"""Build a source from a command-line style spec.

Specs::

    synthetic                         BrainFlow's synthetic board (the embedded default)
    brainflow:BOARD[:PORT]            any BrainFlow board by name or id, e.g. brainflow:cyton:/dev/ttyUSB0
    brainflow:playback:BOARD:PATH     BrainFlow's playback board: the BrainFlow CSV at PATH, recorded
                                      by BOARD (its rows and rate), e.g. brainflow:playback:cyton:rec.csv
    SPEC?channels=C3,Cz,C4,...        any of the above but ``simulated``, with the electrode of
                                      each channel in stream order (BrainFlow names a Cyton's
                                      Fp1, Fp2, C3, ... whatever the cap; an LSL stream may have
                                      no labels at all)
    lsl:NAME                          an LSL stream by name (lsl:type=EEG, lsl:source_id=XYZ also work)
    file:PATH                         replay a recording (FIF/EDF/BDF/BrainVision/XDF/OpenBCI txt/BrainFlow CSV)
    simulated[:SUBJECTS]              demo / test subject: real EEGMMIDB EEG of the cued class on
                                      every cue, real rest EEG in between (e.g. simulated:7)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acquisition.base import Source

from .errors import ConfigError

SPEC_HELP = (
    "synthetic | brainflow:BOARD[:PORT] | brainflow:playback:BOARD:PATH (a BrainFlow CSV) | "
    "lsl:NAME (or lsl:type=EEG) | file:PATH | simulated[:SUBJECTS]; add ?channels=C3,Cz,... to "
    "name the channels (electrodes)"
)

#: BrainFlow's ``BoardIds.PLAYBACK_FILE_BOARD`` (a constant, so the parser needs no brainflow).
PLAYBACK_BOARD_ID = -3


def split_channel_option(spec: str) -> tuple[str, str | None]:
    """``"brainflow:cyton:COM3?channels=C3,Cz"`` -> (``"brainflow:cyton:COM3"``, ``"C3,Cz"``);
    a spec without the option -> (spec, None).

    Only a last ``?channels=...`` is an option: an LSL name or a file path (``file:``,
    ``brainflow:playback:BOARD:PATH``) may hold a ``?``. Another BrainFlow spec (``synthetic``,
    ``brainflow:BOARD[:PORT]``) has no ``?`` of its own, so any other option there is a
    ConfigError naming the one there is."""
    base, q, option = spec.rpartition("?")
    key, eq, value = option.partition("=")
    if q and eq and key.strip().lower() == "channels":
        return base.strip(), value
    if q and source_kind(spec) in ("synthetic", "brainflow") and not _is_playback(spec):
        raise ConfigError(f"source option {option!r} of {spec!r}: the one option is "
                          "channels=NAME,NAME,... (the electrode of each EEG channel in board "
                          "order), e.g. brainflow:cyton:/dev/ttyUSB0?channels=C3,Cz,C4,...")
    return spec, None


def _is_playback(spec: str) -> bool:
    """``brainflow:playback:...`` (any name or id BrainFlow gives its playback board)."""
    if source_kind(spec) != "brainflow":
        return False
    from acquisition.brainflow_source import resolve_board_id

    try:
        return resolve_board_id(spec.strip().split(":")[1].strip()) == PLAYBACK_BOARD_ID
    except (ConfigError, ValueError, IndexError):
        return False


def source_kind(spec: str) -> str:
    """``"brainflow"``, ``"synthetic"``, ``"lsl"``, ``"file"``, ``"simulated"``, ... of a spec
    (lower case, with or without ``?channels=``)."""
    return spec.strip().partition(":")[0].partition("?")[0].lower()


def make_source(spec: str, **kwargs: Any) -> Source:
    """Create (not connect) the source described by ``spec``.

    Parameters
    ----------
    spec : str
        See the module docstring.
    **kwargs
        Passed to the source class (e.g. ``speed=`` for file replays, ``buffer_seconds=``).

    Raises
    ------
    ConfigError
        For a spec that names no known kind of source.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"--source must be one of: {SPEC_HELP}; got {spec!r}.")
    spec, names = split_channel_option(spec.strip())
    if names is not None:
        kwargs["channel_names"] = names
    kind, _, rest = spec.partition(":")
    kind = kind.lower()
    if kind == "synthetic" and not rest:
        from acquisition.brainflow_source import BrainFlowSource

        return BrainFlowSource("synthetic", **kwargs)
    if kind == "brainflow":
        from acquisition.brainflow_source import BrainFlowSource, resolve_board_id

        board, _, port = rest.partition(":")
        if not board:
            raise ConfigError(f"brainflow source needs a board, e.g. brainflow:cyton:/dev/ttyUSB0; got {spec!r}.")
        if resolve_board_id(board) == PLAYBACK_BOARD_ID:
            master, _, path = port.partition(":")
            if not (master.strip() and path.strip()):
                raise ConfigError(
                    f"{spec!r}: the playback board replays a BrainFlow CSV and needs the board "
                    "that recorded it (its rows and rate) and the file: brainflow:playback:"
                    "BOARD:PATH, e.g. brainflow:playback:cyton:/data/BrainFlow-RAW.csv "
                    "(`bci-app devices` lists the boards).")
            return BrainFlowSource(board, file=str(Path(path).expanduser()),
                                   master_board=master.strip(), **kwargs)
        return BrainFlowSource(board, serial_port=port, **kwargs)
    if kind == "lsl":
        from acquisition.lsl_source import LSLSource

        if not rest:
            raise ConfigError(f"lsl source needs a stream name, e.g. lsl:OpenBCI_EEG; got {spec!r}.")
        key, eq, value = rest.partition("=")
        if eq and key in ("name", "type", "source_id"):
            arg = {"name": "name", "type": "stream_type", "source_id": "source_id"}[key]
            return LSLSource(**{arg: value}, **kwargs)
        return LSLSource(rest, **kwargs)
    if kind == "file":
        from acquisition.replay import ReplaySource

        if not rest:
            raise ConfigError(f"file source needs a path, e.g. file:recordings/s1.xdf; got {spec!r}.")
        return ReplaySource(rest, **kwargs)
    if kind == "simulated":
        from acquisition.simulated import SimulatedSubjectSource
        from decoders.data import parse_subjects

        subjects = parse_subjects(rest) if rest else [1]
        return SimulatedSubjectSource.from_eegmmidb(subjects, **kwargs)
    raise ConfigError(f"Unknown source {spec!r}. Use one of: {SPEC_HELP}.")
