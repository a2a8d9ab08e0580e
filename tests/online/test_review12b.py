"""Review 12b of the online decoding path: latency labels, the alignment phase in real-time
mode, restarting a worker, and what the pseudo-online replay and the live CLI report. Real
EEGMMIDB recordings, the shipped pretrained bundles, ReplaySource; each test fails on the code
before its fix."""

from __future__ import annotations

import dataclasses
import time

import mne
import numpy as np
import pytest

from acquisition.files import read_file
from acquisition.replay import ReplaySource
from decoders.online import DecoderWorker
from decoders.smoothing import DwellCommander

from .conftest import CSP_EA
from .conftest import cut as _cut


def _source(rec, chunk):
    src = ReplaySource(rec, speed="max", chunk_samples=chunk, buffer_seconds=300)
    src.connect(timeout=5, acquisition=False)
    return src


def test_latency_counts_from_the_windows_own_last_sample(s003_run4, ts_bundle):
    """A worker that fell behind reads several source writes at once. The latency of the
    window it decodes runs from the write of that window's last sample, not from the read's
    last one: the old code took the latter, and showed ~0 ms for a window whose last sample
    had waited 0.3 s (the lag it should reveal)."""
    src = _source(_cut(s003_run4, 2000), chunk=8)
    worker = DecoderWorker(src, ts_bundle, hop=0.1, smoothing=None, kalman=False)
    n = ts_bundle.n_times  # 320 samples at 160 Hz; hop 16 samples
    while src.n_samples < n:
        src.acquire()
    assert [p.seq for p in worker.step(catch_up=False)] == [n]
    while src.n_samples < n + 16:  # the next boundary's last sample ...
        src.acquire()
    t_written = time.monotonic()
    while time.monotonic() - t_written < 0.3:  # ... waits 0.3 s before the worker reads it
        time.sleep(0.05)
    src.acquire()  # one more write (8 samples, no boundary) before the worker wakes
    (pred,) = worker.step(catch_up=False)
    src.disconnect()
    assert pred.seq == n + 16
    assert pred.latency["window_ready"] >= 0.3
    assert pred.latency["total"] >= pred.latency["window_ready"]


def _step_all(src, worker, catch_up):
    preds = []
    while not src.finished:
        src.acquire()
        preds.extend(worker.step(catch_up=catch_up))
    return preds


@pytest.mark.parametrize("chunk", [48, 80])
def test_real_time_mode_fits_the_alignment_on_the_same_windows_as_catch_up(
        s003_run4, csp_ea, chunk):
    """A source writing 0.3 / 0.5 s chunks (3 / 5 hops) to a real-time worker of a bundle that
    needs the user's Euclidean alignment: the alignment is fitted at the same boundary, on the
    same windows, as in catch-up mode (and offline), and skipped windows count only decoding.
    The old code took alignment windows from the newest boundary of each read only: with 0.3 s
    chunks one every 1.5 s, so the 10 s alignment took 30 s of signal and used other windows."""
    rec = _cut(s003_run4, 160 * 40)
    src = _source(rec, chunk)
    ref = DecoderWorker(src, csp_ea, hop=0.1, smoothing=None, kalman=False)
    ref_preds = _step_all(src, ref, catch_up=True)
    src.disconnect()
    src = _source(rec, chunk)
    worker = DecoderWorker(src, csp_ea, hop=0.1, smoothing=None, kalman=False)
    preds = _step_all(src, worker, catch_up=False)
    src.disconnect()
    assert not worker.aligning
    np.testing.assert_allclose(worker.bundle.alignment.matrix_, ref.bundle.alignment.matrix_,
                               rtol=1e-10)
    # the first real-time prediction is the newest boundary of the read that completed the fit
    assert preds[0].seq - ref_preds[0].seq < chunk
    by_seq = {p.seq: p for p in ref_preds}
    for p in preds:
        np.testing.assert_allclose(p.probabilities, by_seq[p.seq].probabilities, atol=1e-9)
    decodable = len([p for p in ref_preds if p.seq <= src.n_samples])
    assert worker.skipped == decodable - len(preds)


def _restart_then_compare(rec, bundle, kwargs):
    """Decode 15 s, stop() and start() the worker (no data meanwhile: manual acquisition),
    then decode the rest beside a worker built at that point; both lists of predictions."""
    src = _source(rec, chunk=16)
    worker = DecoderWorker(src, bundle, hop=0.1, **kwargs())
    while src.n_samples < 160 * 15:
        src.acquire()
        worker.step(catch_up=True)
    worker.start()
    worker.stop()
    fresh = DecoderWorker(src, bundle, hop=0.1, **kwargs())
    after, ref = [], []
    while not src.finished:
        src.acquire()
        after.extend(worker.step(catch_up=True))
        ref.extend(fresh.step(catch_up=True))
    src.disconnect()
    assert len(after) == len(ref) > 100
    return worker, after, ref


def test_a_restarted_worker_cuts_its_windows_from_the_signal_after_the_restart(
        s003_run4, ts_bundle):
    """After stop() and start(), every window is cut from the signal that arrived after the
    restart and carries its time, as a new worker's. The old worker counted output samples
    from 0 again but kept its filtered ring buffer: it decoded the oldest 2 s the buffer still
    held (filtered before the restart, 3.6 s stale) and stamped them with their old times."""
    rec = _cut(s003_run4, 160 * 40)
    _, after, ref = _restart_then_compare(
        rec, ts_bundle, lambda: {"smoothing": None, "kalman": False})
    for a, b in zip(after, ref):
        assert a.seq == b.seq and a.window_end == b.window_end
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-12)


def test_a_restarted_worker_carries_no_smoothing_control_or_dwell_over_the_stop(
        s003_run4, ts_bundle):
    """stop() then start(): the EMA, the Kalman control and the dwell start again, as in a new
    worker. The old worker kept them: a dwell begun before the stop counted the stopped time,
    and smoothing and control blended windows from before it."""
    rec = _cut(s003_run4, 160 * 40)

    def kwargs():
        return {"smoothing": 0.5, "commander": DwellCommander(
            ts_bundle.classes, threshold=0.55, dwell=1.0, refractory=0.5)}

    worker, after, ref = _restart_then_compare(rec, ts_bundle, kwargs)
    for a, b in zip(after, ref):
        assert a.seq == b.seq
        np.testing.assert_allclose(a.smoothed, b.smoothed, atol=1e-12)
        assert a.control == pytest.approx(b.control, abs=1e-12)
        assert a.command == b.command


def test_a_trial_whose_windows_are_all_unreliable_is_not_scored_by_a_window_after_it(
        s003_run4, ts_bundle):
    """A 50 ms hole in the signal 2.4 s after a cue makes every window that ends inside the
    trial's imagery period [cue+0.5, cue+4] (with 2 s windows: ending in [cue+2.5, cue+4])
    unreliable. That trial is not scored, and the report says how many cued trials were not.
    The old scoring fell back to the nearest reliable window, ending 0.8 s after the period
    (rest EEG), and counted the trial as if the period had been decoded."""
    from decoders.pseudo_online import parse_cue_map, score_trials, trials_from_markers

    cue_map = parse_cue_map(None, ts_bundle.classes)
    cued = trials_from_markers(s003_run4.markers, cue_map, ts_bundle.classes)
    assert len(cued) == 15
    onset = cued[6].onset
    row = int(np.searchsorted(s003_run4.times, onset + 2.4))
    times = s003_run4.times.copy()
    times[row:] += 0.05
    markers = [dataclasses.replace(m, timestamp=m.timestamp + (0.05 if m.timestamp >= times[row]
                                                                else 0.0))
               for m in s003_run4.markers]
    rec = dataclasses.replace(s003_run4, times=times, markers=markers)
    src = _source(rec, chunk=32)
    worker = DecoderWorker(src, ts_bundle, hop=0.1, smoothing=None, kalman=False)
    preds = _step_all(src, worker, catch_up=True)
    trials = trials_from_markers(src.markers.all(), cue_map, ts_bundle.classes)
    src.disconnect()
    assert len(src.gaps) == 1 and len(trials) == 15
    ends = np.array([p.window_end for p in preds])
    reliable = np.array([p.reliable for p in preds])
    t0 = trials[6].onset
    inside = (ends >= t0 + 2.5) & (ends <= t0 + 4.0)
    assert inside.sum() >= 10 and not reliable[inside].any()
    assert reliable[(ends > t0 + 4.0) & (ends < t0 + 5.0)].any()  # what the old code took
    report = score_trials(ends, np.stack([p.probabilities for p in preds]), trials,
                          window_s=ts_bundle.window_s, reliable=reliable)
    assert report.n_trials == 14 and report.n_cued == 15
    assert report.to_dict()["n_cued"] == 15
    assert report.text().startswith("trials: 14 of 15 cued (1 without a reliable window")
    # the other trials are decided as before: on their own reliable windows
    others = [tr for k, tr in enumerate(trials) if k != 6]
    ref = score_trials(ends, np.stack([p.probabilities for p in preds]), others,
                       window_s=ts_bundle.window_s, reliable=reliable)
    np.testing.assert_array_equal(report.correct, ref.correct)


def _cli(*args, timeout=180):
    import os
    import subprocess
    import sys

    from tests.helpers.processes import ROOT

    return subprocess.run([sys.executable, "-m", "bci_app.cli", *args], cwd=ROOT,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=timeout)


def test_replay_of_a_profile_does_not_claim_it_aligned_on_the_first_windows(
        tmp_path, eegmmidb_path, csp_ea):
    """A user profile carries the user's alignment: ``bci-app replay --json`` decodes every
    window and says ``aligned_on_first_windows: false`` (the old summary said true for any
    bundle that uses alignment). The pretrained bundle itself still aligns on the file."""
    import json
    import shutil

    from bci_app.profiles import ALIGNMENT_NAME, PROFILE_FORMAT, PROFILE_JSON, _save_alignment
    from decoders.online import offline_window_predictions

    path = mne.datasets.eegbci.load_data(7, [4], path=str(eegmmidb_path), update_path=False)[0]
    rec = read_file(path)
    # the user's alignment, as calibration fits it: on their own preprocessed windows
    filt = csp_ea.streaming_filter(rec.info.sfreq, list(rec.info.ch_names))
    out = filt.process(rec.data[:160 * 30])
    n = csp_ea.n_times
    windows = np.stack([out[e - n:e].T for e in range(n, len(out) + 1, 40)])
    aligned = dataclasses.replace(csp_ea).fit_alignment(windows)
    profile = tmp_path / "user7"
    shutil.copytree(CSP_EA, profile / "bundle")
    _save_alignment(aligned.alignment, profile / ALIGNMENT_NAME)
    (profile / PROFILE_JSON).write_text(json.dumps({"format_version": PROFILE_FORMAT,
                                                    "chosen": "adapted"}))
    r = _cli("replay", str(path), "--model", str(profile), "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    ends, _ = offline_window_predictions(rec.data, rec.info.sfreq, list(rec.info.ch_names),
                                         aligned)
    assert got["predictions"] == len(ends)  # no window spent on an alignment
    assert got["aligned_on_first_windows"] is False
    r = _cli("replay", str(path), "--model", str(CSP_EA), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["aligned_on_first_windows"] is True


@pytest.mark.parametrize("speed", ["fast", "0", "-2", "nan"])
def test_replay_speed_that_is_not_a_number_is_a_clear_error(eegmmidb_path, capsys, speed):
    """``--speed fast``: a one-line error naming the option and what it takes, exit status 2
    (the old code ended in a ValueError traceback). It is named before the model and the file
    are loaded (a missing model is not what the user hears about)."""
    from bci_app.cli import main

    path = mne.datasets.eegbci.load_data(7, [4], path=str(eegmmidb_path), update_path=False)[0]
    for model in (str(CSP_EA), "/nonexistent/model"):
        assert main(["replay", str(path), "--model", model, "--speed", speed]) == 2
        err = capsys.readouterr().err
        assert "--speed expects a number > 0" in err and "'max'" in err and repr(speed) in err


def test_session_elapsed_stops_with_the_session(s003_run4):
    """The live CLI's summary divides the samples by ``status().elapsed`` after stop(): it is
    the time the session streamed, and it no longer grows (the old one kept counting, so the
    stop's own time and anything after it lowered the reported mean rate)."""
    from bci_app.session import Session

    session = Session(ReplaySource(_cut(s003_run4, 160 * 10), speed=1.0))
    session.start(timeout=5)
    deadline = time.monotonic() + 10
    while session.source.n_samples < 160 and time.monotonic() < deadline:
        time.sleep(0.02)
    session.stop()
    first = session.status()
    t_read = time.monotonic()
    while time.monotonic() - t_read < 0.3:
        time.sleep(0.05)
    again = session.status()
    assert first.samples >= 160
    assert again.elapsed == first.elapsed
    assert first.samples / first.elapsed == pytest.approx(160.0, rel=0.25)


@pytest.mark.parametrize("hop", ["0", "-0.1", "inf"])
def test_replay_hop_nan_is_a_clear_error(eegmmidb_path, capsys, hop):
    """``--hop nan`` passed the ``hop <= 0`` check and ended in a traceback from int(nan) (NaN
    is now refused by argparse for every number option: tests/test_cli_errors.py). A hop that
    is not a finite number > 0 is named before the model and the file are loaded."""
    from bci_app.cli import main

    path = mne.datasets.eegbci.load_data(7, [4], path=str(eegmmidb_path), update_path=False)[0]
    for model in (str(CSP_EA), "/nonexistent/model"):
        assert main(["replay", str(path), "--model", model, "--hop", hop]) == 2
        err = capsys.readouterr().err
        assert f"hop must be a finite number of seconds > 0, got {float(hop)}" in err


def test_a_real_time_replay_predicts_up_to_the_end_of_the_file(eegmmidb_path, ts_bundle):
    """``replay --speed 40``: the worker runs on its own thread; the command now waits until it
    has consumed every sample before stopping it (a fixed 0.2 s wait could cut the last
    predictions when the worker was slower). Covers the real-time path; the race itself is not
    forced here."""
    from bci_app.commands.replay import replay_file

    path = mne.datasets.eegbci.load_data(3, [4], path=str(eegmmidb_path), update_path=False)[0]
    src, worker, preds, _ = replay_file(path, ts_bundle, speed=40)
    assert worker.caught_up and len(preds) > 100
    end = float(src.buffer.since(src.buffer.counter - 1).timestamps[-1])
    assert end - preds[-1].window_end < 0.5  # the last windows of the file were decoded


def test_the_status_line_shows_unreliable_windows_and_decoder_errors(s003_run4, ts_bundle):
    """The headless ``live`` status line showed only the last label: a session whose windows
    were all unreliable (electrodes off) or whose model failed on every window looked fine."""
    from bci_app.session import DecoderComponent, Session

    rec = _cut(s003_run4, 160 * 8)
    flat = rec.data.copy()
    flat[:, :] = 1e-6  # every channel flat: electrodes off
    session = Session(ReplaySource(dataclasses.replace(rec, data=flat), speed=8.0))
    comp = DecoderComponent(session, ts_bundle, hop=0.1, smoothing=None, kalman=False)
    session.components.append(comp)
    session.add_status_hook(comp.status)  # as ``bci-app live --headless`` does
    session.start(timeout=5)
    try:
        deadline = time.monotonic() + 15
        while comp.worker.unreliable < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        st = comp.status()
        assert st["unreliable"] >= 5 and "errors" not in st
        assert "  unreliable " in session.status().line()
        comp.worker.errors, comp.worker.last_error = 3, "RuntimeError: model failed"
        assert comp.status()["errors"] == "3 (last: RuntimeError: model failed)"
    finally:
        session.stop()
