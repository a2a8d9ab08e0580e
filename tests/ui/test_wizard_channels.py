"""The calibration wizard refuses, at Connect, a source without the pretrained model's channels
(it connected, the user recorded every cued trial, and training failed on the channels), and
its Pretrained model field takes the bundle the error points to. Real components: BrainFlow's
synthetic board, the shipped bundle, a bundle trained by `bci-app train` (conftest)."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.ui.fakes import process_events_for, wait_until

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED_CSP = ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"


def test_connect_refuses_a_source_without_the_models_channels(gui, qtbot, tmp_path,
                                                               synthetic_pretrained):
    from ui.wizard import CalibrationWizard

    wiz = CalibrationWizard(source_spec="synthetic", pretrained=str(PRETRAINED_CSP),
                            user="channels", trials_per_class=3, finetune_epochs=1,
                            profiles_root=tmp_path / "profiles", record_dir=tmp_path / "rec")
    qtbot.addWidget(wiz)
    wiz.show()
    page, ctrl = wiz.device, wiz.controller
    assert Path(page.pretrained.text()) == PRETRAINED_CSP  # the field shows what it starts from
    page.connect_source()
    wait_until(lambda: page.connect_btn.isEnabled(), 30)
    process_events_for(0.1)
    text = page.status.text()
    assert "cannot be used with the pretrained model" in text, text
    assert "lacks 18 of them" in text and "bci-app train" in text
    assert not page.isComplete() and ctrl.source is None  # no Next into a run that would fail
    assert not [t for t in threading.enumerate() if t.name.startswith("acquisition-")]
    assert page.train_btn.isVisible()

    page.pretrained.setText(str(synthetic_pretrained))
    page.connect_source()
    wait_until(lambda: page.connect_btn.isEnabled(), 30)
    process_events_for(0.1)
    assert page.isComplete(), page.status.text()
    assert ctrl.source.connected and Path(ctrl.pretrained.path) == synthetic_pretrained
    assert "csp_lda" in page.status.text()
    wiz.close()


def test_train_for_these_channels_trains_and_connects(gui, qtbot, tmp_path):
    """The button trains the bundle the error names (here on 3 EEGMMIDB subjects) beside the
    profiles, puts it in the field and connects with it; a second time reuses it."""
    from ui.wizard import CalibrationWizard

    wiz = CalibrationWizard(source_spec="synthetic", pretrained=str(PRETRAINED_CSP),
                            user="channels", profiles_root=tmp_path / "profiles",
                            record_dir=tmp_path / "rec")
    qtbot.addWidget(wiz)
    wiz.show()
    page, ctrl = wiz.device, wiz.controller
    ctrl.pretrain_subjects = "1-3"
    page.connect_source()
    wait_until(lambda: page.connect_btn.isEnabled(), 30)
    process_events_for(0.1)
    assert page.train_btn.isVisible()
    page.train_btn.click()
    assert not page.isComplete() and not page.connect_btn.isEnabled()  # no Next meanwhile
    wait_until(lambda: page.isComplete(), 120)
    trained = Path(page.pretrained.text())
    assert trained.parent == tmp_path / "profiles" / "_pretrained"
    assert Path(ctrl.pretrained.path) == trained and ctrl.pretrained.config["model"] == "csp_lda"
    assert sorted(ctrl.pretrained.channels) == sorted(ctrl.source.info.ch_names)
    assert ctrl.pretrained.config["training"]["subjects"] == [1, 2, 3]
    assert not page.train_btn.isVisible() and ctrl.refused_channels is None
    ctrl.refused_channels = list(ctrl.source.info.ch_names)
    mtime = (trained / "config.json").stat().st_mtime_ns
    assert ctrl.train_pretrained_for_refused() == trained  # the same channels: reused
    assert (trained / "config.json").stat().st_mtime_ns == mtime
    wiz.close()


def test_the_source_dialog_names_an_openbci_boards_channels(gui, qtbot):
    """The OpenBCI tab's Channel names field goes into the spec (and comes back from it); a
    count that does not fit the board is refused in the dialog."""
    import pytest

    from ui.source_dialog import SourceDialog, spec_for

    names = "FC3, C3,CP3,Cz,FC4,C4,CP4,Pz"
    assert spec_for("openbci", board="cyton", port="COM3", channels=names) == \
        "brainflow:cyton:COM3?channels=FC3,C3,CP3,Cz,FC4,C4,CP4,Pz"
    assert spec_for("openbci", board="cyton", port="COM3") == "brainflow:cyton:COM3"
    with pytest.raises(ValueError, match="has 8 EEG channels; 3 names"):
        spec_for("openbci", board="cyton", port="COM3", channels="C3,Cz,C4")
    with pytest.raises(ValueError, match="Channel names: expected distinct.*C3 repeated"):
        spec_for("openbci", board="ganglion", port="COM3", channels="C3,C3,Cz,C4")
    spec = "brainflow:cyton-daisy:/dev/ttyUSB0?channels=" + ",".join(f"E{i}" for i in range(16))
    dlg = SourceDialog(spec, auto_refresh=False)
    qtbot.addWidget(dlg)
    assert dlg.port_combo.currentText() == "/dev/ttyUSB0"
    assert dlg.channels_edit.text() == ",".join(f"E{i}" for i in range(16))
    assert dlg.current_spec() == spec
    dlg.channels_edit.setText("C3,C4")
    dlg.accept()
    assert dlg.spec is None and "16 EEG channels" in dlg.error_label.text()

    lsl = SourceDialog("lsl:obci_eeg1?channels=C3,Cz,C4", auto_refresh=False)
    qtbot.addWidget(lsl)
    assert lsl.lsl_name.text() == "obci_eeg1" and lsl.lsl_channels_edit.text() == "C3,Cz,C4"
    assert lsl.current_spec() == "lsl:obci_eeg1?channels=C3,Cz,C4"
    lsl.lsl_channels_edit.setText("")
    assert lsl.current_spec() == "lsl:obci_eeg1"


def test_the_source_dialog_keeps_channel_names_on_every_tab(gui, qtbot):
    """Re-opening the dialog on "synthetic?channels=..." (the spec the calibration advice uses)
    or "file:...?channels=..." and pressing OK keeps the names: the synthetic and file tabs had
    no Channel names field, so OK silently turned the spec back into plain "synthetic"."""
    import pytest

    from tests.conftest import SYNTHETIC_CHANNELS
    from ui.source_dialog import SourceDialog, spec_for

    spec = "synthetic?channels=" + ",".join(SYNTHETIC_CHANNELS)
    dlg = SourceDialog(spec, auto_refresh=False)
    qtbot.addWidget(dlg)
    assert dlg.tabs.currentIndex() == 0
    dlg.accept()
    assert dlg.spec == spec
    with pytest.raises(ValueError, match="synthetic board has 16 EEG channels; 3 names"):
        spec_for("synthetic", channels="C3,Cz,C4")
    assert spec_for("synthetic") == "synthetic"

    replay = "file:/data/OpenBCI-RAW.txt?channels=C3,Cz,C4,FC3,FC4,CP3,CP4,Pz"
    dlg = SourceDialog(replay, auto_refresh=False)
    qtbot.addWidget(dlg)
    assert dlg.tabs.currentIndex() == 3 and dlg.file_edit.text() == "/data/OpenBCI-RAW.txt"
    dlg.accept()
    assert dlg.spec == replay
    dlg.file_channels_edit.setText("C3,C3")
    dlg.accept()
    assert "C3 repeated" in dlg.error_label.text()


def test_a_board_with_named_channels_is_lent_to_the_wizard(make_window, qtbot,
                                                           synthetic_pretrained):
    """The synthetic board by a spec with channel names ("synthetic?channels=...") is a BrainFlow
    board like "brainflow:...": the window lets go of it for the wizard (only "brainflow:" specs
    were, so the wizard's Connect failed with ANOTHER_BOARD_IS_CREATED) and takes it back."""
    from tests.conftest import SYNTHETIC_CHANNELS
    from tests.ui.fakes import wait_streaming

    spec = "synthetic?channels=" + ",".join(SYNTHETIC_CHANNELS)
    win = make_window(spec, connect_timeout=10.0)  # the wizard's timeout: the same board key
    wait_streaming(qtbot, win)
    win.open_calibration_wizard()
    wiz, ctrl = win.wizard, win.wizard.controller
    assert wiz.device.source.currentText() == spec and win.session is None
    wiz.device.pretrained.setText(str(synthetic_pretrained))
    wiz.device.connect_btn.click()
    wait_until(lambda: wiz.device.connect_btn.isEnabled(), timeout=30)
    assert ctrl.source is not None and ctrl.source.connected, wiz.device.status.text()
    assert ctrl.source.info.ch_names == SYNTHETIC_CHANNELS
    wiz.reject()
    wait_until(lambda: win.source is not None and win.source.state.value == "streaming",
               timeout=30)
    assert win.source_spec == spec
