"""Defects of the second user-journey review: the decoder panel after decoding stops, the
alignment phase, replays that finished, per-source scales, channel names, the PSD axis, the
spectrum dock's size, finding recordings, profiles, the speller's guidance and more."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.ui.fakes import process_events_for, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
EDF = "eegmmidb/MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"
EA_BUNDLE = REPO_ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"


def _connected(win, timeout: float = 20.0) -> None:
    wait_until(lambda: win.source is not None and win.source.connected, timeout)


def _assert_panel_idle(panel) -> None:
    assert panel.command.text() == "—"
    assert "#777777" in panel.command.styleSheet()  # grey, not a class colour
    assert not panel.feedback.active and np.allclose(panel.feedback.position, 0)
    assert all(bar.value() == 0 for bar in panel._bars)
    assert len(panel.history.entries) == 0
    assert "stopped" in panel.latency_label.text() and "latency" not in panel.latency_label.text()


# --------------------------------------------------------------------------- 1: decoder panel
def test_decoder_panel_resets_when_decoding_stops_or_the_source_changes(make_window, gui_bundle_path):
    win = make_window("synthetic")
    _connected(win)
    assert win.load_model(str(gui_bundle_path))
    win.controls.decode_btn.click()
    wait_until(lambda: win.prediction.n_predictions > 3, 60)
    assert win.prediction.feedback.active and len(win.prediction.history.entries) > 0

    win.controls.decode_btn.click()  # Stop decoding
    assert win.decoder is None
    process_events_for(0.5)  # predictions still queued are dropped
    _assert_panel_idle(win.prediction)
    assert not win.status_snapshot().decoding

    # decoding again, then a source that fails: the panel resets as well
    win.controls.decode_btn.click()
    wait_until(lambda: win.prediction.n_predictions_since_start > 2, 60)
    assert "stopped" not in win.prediction.latency_label.text()
    win.open_source("file:/no/such/recording.edf")
    wait_until(lambda: win.connect_error != "", 10)
    process_events_for(0.3)
    _assert_panel_idle(win.prediction)


# --------------------------------------------------------------------------- 2: alignment phase
def test_decoder_panel_explains_the_alignment_phase(make_window, data_dir):
    win = make_window("file:" + str(data_dir / EDF))
    _connected(win)
    c = win.controls
    c.speed_combo.setCurrentIndex(c.speed_combo.findData(4.0))  # its 10 s of EEG in 2.5 s
    wait_until(lambda: win.source.speed == 4.0, 5)
    assert win.load_model(str(EA_BUNDLE))
    win.controls.decode_btn.click()
    wait_until(lambda: win.decoder is not None, 60)
    assert win.decoder.aligning  # the user's alignment is fitted first
    needed = win.decoder._align_needed
    wait_until(lambda: "Fitting your alignment" in win.prediction.latency_label.text(), 5)
    text = win.prediction.latency_label.text()
    assert f"/{needed} windows" in text and "no labels needed" in text and "10 s of EEG" in text
    wait_until(lambda: any(f"({n}/{needed}" in win.prediction.latency_label.text()
                           for n in range(1, needed + 1)), 10)  # the count goes up
    wait_until(lambda: win.prediction.n_predictions > 1, 60)
    process_events_for(0.6)
    assert "Fitting" not in win.prediction.latency_label.text()


# --------------------------------------------------------------------------- 3: finished replay
def _play_to_the_end(win) -> None:
    src = win.source
    win._on_seek(src.duration - 0.5)
    wait_until(lambda: win.source is src and src.finished and win.banner.kind == "finished", 15)
    process_events_for(0.4)  # the 4 Hz read-out shows the end


def test_play_and_seek_after_a_replay_finished_play_it_again(make_window, data_dir):
    win = make_window("file:" + str(data_dir / EDF))
    _connected(win)
    c = win.controls
    _play_to_the_end(win)
    assert c.play_btn.text() == "Play" and not c.play_btn.isChecked()
    assert "from the start" in c.play_btn.toolTip()
    assert win.banner.replay_button.isVisible() and "Replay again" == win.banner.replay_button.text()

    old = win.source
    c.play_btn.click()  # Play after the end: the same file plays again from the start
    wait_until(lambda: win.source is not old and win.source is not None
               and win.source.connected and win.source.samples_delivered > 0
               and win.banner.kind == "", 20)
    process_events_for(0.4)
    assert win.source_spec == "file:" + str(data_dir / EDF)
    assert not win.source.finished and win.source.position < 5.0
    assert c.play_btn.text() == "Pause" and c.play_btn.isChecked()
    assert win.banner.kind == ""

    _play_to_the_end(win)
    old = win.source
    c.seek_slider.setValue(500)  # seeking after the end replays from there
    c._on_seek()
    wait_until(lambda: win.source is not old and win.source is not None
               and win.source.connected and win.source.position > 10.0, 20)
    assert abs(win.source.position - win.source.duration / 2) < 5.0
    assert "connect()" not in win.statusBar().currentMessage()

    _play_to_the_end(win)
    old = win.source
    win.banner.replay_button.click()  # the banner's action
    wait_until(lambda: win.source is not old and win.source is not None
               and win.source.connected, 20)
    assert win.source.position < 5.0


def test_seek_failure_does_not_show_api_wording(make_window, data_dir):
    win = make_window("file:" + str(data_dir / EDF))
    _connected(win)
    src = win.source

    def broken(seconds):
        raise RuntimeError("Replay of x: connect() before seek().")

    src.seek = broken
    win._on_seek(3.0)
    msg = win.statusBar().currentMessage()
    assert msg and "connect()" not in msg and "seek()" not in msg


# --------------------------------------------------------------------------- 4: scale per source
def test_scale_is_kept_per_source_and_fitted_to_a_new_one(make_window, data_dir):
    edf = "file:" + str(data_dir / EDF)
    win = make_window("synthetic")
    _connected(win)
    process_events_for(2.0)  # first time: auto-scaled once data is in
    win.scope.set_scale(7.0)  # the user's scale for the synthetic board

    win.open_source(edf)  # a stream seen for the first time: fitted, not 7 µV/div
    _connected(win)
    wait_until(lambda: win.scope.scale_uv != 7.0, 5)
    data = win.scope.displayed_data()
    sd = float(np.median(np.nanstd(data, axis=0)))
    assert sd / 3 < win.scope.scale_uv / 4 < sd * 3
    win.scope.set_scale(200.0)

    win.open_source("synthetic")
    _connected(win)
    wait_until(lambda: win.scope.scale_uv == 7.0, 5)  # the synthetic board's own scale
    process_events_for(2.0)
    assert win.scope.scale_uv == 7.0  # and no auto-scale overrides it
    win.open_source(edf)
    _connected(win)
    wait_until(lambda: win.scope.scale_uv == 200.0, 5)


def test_traces_stay_in_their_own_row(make_window):
    win = make_window("synthetic")
    _connected(win)
    wait_until(lambda: win.scope.frame_count > 3 and win.scope.n_channels > 0, 10)
    win.scope.set_scale(1.0)  # every channel far larger than one division
    win.scope.renderer = "curves"
    win.scope.refresh()
    rows = {ch: -row for row, ch in enumerate(win.scope.visible_channels)}
    assert rows
    for style, item in win.scope._curves.items():
        x, y = item.getData()
        if y is None or not np.isfinite(y).any():
            continue
        chans = win.scope.drawn[style]
        per_channel = y.reshape(len(chans), -1)  # one NaN-terminated run per channel
        for ch, yc in zip(chans, per_channel):
            yc = yc[np.isfinite(yc)]
            assert yc.size
            assert yc.min() >= rows[ch] - 0.5 - 1e-9 and yc.max() <= rows[ch] + 0.5 + 1e-9, ch


# --------------------------------------------------------------------------- 5: channel names
def test_long_channel_names_fit_the_name_axis(make_window, data_dir):
    from PySide6 import QtGui

    win = make_window("file:" + str(data_dir / "openbci-gui-sample" / "OpenBCI_GUI-v6-blinks-jawClench-alpha.txt"))
    _connected(win)
    wait_until(lambda: win.scope.frame_count > 3 and win.scope.n_channels > 0, 10)
    names = win.source.info.ch_names
    assert any(len(n) >= 13 for n in names)  # "EXG Channel 0", "Accel Channel 2"
    axis = win.scope.plot.getAxis("left")
    win.scope.set_channel_bad(0, True)  # the longest form of a label: "… (bad)"
    win.scope.refresh()
    process_events_for(0.3)  # the plot's layout takes the new axis width
    fm = QtGui.QFontMetrics(axis.style.get("tickFont") or win.scope.plot_widget.font())
    labels = [t for _, t in axis._tickLevels[0]]
    assert labels and any(t.endswith(" (bad)") for t in labels)
    for text in labels:
        assert fm.horizontalAdvance(text) + 8 <= axis.width(), (text, axis.width())
    assert not win.scope.name_axis_elided
    assert "EXG Channel 0 (bad)" in labels

    # a name longer than the widest axis allowed: elided with "…", the full names on hover
    ticks = [(0.0, "A channel name far too long to show in the name axis beside the traces")]
    win.scope._fit_name_axis(ticks)
    process_events_for(0.3)
    assert "…" in ticks[0][1] and win.scope.name_axis_elided
    assert fm.horizontalAdvance(ticks[0][1]) + 8 <= axis.width()
    assert "EXG Channel 0" in axis.toolTip()


# --------------------------------------------------------------------------- 6: PSD axis
def test_psd_axis_has_no_si_prefix(make_window):
    win = make_window("synthetic")
    _connected(win)
    wait_until(lambda: win.spectrum.updates > 2, 10)
    axis = win.spectrum.psd_plot.getAxis("left")
    assert not axis.autoSIPrefix
    assert "x1e" not in axis.labelString() and "µV²/Hz" in axis.labelString()


# --------------------------------------------------------------------------- 7: spectrum size
def test_spectrum_keeps_a_usable_height_and_grows_back(make_window, data_dir):
    win = make_window("file:" + str(data_dir / EDF))
    _connected(win)
    win.resize(1280, 720)
    process_events_for(0.5)
    assert win.height() <= 760  # the window is usable at 1280×720
    assert win.spectrum_dock.height() >= 180
    win.open_speller()  # a tall dock on the right squeezes the bottom area
    wait_until(lambda: win.speller is not None, 60)
    win.resize(1280, 700)
    process_events_for(0.5)
    assert win.spectrum.height() >= 180
    win.resize(1500, 1150)
    process_events_for(0.5)
    assert win.spectrum_dock.height() >= 0.2 * win.height()


# --------------------------------------------------------------------------- 8: recordings
def test_recordings_are_easy_to_find(make_window, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    folder = (tmp_path / "recordings").resolve()  # BCI_APP_RECORDINGS_DIR of the test
    win = make_window("synthetic")
    _connected(win)
    c = win.controls
    shown = c.file_edit.text()
    assert Path(shown).is_absolute() and Path(shown).parent == folder and c.file_edit.toolTip() == shown
    process_events_for(1.1)  # the name is stamped when Record is pressed, not at start
    c.record_btn.click()
    assert win.recorder is not None
    first = Path(win.recorder.path)
    assert first != Path(shown) and first.parent == folder
    process_events_for(0.5)
    c.record_btn.click()
    wait_until(lambda: first.exists() and c.last_saved.isVisible(), 10)
    assert c.last_saved.text() == f"Last saved: {first}" and c.last_saved.toolTip() == str(first)
    win.statusBar().clearMessage()  # the status bar message goes; the line stays
    assert c.last_saved.isVisible()

    c.file_edit.setText("mine.xdf")  # a bare name: in the recordings folder, not the CWD
    monkeypatch.chdir(tmp_path)
    c.record_btn.click()
    assert win.recorder is not None and Path(win.recorder.path) == folder / "mine.xdf"
    c.record_btn.click()
    wait_until(lambda: (folder / "mine.xdf").exists(), 10)
    assert c.last_saved.text().endswith(str(folder / "mine.xdf"))

    warnings = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning",
                        lambda parent, title, text: warnings.append(text))
    c.file_edit.setText(str(folder / "mine.xdf"))  # exists already
    c.record_btn.click()
    assert win.recorder is None and warnings
    assert "already exists" in warnings[0] and "--out" not in warnings[0]
    assert "Could not record" in warnings[0]
    from ui.main_window import MainWindow  # messages written for the CLI, worded for the window

    text = MainWindow._gui_wording("Recording file x already exists; expected a new file name. "
                                   "Choose another --out path (or delete the old file yourself).")
    assert "--out" not in text and "Choose another file name" in text


# --------------------------------------------------------------------------- 10: wizard wording
def test_results_note_is_worded_for_the_window():
    from decoders.bundle import load_bundle
    from ui.wizard.pages import training_data_note

    bundle = load_bundle(EA_BUNDLE)
    cfg = bundle.config
    bundle.config = {**cfg, "training": {**cfg.get("training", {}), "dataset": "eegmmidb",
                                         "subjects": [2, 3]}}
    assert 2 in bundle.eegmmidb_training_subjects
    note = training_data_note("simulated:2", bundle)
    assert note and "trained on simulated subject(s) [2]" in note
    assert "bci-app" not in note and "--" not in note and "PATH" not in note
    assert "calibrate a simulated subject the pretrained model has not seen" in note
    assert training_data_note("simulated:9", bundle) is None
