"""XDFWriter round trips through pyxdf, crash shapes (footer-less, torn, zero-filled) and repair."""

from __future__ import annotations

import os
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import pyxdf

from acquisition.xdf_writer import XDFWriter, repair_xdf, scan_xdf, xdf_format
from bci_app.errors import DataFileError, RecordingError


def _hdr(name, n, srate, fmt, stype="EEG"):
    info = ET.Element("info")
    for k, v in dict(
        name=name,
        type=stype,
        channel_count=n,
        nominal_srate=srate,
        channel_format=fmt,
        source_id=f"sid-{name}",
    ).items():
        ET.SubElement(info, k).text = str(v)
    return info


def _write(path, n=1000, chunk=100, close=True, **kw):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((n, 4)) * 1e-5
    ts = 1000.0 + np.arange(n) / 250.0 + rng.normal(0, 1e-4, n)
    w = XDFWriter(path, **kw)
    w.add_stream(1, _hdr("eeg", 4, 250, "double64"))
    w.add_stream(7, _hdr("mk", 1, 0, "string", "Markers"))
    for i in range(0, n, chunk):
        w.write_samples(1, ts[i : i + chunk], data[i : i + chunk])
        w.write_clock_offset(1, ts[i], 0.0)
        w.write_strings(7, [ts[i]], [[f"m{i} ünï"]])
        w.write_boundary()
        w.flush(fsync=False)
    if close:
        w.close()
    return data, ts, w


def _streams(path, **kw):
    streams, header = pyxdf.load_xdf(str(path), **kw)
    return {s["info"]["name"][0]: s for s in streams}, header


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16, np.int32])
def test_numeric_round_trip_is_bit_identical(tmp_path, dtype):
    path = tmp_path / "r.xdf"
    data = (np.random.default_rng(0).standard_normal((257, 3)) * 1000).astype(dtype)
    ts = 5.0 + np.arange(257) / 100.0 + 1e-7
    fmt = xdf_format(dtype)
    with XDFWriter(path) as w:
        w.add_stream(3, _hdr("x", 3, 100, fmt))
        w.write_samples(3, ts[:200], data[:200])
        w.write_samples(3, ts[200:], data[200:])
    s, _ = _streams(path, dejitter_timestamps=False)
    assert s["x"]["time_series"].dtype == np.dtype(dtype)
    assert np.array_equal(s["x"]["time_series"], data)
    assert np.array_equal(s["x"]["time_stamps"], ts)
    assert int(s["x"]["footer"]["info"]["sample_count"][0]) == 257


def test_strings_offsets_footers(tmp_path):
    path = tmp_path / "r.xdf"
    data, ts, _ = _write(path)
    s, header = _streams(path, dejitter_timestamps=False)
    assert header["info"]["version"] == ["1.0"]
    assert np.array_equal(s["eeg"]["time_series"], data)
    assert np.array_equal(s["eeg"]["time_stamps"], ts)  # zero clock offsets change nothing
    assert len(s["eeg"]["clock_times"]) == 10
    assert [r[0] for r in s["mk"]["time_series"]][:2] == ["m0 ünï", "m100 ünï"]
    assert float(s["eeg"]["footer"]["info"]["last_timestamp"][0]) == ts[-1]


def test_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "r.xdf"
    path.write_bytes(b"precious")
    with pytest.raises(RecordingError, match="already exists"):
        XDFWriter(path)
    assert path.read_bytes() == b"precious"


def test_footerless_file_loads_and_repair_adds_footers(tmp_path):
    path = tmp_path / "r.xdf"
    data, ts, w = _write(path, close=False)
    # simulate a crash: the process dies, the fd is simply gone
    os.close(w._fd)
    w._fd = None
    s, _ = _streams(path, dejitter_timestamps=False)
    assert np.array_equal(s["eeg"]["time_series"], data)
    assert "footer" not in s["eeg"]
    scan = scan_xdf(path)
    assert scan.torn_bytes == 0 and sorted(scan.missing_footers) == [1, 7]
    repair_xdf(path)
    s, _ = _streams(path, dejitter_timestamps=False)
    assert np.array_equal(s["eeg"]["time_series"], data)
    assert int(s["eeg"]["footer"]["info"]["sample_count"][0]) == 1000
    assert float(s["eeg"]["footer"]["info"]["last_timestamp"][0]) == ts[-1]
    size = path.stat().st_size
    repair_xdf(path)  # idempotent
    assert path.stat().st_size == size


def test_repair_cuts_any_torn_tail(tmp_path):
    path = tmp_path / "full.xdf"
    data, ts, _ = _write(path, close=False)
    raw = path.read_bytes()
    rng = np.random.default_rng(3)
    cuts = sorted(set(rng.integers(200, len(raw), 20).tolist()) | {len(raw) - 1, len(raw) - 9})
    for cut in cuts:
        p = tmp_path / f"cut{cut}.xdf"
        p.write_bytes(raw[:cut])
        out = repair_xdf(p, out=tmp_path / f"fixed{cut}.xdf")
        assert p.stat().st_size == cut  # the original is untouched when out= is given
        s, _ = _streams(out, dejitter_timestamps=False)
        n = len(s["eeg"]["time_stamps"]) if "eeg" in s else 0
        assert n % 100 == 0  # only whole chunks survive: no garbage sample
        if n:
            assert np.array_equal(s["eeg"]["time_series"], data[:n])
            assert np.array_equal(s["eeg"]["time_stamps"], ts[:n])
        # at most the last chunk is lost
        assert n >= 100 * ((cut - 600) // (100 * (4 * 8 + 9) + 200)) - 100


def test_repair_zero_filled_tail_power_cut(tmp_path):
    path = tmp_path / "r.xdf"
    data, _, _ = _write(path, close=False)
    with open(path, "ab") as f:
        f.write(b"\0" * 4096)  # blocks allocated but never written before the power went
    repair_xdf(path)
    s, _ = _streams(path, dejitter_timestamps=False)
    assert np.array_equal(s["eeg"]["time_series"], data)


def test_repair_rejects_non_xdf(tmp_path):
    p = tmp_path / "x.xdf"
    p.write_bytes(b"NOPE" + b"\0" * 10)
    with pytest.raises(DataFileError, match="not an XDF file"):
        repair_xdf(p)


def test_byte_quota_disk_full_leaves_loadable_file(tmp_path):
    path = tmp_path / "r.xdf"
    with pytest.raises(RecordingError, match="disk is full") as err:
        _write(path, byte_quota=20_000)
    assert "readable" in str(err.value) and str(path) in str(err.value)
    assert path.stat().st_size <= 20_000
    assert scan_xdf(path).torn_bytes == 0
    s, _ = _streams(path, dejitter_timestamps=False)
    assert 0 < len(s["eeg"]["time_stamps"]) < 1000


def test_repair_a_cut_labrecorder_file(tmp_path, data_dir):
    """A real LabRecorder file (timestamps partly omitted) cut in the middle of a chunk."""
    src = data_dir / "bci_essentials_xdf" / "sub-P001_ses-S001_task-MISwitch_run-001_eeg.xdf"
    full = scan_xdf(src)
    assert full.torn_bytes == 0  # intact (one of its streams has no footer: LabRecorder quirk)
    raw = src.read_bytes()
    cut = tmp_path / "cut.xdf"
    cut.write_bytes(raw[: len(raw) * 2 // 3 + 7])
    repair_xdf(cut)
    kw = dict(dejitter_timestamps=False, synchronize_clocks=False)
    orig, _ = _streams(src, **kw)
    fixed, _ = _streams(cut, **kw)
    for name, s in fixed.items():
        n = len(s["time_stamps"])
        assert n <= len(orig[name]["time_stamps"])
        assert np.array_equal(s["time_stamps"], orig[name]["time_stamps"][:n])
        if s["info"]["channel_format"][0] != "string":
            assert np.array_equal(s["time_series"], orig[name]["time_series"][:n])
        assert int(s["footer"]["info"]["sample_count"][0]) == n
    assert len(fixed["g.USBamp-1"]["time_stamps"]) > 0.6 * len(orig["g.USBamp-1"]["time_stamps"])
