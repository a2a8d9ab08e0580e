"""Review 10: recordings stay readable and complete with odd names, predictions, torn text files
and non-finite samples. Each test failed on the code before its fix."""

from __future__ import annotations

import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import pyxdf

from acquisition.files import read_file
from acquisition.markers import Marker, MarkerLog
from acquisition.recorder import Recorder, RecorderState
from acquisition.ring_buffer import RingBuffer
from acquisition.stream_info import StreamInfo
from acquisition.xdf_writer import scan_xdf
from bci_app.errors import DataFileError
from bci_app.recording import (
    export_recording,
    load_recording,
    prediction_recorder,
    read_session_meta,
)

T0 = 1000.0


def _record(path, info, data, markers=(), session_meta=None, extra=None):
    """Record ``data`` (n, ch) at 100 Hz from T0 and ``markers`` through a real Recorder."""
    buf = RingBuffer(4096, info.n_channels, data.dtype)
    log = MarkerLog()
    rec = Recorder(path, history=True, session_meta=session_meta)
    rec.add_buffer(info, buf, marker_log=log)
    if extra is not None:
        extra(rec)
    buf.write(data, T0 + np.arange(data.shape[0]) / 100.0)
    for m in markers:
        log.append(m)
    rec.start()
    rec.stop()
    return rec


def test_odd_characters_in_names_keep_the_recording_readable(tmp_path):
    """A control character or an undecodable byte in the subject (a latin-1 terminal's ``é``
    reaches Python as a lone surrogate), in a channel label or in a device's stream name was
    written raw into the XML headers: the recording ended 'stopped' without error, but the file
    could not be read ('holds no complete XDF file header; nothing to recover') and `repair`
    would have cut every chunk after the bad header."""
    subject = "caf\udce9 \x01x\ufffe"
    info = StreamInfo("dev\x1bice", "test", ["C\x00z", "aux"], ["eeg", "misc"], ["V", "n/a"],
                      100.0)
    data = np.arange(200.0).reshape(100, 2) * 1e-6
    path = tmp_path / "odd.xdf"
    rec = _record(path, info, data, [Marker(T0 + 0.5, "cue", 0.0, "t")],
                  session_meta={"subject": subject, "settings": {"note": "a\ufffeb"}})
    assert rec.state == RecorderState.STOPPED and rec.error is None
    assert scan_xdf(path).torn_bytes == 0
    raw = load_recording(path)
    assert raw.n_times == 100
    np.testing.assert_array_equal(raw.get_data(), data.T)
    assert list(raw.annotations.description) == ["cue"]
    meta = read_session_meta(path)  # the JSON copy gives the exact characters back
    assert meta["subject"] == subject and meta["settings"] == {"note": "a\ufffeb"}
    streams, _ = pyxdf.load_xdf(str(path))
    names = sorted(s["info"]["name"][0] for s in streams)
    assert "dev\\u001bice" in names


def test_marker_label_with_an_undecodable_byte_does_not_stop_the_recorder(tmp_path):
    """A label holding a lone surrogate made encode_string_samples raise UnicodeEncodeError:
    the recorder died with an 'internal error' and nothing more was recorded."""
    info = StreamInfo("eeg", "test", ["Cz"], ["eeg"], ["V"], 100.0)
    path = tmp_path / "label.xdf"
    marks = [Marker(T0 + 0.1, "before", 0.0, "t"), Marker(T0 + 0.2, "file-caf\udce9", 0.0, "t"),
             Marker(T0 + 0.3, "after", 0.0, "t")]
    rec = _record(path, info, np.zeros((100, 1)), marks)
    assert rec.state == RecorderState.STOPPED and rec.error is None
    raw = load_recording(path)
    assert list(raw.annotations.description) == ["before", "file-caf\\udce9", "after"]


def test_replaying_a_session_recording_does_not_turn_predictions_into_markers(tmp_path):
    """read_file (replay, training from a recording) took the numeric, irregular predictions
    stream of a live-session recording as a marker stream: every prediction became a marker
    such as '0.30000001192092896,0.699999988079071,nan,nan,nan'."""
    info = StreamInfo("eeg", "test", ["Cz", "Pz"], ["eeg", "eeg"], ["V", "V"], 100.0)
    path = tmp_path / "live.xdf"
    preds = []

    def add_predictions(rec):
        on_pred = prediction_recorder(rec, ["left", "right"])
        for k in range(5):
            preds.append(SimpleNamespace(
                window_end=T0 + 0.2 * k, probabilities=np.array([0.3, 0.7]), label="right",
                seq=k, latency={}, smoothed=None, control=None, command=None, reliable=True,
                reason="", text=None))
        for p in preds:
            on_pred(p)

    _record(path, info, np.zeros((100, 2)), [Marker(T0 + 0.5, "left_cue", 1.0, "t")],
            extra=add_predictions)
    streams, _ = pyxdf.load_xdf(str(path))
    assert len(next(s for s in streams if s["info"]["name"][0] == "predictions")
               ["time_stamps"]) == 5  # the predictions are in the file ...
    rec = read_file(path)
    assert [(m.label, m.duration) for m in rec.markers] == [("left_cue", 1.0)]  # ... not markers
    assert "predictions" not in rec.info.metadata["marker_streams"]


def test_openbci_file_cut_right_after_a_comma_keeps_its_complete_rows(data_dir, tmp_path):
    """A GUI killed just after writing a comma left a last row with every column but an empty
    last value: the row was not recognised as torn and the whole file failed to load
    ('malformed data row')."""
    src = data_dir / "openbci-gui-sample/OpenBCI-sampleData-1-blinks-jawClench-alpha.txt"
    full = read_file(src)
    text = src.read_bytes()
    last = text.rstrip(b"\r\n").rindex(b"\n") + 1  # start of the last row
    cut = text.rindex(b",") + 1  # the last row up to and including its last comma
    assert cut > last
    for end in (cut, cut + 1, len(text.rstrip(b"\r\n")) - 3):  # ',' / ', ' / mid last value
        p = tmp_path / f"cut{end}.txt"
        p.write_bytes(text[:end])
        rec = read_file(p)
        assert rec.n_samples == full.n_samples - 1
        np.testing.assert_array_equal(rec.data, full.data[:-1])


def test_brainflow_file_cut_inside_its_last_value_keeps_complete_samples_only(tmp_path):
    """BrainFlow's write_file puts the marker row last: a file cut inside the last sample's
    marker value ('7.500000' -> '7.') was read as a complete sample with a marker '7' that was
    never sent; cut right after the last tab, the whole file failed to load."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from brainflow.board_shim import BoardShim
        from brainflow.data_filter import DataFilter
    n_rows = BoardShim.get_num_rows(-1)
    mrow = BoardShim.get_marker_channel(-1)
    assert mrow == n_rows - 1  # the synthetic board's marker row is the last column
    table = np.random.default_rng(0).normal(0, 10, (n_rows, 50))
    table[mrow] = 0.0
    table[mrow, 10] = 3.0
    table[mrow, -1] = 7.5
    path = tmp_path / "full.csv"
    DataFilter.write_file(table, str(path), "w")
    text = path.read_bytes()
    assert text.endswith(b"7.500000\n")
    full = read_file(path)
    assert [m.label for m in full.markers] == ["3", "7.5"]
    for end in (len(text) - 7, len(text) - 9):  # '...\t7.' and '...\t' (value not yet written)
        p = tmp_path / f"cut{end}.csv"
        p.write_bytes(text[:end])
        rec = read_file(p)
        assert rec.n_samples == 49
        np.testing.assert_array_equal(rec.data, full.data[:49])
        assert [m.label for m in rec.markers] == ["3"]


def test_edf_export_of_non_finite_samples_names_the_problem_and_the_fix(tmp_path):
    """A recording with NaN/inf samples (a device reporting a missing value) made
    `bci-app export --to edf` end in edfio's bare ValueError 'Signal data must contain only
    finite values' (a traceback); FIF and BIDS keep such samples."""
    info = StreamInfo("eeg", "test", ["Cz", "Pz"], ["eeg", "eeg"], ["V", "V"], 100.0)
    data = np.full((100, 2), 1e-6)
    data[5, 1] = np.nan
    data[6, 1] = np.inf
    path = tmp_path / "nan.xdf"
    _record(path, info, data)
    out = tmp_path / "edf"
    with pytest.raises(DataFileError, match=r"2 non-finite samples.*Pz \(2\).*--to fif"):
        export_recording(path, "edf", out)
    assert not (out / "nan.edf").exists()
    fif = export_recording(path, "fif", tmp_path / "fif")
    import mne

    back = mne.io.read_raw_fif(fif, verbose="error").get_data()
    assert np.isnan(back[1, 5]) and np.isinf(back[1, 6])


def test_reading_a_torn_recording_points_to_repair(tmp_path):
    """read_file (replay, `bci-app replay`, training) told the owner of a recording cut by a
    crash or a power cut to 'use an intact copy' (there is none) instead of `bci-app repair`,
    which keeps everything up to the last complete chunk."""
    from acquisition.xdf_writer import repair_xdf

    info = StreamInfo("eeg", "test", ["Cz"], ["eeg"], ["V"], 100.0)
    path = tmp_path / "rec.xdf"
    _record(path, info, np.arange(1000.0)[:, None] * 1e-7)
    blob = path.read_bytes()
    for name, damaged in [("cut.xdf", blob[: len(blob) - 20]),  # a kill mid-write
                          ("zeros.xdf", blob + b"\0" * 512)]:  # a power cut
        p = tmp_path / name
        p.write_bytes(damaged)
        with pytest.raises(DataFileError, match=re.escape(f"bci-app repair {p}")):
            read_file(p)
        repair_xdf(p)
        assert read_file(p).n_samples == 1000


def test_repair_to_an_existing_file_never_replaces_it(tmp_path):
    """`repair REC --out PATH` moved the repaired copy over whatever PATH held (another
    recording, any file) without a word."""
    from acquisition.xdf_writer import repair_xdf
    from bci_app.errors import RecordingError

    info = StreamInfo("eeg", "test", ["Cz"], ["eeg"], ["V"], 100.0)
    path = tmp_path / "rec.xdf"
    _record(path, info, np.zeros((300, 1)))
    torn = tmp_path / "torn.xdf"
    torn.write_bytes(path.read_bytes()[:-25])
    keep = tmp_path / "other.xdf"
    keep.write_bytes(b"another recording")
    with pytest.raises(RecordingError, match=r"other\.xdf already exists.*another --out"):
        repair_xdf(torn, out=keep)
    assert keep.read_bytes() == b"another recording"
    assert torn.stat().st_size == len(path.read_bytes()) - 25  # untouched too
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".repair"]  # no temporary left
    fixed = repair_xdf(torn, out=tmp_path / "fixed.xdf")
    assert read_file(fixed).n_samples == 300
