"""Status bar and banner react to a source that stops; the GUI never blocks acquisition."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.processes import start_outlet, stop_process
from tests.ui.fakes import SimulatedSource, wait_streaming
from ui.status import StatusPanel, StatusSnapshot, human_bytes

BDF_STIM = "mne-io-test-files/bdf/test_bdf_stim_channel.bdf"  # 4 ch, 500 Hz, 10 s, 9 triggers


def _wait_ready(proc, timeout: float = 15.0) -> None:
    import select

    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "LSL outlet did not start"
    line = proc.stdout.readline()
    assert line.strip() == "READY", line


def test_status_panel_texts(gui):
    from PySide6 import QtWidgets

    bar = QtWidgets.QStatusBar()
    panel = StatusPanel(bar)
    panel.update(StatusSnapshot(state="streaming", rate=249.8, nominal_rate=250, samples_missing=12,
                                gaps=2, decoder_p50_ms=3.2, decoder_p99_ms=9.75, skipped_windows=1,
                                decoding=True, recording_path="/tmp/x/s1.xdf", recording_bytes=2_500_000,
                                recording_elapsed=75.0))
    assert panel.state_label.text().strip() == "streaming"
    assert panel.rate_label.text().strip() == "249.8 / 250 Hz"
    assert panel.lost_label.text() == "lost 12 samples (2 gaps)"
    assert panel.decoder_label.text() == "decoder p50 3.2 / p99 9.8 ms, skipped 1"
    assert panel.record_label.text() == "● REC s1.xdf 0:01:15 2.4 MB"
    panel.update(StatusSnapshot(state="lost"))
    assert "lost" in panel.state_label.text() and panel.decoder_label.text() == "decoder: off"
    assert panel.record_label.text() == "not recording"
    assert human_bytes(512) == "512 B"


def test_status_reacts_to_paused_replay(make_window, qtbot, data_dir):
    from acquisition.replay import ReplaySource

    src = ReplaySource(data_dir / BDF_STIM, speed=1.0, stall_timeout=0.3, lost_timeout=0.8)
    win = make_window(source=src)
    wait_streaming(qtbot, win)
    assert win.controls.replay_box.isEnabled()
    qtbot.waitUntil(lambda: win.status.state_label.text().strip() == "streaming", timeout=3000)
    qtbot.waitUntil(lambda: src.position > 0.2, timeout=3000)
    win.controls.play_btn.click()  # pause
    assert src.paused
    # a pause the user asked for is "paused" (grey), not a stalled device: no amber, no banner
    qtbot.waitUntil(lambda: src.state.value == "stalled", timeout=3000)
    qtbot.waitUntil(lambda: win.status.state_label.text().strip() == "paused", timeout=3000)
    assert win.status_snapshot().state == "paused"
    assert "#555555" in win.status.state_label.styleSheet()
    qtbot.wait(300)  # the queued state signal has arrived
    assert win.banner.isHidden() and win.banner.kind == ""
    frames = win.scope.frame_count
    qtbot.waitUntil(lambda: win.scope.frame_count > frames + 5, timeout=3000)  # GUI keeps drawing
    win.controls.play_btn.click()  # play
    qtbot.waitUntil(lambda: win.status.state_label.text().strip() == "streaming", timeout=3000)
    qtbot.waitUntil(win.banner.isHidden, timeout=2000)
    # seek and speed controls act on the replay
    win.controls.speedChanged.emit(4.0)
    assert src.speed == 4.0 and not src.paused
    win.controls.seekRequested.emit(8.0)
    qtbot.waitUntil(lambda: any(m.label == "bci_app/seek" for m in src.markers.all()), timeout=3000)
    # the end of the file is shown, the app stays up
    qtbot.waitUntil(lambda: win.status.state_label.text().strip() == "finished", timeout=8000)
    qtbot.waitUntil(lambda: "finished" in win.banner.text, timeout=2000)


def test_status_reacts_to_killed_lsl_outlet(make_window, qtbot, stream_name):
    from acquisition.lsl_source import LSLSource

    proc = start_outlet(stream_name, channels=4, rate=250.0, duration=0)
    try:
        src = LSLSource(stream_name, stall_timeout=0.3, lost_timeout=0.8,
                        reconnect_timeout=0.3)
        win = make_window(source=src)
        wait_streaming(qtbot, win)
        _wait_ready(proc)
        qtbot.waitUntil(lambda: win.source.n_samples > 100, timeout=5000)
        assert win.status.state_label.text().strip() == "streaming"
        stop_process(proc)  # the device dies
        qtbot.waitUntil(lambda: win.banner.kind in ("lost", "reconnecting"), timeout=5000)
        assert "LOST" in win.banner.text and not win.banner.isHidden()
        qtbot.waitUntil(lambda: win.status.state_label.text().strip() in ("lost", "reconnecting"),
                        timeout=3000)
        frames = win.scope.frame_count
        qtbot.waitUntil(lambda: win.scope.frame_count > frames + 5, timeout=3000)  # still running
        assert win.isVisible()
    finally:
        stop_process(proc)


def test_gui_never_blocks_acquisition(make_window, qtbot, stream_name):
    """A deliberately slow paint (busy-waiting 150 ms, holding the GIL) loses no LSL sample."""
    from acquisition.lsl_source import LSLSource

    rate, seconds = 500.0, 3.0
    n_total = int(rate * seconds)
    proc = start_outlet(stream_name, channels=8, rate=rate, duration=seconds)
    try:
        src = LSLSource(stream_name, stall_timeout=1.0, lost_timeout=2.0)
        win = make_window(source=src)
        win.scope.set_paint_delay(0.15)
        wait_streaming(qtbot, win)
        _wait_ready(proc)
        qtbot.waitUntil(lambda: src.n_samples >= n_total, timeout=int(1000 * (seconds + 8)))
        assert win.scope.paint_count >= 3  # the slow paints did happen meanwhile
        chunk = src.buffer.since(0)
        counter = chunk.data[:, 0]
        np.testing.assert_array_equal(counter, np.arange(n_total))  # every sample, once, in order
        assert src.samples_missing == 0 and not src.gaps
    finally:
        stop_process(proc)


def test_marker_key_and_button_add_user_markers(make_window, qtbot):
    from PySide6 import QtCore

    win = make_window(source=SimulatedSource(4, 250.0))
    wait_streaming(qtbot, win)
    win.activateWindow()
    win.controls.marker_edit.setText("blink")
    win.controls.marker_btn.click()
    qtbot.keyClick(win.scope, QtCore.Qt.Key.Key_M)
    qtbot.keyClick(win.scope, QtCore.Qt.Key.Key_3)
    labels = [m.label for m in win.source.markers.all() if m.source == "user"]
    assert labels == ["blink", "blink", "3"]
    qtbot.waitUntil(lambda: [lab for lab, _ in win.scope.marker_positions()] == ["blink", "blink", "3"],
                    timeout=3000)
    assert all(-1.0 < x <= 0.05 for _, x in win.scope.marker_positions())


def test_source_error_shows_banner_and_app_keeps_running(make_window, qtbot):
    win = make_window("brainflow:not-a-board")
    assert win.banner.kind == "error" and "not-a-board" in win.banner.text
    assert win.status_snapshot().state == "error"
    frames = win.scope.frame_count
    qtbot.waitUntil(lambda: win.scope.frame_count > frames + 3, timeout=3000)
    win.connect_timeout = 1.0
    win.open_source("lsl:bci-test-no-such-stream")
    qtbot.waitUntil(lambda: win.banner.kind == "error", timeout=10_000)
    assert "no-such-stream" in win.banner.text


@pytest.mark.parametrize("spec", ["synthetic"])
def test_recording_from_the_window(make_window, qtbot, tmp_path, spec):
    win = make_window(spec)
    wait_streaming(qtbot, win)
    path = tmp_path / "rec" / "gui.xdf"
    win.controls.file_edit.setText(str(path))
    win.controls.record_btn.click()
    assert win.recorder is not None
    qtbot.waitUntil(lambda: path.exists() and path.stat().st_size > 2000, timeout=5000)
    qtbot.waitUntil(lambda: "REC gui.xdf" in win.status.record_label.text(), timeout=2000)
    win.add_marker("during-recording")
    win.controls.record_btn.click()
    assert win.recorder is None
    qtbot.waitUntil(lambda: win.status.record_label.text() == "not recording", timeout=2000)
    for call in list(win._background):
        call.wait(5.0)
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(path))
    names = {s["info"]["name"][0] for s in streams}
    assert any("BrainFlow" in n for n in names)
    markers = [s for s in streams if s["info"]["type"][0] == "Markers"]
    assert any("during-recording" in str(v) for s in markers for v in s["time_series"])
