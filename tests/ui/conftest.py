"""GUI tests: offscreen Qt, a temporary settings file per test, windows closed after each test."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


@pytest.fixture(autouse=True)
def temp_settings(tmp_path, monkeypatch):
    """Never read or write the real user's settings: every test gets its own INI file."""
    path = tmp_path / "bci_app_settings.ini"
    monkeypatch.setenv("BCI_APP_SETTINGS", str(path))
    monkeypatch.setenv("BCI_APP_RECORDINGS_DIR", str(tmp_path / "recordings"))
    return path


@pytest.fixture
def gui(qapp):
    """The QApplication configured like the app (pyqtgraph options)."""
    assert os.environ.get("QT_QPA_PLATFORM") in ("offscreen", "xcb", None)
    from ui.app import configure_pyqtgraph

    configure_pyqtgraph()
    return qapp


@pytest.fixture
def make_window(gui, qtbot):
    """Create MainWindows that are closed (sources stopped) at the end of the test."""
    from ui.main_window import MainWindow

    windows = []

    def factory(*args, show: bool = True, **kwargs) -> MainWindow:
        kwargs.setdefault("connect_timeout", 5.0)
        win = MainWindow(*args, **kwargs)
        qtbot.addWidget(win)
        windows.append(win)
        if show:
            win.show()
        return win

    yield factory
    for win in windows:
        win.close()
