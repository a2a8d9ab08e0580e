"""Per-user settings (QSettings): last source, montage, scales, filters, window geometry.

Values that are not plain strings are stored as JSON text, so the INI and the native back-ends
read back the same types. Tests (and anyone who wants a portable profile) point
``$BCI_APP_SETTINGS`` at an INI file, or pass ``path=``; the real user's settings are then never
read or written.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from PySide6 import QtCore

logger = logging.getLogger(__name__)

#: Environment variable naming an INI file to use instead of the user's native settings.
SETTINGS_ENV = "BCI_APP_SETTINGS"
ORGANIZATION = "bci_app"
APPLICATION = "bci_app"
#: How :meth:`AppSettings.get_json` names the type it expected.
_JSON_NAMES = {dict: "object", str: "string", list: "array"}


class AppSettings:
    """Typed access to the GUI's persistent settings.

    Parameters
    ----------
    path : str | Path | None
        INI file to use. ``None``: ``$BCI_APP_SETTINGS`` if set, else the user's native store
        (``~/.config/bci_app/bci_app.conf`` on Linux, the registry on Windows, plist on macOS).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        path = path or os.environ.get(SETTINGS_ENV) or None
        if path:
            self.q = QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat)
        else:
            self.q = QtCore.QSettings(ORGANIZATION, APPLICATION)

    @property
    def location(self) -> str:
        return self.q.fileName()

    # ---------------------------------------------------------------- generic
    def get_json(self, key: str, default: Any = None,
                 expected: type | tuple[type, ...] | None = None) -> Any:
        """The JSON value stored under ``key``, or ``default`` when there is none, it is not
        JSON, or (with ``expected``) it is not of that type: a settings file edited by hand (or
        written by another version) must never stop the window from opening."""
        raw = self.q.value(key, None)
        if raw is None or raw == "":
            return default
        try:
            value = json.loads(str(raw))
        except (TypeError, ValueError):
            logger.warning("Ignoring unreadable setting %s=%r", key, raw)
            return default
        if value is None:  # (stored as null: "none")
            return default
        if expected is not None and not isinstance(value, expected):
            logger.warning("Ignoring setting %s=%r: expected a JSON %s", key, raw,
                           _JSON_NAMES.get(expected, "value of another type"))
            return default
        return value

    def set_json(self, key: str, value: Any) -> None:
        self.q.setValue(key, json.dumps(value))

    def get_bytes(self, key: str) -> QtCore.QByteArray | None:
        raw = self.q.value(key, None)
        return raw if isinstance(raw, QtCore.QByteArray) and not raw.isEmpty() else None

    def sync(self) -> None:
        self.q.sync()

    # ---------------------------------------------------------------- named settings
    @property
    def last_source(self) -> str | None:
        return self.get_json("source/last", expected=str)

    @last_source.setter
    def last_source(self, spec: str) -> None:
        self.set_json("source/last", spec)

    @property
    def scope(self) -> dict:
        return self.get_json("scope/display", {}, dict)

    @scope.setter
    def scope(self, state: dict) -> None:
        self.set_json("scope/display", state)

    def channels(self, stream_id: str) -> dict:
        """Channel set-up (hidden, bad, per-channel scales) of one stream."""
        state = self.get_json("scope/channels", {}, dict).get(stream_id, {})
        if not isinstance(state, dict):
            logger.warning("Ignoring the stored channel set-up of %s: %r is not a JSON object",
                           stream_id, state)
            return {}
        return state

    def set_channels(self, stream_id: str, state: dict) -> None:
        allc = self.get_json("scope/channels", {}, dict)
        allc[stream_id] = state
        self.set_json("scope/channels", allc)

    @property
    def spectrum(self) -> dict:
        return self.get_json("spectrum/display", {}, dict)

    @spectrum.setter
    def spectrum(self, state: dict) -> None:
        self.set_json("spectrum/display", state)

    @property
    def last_model(self) -> str | None:
        return self.get_json("model/last", expected=str)

    @last_model.setter
    def last_model(self, path: str | None) -> None:
        self.set_json("model/last", path)

    @property
    def record_dir(self) -> str | None:
        return self.get_json("record/dir", expected=str)

    @record_dir.setter
    def record_dir(self, path: str) -> None:
        self.set_json("record/dir", path)

    def save_window(self, window) -> None:
        self.q.setValue("window/geometry", window.saveGeometry())
        self.q.setValue("window/state", window.saveState())

    def restore_window(self, window) -> bool:
        geo = self.get_bytes("window/geometry")
        state = self.get_bytes("window/state")
        ok = False
        if geo is not None:
            ok = window.restoreGeometry(geo)
        if state is not None:
            window.restoreState(state)
        return ok
