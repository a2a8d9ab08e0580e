"""Main-window behaviour found in review: recording without a connected source, a stale decoder
error banner, the Channels and Session docks at the default size, the speller's language model
on the GUI thread, the model dialog's start folder, tooltips and the source dialog's error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.ui.fakes import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
EDF = "eegmmidb/MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"


def test_record_needs_a_connected_source(make_window, tmp_path):
    win = make_window("file:" + str(tmp_path / "no_such_recording.edf"))
    wait_until(lambda: win.connect_error != "", 10)
    assert win.source is None or not win.source.connected
    assert not win.controls.record_btn.isEnabled()
    assert "Connect a source first" in win.controls.record_btn.toolTip()
    target = tmp_path / "rec" / "empty.xdf"
    assert win.start_recording(str(target)) is False  # also refused when called directly
    assert win.recorder is None and not target.exists()
    assert not win.controls.record_btn.isChecked()

    win.open_source("synthetic")
    assert not win.controls.record_btn.isEnabled()  # still connecting
    wait_until(lambda: win.source is not None and win.source.connected, 15)
    wait_until(win.controls.record_btn.isEnabled, 5)
    win.controls.file_edit.setText(str(target))
    win.controls.record_btn.click()
    assert win.recorder is not None
    win.controls.record_btn.click()
    assert win.recorder is None


def test_a_device_without_the_models_channels_is_sent_to_the_wizard(make_window):
    """The banner named only the CLI's --map; in the window, the calibration wizard trains a
    decoder for the device's channels (a BrainFlow board with named electrodes here)."""
    win = make_window("synthetic?channels=" + ",".join(f"E{i}" for i in range(16)))
    wait_until(lambda: win.source is not None and win.source.connected, 15)
    assert win.load_model(str(REPO_ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"))
    win.controls.decode_btn.click()
    wait_until(lambda: win.banner.kind == "error", 30)
    assert "lacks 21" in win.banner.text and "Tools → Calibration wizard" in win.banner.text


def test_decoder_error_banner_goes_after_a_successful_start(make_window, gui_bundle_path):
    win = make_window("synthetic")
    wait_until(lambda: win.source is not None and win.source.connected, 15)
    # the shipped bundle needs 21 motor channels the synthetic board lacks: start fails
    assert win.load_model(str(REPO_ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"))
    win.controls.decode_btn.click()
    wait_until(lambda: win.banner.kind == "error", 30)
    assert win.banner.text.startswith("Could not start decoding")
    assert "File replay" in win.banner.text  # the demo board: replay a recording instead
    assert "Starting the decoder" not in win.statusBar().currentMessage()
    # a matching bundle: decoding starts, the old error goes, the status bar says so
    assert win.load_model(str(gui_bundle_path))
    win.controls.decode_btn.click()
    wait_until(lambda: win.decoder is not None, 30)
    assert win.banner.isHidden() and win.banner.kind == ""
    assert "Starting the decoder" not in win.statusBar().currentMessage()
    wait_until(lambda: win.prediction.n_predictions > 2, 30)
    assert win.banner.isHidden()


def test_decoder_error_banner_does_not_hide_a_connect_error(make_window, tmp_path):
    win = make_window("file:" + str(tmp_path / "missing.edf"))
    wait_until(lambda: win.banner.kind == "error", 10)
    win._clear_decoder_error()  # no decoder error shown: the source's error stays
    assert win.banner.kind == "error" and "missing.edf" in win.banner.text


def test_channel_panel_shows_every_column(make_window):
    win = make_window("synthetic")
    wait_until(lambda: win.source is not None and win.source.connected
               and win.scope.n_channels > 0, 15)
    win.channels_dock.raise_()
    wait_until(lambda: win.channels.table.isVisible(), 5)
    t = win.channels.table
    h = t.horizontalHeader()
    wait_until(lambda: h.sectionSize(3) > 20, 5)
    for col in range(4):
        left = h.sectionViewportPosition(col)
        assert 0 <= left and left + h.sectionSize(col) <= t.viewport().width(), \
            (t.horizontalHeaderItem(col).text(), left, h.sectionSize(col), t.viewport().width())
    assert h.sectionSize(1) >= t.fontMetrics().horizontalAdvance("PO8")  # names readable


def test_session_labels_are_not_clipped(make_window, data_dir):
    spec = "file:" + str(data_dir / EDF)
    win = make_window(spec)
    wait_until(lambda: win.source is not None and win.source.connected, 20)
    win.load_model(str(REPO_ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"))
    win.controls_dock.raise_()
    time.sleep(0.05)
    wait_until(lambda: win.controls.source_label.isVisible(), 5)
    for label in (win.controls.source_label, win.controls.model_label):
        wait_until(lambda lab=label: lab.height() >= lab.heightForWidth(lab.width()), 5)
    src = win.controls.source_label
    assert "S001R04.edf" in src.text() and str(data_dir) not in src.text()  # path shortened
    assert src.toolTip() == spec  # the whole path is one hover away


def test_speller_opens_without_blocking_the_gui(make_window):
    win = make_window("synthetic")
    t0 = time.perf_counter()
    win.open_speller()
    assert time.perf_counter() - t0 < 0.5  # the language model builds in the background
    assert win.speller_dock.isVisible() and win.speller is None
    assert "Loading" in win.speller_dock.widget().text()
    frames = win.scope.frame_count
    wait_until(lambda: win.speller is not None, 60)
    assert win.scope.frame_count > frames  # the scope kept drawing meanwhile
    assert win.speller_dock.widget() is win.speller
    win.open_speller()  # a second call only shows the dock
    assert win.speller_dock.widget() is win.speller


def test_model_dialog_starts_in_the_repository(make_window, monkeypatch, tmp_path):
    from PySide6 import QtWidgets

    win = make_window("synthetic", show=False)
    win.settings.last_model = ""
    monkeypatch.setenv("BCI_APP_PROFILES_DIR", str(tmp_path / "no-profiles-yet"))
    monkeypatch.chdir(tmp_path)  # another working directory
    seen = []
    # the dialog is modal: record where it opens and cancel it
    monkeypatch.setattr(QtWidgets.QFileDialog, "exec",
                        lambda self: seen.append(self.directory().absolutePath()) or 0)
    win.choose_model()
    assert seen == [str(REPO_ROOT / "decoders" / "pretrained")]
    assert (REPO_ROOT / "decoders" / "pretrained").is_dir()


def test_no_model_tooltip_names_the_real_menu(make_window):
    win = make_window("synthetic", show=False)
    tip = win.prediction.no_model.toolTip()
    file_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&File")
    names = [a.text().replace("&", "") for a in file_menu.actions()]
    assert "Load model bundle…" in names
    assert "File ▸ Load model bundle…" in tip and "Ctrl+L" in tip


@pytest.mark.parametrize("tab", [0, 2])
def test_source_dialog_error_is_cleared_on_another_tab(gui, qtbot, tab):
    from ui.source_dialog import SourceDialog

    dlg = SourceDialog("file:", auto_refresh=False)
    qtbot.addWidget(dlg)
    dlg.tabs.setCurrentIndex(3)
    dlg.file_edit.setText("")
    dlg.accept()  # no file chosen: stays open with an error
    assert dlg.error_label.text() and dlg.spec is None
    dlg.tabs.setCurrentIndex(tab)
    assert dlg.error_label.text() == ""
    dlg.tabs.setCurrentIndex(3)
    dlg.accept()
    assert dlg.error_label.text()
    qtbot.keyClicks(dlg.file_edit, "/tmp/x.edf")  # typing answers the error
    assert dlg.error_label.text() == ""
