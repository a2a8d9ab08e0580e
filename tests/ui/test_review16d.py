"""GUI review 16d, each with a test that fails on the code before the fix: settings of another
JSON type (an edited settings file) that stopped the window from opening, connecting or saving;
band-power bars that added up to less than 100 % with a flat channel; a mistyped file name in
the source dialog that stopped the running source (and its recording) before failing."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ui.fakes import SimulatedSource, process_events_for, wait_streaming


def _source_id(**kwargs) -> str:
    probe = SimulatedSource(**kwargs)
    probe.connect(timeout=2.0)
    sid = probe.info.source_id
    probe.disconnect()
    return sid


def test_settings_of_another_json_type_neither_stop_the_window_nor_its_saves(make_window, qtbot):
    """``scope/display`` holding a JSON array made the window's constructor raise (the app did
    not start); a per-stream channel set-up of other types raised in the connected handler
    (the banner said "Connecting…" for ever); ``scope/channels`` holding an array made every
    later save of the channel set-up raise."""
    from ui.settings import AppSettings

    kwargs = dict(n_channels=4, sfreq=250.0, name="Review16d")
    s = AppSettings()
    s.q.setValue("scope/display", "[1, 2]")
    s.q.setValue("source/last", "5")
    s.set_json("scope/channels", {_source_id(**kwargs): {"hidden": 5, "bad": [["EEG001"]],
                                                         "scales": [1, 2], "scale_uv": 50.0}})
    s.sync()
    win = make_window(source=SimulatedSource(**kwargs))
    wait_streaming(qtbot, win)
    process_events_for(0.1)
    assert win.banner.kind == "", win.banner.text
    assert "connecting" not in win.controls.source_label.text()
    assert win.scope.hidden == set() and win.scope.bad == set() and win.scope.scale_uv == 50.0
    assert AppSettings().last_source is None  # (a number is no spec)

    win.settings.q.setValue("scope/channels", "[3]")
    win.scope.set_channel_visible(1, False)  # saves the set-up (raised TypeError)
    assert win.settings.channels(win.scope._info.source_id)["hidden"] == ["EEG002"]


def test_band_power_shares_add_up_to_100_percent_with_a_flat_channel(gui, qtbot):
    """A flat channel (an unused input: the Ganglion file of shared/data has two) counted as
    0 % in every band: with 2 of 4 channels flat the bars added up to 50 %."""
    from ui.spectrum import SpectrumWidget

    src = SimulatedSource(n_channels=4, sfreq=160.0, flat=(1, 2), prefill_s=3.0)
    src.connect(timeout=2.0)
    try:
        w = SpectrumWidget()
        qtbot.addWidget(w)
        w.set_source(src)
        w.show()
        qtbot.waitUntil(lambda: src.buffer.counter >= 320, timeout=3000)
        w.refresh()
        assert w.relative is not None and w.relative.sum() == pytest.approx(100.0)
    finally:
        src.disconnect()


def test_a_missing_file_is_refused_in_the_dialog_and_the_source_keeps_running(make_window, qtbot,
                                                                            tmp_path):
    """A mistyped path in File ▸ Choose source was accepted: the window stopped the running
    source, its recording and decoding, then failed to read the file. The dialog now keeps the
    error (naming the path) and stays open; the source and its recording go on."""
    from PySide6 import QtCore, QtWidgets

    from ui.source_dialog import SourceDialog

    win = make_window(source=SimulatedSource(n_channels=4, sfreq=250.0))
    wait_streaming(qtbot, win)
    src = win.source
    assert win.start_recording(str(tmp_path / "kept.xdf"))
    recorder = win.recorder
    missing = tmp_path / "nope" / "S001R04.edf"
    seen = {}

    def answer() -> None:  # runs inside the dialog's exec()
        dlg = QtWidgets.QApplication.activeModalWidget()
        assert isinstance(dlg, SourceDialog)
        dlg.tabs.setCurrentIndex(3)
        for path in (missing, tmp_path):  # a file that is not there, then a folder
            dlg.file_edit.setText(str(path))
            dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).click()
            seen[path] = (dlg.isVisible(), dlg.error_label.text())
        dlg.reject()

    QtCore.QTimer.singleShot(0, answer)
    win.choose_source()
    visible, error = seen[missing]
    assert visible and "There is no file" in error and str(missing) in error
    visible, error = seen[tmp_path]
    assert visible and "is a folder" in error
    assert win.source is src and src.connected and win.recorder is recorder


def test_replay_again_of_a_file_moved_away_keeps_the_running_replay(make_window, data_dir,
                                                                    tmp_path):
    """"Replay again" and File ▸ Reopen stopped the running replay (its recording and decoding)
    before finding that the file had been moved or deleted meanwhile. The banner now names the
    file and the replay, with its recording, goes on."""
    import shutil

    from tests.ui.fakes import wait_until

    edf = tmp_path / "S008R04.edf"
    shutil.copy(data_dir / "eegmmidb/MNE-eegbci-data/files/eegmmidb/1.0.0/S008/S008R04.edf", edf)
    win = make_window(f"file:{edf}")
    wait_until(lambda: win.source is not None and win.source.connected and not win._connecting, 20)
    src, session = win.source, win.session
    assert win.start_recording(str(tmp_path / "kept.xdf"))
    recorder = win.recorder
    edf.unlink()  # moved away by the user
    win.replay_again(0.0)
    assert win.source is src and win.session is session and win.recorder is recorder
    assert src.connected and "Cannot open" in win.banner.text and str(edf) in win.banner.text
    win.settings.last_source = f"file:{edf}"
    win._reopen_last()
    assert win.source is src and win.recorder is recorder


def test_end_of_a_brainflow_playback_file_while_decoding_and_recording(make_window,
                                                                       gui_bundle_path,
                                                                       tmp_path):
    """BrainFlow's playback board now stops at the end of its file (``finished``), and the
    window's end-of-replay path read ``src.duration``, which that source lacked: the recording
    was never closed and the banner offered Play, which it has no control for."""
    import sys

    from brainflow.board_shim import BoardShim
    from brainflow.data_filter import DataFilter

    from tests.ui.conftest import SYNTH_CHANNELS
    from tests.ui.fakes import decoding_a_replay, process_events_for, wait_until

    n = 250 * 4
    table = np.zeros((BoardShim.get_num_rows(-1), n))
    eeg = BoardShim.get_eeg_channels(-1)
    table[eeg] = np.random.default_rng(1).standard_normal((len(eeg), n)) * 10.0  # µV
    table[BoardShim.get_package_num_channel(-1)] = np.arange(n) % 256
    table[BoardShim.get_timestamp_channel(-1)] = 1.7e9 + np.arange(n) / 250.0
    csv = tmp_path / "pb.csv"
    DataFilter.write_file(table, str(csv), "w")
    errors = []
    hook, sys.excepthook = sys.excepthook, lambda *a: errors.append(a[1])
    try:
        win = make_window(f"brainflow:playback:synthetic:{csv}?channels=" + ",".join(SYNTH_CHANNELS))
        decoding_a_replay(win, gui_bundle_path, record_to=tmp_path / "pb.xdf")
        src = win.source
        wait_until(lambda: src.state.value == "stopped", 20)
        wait_until(lambda: win.recorder is None or errors, 20)
        process_events_for(0.2)
    finally:
        sys.excepthook = hook
    assert not errors, errors
    assert src.duration == pytest.approx(4.0)
    assert win.recorder is None and win.decoder is None  # the recording was saved
    assert (tmp_path / "pb.xdf").stat().st_size > 0
    assert win.banner.kind == "finished" and "Press Replay again" in win.banner.text
    assert "Play (" not in win.banner.text


def test_one_invalid_stored_scope_setting_does_not_drop_the_others(qtbot):
    """``ScopeWidget.restore`` stopped at the first invalid value: a bad ``mode`` (an edited
    settings file) lost the scale, filter and montage stored after it."""
    from ui.scope import ScopeWidget

    scope = ScopeWidget()
    qtbot.addWidget(scope)
    scope.restore({"window_s": 5.0, "mode": "zigzag", "scale_uv": 20.0, "notch": 50,
                   "bandpass": "1–40 Hz"})
    assert scope.window_s == 5.0 and scope.scale_spin.value() == 20.0
    assert scope.notch_combo.currentText() == "notch 50 Hz" and \
        scope.band_combo.currentText() == "band 1–40 Hz"
