"""Prediction panel, spectrum, settings persistence, source dialog, the app entry point."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.helpers.processes import start_outlet, stop_process
from tests.ui.fakes import SimulatedSource, wait_streaming
from ui.prediction import Prediction, PredictionPanel, class_directions
from ui.spectrum import band_powers, welch_psd


def _pred(probs, classes=("left", "right"), text=None, t=0.0):
    probs = np.asarray(probs, dtype=float)
    return Prediction(window_end=t, probabilities=probs, classes=tuple(classes),
                      label=classes[int(np.argmax(probs))], text=text,
                      latency={"window_ready": 0.001, "inference": 0.002, "total": 0.004})


# --------------------------------------------------------------------------- prediction panel
def test_prediction_panel_no_model_then_predictions(gui, qtbot):
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert panel.no_model.isVisible() and panel.no_model.text() == "NO MODEL LOADED"
    assert not panel.text_box.isVisible()
    panel.set_model("EEGNet MI", ("left", "right"))
    assert not panel.no_model.isVisible()
    assert [panel.bars_layout.itemAt(i, panel.bars_layout.ItemRole.LabelRole).widget().text()
            for i in range(2)] == ["left", "right"]
    x0 = panel.control[0]
    for _ in range(10):
        panel.on_prediction(_pred([0.1, 0.9]))
    assert panel.command.text() == "right"
    assert panel._bars[1].value() == 900 and panel._bars[0].value() == 100
    assert panel.control[0] > x0 + 0.5  # the ball moved right (smoothed)
    assert 0.75 < panel.control[0] <= 0.8 + 1e-9
    assert len(panel.history.entries) == 10 and panel.history.entries[-1][0] == "right"
    panel.on_prediction(_pred([0.8, 0.2]))
    assert panel.command.text() == "left" and panel.control[0] < 0.8  # moves back gradually
    assert "latency 4.0 ms" in panel.latency_label.text()


def test_prediction_panel_text_decoder(gui, qtbot):
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_model("GLIM text", ("a", "b", "c"), text_decoder=True)
    assert panel.text_box.isVisible()
    panel.on_prediction(_pred([0.2, 0.5, 0.3], ("a", "b", "c"), text="hello"))
    panel.on_prediction(_pred([0.2, 0.5, 0.3], ("a", "b", "c"), text="hello"))  # no repeat
    panel.on_prediction(_pred([0.2, 0.5, 0.3], ("a", "b", "c"), text="hello world"))
    assert panel.text_box.toPlainText() == "hello\nhello world"


def test_class_directions():
    d = class_directions(("left", "right", "feet", "tongue"))
    np.testing.assert_array_equal(d, [[-1, 0], [1, 0], [0, -1], [0, 1]])
    d = class_directions(("yes", "no"))
    np.testing.assert_array_equal(d, [[-1, 0], [1, 0]])
    d = class_directions(("a", "b", "c"))
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)


def test_predictions_from_a_worker_thread_arrive_queued(make_window, qtbot):
    """A decoder-like worker calls back on its own thread; the panel updates in the GUI thread."""

    class FakeWorker:
        def __init__(self):
            self.callbacks = []
            self.gui_thread_calls = []

        def add_callback(self, fn):
            self.callbacks.append(fn)

        def run(self, n):
            for i in range(n):
                for fn in self.callbacks:
                    fn(_pred([0.3, 0.7], t=float(i)))

    win = make_window(source=SimulatedSource(4, 250.0))
    win.prediction.set_model("demo", ("left", "right"))
    seen_threads = []
    win.prediction_bridge.predicted.connect(lambda _p: seen_threads.append(threading.current_thread()))
    worker = FakeWorker()
    win.prediction_bridge.attach(worker)
    t = threading.Thread(target=worker.run, args=(25,))
    t.start()
    t.join(5)
    qtbot.waitUntil(lambda: win.prediction.n_predictions == 25, timeout=3000)
    assert set(seen_threads) == {threading.main_thread()}
    assert win.prediction.command.text() == "right"


# --------------------------------------------------------------------------- spectrum
def test_welch_and_band_powers_find_alpha():
    sf = 250.0
    t = np.arange(int(2 * sf)) / sf
    data = np.stack([np.sin(2 * np.pi * 10 * t) * 20, np.sin(2 * np.pi * 20 * t) * 20], axis=1)
    freqs, psd = welch_psd(data, sf)
    assert psd.shape == (2, len(freqs)) and freqs[np.argmax(psd[0])] == pytest.approx(10.0)
    names, bp = band_powers(freqs, psd)
    assert names == ["delta", "theta", "alpha", "beta", "gamma"]
    assert np.argmax(bp[0]) == 2 and np.argmax(bp[1]) == 3
    assert bp[0, 2] == pytest.approx(200.0, rel=0.1)  # power of a 20 µV sine = 20² / 2
    names, _ = band_powers(freqs[freqs < 35], psd[:, freqs < 35])
    assert "gamma" not in names


def test_spectrum_updates_about_four_times_a_second(make_window, qtbot):
    src = SimulatedSource(8, 250.0)
    win = make_window(source=src)
    wait_streaming(qtbot, win)
    qtbot.waitUntil(lambda: win.spectrum.updates >= 1, timeout=5000)
    n0, t0 = win.spectrum.updates, time.monotonic()
    qtbot.waitUntil(lambda: win.spectrum.updates >= n0 + 4, timeout=3000)
    rate = (win.spectrum.updates - n0) / (time.monotonic() - t0)
    assert 2.0 < rate < 6.0
    assert win.spectrum.psd.shape[0] == 8 and win.spectrum.n_curves == 8
    assert win.spectrum.band_names[:4] == ["delta", "theta", "alpha", "beta"]
    assert win.spectrum.relative.sum() == pytest.approx(100.0, abs=0.5)
    win.scope.set_channel_visible(0, False)  # hidden channels leave the spectrum too
    qtbot.waitUntil(lambda: win.spectrum.n_curves == 7, timeout=3000)


# --------------------------------------------------------------------------- settings
def test_settings_persist_between_windows(make_window, qtbot, temp_settings):
    src = SimulatedSource(6, 250.0)
    win = make_window(source=src)
    wait_streaming(qtbot, win)
    win.scope.set_window(5)
    win.scope.set_scale(20)
    win.scope.set_mode("sweep")
    win.scope.set_filter(60, "1–40 Hz")
    win.scope.set_montage("10-20")
    win.scope.set_channel_visible(1, False)
    win.scope.set_channel_bad(2, True)
    win.scope.set_channel_scale(3, 7.0)
    # smaller than the default (1500 x 950, fitted to the 800 x 800 offscreen screen: ~798 x 774),
    # so that only a restored size passes the check below
    win.resize(765, 600)
    win.close()
    assert temp_settings.exists()

    win2 = make_window(source=SimulatedSource(6, 250.0))
    wait_streaming(qtbot, win2)
    s = win2.scope
    assert (s.window_s, s.scale_uv, s.mode, s.montage) == (5.0, 20.0, "sweep", "10-20")
    assert (s.display_filter.notch, s.display_filter.bandpass) == (60, "1–40 Hz")
    qtbot.waitUntil(lambda: s.hidden == {1} and s.bad == {2} and s.channel_scale == {3: 7.0}, timeout=3000)
    size = win2.size()  # restored (offscreen adds frame margins)
    assert abs(size.width() - 765) <= 12 and abs(size.height() - 600) <= 40, size
    assert win2.channels.table.item(1, 0).checkState().value == 0  # unchecked


def test_last_source_remembered(make_window, qtbot):
    from ui.settings import AppSettings

    win = make_window("synthetic")
    wait_streaming(qtbot, win)
    qtbot.waitUntil(lambda: win.settings.last_source == "synthetic", timeout=3000)
    win.settings.sync()
    assert AppSettings().last_source == "synthetic"  # a fresh reader of the same file


# --------------------------------------------------------------------------- source dialog
def test_source_specs():
    from ui.source_dialog import spec_for

    assert spec_for("synthetic") == "synthetic"
    assert spec_for("openbci", board="cyton", port="/dev/ttyUSB0") == "brainflow:cyton:/dev/ttyUSB0"
    assert spec_for("lsl", stream="OpenBCI_EEG") == "lsl:OpenBCI_EEG"
    assert spec_for("file", path="/x/y.xdf") == "file:/x/y.xdf"
    with pytest.raises(ValueError, match="serial port"):
        spec_for("openbci", board="cyton", port="")
    with pytest.raises(ValueError, match="LSL stream"):
        spec_for("lsl")


def test_source_dialog_lists_lsl_streams(gui, qtbot, stream_name):
    from ui.source_dialog import SourceDialog

    proc = start_outlet(stream_name, channels=3, rate=100.0, duration=0, wait_consumer=0)
    try:
        dlg = SourceDialog("lsl:", auto_refresh=False)
        qtbot.addWidget(dlg)
        assert dlg.tabs.currentIndex() == 2
        qtbot.waitUntil(lambda: proc.stdout.readline().strip() == "READY", timeout=10_000)
        found = []

        def look():
            if dlg._lookup is None or not dlg._lookup.is_running():
                dlg.refresh_streams(timeout=0.5)
            found[:] = [s["name"] for s in dlg.streams]
            return stream_name in found

        qtbot.waitUntil(look, timeout=10_000)
        row = found.index(stream_name)
        dlg.stream_list.setCurrentRow(row)
        dlg.accept()
        assert dlg.spec == f"lsl:{stream_name}"
        dlg2 = SourceDialog("brainflow:cyton:/dev/ttyFAKE0", auto_refresh=False)
        qtbot.addWidget(dlg2)
        assert dlg2.current_spec() == "brainflow:cyton:/dev/ttyFAKE0"
        dlg2.tabs.setCurrentIndex(3)
        dlg2.accept()
        assert dlg2.spec is None and "recording" in dlg2.error_label.text()
    finally:
        stop_process(proc)


def test_open_lsl_stream_from_spec(make_window, qtbot, stream_name):
    proc = start_outlet(stream_name, channels=5, rate=250.0, duration=0)
    try:
        win = make_window(f"lsl:{stream_name}")
        wait_streaming(qtbot, win)
        assert win.scope.n_channels == 5
        win.open_source("synthetic")  # switch sources while running
        qtbot.waitUntil(lambda: win.source.info is not None and win.source.info.n_channels == 16
                        and win.source.state.value == "streaming", timeout=10_000)
        qtbot.waitUntil(lambda: win.scope.n_channels == 16, timeout=3000)  # the next frame
        assert win.scope.visible_channels == list(range(16))
    finally:
        stop_process(proc)


# --------------------------------------------------------------------------- entry point
_CLI_PROBE = """
import sys
from PySide6 import QtCore, QtWidgets
from ui.app import create_app
from ui.main_window import MainWindow
app = create_app()

def check():
    wins = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    w = wins[0] if wins else None
    if w is not None and w.isVisible() and w.source is not None and \\
            w.source.state.value == "streaming" and w.scope.n_channels and w.scope.paint_count:
        print("OPENED", w.source_spec, w.scope.n_channels, w.prediction.no_model.text(), flush=True)
        w.close()
        QtWidgets.QApplication.quit()
    else:
        QtCore.QTimer.singleShot(50, check)

QtCore.QTimer.singleShot(50, check)
QtCore.QTimer.singleShot(20000, QtWidgets.QApplication.quit)
from bci_app.cli import main
sys.exit(main([]))
"""


def test_bci_app_without_arguments_opens_window_on_synthetic(tmp_path):
    """``bci-app`` (no arguments) -> gui -> ui.app.main: the window on the synthetic board.

    Runs in its own process: ``QApplication.exec()`` must not run inside the test process.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = os.environ.copy()
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["BCI_APP_SETTINGS"] = str(tmp_path / "settings.ini")
    proc = subprocess.run([sys.executable, "-c", _CLI_PROBE], cwd=Path(__file__).resolve().parents[2],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "OPENED synthetic 16 NO MODEL LOADED" in proc.stdout, proc.stdout + proc.stderr[-3000:]


# --------------------------------------------------------------------------- decoding
def test_load_model_and_decode_on_synthetic_board(make_window, qtbot, gui_bundle_path, tmp_path):
    win = make_window("synthetic")
    wait_streaming(qtbot, win)
    assert win.prediction.no_model.isVisible()
    assert win.load_model(str(gui_bundle_path))
    assert not win.prediction.no_model.isVisible()
    assert win.prediction.classes == ("left", "right")
    qtbot.waitUntil(lambda: win.controls.decode_btn.isEnabled(), timeout=3000)
    win.controls.decode_btn.click()
    qtbot.waitUntil(lambda: win.decoder is not None, timeout=20_000)
    qtbot.waitUntil(lambda: win.prediction.n_predictions >= 5, timeout=15_000)
    last = win.prediction.last
    assert last.classes == ("left", "right") and last.latency["total"] > 0
    assert win.prediction.command.text() in ("left", "right") or win.prediction.command.text().startswith("(")
    assert len(win.prediction.history.entries) >= 5
    qtbot.waitUntil(lambda: win.status.decoder_label.text().startswith("decoder p50"), timeout=3000)
    assert "—" not in win.status.decoder_label.text().split("skipped")[0]
    frames = win.scope.frame_count
    qtbot.waitUntil(lambda: win.scope.frame_count > frames + 10, timeout=3000)  # GUI unaffected
    # recording while decoding: the predictions go into the file too
    path = tmp_path / "decoding.xdf"
    win.controls.file_edit.setText(str(path))
    win.controls.record_btn.click()
    n0 = win.prediction.n_predictions
    qtbot.waitUntil(lambda: win.prediction.n_predictions >= n0 + 5, timeout=10_000)
    win.controls.record_btn.click()
    for call in list(win._background):
        call.wait(5.0)
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(path))
    preds = [st for st in streams if st["info"]["type"][0] == "Predictions"]
    assert preds and len(preds[0]["time_series"]) >= 3
    win.controls.decode_btn.click()  # stop
    assert win.decoder is None
    qtbot.waitUntil(lambda: win.status.decoder_label.text() == "decoder: off", timeout=3000)


def test_bad_model_path_is_reported_not_raised(make_window, qtbot, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    shown = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    win = make_window(source=SimulatedSource(4, 250.0))
    assert not win.load_model(str(tmp_path / "nope"))
    assert shown and "nope" in shown[0]
    assert win.prediction.no_model.isVisible()


def test_model_loads_in_the_background(make_window, qtbot, gui_bundle_path):
    win = make_window(source=SimulatedSource(4, 250.0), model=str(gui_bundle_path))
    assert win.prediction.no_model.isVisible()  # not yet: loading on a background thread
    qtbot.waitUntil(lambda: win.bundle is not None, timeout=20_000)
    assert win.prediction.model_name == "ts_lr" and not win.prediction.no_model.isVisible()


def test_closing_while_the_decoder_starts_leaves_no_thread(make_window, qtbot, gui_bundle_path):
    win = make_window("synthetic")
    wait_streaming(qtbot, win)
    assert win.load_model(str(gui_bundle_path))
    qtbot.waitUntil(lambda: win.controls.decode_btn.isEnabled(), timeout=3000)
    before = set(threading.enumerate())
    win.controls.decode_btn.click()  # the worker is built on a background thread...
    win.close()  # ...and the window closes before it is handed over
    leftover = [t.name for t in set(threading.enumerate()) - before
                if t.is_alive() and t.name.startswith(("decoder", "acquisition-", "gui-"))]
    assert not leftover
    assert not any(t.is_alive() for t in before if t.name.startswith("acquisition-BrainFlow"))
