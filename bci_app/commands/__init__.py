"""Sub-commands of ``bci-app``.

Each module here defines ``register(subparsers)`` which adds its sub-command(s) with
``parser.set_defaults(func=run)``; ``run(args) -> int`` returns the exit status. Modules are
discovered automatically, so adding a command never means editing a central list.
"""

from __future__ import annotations


def refuse_text_bundle(path, option: str, why: str) -> None:
    """ConfigError naming ``option`` when ``path`` is an EEG-to-text bundle (``decoders.text``)
    given to a command that needs a motor-imagery bundle; ``why`` says what the command does with
    the model and the fix. Reads only ``config.json``, so it comes before the model is loaded."""
    from pathlib import Path

    from decoders.text.bundle import is_text_bundle

    from ..errors import ConfigError

    if path and Path(path).is_dir() and is_text_bundle(path):
        raise ConfigError(
            f"{option}: {path} is an EEG-to-text bundle (its classes are candidate sentences, "
            f"not motor-imagery classes); {why}")
