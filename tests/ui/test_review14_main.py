"""GUI review 14 (main window), with tests that fail on the code before the fix: at the end
of a file replay the decoder kept running on the finished stream and the prediction panel kept
showing the last decision as if it were live; a recording stayed open; playing the file again
(Play, a seek) came back without decoding."""

from __future__ import annotations

import re

from tests.ui.fakes import decoding_a_replay, process_events_for, wait_until

EDF = "eegmmidb/MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"


def _play_to_the_end(win, seconds_before: float = 2.5) -> None:
    """Jump close to the end of the file and wait until the window took in that it ended."""
    src = win.source
    win._on_seek(src.duration - seconds_before)
    wait_until(lambda: win.source is src and src.finished and win.banner.kind == "finished", 20)
    wait_until(lambda: not win.controls.play_btn.isChecked(), 2)  # the 4 Hz read-out: "Play"


def _seeks(src) -> list[float]:
    """Where the replay was asked to jump (seconds from the start of the file)."""
    return [m.extra["to_s"] for m in src.markers.all() if m.label == "bci_app/seek"]


def _decision_time(panel) -> float:
    m = re.search(r"last decision at t = ([0-9.]+) s", panel.latency_label.text())
    assert m, panel.latency_label.text()
    return float(m.group(1))


# --------------------------------------------------------------------------- 1: the end
def test_the_end_of_a_replay_stops_the_decoder_and_shows_its_last_decision_as_stale(
        make_window, data_dir, gui_bundle_path, tmp_path):
    """The worker waited for samples that never came (its thread ran on), the panel kept the
    last decision in its class colour with the last latency as if it were live, the status bar
    showed decoder latencies, and the recording stayed open, its clock running."""
    import pyxdf

    win = make_window("file:" + str(data_dir / EDF))
    target = tmp_path / "replay_end.xdf"
    decoding_a_replay(win, gui_bundle_path, record_to=target)
    worker, rec, src = win.decoder, win.recorder, win.source
    _play_to_the_end(win)

    wait_until(lambda: win.decoder is None, 10)  # the worker was stopped, not left waiting
    assert worker._thread is None and worker.caught_up  # ... after decoding every sample
    n = worker.n_predictions
    process_events_for(0.5)
    assert worker.n_predictions == n  # no new windows are decoded

    panel = win.prediction
    last = worker.history[-1]
    assert panel.last is last  # the final decision of the file is the one shown
    assert panel.stale and panel.command.text() not in ("", "—")
    assert "#777777" in panel.command.styleSheet()  # greyed, not the class colour
    assert not panel.feedback.active and not any(bar.isEnabled() for bar in panel._bars)
    assert all("#777777" in bar.styleSheet() for bar in panel._bars)
    assert "replay ended" in panel.latency_label.text()
    assert "latency" not in panel.latency_label.text()
    assert "replay ended" in panel.command.toolTip()
    t = _decision_time(panel)
    assert src.duration - 1.0 <= t <= src.duration + 1e-6, (t, src.duration)

    assert win.status.state_label.text().strip() == "finished"
    assert win.status.decoder_label.text() == "decoder: paused (replay ended)"
    assert not win.status_snapshot().decoding
    c = win.controls
    assert c.decode_btn.isChecked() and c.decode_btn.isEnabled()
    assert c.decode_btn.text() == "Decoding paused" and "replay ended" in c.decode_btn.toolTip()
    assert "Decoding resumes" in win.banner.text

    # the recording was finalised, with the decoder's last predictions
    assert win.recorder is None and win.status.record_label.text() == "not recording"
    wait_until(lambda: rec.state.value == "stopped", 15)
    assert str(target) in c.last_saved.text() and not c.record_btn.isEnabled()
    assert "replay ended" in c.record_btn.toolTip()
    streams, _ = pyxdf.load_xdf(str(target))
    preds = [s for s in streams if s["info"]["name"][0] == "predictions"]
    assert len(preds) == 1 and len(preds[0]["time_stamps"]) == worker.n_predictions
    assert abs(preds[0]["time_stamps"][-1] - last.window_end) < 1e-6

    # the scope keeps what it shows: same source, its buffer intact
    assert win.source is src and src.buffer.counter > 0
    assert win.scope.displayed_data() is not None


# --------------------------------------------------------------------------- 2: play again
def test_seeking_or_playing_after_the_end_decodes_again(make_window, data_dir, gui_bundle_path):
    """Seeking back (or Play) after the end reopened the file with decoding off: the user had to
    find out and start it again."""
    win = make_window("file:" + str(data_dir / EDF))
    decoding_a_replay(win, gui_bundle_path)
    _play_to_the_end(win)
    process_events_for(0.3)

    old = win.source
    win.controls.seekRequested.emit(60.0)  # a seek after the end replays from there
    wait_until(lambda: win.source is not old and win.source.connected, 20)
    wait_until(lambda: win.decoder is not None, 30)  # decoding as it was
    assert _seeks(win.source) == [60.0]  # played from there
    wait_until(lambda: win.prediction.n_predictions_since_start > 0, 20)
    panel, c = win.prediction, win.controls
    assert not panel.stale and "replay ended" not in panel.latency_label.text()
    assert all(bar.isEnabled() and "#777777" not in bar.styleSheet() for bar in panel._bars)
    assert panel.command.toolTip() == ""
    assert c.decode_btn.isChecked() and c.decode_btn.text() == "Stop decoding"
    process_events_for(0.3)
    assert win.status.decoder_label.text().startswith("decoder p50")

    _play_to_the_end(win)
    process_events_for(0.3)
    old = win.source
    c.play_btn.click()  # Play after the end: from the start, decoding as it was
    wait_until(lambda: win.source is not old and win.source.connected, 20)
    wait_until(lambda: win.decoder is not None, 30)
    wait_until(lambda: win.prediction.n_predictions_since_start > 0, 20)
    assert _seeks(win.source) == [] and not win.prediction.stale  # from the start


# --------------------------------------------------------------------------- 3: decoding off
def test_decoding_stopped_after_the_end_stays_off(make_window, data_dir, gui_bundle_path):
    """"Decoding paused" is a choice the user can undo: a click stops decoding for good (the
    stale decision goes, the button says why it cannot start now, the next replay does not
    decode)."""
    win = make_window("file:" + str(data_dir / EDF))
    decoding_a_replay(win, gui_bundle_path)
    _play_to_the_end(win)
    c = win.controls
    wait_until(lambda: c.decode_btn.text() == "Decoding paused", 10)
    c.decode_btn.click()  # "Decoding paused": stop decoding
    assert not c.decode_btn.isChecked() and not c.decode_btn.isEnabled()
    assert "replay ended" in c.decode_btn.toolTip() and "Play" in c.decode_btn.toolTip()
    assert win.prediction.command.text() == "—" and not win.prediction.stale
    assert win.status_snapshot().decoder_note == ""
    process_events_for(0.3)
    assert win.status.decoder_label.text() == "decoder: off"

    old = win.source
    c.play_btn.click()
    wait_until(lambda: win.source is not old and win.source.connected and not win._background, 30)
    process_events_for(0.5)
    assert win.decoder is None and win._decoder_pending is None and not c.decode_btn.isChecked()


def test_a_recording_is_saved_when_the_replay_ends_without_decoding(
        make_window, data_dir, gui_bundle_path, tmp_path):
    """With decoding off, the recording stayed open after the end (its clock counting on, the
    file unfinished until Stop), and Record / Decode said "Connect a source first"."""
    win = make_window("file:" + str(data_dir / EDF))
    wait_until(lambda: win.source is not None and win.source.connected and not win._connecting, 20)
    assert win.load_model(str(gui_bundle_path))
    target = tmp_path / "no_decoder.xdf"
    assert win.start_recording(str(target))
    rec, c = win.recorder, win.controls
    _play_to_the_end(win)
    assert win.recorder is None  # at once: no decoder to wait for
    wait_until(lambda: rec.state.value == "stopped", 15)
    assert target.is_file() and str(target) in c.last_saved.text()
    assert not c.record_btn.isEnabled() and "replay ended" in c.record_btn.toolTip()
    assert not c.decode_btn.isEnabled() and "replay ended" in c.decode_btn.toolTip()
    assert "replay ended" not in win.prediction.latency_label.text()  # nothing was decoded
    assert win.status.decoder_label.text() == "decoder: off"


# --------------------------------------------------------------------------- 4: looping replay
def test_a_looping_replay_never_ends_and_keeps_decoding(make_window, data_dir, gui_bundle_path):
    """Guard (passes on the old code too): a looping replay has no end, so nothing of the above
    may happen at its wrap-around (the same worker decodes on, nothing is marked stale, no
    "finished" banner)."""
    from acquisition.replay import ReplaySource

    src = ReplaySource(data_dir / EDF, loop=True)
    win = make_window(source=src)
    decoding_a_replay(win, gui_bundle_path)
    worker = win.decoder
    src.seek(src.duration - 1.0)
    wait_until(lambda: src.loops >= 1, 10)
    n = win.prediction.n_predictions
    wait_until(lambda: win.prediction.n_predictions >= n + 3, 20)  # decisions after the wrap
    assert win.decoder is worker and worker._thread is not None and worker._thread.is_alive()
    assert not src.finished and src.state.value == "streaming" and win.banner.kind == ""
    panel = win.prediction
    assert "replay ended" not in panel.latency_label.text() and panel.command.toolTip() == ""
    assert all(bar.isEnabled() for bar in panel._bars)
    assert win.controls.decode_btn.text() == "Stop decoding"
