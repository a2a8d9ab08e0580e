"""Confine LSL to the loopback interface unless the user opts into LAN scope.

liblsl reads its configuration once, when the library is first used, from the file named by
``$LSLAPICFG``. Every module of bci_app that touches LSL calls :func:`import_pylsl` (or
:func:`configure_lsl`) first, so the project's machine-scope ``lsl_api.cfg`` is in force before the
first resolve or outlet. A user who set ``LSLAPICFG`` themselves keeps their file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import ModuleType

logger = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
#: Machine-scope configuration (default): loopback only.
MACHINE_CFG = _HERE / "lsl_api.cfg"
#: Site/LAN-scope configuration, used only when the user asks for it.
LAN_CFG = _HERE / "lsl_api_lan.cfg"
#: Environment variable a user sets to ``lan`` to widen the scope (same as ``--lsl-scope lan``).
SCOPE_ENV = "BCI_APP_LSL_SCOPE"

_SCOPES = {"machine": MACHINE_CFG, "lan": LAN_CFG}


def configure_lsl(scope: str | None = None) -> Path:
    """Point ``$LSLAPICFG`` at the configuration for ``scope`` and return the file in force.

    Parameters
    ----------
    scope : "machine" | "lan" | None
        ``None`` keeps a configuration already chosen (by the user's own ``LSLAPICFG`` or an earlier
        call) and otherwise uses ``$BCI_APP_LSL_SCOPE`` or ``"machine"``. An explicit scope always
        replaces the file bci_app chose earlier, but must be set before LSL is first used.
    """
    if scope is None:
        current = os.environ.get("LSLAPICFG")
        if current:
            return Path(current)
        scope = os.environ.get(SCOPE_ENV, "machine")
    scope = scope.lower()
    if scope not in _SCOPES:
        from bci_app.errors import ConfigError

        raise ConfigError(
            f"LSL scope must be one of {sorted(_SCOPES)}, got {scope!r}. "
            f"Use 'machine' (default, this computer only) or 'lan' (visible on the network)."
        )
    cfg = _SCOPES[scope]
    os.environ["LSLAPICFG"] = str(cfg)
    if scope == "lan":
        logger.warning(
            "LSL scope widened to the local network: EEG streams published by bci_app are "
            "visible to every computer on the LAN (%s).",
            cfg,
        )
    else:
        logger.debug("LSL confined to this machine (loopback) with %s", cfg)
    return cfg


def import_pylsl() -> ModuleType:
    """Import pylsl after making sure the LSL configuration is in force."""
    configure_lsl()
    import pylsl

    return pylsl


def lsl_scope() -> str:
    """Return ``"machine"``, ``"lan"`` or ``"custom"`` for the configuration in force."""
    current = os.environ.get("LSLAPICFG")
    for name, path in _SCOPES.items():
        if current and Path(current) == path:
            return name
    return "custom" if current else "unset"
