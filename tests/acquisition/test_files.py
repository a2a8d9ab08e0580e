"""File readers against the real recordings in the shared data folder.

Every expected figure below comes from the folder's SOURCE.md files (channel counts, rates,
durations, marker counts); nothing is copied into the repository.
"""

from __future__ import annotations

import collections
import functools
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from acquisition.files import SUPPORTED_EXTENSIONS, FileRecording, read_file, to_raw
from bci_app.config import data_dir as _data_dir
from bci_app.errors import ConfigError, DataFileError

EEGMMIDB = "eegmmidb/MNE-eegbci-data/files/eegmmidb/1.0.0"


@functools.lru_cache(maxsize=None)
def _summary(path: str) -> tuple:
    """Small, cacheable facts of a file (the full data of 65 EDF files would not fit in a cache)."""
    rec = read_file(path)
    return (rec.n_samples, rec.n_channels, rec.sfreq, tuple(m.label for m in rec.markers))


# --------------------------------------------------------------------------- EEGMMIDB (EDF+)
def _eegmmidb_rows() -> list[tuple]:
    """(relative path, samples, T0, T1, T2) from eegmmidb/SOURCE.md; None = not stated there."""
    # Per-file table of SOURCE.md (S001-S010 and S001 runs 6/10/14).
    table = """
    S001R04 20000 15 8 7 | S001R06 20000 15 7 8 | S001R08 20000 15 8 7 | S001R10 20000 15 7 8
    S001R12 20000 15 7 8 | S001R14 20000 15 7 8 | S002R04 19680 15 7 8 | S002R08 19680 15 8 7
    S002R12 19680 15 8 7 | S003R04 20000 15 8 7 | S003R08 20000 15 7 8 | S003R12 20000 15 8 7
    S004R04 19680 15 8 7 | S004R08 19680 15 7 8 | S004R12 19680 15 8 7 | S005R04 19680 15 7 8
    S005R08 19680 15 7 8 | S005R12 19680 15 7 8 | S006R04 19680 15 8 7 | S006R08 19680 15 8 7
    S006R12 19680 15 8 7 | S007R04 20000 15 8 7 | S007R08 20000 15 8 7 | S007R12 20000 15 7 8
    S008R04 19680 15 7 8 | S008R08 19680 15 7 8 | S008R12 19680 15 8 7 | S009R04 19680 15 8 7
    S009R08 19680 15 8 7 | S009R12 19680 15 8 7 | S010R04 19680 15 8 7 | S010R08 19680 15 8 7
    S010R12 19680 15 8 7
    """
    rows = []
    for item in table.replace("\n", "|").split("|"):
        parts = item.split()
        if parts:
            name, n, t0, t1, t2 = parts[0], *map(int, parts[1:])
            rows.append((f"{EEGMMIDB}/{name[:4]}/{name}.edf", n, t0, t1, t2))
    # S011-S020 runs 4/8/12: "each run has 30 annotations: 15 T0 + 15 task cues", 123 or 125 s.
    for s in range(11, 21):
        for r in (4, 8, 12):
            rows.append((f"{EEGMMIDB}/S{s:03d}/S{s:03d}R{r:02d}.edf", None, 15, None, None))
    # S001 baselines: 64 ch at 160 Hz; SOURCE.md gives no length or annotation counts.
    rows += [(f"{EEGMMIDB}/S001/S001R01.edf", None, None, None, None),
             (f"{EEGMMIDB}/S001/S001R02.edf", None, None, None, None)]
    return rows


@pytest.mark.parametrize("rel, n_samples, n_t0, n_t1, n_t2", _eegmmidb_rows(),
                         ids=lambda v: Path(v).stem if isinstance(v, str) else None)
def test_eegmmidb_file(data_dir, rel, n_samples, n_t0, n_t1, n_t2):
    n, n_ch, sfreq, labels = _summary(str(data_dir / rel))
    assert n_ch == 64 and sfreq == 160.0
    if n_samples is not None:
        assert n == n_samples
    else:
        assert n in (19680, 20000) or "R0" in rel and rel.endswith(("R01.edf", "R02.edf"))
    counts = collections.Counter(labels)
    if n_t0 is not None:
        assert len(labels) == 30 and counts["T0"] == n_t0
        assert counts["T1"] + counts["T2"] == 15
    if n_t1 is not None:
        assert (counts["T1"], counts["T2"]) == (n_t1, n_t2)
    if rel.endswith(("R01.edf", "R02.edf")):
        assert len(labels) >= 1


def test_eegmmidb_totals(data_dir):
    """SOURCE.md totals: S001-S010 runs 4/8/12 = 230 left (T1) + 220 right (T2); S001 runs
    6/10/14 = 21 both fists (T1) + 24 both feet (T2); 45 task trials for every subject."""
    totals = collections.Counter()
    for s in range(1, 11):
        for r in (4, 8, 12):
            totals.update(_summary(str(data_dir / f"{EEGMMIDB}/S{s:03d}/S{s:03d}R{r:02d}.edf"))[3])
    assert (totals["T1"], totals["T2"]) == (230, 220)
    feet = collections.Counter()
    for r in (6, 10, 14):
        feet.update(_summary(str(data_dir / f"{EEGMMIDB}/S001/S001R{r:02d}.edf"))[3])
    assert (feet["T1"], feet["T2"]) == (21, 24)
    for s in range(1, 21):
        c = collections.Counter()
        for r in (4, 8, 12):
            c.update(_summary(str(data_dir / f"{EEGMMIDB}/S{s:03d}/S{s:03d}R{r:02d}.edf"))[3])
        assert c["T1"] + c["T2"] == 45, f"S{s:03d}"


def test_edf_content_units_and_markers(eegmmidb_path):
    """S001R04 via MNE's own offline loader: volts, onsets, names, StreamInfo contract."""
    import mne

    (path,) = mne.datasets.eegbci.load_data(1, [4], path=str(eegmmidb_path), update_path=False)
    rec = read_file(path)
    assert isinstance(rec, FileRecording)
    assert rec.data.shape == (20000, 64) and rec.data.dtype == np.float64
    assert rec.data.flags["C_CONTIGUOUS"]
    # SOURCE.md: S001R04 value range -376 ... +595 uV -> volts
    assert rec.data.min() == pytest.approx(-376e-6, abs=1.5e-6)
    assert rec.data.max() == pytest.approx(595e-6, abs=1.5e-6)
    np.testing.assert_allclose(rec.times, np.arange(20000) / 160.0)
    assert rec.duration == pytest.approx(125.0)
    info = rec.info
    assert info.source_kind == "replay" and info.sfreq == 160.0
    assert info.ch_names[:3] == ("Fc5.", "Fc3.", "Fc1.") and info.ch_names[-1] == "Iz.."
    assert set(info.ch_types) == {"eeg"} and set(info.units) == {"V"}
    assert info.metadata["format"] == "edf" and info.metadata["path"].endswith("S001R04.edf")
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    np.testing.assert_array_equal(rec.data, raw.get_data().T)
    assert [m.label for m in rec.markers] == list(raw.annotations.description)
    np.testing.assert_allclose([m.timestamp for m in rec.markers], raw.annotations.onset)
    np.testing.assert_allclose([m.duration for m in rec.markers], raw.annotations.duration)
    assert {m.source for m in rec.markers} == {"file"}


# --------------------------------------------------------------------------- other folders
# (relative path, channels, sfreq, samples, span seconds (times[-1]-times[0]) or None, markers)
OTHER_FILES = [
    ("bci4als-openbci-mi-xdf/Sub2011001_EEG.xdf", 16, 125.0, 53600, 428.51, 182),
    ("bci4als-openbci-mi-xdf/Sub2111001_EEG.xdf", 16, 125.0, 54965, 439.41, 182),
    ("bci4als-openbci-mi-xdf/Sub2211001_EEG.xdf", 16, 125.0, 54920, 439.03, 182),
    ("xdf-example-files/clock_resets.xdf", 8, 100.0, 27815, 573.15, 175),
    ("xdf-example-files/minimal.xdf", 3, 10.0, 9, 0.8, 9),  # 9 samples at 10 Hz
    ("openbci-gui-sample/OpenBCI_GUI-v6-blinks-jawClench-alpha.txt", 11, 250.0, 22490, None, 0),
    ("openbci-gui-sample/OpenBCI-sampleData-1-blinks-jawClench-alpha.txt", 11, 250.0, 22490, None,
     0),
    ("mi_openbci_peterson2020/OpenBCI-RAW-S02_S1R0.txt", 7, 200.0, 26207, None, 0),
    ("mi_openbci_peterson2020/S02_FILT_S1R0.mat", 15, 125.0, 15520, None, 70),
    ("mne-io-test-files/brainvision/test.vhdr", 32, 1000.0, 7900, None, 13),
    ("mne-io-test-files/bdf/test.bdf", 73, 2048.0, 2048, None, 1),
    ("mne-io-test-files/bdf/test_bdf_stim_channel.bdf", 4, 500.0, 5000, None, 9),
]


@pytest.mark.parametrize("rel, n_ch, sfreq, n_samples, span, n_markers", OTHER_FILES,
                         ids=[Path(r[0]).name for r in OTHER_FILES])
def test_other_files(data_dir, rel, n_ch, sfreq, n_samples, span, n_markers):
    rec = read_file(data_dir / rel)
    assert rec.n_channels == n_ch == rec.info.n_channels
    assert rec.sfreq == sfreq
    assert rec.n_samples == n_samples
    if span is not None:
        assert rec.times[-1] - rec.times[0] == pytest.approx(span, abs=0.01)
    else:
        np.testing.assert_allclose(rec.times, np.arange(n_samples) / sfreq)
        assert rec.duration == pytest.approx(n_samples / sfreq)
    assert len(rec.markers) == n_markers
    assert np.all(np.diff(rec.times) > 0)
    ts = [m.timestamp for m in rec.markers]
    assert ts == sorted(ts)
    assert np.all(np.isfinite(rec.data))


def test_bci_essentials_mi_runs(data_dir):
    """SOURCE.md: g.USBamp 16 ch @ 256 Hz, 121-134 s, 10 trials, labelled windows per run."""
    windows = {1: (15, 15, 20), 2: (27, 15, 20), 3: (33, 20, 15), 4: (15, 15, 20)}
    for run, expected in windows.items():
        name = f"sub-P001_ses-S001_task-MISwitch_run-{run:03d}_eeg.xdf"
        rec = read_file(data_dir / "bci_essentials_xdf" / name)
        assert (rec.n_channels, rec.sfreq) == (16, 256.0)
        assert rec.info.ch_names == tuple(
            "F3 Fz F4 FC3 FCz FC4 C5 C3 C1 Cz C2 C4 C6 CP5 CP4 Pz".split())
        assert set(rec.info.units) == {"V"}  # desc says microvolts -> scaled to volts
        assert 121.0 <= rec.duration <= 135.0
        unity = [m.label for m in rec.markers if m.extra.get("stream") == "UnityMarkerStream"]
        c = collections.Counter(unity)
        assert tuple(c[f"switch,3,{k},2"] for k in range(3)) == expected, run
        assert c["Trial Started"] == 10 and c["Trial Ends"] == 10
        # every string stream of the file is a marker source (the back end's responses too)
        assert {m.extra["stream"] for m in rec.markers} == {"UnityMarkerStream", "PythonResponse"}


def test_bci_essentials_ssvep(data_dir):
    rec = read_file(data_dir / "bci_essentials_xdf/ssvep_example.xdf")
    assert (rec.n_channels, rec.sfreq) == (8, 300.0)
    assert rec.info.ch_names == ("S2", "F4", "C4", "S3", "S1", "C3", "F3", "TRG")
    assert rec.duration == pytest.approx(110.0, abs=0.1)
    flashes = [m for m in rec.markers if re.fullmatch(r"1\.4,[0-2],10,12,15", m.label)]
    assert len(flashes) == 251


def test_bci4als_xdf_counter_and_labels(data_dir):
    """Column 0 is the OpenBCI packet counter (misc), columns 1-15 EEG; labels 1/2/3 x 20."""
    import mne

    rec = read_file(data_dir / "bci4als-openbci-mi-xdf/Sub2011001_EEG.xdf")
    assert rec.info.ch_names[0] == "counter" and rec.info.ch_types[0] == "misc"
    assert rec.info.ch_types[1:] == ("eeg",) * 15
    counter = rec.data[:, 0]
    steps = np.mod(np.diff(counter), 256)  # step 2 (Cyton+Daisy), wraps at 256; rare drops
    assert np.mean(steps == 2) > 0.99 and counter.min() >= 0 and counter.max() <= 254
    assert rec.info.metadata["stream_name"] == "obci_eeg1"
    codes = collections.Counter(int(float(m.label)) for m in rec.markers)
    assert (codes[1], codes[2], codes[3], codes[1111], codes[9], codes[111], codes[99]) == (
        20, 20, 20, 60, 60, 1, 1)
    # SOURCE.md: annotations at the label markers + Epochs(0, 4 s) -> (60, 15, 501)
    raw = to_raw(rec)
    events, _ = mne.events_from_annotations(
        raw, event_id=lambda d: int(float(d)) if int(float(d)) in (1, 2, 3) else None,
        verbose="error")
    epochs = mne.Epochs(raw, events, tmin=0, tmax=4, baseline=None, picks="eeg",
                        preload=True, verbose="error")
    assert epochs.get_data().shape == (60, 15, 501)


def test_clock_reset_xdf(data_dir):
    """pyxdf's clock-reset handling leaves increasing timestamps; marker times stay inside."""
    rec = read_file(data_dir / "xdf-example-files/clock_resets.xdf")
    assert np.all(np.diff(rec.times) > 0)
    counts = collections.Counter(m.label for m in rec.markers)
    assert counts == {"XXX": 33, "Test": 22, "Blah": 25, "Test-1-2-3": 39, "Marker": 27,
                      "Testtest": 29}
    assert rec.info.metadata["effective_srate"] == pytest.approx(92.93, abs=0.01)
    ts = np.array([m.timestamp for m in rec.markers])
    assert rec.times[0] - 5 < ts.min() and ts.max() < rec.times[-1] + 5


def test_empty_xdf_streams_are_skipped(data_dir):
    path = data_dir / "xdf-example-files/empty_streams.xdf"
    rec = read_file(path, stream="Data stream: test stream 0 counter")
    assert rec.n_samples == 10 and rec.n_channels == 1 and rec.sfreq == 1.0
    np.testing.assert_array_equal(np.diff(rec.data[:, 0]), np.ones(9))  # an int32 counter
    assert [m.label for m in rec.markers] == ['{"state": 2}']  # the empty marker stream adds none
    with pytest.raises(DataFileError, match="has no numeric samples"):
        read_file(path, stream="Empty data stream: test stream 0 counter")


def test_openbci_layouts_agree(data_dir):
    """The two GUI files hold the same recording: identical samples, uV -> V, accel in g."""
    v6 = read_file(data_dir / "openbci-gui-sample/OpenBCI_GUI-v6-blinks-jawClench-alpha.txt")
    old = read_file(data_dir / "openbci-gui-sample/OpenBCI-sampleData-1-blinks-jawClench-alpha.txt")
    assert v6.info.ch_names == old.info.ch_names
    assert v6.info.ch_types == ("eeg",) * 8 + ("misc",) * 3
    assert v6.info.units == ("V",) * 8 + ("g",) * 3
    np.testing.assert_array_equal(v6.data[:, :8], old.data[:, :8])
    # SOURCE.md channel means (uV): +62 052, +49 483, -16 895, -24 638, -2 402, -12 710, -337,
    # -3 600
    np.testing.assert_allclose(
        v6.data[:, :8].mean(axis=0) * 1e6,
        [62052, 49483, -16895, -24638, -2402, -12710, -337, -3600], atol=1.0)
    assert v6.data[0, 8:].tolist() == [0.040, 0.420, 0.238]
    assert v6.info.metadata["layout"] == "openbci-gui-v6"
    assert old.info.metadata["layout"] == "openbci-gui-legacy"
    assert v6.info.metadata["first_sample_unix_ms"] == 1557936053329


def test_openvibe_mat(data_dir):
    rec = read_file(data_dir / "mi_openbci_peterson2020/S02_FILT_S1R0.mat")
    assert rec.info.ch_names == tuple("Pz Cz T6 T4 F8 P4 C4 F4 Fz T5 T3 F7 P3 C3 F3".split())
    c = collections.Counter(m.label for m in rec.markers)
    assert (c["770"], c["772"]) == (5, 5)  # 5 MI + 5 REST trials


def test_brainvision_and_bdf_details(data_dir):
    bv = read_file(data_dir / "mne-io-test-files/brainvision/test.vhdr")
    assert collections.Counter(bv.info.ch_types) == {"eeg": 26, "misc": 6}
    assert bv.info.ch_names[-6:] == ("CP5", "CP6", "HL", "HR", "Vb", "ReRef")
    labels = [m.label for m in bv.markers]
    assert labels.count("Stimulus/S253") == 2 and labels.count("Stimulus/S255") == 5
    s253 = [m.timestamp for m in bv.markers if m.label == "Stimulus/S253"]
    np.testing.assert_allclose(s253, [0.486, 4.935], atol=1e-3)
    bdf = read_file(data_dir / "mne-io-test-files/bdf/test_bdf_stim_channel.bdf")
    assert bdf.info.ch_names == ("C3", "C4", "Cz", "Status")
    assert bdf.info.ch_types == ("eeg", "eeg", "eeg", "stim")
    samples = [round(m.timestamp * 500) for m in bdf.markers]
    assert samples == [242, 310, 952, 1606, 2249, 2900, 3537, 4162, 4790]
    assert [m.label for m in bdf.markers] == ["4", "2"] + ["1"] * 7
    big = read_file(data_dir / "mne-io-test-files/bdf/test.bdf")
    assert [(round(m.timestamp * 2048), m.label) for m in big.markers] == [(589, "128")]


def test_every_supported_file_in_shared_data_loads(data_dir):
    """No file with a supported extension is left out of the tables above."""
    covered = {str(data_dir / r[0]) for r in _eegmmidb_rows()} | {
        str(data_dir / r[0]) for r in OTHER_FILES}
    covered |= {str(p) for p in (data_dir / "bci_essentials_xdf").glob("*.xdf")}
    covered.add(str(data_dir / "xdf-example-files/empty_streams.xdf"))  # no EEG: error test
    found = {
        str(p) for p in data_dir.rglob("*")
        if p.is_file() and any(p.name.lower().endswith(e) for e in SUPPORTED_EXTENSIONS)
        and p.suffix.lower() not in (".eeg", ".vmrk")
        and not (p.name.startswith("LICENSE") or p.name in ("SOURCE.md", "README.md"))
    }
    assert found - covered == set()


# --------------------------------------------------------------------------- conversions
def test_to_raw_and_fif_roundtrip(eegmmidb_path, tmp_path):
    import mne

    (path,) = mne.datasets.eegbci.load_data(1, [4], path=str(eegmmidb_path), update_path=False)
    rec = read_file(path)
    raw = to_raw(rec)
    assert raw.info["sfreq"] == 160.0 and raw.ch_names == list(rec.info.ch_names)
    np.testing.assert_allclose(raw.annotations.onset, [m.timestamp for m in rec.markers], atol=1e-9)
    assert list(raw.annotations.description) == [m.label for m in rec.markers]
    events, ids = mne.events_from_annotations(raw, event_id={"T1": 0, "T2": 1}, verbose="error")
    assert len(events) == 15
    fif = tmp_path / "s001r04_raw.fif"
    raw.save(fif, fmt="double", verbose="error")
    back = read_file(fif)
    assert back.info.metadata["format"] == "fif"
    np.testing.assert_array_equal(back.data, rec.data)
    assert [m.label for m in back.markers] == [m.label for m in rec.markers]
    np.testing.assert_allclose([m.timestamp for m in back.markers],
                               [m.timestamp for m in rec.markers], atol=1e-9)


def _synthetic_brainflow_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Record ~0.4 s from BrainFlow's synthetic board (with two markers) and write it."""
    import time
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brainflow loads its library through pkg_resources
        from brainflow.board_shim import BoardShim, BrainFlowInputParams
        from brainflow.data_filter import DataFilter

        board = BoardShim(-1, BrainFlowInputParams())
        board.prepare_session()
    try:
        board.start_stream()
        deadline = time.monotonic() + 10
        board.insert_marker(1.0)
        while board.get_board_data_count() < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        board.insert_marker(2.0)
        while board.get_board_data_count() < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        board.stop_stream()
        data = board.get_board_data()
    finally:
        board.release_session()
    assert data.shape[1] >= 100, "synthetic board delivered too little data"
    path = tmp_path / "BrainFlow-RAW_test.csv"
    DataFilter.write_file(data, str(path), "w")
    return path, data


def test_brainflow_csv(tmp_path):
    path, data = _synthetic_brainflow_file(tmp_path)
    rec = read_file(path)  # board_id defaults to the synthetic board (-1)
    assert rec.n_channels == 16 and rec.sfreq == 250.0 and rec.n_samples == data.shape[1]
    assert rec.info.ch_names[:4] == ("Fz", "C3", "Cz", "C4")
    np.testing.assert_allclose(rec.data, data[1:17].T * 1e-6, rtol=1e-5, atol=1e-11)
    assert [m.label for m in rec.markers] == [
        ("1" if v == 1 else "2") for v in data[31][data[31] != 0]]
    assert len(rec.markers) == 2
    idx = np.flatnonzero(data[31])
    np.testing.assert_allclose([m.timestamp for m in rec.markers], idx / 250.0)
    with pytest.raises(DataFileError,
                       match=r"columns per line, but board 0 writes \d+ rows.*board_id"):
        read_file(path, board_id=0)  # Cyton: another row count
    with pytest.raises(ConfigError, match=r"board_id=12345.*brainflow.BoardIds"):
        read_file(path, board_id=12345)


# --------------------------------------------------------------------------- errors
def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match=r"nothere\.edf' does not exist.*Check the path"):
        read_file(tmp_path / "nothere.edf")


def test_unsupported_extension(tmp_path):
    p = tmp_path / "rec.gdf"
    p.write_bytes(b"0" * 100)
    with pytest.raises(DataFileError, match=r"Unsupported file type '\.gdf'.*Supported extensions: "
                                            r"\.bdf, \.csv, \.edf, .*\.xdf"):
        read_file(p)


@pytest.mark.parametrize("name", ["empty.edf", "empty.xdf", "empty.txt", "empty.vhdr", "empty.csv"])
def test_empty_file(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"")
    with pytest.raises(DataFileError, match=r"is empty \(0 bytes\)"):
        read_file(p)


def test_truncated_edf(data_dir, tmp_path):
    src = data_dir / EEGMMIDB / "S001/S001R04.edf"
    blob = src.read_bytes()
    p = tmp_path / "cut.edf"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataFileError, match=r"cut\.edf' is truncated: its header declares 125 data "
                                            r"records .* only 62 complete records"):
        read_file(p)
    p.write_bytes(blob[:200])
    with pytest.raises(DataFileError, match="truncated"):
        read_file(p)


def test_truncated_bdf(data_dir, tmp_path):
    blob = (data_dir / "mne-io-test-files/bdf/test_bdf_stim_channel.bdf").read_bytes()
    p = tmp_path / "cut.bdf"
    p.write_bytes(blob[:-10])
    with pytest.raises(DataFileError, match="BDF file .* is truncated"):
        read_file(p)


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_xdf(data_dir, tmp_path, keep):
    blob = (data_dir / "bci4als-openbci-mi-xdf/Sub2011001_EEG.xdf").read_bytes()
    p = tmp_path / "cut.xdf"
    p.write_bytes(blob[: int(len(blob) * keep)])
    with pytest.raises(DataFileError, match=r"cut\.xdf' is truncated.*cut short"):
        read_file(p)


def test_xdf_without_eeg_stream(data_dir):
    with pytest.raises(DataFileError,
                       match=r"no non-empty stream of type 'EEG' \(or 'ExG'\); it has .*'ctrl' "
                             r"\(type 'control', 1 samples\).*stream=<name>"):
        read_file(data_dir / "xdf-example-files/empty_streams.xdf")


def test_xdf_bad_stream_name(data_dir):
    with pytest.raises(ConfigError, match=r"stream='nope'.*'MyMarkerStream'.*'BioSemi'"):
        read_file(data_dir / "xdf-example-files/clock_resets.xdf", stream="nope")


def test_not_an_xdf(tmp_path):
    p = tmp_path / "fake.xdf"
    p.write_bytes(b"hello world, not xdf")
    with pytest.raises(DataFileError, match="not an XDF file"):
        read_file(p)


def test_not_openbci_txt(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("just some notes\n1,2,3\n")
    with pytest.raises(DataFileError, match="not an OpenBCI GUI recording"):
        read_file(p)


def test_openbci_cut_last_row_is_dropped(data_dir, tmp_path):
    src = data_dir / "openbci-gui-sample/OpenBCI_GUI-v6-blinks-jawClench-alpha.txt"
    lines = src.read_text().splitlines()
    p = tmp_path / "cut.txt"
    p.write_text("\n".join(lines[:1005] + [lines[1005][:30]]) + "\n")
    rec = read_file(p)
    assert rec.n_samples == 1000  # 5 header lines, 1000 complete rows, the torn one dropped


def test_brainvision_without_data_file(data_dir, tmp_path):
    for ext in ("vhdr", "vmrk"):
        shutil.copy(data_dir / f"mne-io-test-files/brainvision/test.{ext}", tmp_path)
    with pytest.raises(DataFileError, match=r"cannot be read as brainvision.*\.eeg"):
        read_file(tmp_path / "test.vhdr")


def test_stream_argument_only_for_xdf(data_dir):
    with pytest.raises(ConfigError, match="only applies to XDF"):
        read_file(data_dir / "mne-io-test-files/bdf/test.bdf", stream="x")


def test_data_dir_matches_config():
    assert _data_dir().is_dir()


def _xdf_header(name, stype, labels, rate, fmt="double64", units=None, types=None):
    from xml.etree import ElementTree as ET

    info = ET.Element("info")
    for tag, text in (("name", name), ("type", stype), ("channel_count", len(labels)),
                      ("nominal_srate", rate), ("channel_format", fmt), ("source_id", name)):
        ET.SubElement(info, tag).text = str(text)
    chans = ET.SubElement(ET.SubElement(info, "desc"), "channels")
    for i, label in enumerate(labels):
        ch = ET.SubElement(chans, "channel")
        ET.SubElement(ch, "label").text = label
        if units:
            ET.SubElement(ch, "unit").text = units[i]
        if types:
            ET.SubElement(ch, "type").text = types[i]
    return info


def test_xdf_picks_largest_eeg_stream_and_reads_desc(tmp_path):
    """Several EEG streams: the one with most samples wins (or stream=); desc labels, units
    and types are used; an empty EEG stream is skipped; all string streams become markers."""
    from acquisition.xdf_writer import XDFWriter

    path = tmp_path / "multi.xdf"
    t = 1000.0 + np.arange(300) / 100.0
    big = np.random.default_rng(0).normal(size=(300, 3))
    with XDFWriter(path) as w:
        w.add_stream(1, _xdf_header("small", "EEG", ["A", "B"], 100))
        w.write_samples(1, t[:100], np.ones((100, 2)))
        w.add_stream(2, _xdf_header("big", "EEG", ["Cz", "Pz", "TRG"], 100,
                                    units=["millivolts", "uV", ""], types=["EEG", "EEG", "TRG"]))
        w.write_samples(2, t, big)
        w.add_stream(3, _xdf_header("empty", "EEG", ["X"] * 1, 100))
        w.add_stream(4, _xdf_header("cues", "Markers", ["m"], 0, fmt="string"))
        w.write_strings(4, [1000.5, 1001.0], [["left"], ["right"]])
        w.add_stream(5, _xdf_header("more", "LSL_Marker_Strings", ["m"], 0, fmt="string"))
        w.write_strings(5, [1000.75], [["rest"]])
    rec = read_file(path)
    assert rec.info.name == "big" and rec.n_samples == 300
    assert rec.info.ch_names == ("Cz", "Pz", "TRG")
    assert rec.info.ch_types == ("eeg", "eeg", "stim")
    assert rec.info.units == ("V", "V", "n/a")
    np.testing.assert_allclose(rec.data, big * [1e-3, 1e-6, 1.0])
    np.testing.assert_allclose(rec.times, t, rtol=0, atol=1e-9)  # pyxdf dejitters (no-op here)
    assert [(m.label, m.extra["stream"]) for m in rec.markers] == [
        ("left", "cues"), ("rest", "more"), ("right", "cues")]
    np.testing.assert_allclose([m.timestamp for m in rec.markers], [1000.5, 1000.75, 1001.0],
                               rtol=0, atol=1e-9)
    small = read_file(path, stream="small")
    assert small.n_samples == 100 and small.info.ch_names == ("A", "B")
    assert small.info.units == ("V", "V")  # EEG without a unit: microvolts (LSL convention)
    np.testing.assert_allclose(small.data, 1e-6)
    assert small.info.metadata["units_assumed_microvolts"] == ["A", "B"]
    with pytest.raises(DataFileError, match="'empty' .* has no numeric samples"):
        read_file(path, stream="empty")


def test_brainflow_csv_parses_like_brainflow_and_damage_never_kills_the_process(tmp_path):
    """Our parser reads exactly what DataFilter.read_file reads from a good file. Values outside
    the double range make BrainFlow's C++ reader abort the process; here an underflow reads as 0
    and an overflow is a DataFileError, checked in a child process so a regression cannot take
    the test run down with it."""
    import subprocess
    import sys

    from acquisition.files import _parse_brainflow_table
    from brainflow.data_filter import DataFilter

    path, _ = _synthetic_brainflow_file(tmp_path)
    np.testing.assert_array_equal(_parse_brainflow_table(path), DataFilter.read_file(str(path)))
    lines = path.read_text().splitlines()
    for i, (bad, expect) in enumerate([("1e-400", "ok 0.0"), ("253156e877812", "DataFileError"),
                                       ("inf", "DataFileError")]):
        cells = lines[5].split("\t")
        cells[3] = bad
        damaged = tmp_path / f"damaged{i}.csv"
        damaged.write_text("\n".join(lines[:5] + ["\t".join(cells)] + lines[6:]) + "\n")
        code = ("from acquisition.files import read_file\n"
                "from bci_app.errors import DataFileError\n"
                f"try:\n    rec = read_file({str(damaged)!r})\n"
                "    print('ok', rec.data[5, 2])\n"
                "except DataFileError as err:\n    print('DataFileError:', err)\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, cwd=Path(__file__).resolve().parents[2])
        assert out.returncode == 0, out.stderr[-500:]
        assert out.stdout.startswith(expect), out.stdout
        assert expect == "ok 0.0" or "in sample 6" in out.stdout, out.stdout
    cut = tmp_path / "cut.csv"  # a recording killed mid-write keeps its complete samples
    text = path.read_text()
    cut.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 8])
    rec = read_file(cut)
    assert rec.n_samples == len(lines) - 1
    np.testing.assert_array_equal(rec.data, read_file(path).data[:-1])
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join(lines[:5] + [lines[5] + "\t1.0"] + lines[6:]) + "\n")
    with pytest.raises(DataFileError, match=r"ragged\.csv' cannot be parsed.*same number"):
        read_file(ragged)
