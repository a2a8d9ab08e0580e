"""`bci-app` on a machine where Qt cannot open a window: a clear error naming the fix instead of
Qt's own abort (which kills the process and blames libxcb-cursor0 whatever is missing)."""

from __future__ import annotations

import argparse

import pytest

from bci_app.errors import ConfigError
from ui.app import _x_connect_error, display_problem


def _never(*_):
    raise AssertionError("this check should not run")


def test_no_display_names_the_fixes():
    msg = display_problem({}, "linux", plugin_error=_never, connect_error=_never)
    assert "neither DISPLAY nor WAYLAND_DISPLAY" in msg
    assert "xvfb-run bci-app" in msg and "bci-app live --headless" in msg


@pytest.mark.parametrize("env", [{"QT_QPA_PLATFORM": "offscreen"},
                                 {"QT_QPA_PLATFORM": "wayland"},
                                 {"WAYLAND_DISPLAY": "wayland-0"}])
def test_other_platforms_are_the_users_choice(env):
    assert display_problem(env, "linux", plugin_error=_never, connect_error=_never) is None


def test_not_checked_off_linux():
    assert display_problem({}, "darwin", plugin_error=_never, connect_error=_never) is None
    assert display_problem({}, "win32", plugin_error=_never, connect_error=_never) is None


def test_missing_x11_library_is_named():
    err = "libxcb-icccm.so.4: cannot open shared object file: No such file or directory"
    msg = display_problem({"DISPLAY": ":0"}, "linux", plugin_error=lambda: err,
                          connect_error=_never)
    assert "libxcb-icccm.so.4" in msg and "apt-get install" in msg


def test_unreachable_x_server_and_the_good_case():
    env = {"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}
    msg = display_problem(env, "linux", plugin_error=lambda: None,
                          connect_error=lambda d: "xcb error 1")
    assert "cannot connect to the X display ':0'" in msg
    assert display_problem(env, "linux", plugin_error=lambda: None,
                           connect_error=lambda d: None) is None


def test_real_x_connection_to_a_display_that_does_not_exist():
    assert _x_connect_error(":987") is not None


def test_gui_entry_raises_config_error_without_a_display(monkeypatch):
    """What `bci-app` prints (as `bci-app: error: ...`, exit 2) before any Qt call."""
    from ui import app

    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.setattr(app, "create_app", _never)
    with pytest.raises(ConfigError, match="no display"):
        app.main(argparse.Namespace(source="synthetic", model=None))
