"""GUI review 13, each with a test that fails on the code before the fix: the channel set-up of
one source applied by index to the next one, a corrupt per-channel scale in the settings, the
replay's seek slider ignoring clicks and keys, the wizard's dead end after an early abort, and
a profile saved over another one without a word."""

from __future__ import annotations

import json
import shutil

from tests.ui.fakes import process_events_for, wait_until

from .conftest import to_cued_recording as _to_cued_recording

EDF = "eegmmidb/MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"


def _connected_to(win, kind: str, timeout: float = 20.0) -> None:
    wait_until(lambda: win.source is not None and win.source.connected
               and win.scope._info is not None and win.scope._info.source_kind == kind
               and win.banner.kind == "", timeout)


# --------------------------------------------------------------------------- 1: channel set-up
def test_the_channel_setup_of_one_source_is_not_applied_to_the_next(make_window, data_dir):
    """Hidden / bad / per-channel scales are kept by channel index: a new source took the
    previous one's (hiding, marking bad and rescaling other electrodes, and leaving them out of
    the spectrum), and saved them as its own."""
    win = make_window("synthetic")
    _connected_to(win, "brainflow")
    names = win.scope._info.ch_names
    win.scope.set_channel_visible(3, False)
    win.scope.set_channel_bad(5, True)
    win.scope.set_channel_scale(2, 500.0)
    assert win.spectrum.hidden == {3, 5}

    win.open_source("file:" + str(data_dir / EDF))
    _connected_to(win, "replay")
    process_events_for(0.2)
    assert win.scope.hidden == set() and win.scope.bad == set() and win.scope.channel_scale == {}
    assert win.spectrum.hidden == set()
    panel = win.channels.table
    assert panel.item(3, 0).checkState().name == "Checked"  # shown in the channel panel too
    file_id = win.scope._info.source_id
    assert win.settings.channels(file_id).get("hidden", []) == []

    win.open_source("synthetic")  # back: the board's own set-up, from the settings
    _connected_to(win, "brainflow")
    assert win.scope.hidden == {3} and win.scope.bad == {5}
    assert win.scope.channel_scale == {2: 500.0} and win.scope._info.ch_names == names


def test_a_corrupt_channel_scale_in_the_settings_does_not_stop_the_connect(make_window):
    """A per-channel scale that is not a number (an edited settings file) raised in the
    connected handler: the banner said "Connecting…" for ever and the scale was never set."""
    from ui.settings import AppSettings

    first = make_window("synthetic")
    _connected_to(first, "brainflow")
    sid = first.scope._info.source_id
    first.close()  # (saves its own set-up of the board)
    settings = AppSettings()
    settings.set_channels(sid, {"hidden": ["C3"], "bad": [],
                                "scales": {"Fz": "lots", "Cz": -4, "C4": 250.0},
                                "scale_uv": 40.0})
    settings.sync()
    win = make_window("synthetic")
    wait_until(lambda: win.source is not None and win.source.connected, 20)
    process_events_for(0.3)
    assert win.banner.kind == "", win.banner.text
    names = win.scope._info.ch_names
    assert win.scope.channel_scale == {names.index("C4"): 250.0}
    assert win.scope.hidden == {names.index("C3")} and win.scope.scale_uv == 40.0


# --------------------------------------------------------------------------- 2: seek slider
def test_clicks_and_keys_on_the_seek_slider_seek_the_replay(make_window, data_dir):
    """Only a drag of the handle seeked: a click on the groove moved the handle 1 % and the
    keys moved it without seeking, and the 4 Hz read-out put it back."""
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    win = make_window("file:" + str(data_dir / EDF))
    _connected_to(win, "replay")
    src, c = win.source, win.controls
    wait_until(lambda: c._duration > 0, 5)
    slider = c.seek_slider
    r = slider.rect()
    QTest.mouseClick(slider, QtCore.Qt.MouseButton.LeftButton,
                     pos=QtCore.QPoint(int(r.width() * 0.75), r.height() // 2))
    wait_until(lambda: src.position > 0.6 * src.duration, 5)
    assert src.position < 0.9 * src.duration
    process_events_for(0.4)  # the read-out follows the replay there
    assert slider.value() > 600

    QTest.keyClick(slider, QtCore.Qt.Key.Key_Home)  # keys seek too
    wait_until(lambda: src.position < 0.1 * src.duration, 5)


# --------------------------------------------------------------------------- 3: wizard
def _aborted_after_one_trial(make_wizard):
    """A wizard whose cued run (3 trials per class) was aborted after its first trial."""
    w = make_wizard(trials_per_class=3)
    c, page = w.controller, w.acquisition
    _to_cued_recording(w)
    page.start_btn.click()
    wait_until(lambda: c.protocol.n_done >= 1, 30)
    page.abort_btn.click()
    wait_until(lambda: bool(page.finished), 20)
    return w, c, page


def test_a_run_aborted_too_early_can_be_recorded_again(make_wizard):
    """Abort after one trial: Next stayed disabled (too few trials), Start too, and Back + Next
    kept the unusable run: the only way on was to change the trial count."""
    w, c, page = _aborted_after_one_trial(make_wizard)
    assert not page.isComplete()
    assert page.start_btn.isEnabled(), "an early abort left no way to record again"
    assert "at least 2 trials of each class" in page.info.text()
    first_file = c.recording_path
    w.back()
    w.next()  # back and forth: still possible to record again
    assert page.start_btn.isEnabled()

    page.start_btn.click()
    assert not page.start_btn.isEnabled() and page.start_btn.text() == "Start"
    wait_until(page.isComplete, 60)
    assert page.finished == "done" and c.counts() == {"left": 3, "right": 3}
    assert first_file.is_file() and c.recording_path != first_file  # the first file is kept


def test_saving_over_an_existing_profile_asks_first(make_wizard):
    """Save on the Results page replaced another calibration's profile of the same user id
    (the default "anonymous" for everyone) without a word, deleting the older backup."""
    from bci_app.profiles import PROFILE_JSON

    w = make_wizard(trials_per_class=3)
    c = w.controller
    _to_cued_recording(w)
    w.acquisition.start_btn.click()
    wait_until(w.acquisition.isComplete, 60)
    w.next()  # training
    wait_until(w.training.isComplete, 120)
    w.next()  # results
    r = w.results
    asked = []
    r.confirm = lambda title, text: asked.append(text) or False
    r.save_btn.click()  # "nav": no profile yet, nobody is asked
    assert asked == [] and r.isComplete()
    mine = c.profile_path
    other = mine.parent / "alice"  # another person's calibration
    shutil.copytree(mine, other)
    meta = json.loads((other / PROFILE_JSON).read_text())
    meta["created"] = "2020-01-01T00:00:00+00:00"
    (other / PROFILE_JSON).write_text(json.dumps(meta))
    r.use_baseline.setChecked(True)
    r.save_btn.click()  # this wizard's own profile again (other decoder): no question
    assert asked == [] and "baseline" in r.saved.text()

    r.user.setText("alice")
    r.save_btn.click()  # the user says no
    assert len(asked) == 1 and "'alice' already exists" in asked[0] and "2020-01-01" in asked[0]
    assert "alice.previous" in asked[0]
    assert json.loads((other / PROFILE_JSON).read_text())["created"].startswith("2020")
    assert not (mine.parent / "alice.previous").exists()
    assert "not saved" in r.saved.text() and "another user name" in r.saved.text()

    r.confirm = lambda title, text: asked.append(text) or True
    r.save_btn.click()  # yes: replaced, the old one kept beside it
    assert len(asked) == 2
    assert not json.loads((other / PROFILE_JSON).read_text())["created"].startswith("2020")
    assert (mine.parent / "alice.previous" / PROFILE_JSON).is_file()
    assert "alice.previous" in r.saved.text()


def test_a_cued_run_longer_than_the_buffer_keeps_its_first_trials(make_wizard):
    """The run was cut from the source's ring buffer at its end: a run longer than the buffer
    (900 s: more than ~55 trials per class, chosen after the buffer was made) lost its first
    trials, which training then dropped without a word (or failed: too few trials). Here the
    buffer holds 20 s and the run lasts about 50 s."""
    w = make_wizard(trials_per_class=3)
    c = w.controller
    c.buffer_seconds = 20.0
    w.device.connect_source()
    wait_until(lambda: w.device.isComplete() and w.device.connect_btn.isEnabled(), 60)
    w.next()  # signal check
    w.next()  # instructions
    w.instructions.record.setChecked(False)  # (the XDF recorder has its own reader)
    w.next()  # cued recording
    assert c.source.buffer.capacity <= 20 * c.source.info.sfreq + 1
    w.acquisition.start_btn.click()
    wait_until(w.acquisition.isComplete, 60)
    data, ts = c.calib_data
    first_cue = c.calib_cues[0][0]
    assert ts[-1] - ts[0] > 40.0 and ts[0] <= first_cue - 2.0  # the whole run, from its start
    assert len(data) == len(ts) and (abs(ts[1:] - ts[:-1]) < 1.0).all()  # no sample missing
    w.next()  # training on every trial
    wait_until(w.training.isComplete, 60)
    assert c.epochs.X.shape[0] == 6 and sum(c.epochs.dropped.values()) == 0


def test_a_run_recorded_again_without_recording_names_no_file(make_wizard):
    """Start again with "record" unchecked: the controller kept the first run's file as this
    run's ``recording_path``, which the page and the profile's provenance then named."""
    w, c, page = _aborted_after_one_trial(make_wizard)
    assert c.recording_path is not None and c.recording_path.is_file()
    w.back()  # the instructions page holds the "record" box
    w.instructions.record.setChecked(False)
    w.next()
    page.start_btn.click()
    wait_until(page.isComplete, 60)
    assert c.recording_path is None
    assert "kept" not in page.info.text()
