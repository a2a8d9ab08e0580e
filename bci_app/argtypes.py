"""argparse value types shared by the sub-commands (no heavy imports)."""

from __future__ import annotations

import argparse
import math

from .errors import ConfigError


def number(text: str) -> float:
    """A float option that refuses NaN.

    ``type=float`` takes ``nan``, and NaN passes every ``x <= 0`` check: ``--duration nan``
    streamed until killed, ``--threshold nan`` never fired a command. ``inf`` stays allowed
    (e.g. ``--timeout inf``); options that need a finite value check it themselves.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r} (not a number)")
    return value


def check_hop(hop: float) -> None:
    """``--hop``: a finite number of seconds > 0 (the decoder checks it too; commands call
    this before they connect a source or load a model)."""
    if not (math.isfinite(hop) and hop > 0):
        raise ConfigError(f"hop must be a finite number of seconds > 0, got {hop}; e.g. "
                          "--hop 0.1.")
