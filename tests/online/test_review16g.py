"""Review 16 (g) of the online layer: session stop order, LSL marker inlets that lose their
stream, ``bci-app stream`` at high speed. Each test failed on the code before its fix; real
parts only (LSL outlets on loopback, ReplaySource on EEGMMIDB, the recorder's XDF files)."""

from __future__ import annotations

import pyxdf

from acquisition.lsl_env import import_pylsl
from acquisition.lsl_outlet import MarkerOutlet
from acquisition.lsl_source import LSLMarkerInlet
from acquisition.markers import MarkerLog
from acquisition.replay import ReplaySource
from bci_app.commands.live import _InletComponent
from bci_app.recording import attach_recorder
from bci_app.session import Session
from tests.helpers.processes import wait_until

from .conftest import cut


def test_a_marker_the_inlet_pulls_as_the_session_stops_is_recorded(s003_run4, stream_name,
                                                                     tmp_path):
    """``live``/``record --markers``: the recorder was stopped before the marker inlet, whose
    last pull (the markers that reached it since its previous poll, e.g. the stimulus
    program's final marker) then went to the marker log after the file was closed: in the
    log, not in the recording (10 of 10 sessions stopped right after such a marker)."""
    out = MarkerOutlet(stream_name)
    src = ReplaySource(cut(s003_run4, 1600), speed=1.0)
    session = Session(src)
    # a long poll: the marker is only pulled by the inlet's last pull, at its stop
    inlet = LSLMarkerInlet(src.markers, stream_name, poll_interval=30.0)
    session.add_component(_InletComponent(inlet, 5.0))
    rec = attach_recorder(session, tmp_path / "s.xdf")
    session.start(timeout=5)
    try:
        assert out.wait_for_consumers(5)
        out.push("experiment_end")
        wait_until(lambda: inlet._inlet.samples_available() > 0, 5, what="marker at the inlet")
    finally:
        session.stop()
        out.close()
    assert "experiment_end" in [m.label for m in src.markers.all()]
    streams, _ = pyxdf.load_xdf(str(rec.path))
    labels = [str(x[0]) for s in streams if s["info"]["type"][0] == "Markers"
              for x in s["time_series"]]
    assert "experiment_end" in labels


def test_a_marker_stream_lost_and_restarted_without_source_id_is_read_again(stream_name,
                                                                            caplog):
    """A marker sender without a source id (pylsl's default) that quits: liblsl cannot recover
    such a stream, so every poll raised LostError and the inlet logged a traceback 100 times a
    second (831 in 8 s) and never read the restarted sender's markers; one with another source
    id was never picked up either, silently. Now the loss is said once and the stream is looked
    for again by its name."""
    import logging
    import time

    pylsl = import_pylsl()

    def outlet(source_id):
        return pylsl.StreamOutlet(pylsl.StreamInfo(stream_name, "Markers", 1, 0,
                                                   pylsl.cf_string, source_id))

    log = MarkerLog()
    first = outlet("")
    inlet = LSLMarkerInlet(log, stream_name, reconnect_interval=0.1).connect(5)
    try:
        first.push_sample(["a"])
        wait_until(lambda: len(log) == 1, 5, what="the first marker")
        del first
        time.sleep(0.2)  # the sender is gone for a moment before it restarts
        second = outlet("another-id")

        def received_b() -> bool:
            second.push_sample(["b"])
            return "b" in [m.label for m in log.all()]

        wait_until(received_b, 6, interval=0.1, what="a marker of the restarted sender")
    finally:
        inlet.disconnect()
    assert [m.label for m in log.all()][0] == "a"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert inlet.losses == 1


def test_stream_at_a_high_speed_publishes_every_sample(eegmmidb_path, stream_name, capsys):
    """``bci-app stream FILE --speed N``: one acquire() delivers everything due, and the loop
    read it from a 10 s buffer, so a pause of 10 / N s lost samples without a word; at 100000x
    (as fast as it goes, but paced) 3200 of the file's 20000 samples were published."""
    import mne

    from bci_app.cli import main

    path = mne.datasets.eegbci.load_data(3, [4], path=str(eegmmidb_path), update_path=False)[0]
    assert main(["stream", str(path), "--speed", "100000", "--name", stream_name]) == 0
    done = [line for line in capsys.readouterr().out.splitlines() if line.startswith("DONE")]
    assert done == ["DONE 20000 30"]


def test_a_paced_replay_decodes_from_the_files_first_sample(s003_run4, ts_bundle):
    """``bci-app replay FILE --speed N``: the source's acquisition thread started at connect,
    before the worker was built (warm-up, inference engine choice: about 2 s for EEGNet), and
    the worker decodes what arrives after its start, so the start of the file was never seen
    (at 20x the first prediction came at 51 s of the file instead of 12 s; trials there went
    unscored). Every hop boundary of the file is now decoded or counted skipped."""
    from bci_app.commands.replay import replay_file

    rec = cut(s003_run4, 160 * 12)
    src, worker, preds, _ = replay_file(rec, ts_bundle, speed=100, hop=0.1, smoothing=None)
    boundaries = (rec.n_samples - ts_bundle.n_times) // 16 + 1  # 160 Hz, hop 16 samples
    assert worker.n_predictions + worker.skipped == boundaries
    assert preds[-1].seq == rec.n_samples
