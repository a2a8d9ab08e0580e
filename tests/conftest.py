"""Test configuration shared by every test module.

LSL is confined to loopback before anything imports pylsl, Qt runs offscreen, and the real EEG in
``$BCI_APP_DATA_DIR`` (default ``../shared/data``) is found through one fixture.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

# Must happen before pylsl / mne_lsl / Qt are imported by any test module.
from acquisition.lsl_env import MACHINE_CFG

os.environ["LSLAPICFG"] = str(MACHINE_CFG)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MNE_DONTWRITE_HOME", "true")

import pytest  # noqa: E402

from bci_app.config import data_dir as _data_dir  # noqa: E402


#: Last-resort cap per test (setup + call + teardown), seconds. pytest-timeout (300 s, thread
#: method) needs the GIL to report; a deadlock in C code that holds the GIL (as in Qt's mutexes)
#: starves it. faulthandler's watchdog is a C thread: it prints every thread's Python stack and
#: ends the run, so CI fails with the stacks instead of hanging until its own limit.
HARD_TIMEOUT_S = float(os.environ.get("BCI_APP_TEST_HARD_TIMEOUT", "600"))


_WATCHDOG_FILE = None


def pytest_configure(config):
    """Keep a copy of the terminal's stderr for the watchdog: during a test fd 2 is pytest's
    capture file, which is lost when the watchdog ends the run (fd 2 is the terminal here, after
    conftest loading and before any test)."""
    global _WATCHDOG_FILE
    _WATCHDOG_FILE = os.fdopen(os.dup(2), "w")


def _stderr_for_watchdog():
    import sys

    return _WATCHDOG_FILE or sys.__stderr__


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    import faulthandler

    faulthandler.dump_traceback_later(HARD_TIMEOUT_S, exit=True, file=_stderr_for_watchdog())
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def _qt_garbage_on_the_main_thread(request):
    """As in the app (``ui.app.collect_garbage_on_gui_thread``): once a test uses Qt, Python's
    cyclic garbage collector runs only on the main thread, never in a worker thread that would
    destroy a leftover widget of an earlier test there (that hung the suite in Qt's mutexes).
    After every test the collector runs here if its thresholds say so."""
    if "qapp" in request.fixturenames:
        request.getfixturevalue("qapp")
        from ui.app import collect_garbage_on_gui_thread

        collect_garbage_on_gui_thread()
    yield
    import sys

    app_module = sys.modules.get("ui.app")
    collector = getattr(app_module, "_gc_collector", None)
    if collector is not None:
        collector.check()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder with the shared real EEG; the test is skipped... never: missing data is an error."""
    path = _data_dir()
    if not path.is_dir():
        raise RuntimeError(
            f"Real EEG data folder {path} not found. Set BCI_APP_DATA_DIR to the folder holding "
            "eegmmidb/, xdf-example-files/, ... (see README)."
        )
    return path


@pytest.fixture(scope="session")
def eegmmidb_path(data_dir: Path) -> Path:
    """Pass as ``path=`` to ``mne.datasets.eegbci.load_data`` (works offline)."""
    return data_dir / "eegmmidb"


@pytest.fixture
def stream_name(request) -> str:
    """A unique LSL stream name per test, so tests never see each other's streams."""
    return f"bci-test-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


#: The EEG channel names of BrainFlow's synthetic board (what ``synthetic`` streams).
SYNTHETIC_CHANNELS = ("Fz", "C3", "Cz", "C4", "Pz", "PO7", "Oz", "PO8", "F5", "F7", "F3", "F1",
                      "F2", "F4", "F6", "F8")


@pytest.fixture(scope="session")
def synthetic_pretrained(tmp_path_factory, eegmmidb_path: Path) -> Path:
    """A pretrained CSP+LDA bundle (Euclidean alignment) on the synthetic board's channels,
    trained by ``bci-app train`` on EEGMMIDB S001-S003: the fix the calibration's channel check
    names for a source without the shipped bundles' 21 motor channels (a few seconds)."""
    from bci_app.cli import main

    out = tmp_path_factory.mktemp("pretrained") / "synthetic_csp_lda_ea"
    rc = main(["train", "--data-dir", str(eegmmidb_path), "--subjects", "1-3", "--channels",
               ",".join(SYNTHETIC_CHANNELS), "--model", "csp_lda", "--out", str(out)])
    assert rc == 0 and (out / "config.json").is_file()
    return out
