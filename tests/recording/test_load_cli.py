"""load_recording on gaps, torn files and the real XDF files; the record / export / repair CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pyxdf

from acquisition.recorder import Recorder
from acquisition.xdf_writer import scan_xdf
from bci_app.cli import main
from bci_app.errors import DataFileError
from bci_app.recording import load_recording, read_session_meta

from .conftest import wait_for
from .procs import Proc


@pytest.fixture(scope="module")
def gap_file(tmp_path_factory):
    from .fakes import FakeSource

    path = tmp_path_factory.mktemp("gap") / "gap.xdf"
    src = FakeSource(buffer_seconds=30.0).connect(timeout=2.0)
    try:
        with Recorder(path, session_meta={"subject": "g1"}, poll_interval=0.05) as rec:
            rec.add_source(src)
            wait_for(lambda: src.buffer.counter > 60, 2, "samples")
            src.markers.add(src.buffer.latest(1).timestamps[0], "cue", 1.0)
            src.drop(250)  # 1 s never arrives
            wait_for(lambda: len(src.gaps) == 1 and src.buffer.counter > 400, 4, "gap + data")
    finally:
        src.disconnect()
    return path, src


def test_gap_filled_and_annotated(gap_file):
    path, src = gap_file
    raw = load_recording(path)
    counter = raw.get_data(picks=["counter"])[0]
    c0 = counter[0]
    ann = {
        d: (o, du)
        for o, du, d in zip(
            raw.annotations.onset, raw.annotations.duration, raw.annotations.description
        )
    }
    o_gap, d_gap = ann["BAD_gap"]
    o_skip, d_skip = ann["BAD_ACQ_SKIP"]
    assert d_gap == pytest.approx(1.0) and d_skip == pytest.approx(1.0)
    assert o_gap == pytest.approx(o_skip, abs=1e-6)
    filled = slice(int(round(o_skip * 250)), int(round((o_skip + d_skip) * 250)))
    assert np.all(counter[filled] == 0)
    rest = np.ones(counter.size, bool)
    rest[filled] = False
    # every real sample sits at its true time: sample index == counter - first counter
    assert np.array_equal(counter[rest], np.flatnonzero(rest) + c0)
    assert "cue" in ann and ann["cue"][1] == pytest.approx(1.0)
    assert raw.get_channel_types()[:2] == ["misc", "eeg"]


def test_gap_not_filled_gives_boundaries(gap_file):
    path, src = gap_file
    raw = load_recording(path, fill_gaps=False)
    desc = list(raw.annotations.description)
    assert "BAD boundary" in desc and "EDGE boundary" in desc and "BAD_ACQ_SKIP" not in desc
    streams, _ = pyxdf.load_xdf(str(path))
    assert (
        raw.n_times
        == next(s for s in streams if s["info"]["name"][0] == "fake-eeg")["time_stamps"].size
    )
    assert read_session_meta(path)["subject"] == "g1"


def test_torn_file_needs_repair_then_loads(gap_file, tmp_path, capsys):
    path, _ = gap_file
    torn = tmp_path / "torn.xdf"
    raw = path.read_bytes()
    cut = len(raw) // 2
    torn.write_bytes(raw[:cut])
    if scan_xdf(torn).torn_bytes == 0:  # the half fell on a chunk boundary (~0.1 % of runs)
        torn.write_bytes(raw[:cut - 1])
    with pytest.raises(DataFileError, match="bci-app repair"):
        load_recording(torn)
    assert main(["repair", str(torn), "--check"]) == 1
    assert main(["repair", str(torn)]) == 0
    assert "repaired" in capsys.readouterr().out
    assert load_recording(torn).n_times > 0
    assert main(["repair", str(torn)]) == 0
    assert "nothing to repair" in capsys.readouterr().out


def test_cli_export(gap_file, tmp_path, capsys):
    import mne

    path, _ = gap_file
    assert main(["export", str(path), "--to", "fif", "--out", str(tmp_path)]) == 0
    out = tmp_path / "gap_raw.fif"
    assert str(out) in capsys.readouterr().out
    back = mne.io.read_raw_fif(out, verbose="error")
    assert "BAD_gap" in back.annotations.description
    assert main(["export", str(path), "--to", "fif", "--out", str(tmp_path)]) == 2  # exists


def test_export_of_a_non_xdf_file_says_what_it_is_not_repair(data_dir, gap_file, tmp_path,
                                                              capsys):
    """A BDF handed to `export` used to get pyxdf's "Invalid XDF file" plus advice to run
    `repair`, which only mends XDF files. It must say the file is not XDF and how to open it."""
    bdf = data_dir / "mne-io-test-files" / "bdf" / "test.bdf"
    assert main(["export", str(bdf), "--to", "fif", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not an XDF recording" in err and "mne.io.read_raw" in err and "BDF" in err
    assert "repair" not in err
    junk = tmp_path / "notes.dat"
    junk.write_bytes(b"hello, not EEG")
    with pytest.raises(DataFileError, match="not an XDF recording") as info:
        load_recording(junk)
    assert "repair" not in str(info.value) and "LabRecorder" in str(info.value)
    # a real XDF under another name and a gzip-compressed one (.xdfz) still load
    import gzip

    path, _ = gap_file
    other = tmp_path / "session.dat"
    other.write_bytes(path.read_bytes())
    packed = tmp_path / "session.xdfz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    n = load_recording(path).n_times
    assert load_recording(other).n_times == n == load_recording(packed).n_times
    assert not list(tmp_path.glob("*.fif"))


def test_cli_record_synthetic(tmp_path):
    out = tmp_path / "rec.xdf"
    p = Proc(
        [
            "-m",
            "bci_app.cli",
            "record",
            "--source",
            "synthetic",
            "--duration",
            "2",
            "--out",
            str(out),
            "--subject",
            "P07",
        ]
    )
    try:
        p.wait_line("recording", timeout=30)
        assert p.finish(timeout=20) == 0, p.output()
    finally:
        p.kill()
    assert "recorded" in p.output()
    raw = load_recording(out)
    assert raw.n_times >= 1.5 * 250
    meta = read_session_meta(out)
    assert meta["subject"] == "P07" and meta["settings"]["source"] == "synthetic"


def _real_files(data_dir):
    return sorted(
        p
        for sub in ("xdf-example-files", "bci4als-openbci-mi-xdf", "bci_essentials_xdf")
        for p in (data_dir / sub).glob("*.xdf")
    )


def test_real_xdf_files_load_with_markers(data_dir):
    files = _real_files(data_dir)
    assert len(files) == 11
    for f in files:
        raw = load_recording(f)
        streams, _ = pyxdf.load_xdf(str(f))
        sig = max(
            (s for s in streams if s["info"]["channel_format"][0] != "string"),
            key=lambda s: len(s["time_stamps"]),
        )
        t0, t1 = sig["time_stamps"][0], sig["time_stamps"][-1] + 1 / raw.info["sfreq"]
        n_markers = sum(
            int(
                np.sum(
                    (s["time_stamps"] >= t0 - 0.5 / raw.info["sfreq"]) & (s["time_stamps"] <= t1)
                )
            )
            for s in streams
            if s["info"]["channel_format"][0] == "string"
        )
        labels = [d for d in raw.annotations.description if not d.endswith(" boundary")]
        if f.name.startswith("Sub2"):  # OpenBCI via LSL: 182 markers, EEG 125 Hz
            assert raw.info["sfreq"] == 125 and len(labels) == n_markers == 182
            assert sorted(set(labels))[:3] == [
                "1.000000000000000",
                "111.0000000000000",
                "1111.000000000000",
            ]
        elif f.name.startswith("sub-P001"):  # g.USBamp
            assert raw.info["sfreq"] == 256 and raw.ch_names[:3] == ["F3", "Fz", "F4"]
            assert len(labels) == n_markers
        elif f.name == "clock_resets.xdf":
            assert raw.n_times == 27815 and labels.count("Test-1-2-3") == 39
        elif f.name == "empty_streams.xdf":
            assert raw.n_times == 10 and labels == ['{"state": 2}']
        else:
            assert len(labels) >= 1
        assert np.all(np.isfinite(raw.get_data()))


def test_prediction_recorder(tmp_path):
    from types import SimpleNamespace

    from bci_app.recording import prediction_recorder

    from .fakes import FakeSource

    src = FakeSource().connect(timeout=2.0)
    path = tmp_path / "pred.xdf"
    try:
        rec = Recorder(path, poll_interval=0.05)
        rec.add_source(src)
        on_pred = prediction_recorder(rec, ["left", "right"])
        rec.start()
        wait_for(lambda: src.buffer.counter > 100, 3, "samples")
        t = src.buffer.latest(1).timestamps[0]
        on_pred(
            SimpleNamespace(
                window_end=t,
                probabilities=np.array([0.3, 0.7]),
                label="right",
                seq=100,
                latency={"total": 0.012},
                smoothed=None,
                control=0.4,
                command="go",
                reliable=True,
                reason="",
                text=None,
            )
        )
        on_pred(
            SimpleNamespace(
                window_end=t + 0.1,
                probabilities=np.array([0.5, 0.5]),
                label="unreliable",
                seq=125,
                latency={},
                smoothed=np.ones(2) / 2,
                control=None,
                command=None,
                reliable=False,
                reason="gap",
                text=None,
            )
        )
        wait_for(lambda: src.buffer.counter > 200, 3, "more samples")
    finally:
        src.disconnect()
        rec.stop()
    streams, _ = pyxdf.load_xdf(str(path))
    by = {s["info"]["name"][0]: s for s in streams}
    p, lab = by["predictions"], by["predictions-labels"]
    assert p["time_stamps"].tolist() == [t, t + 0.1]
    np.testing.assert_allclose(p["time_series"][0], [0.3, 0.7, np.nan, np.nan, 0.4], rtol=1e-6)
    np.testing.assert_allclose(p["time_series"][1], [0.5, 0.5, 0.5, 0.5, np.nan])
    assert [r[:3] for r in lab["time_series"]] == [["right", "go", "1"], ["unreliable", "", "0"]]
    assert json.loads(lab["time_series"][0][3])["latency"] == {"total": 0.012}
    raw = load_recording(path)
    assert "right" not in raw.annotations.description  # predictions are not markers


def test_cli_record_replay_keeps_every_sample_and_marker(tmp_path, eegmmidb_path):
    import mne

    edf = eegmmidb_path / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"
    out = tmp_path / "replay.xdf"
    assert (
        main(
            [
                "record",
                "--source",
                f"file:{edf}",
                "--speed",
                "100",
                "--out",
                str(out),
                "--quiet",
                "--subject",
                "S001",
            ]
        )
        == 0
    )
    raw = load_recording(out)
    orig = mne.io.read_raw_edf(edf, preload=True, verbose="error")
    assert raw.n_times == orig.n_times
    np.testing.assert_allclose(raw.get_data(), orig.get_data(), rtol=0, atol=1e-12)
    assert list(raw.annotations.description) == list(orig.annotations.description)
    np.testing.assert_allclose(raw.annotations.onset, orig.annotations.onset, atol=1e-6)
    np.testing.assert_allclose(raw.annotations.duration, orig.annotations.duration, atol=1e-6)


def test_a_marker_inside_an_unfilled_gap_is_named_and_max_fill_keeps_it(tmp_path, caplog):
    """A cue that falls inside a gap longer than max_fill was left out of the export with an
    INFO line calling it "outside the signal's time span"; the warning now names it and the
    fix, and `export --max-fill` fills the gap so the cue keeps its time."""
    import logging

    import mne

    from .fakes import FakeSource

    path = tmp_path / "cue_in_gap.xdf"
    src = FakeSource(buffer_seconds=30.0).connect(timeout=2.0)
    try:
        with Recorder(path, session_meta={"subject": "g2"}, poll_interval=0.05) as rec:
            rec.add_source(src)
            wait_for(lambda: src.buffer.counter > 60, 2, "samples")
            t_cue = float(src.buffer.latest(1).timestamps[0]) + 0.6
            src.drop(500)  # 2 s never arrive; the cue is sent during them
            src.markers.add(t_cue, "cue/left", 1.0)
            wait_for(lambda: len(src.gaps) == 1 and src.buffer.counter > 800, 6, "gap + data")
    finally:
        src.disconnect()
    gap = src.gaps[0]
    assert gap.start < t_cue < gap.start + gap.duration

    with caplog.at_level(logging.WARNING, logger="bci_app.recording"):
        raw = load_recording(path, max_fill=1.0)
    assert "cue/left" not in raw.annotations.description
    assert "BAD boundary" in raw.annotations.description
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("1 marker(s) fall inside gaps" in m and "'cue/left'" in m
               and "--max-fill 3" in m for m in msgs), msgs
    assert not any("BAD_gap'" in m for m in msgs)  # the boundary marks the gap itself

    full = load_recording(path)  # default max_fill 60 s: filled, the cue at its time
    i = list(full.annotations.description).index("cue/left")
    ts_first = next(s for s in pyxdf.load_xdf(str(path))[0]
                    if s["info"]["name"][0] == "fake-eeg")["time_stamps"][0]
    assert full.annotations.onset[i] == pytest.approx(t_cue - ts_first, abs=1 / 250)

    out = tmp_path / "out"
    assert main(["export", str(path), "--to", "fif", "--out", str(out), "--max-fill", "1"]) == 0
    cut = mne.io.read_raw_fif(out / "cue_in_gap_raw.fif", verbose="error")
    assert "cue/left" not in cut.annotations.description
    assert main(["export", str(path), "--to", "fif", "--out", str(out), "--overwrite"]) == 0
    kept = mne.io.read_raw_fif(out / "cue_in_gap_raw.fif", verbose="error")
    assert "cue/left" in kept.annotations.description
