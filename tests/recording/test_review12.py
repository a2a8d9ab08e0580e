"""Review 12: a malformed chunk *inside* an XDF recording (a flipped byte, garbled XML) with
intact chunks after it.

``scan_xdf`` treated the first malformed chunk as the start of a torn tail, so ``bci-app
repair`` (in place by default) cut everything after it: one bad byte 40 % into a recording
deleted the other 60 %. Now a malformed chunk whose length is intact and that a well-formed
chunk follows is dropped alone; the rest is kept.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from acquisition.xdf_writer import repair_xdf, scan_xdf
from bci_app.cli import main
from bci_app.errors import DataFileError
from bci_app.recording import load_recording

from .test_xdf_writer import _streams, _write


def _flip_timestamp_byte(path, ts, i):
    """Make sample ``i``'s timestamp-byte count 7 (XDF allows 0 or 8): its chunk is garbled."""
    raw = bytearray(path.read_bytes())
    at = raw.find(b"\x08" + struct.pack("<d", ts[i]))
    assert at > 0
    raw[at] = 7
    path.write_bytes(bytes(raw))


def test_a_garbled_chunk_inside_the_file_is_dropped_alone(tmp_path, capsys):
    path = tmp_path / "r.xdf"
    data, ts, _ = _write(path)  # 10 chunks of 100 samples, each followed by more chunks
    _flip_timestamp_byte(path, ts, 450)
    scan = scan_xdf(path)
    assert len(scan.skipped) == 1 and "invalid timestamp-byte count 7" in scan.skipped[0][2]
    assert scan.torn_bytes == 0 and scan.streams[1].count == 900
    with pytest.raises(DataFileError, match="malformed chunk.*bci-app repair"):
        load_recording(path)
    assert main(["repair", str(path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "malformed chunk inside the file" in out and "torn tail" not in out
    size = path.stat().st_size
    assert main(["repair", str(path)]) == 0  # in place
    assert f"cut {scan.skipped[0][1] - scan.skipped[0][0]} bytes" in capsys.readouterr().out
    assert path.stat().st_size < size
    s, _ = _streams(path, dejitter_timestamps=False)
    keep = np.r_[0:400, 500:1000]  # only the garbled chunk's 100 samples are gone
    np.testing.assert_array_equal(s["eeg"]["time_series"], data[keep])
    np.testing.assert_array_equal(s["eeg"]["time_stamps"], ts[keep])
    assert len(s["mk"]["time_series"]) == 10  # every marker kept
    assert int(s["eeg"]["footer"]["info"]["sample_count"][0]) == 900
    again = scan_xdf(path)
    assert not again.skipped and again.cut_bytes == 0 and not again.missing_footers
    load_recording(path)


def test_a_garbled_last_chunk_is_still_a_torn_tail(tmp_path):
    """Nothing well-formed after it: cut as before (a crash mid-write)."""
    path = tmp_path / "r.xdf"
    data, ts, _ = _write(path, close=False)
    raw = path.read_bytes()
    path.write_bytes(raw + b"\x01\x05\x03\x00\x00")  # a chunk of length 5, tag 3, cut short
    scan = scan_xdf(path)
    assert not scan.skipped and scan.torn_bytes == 5
    repair_xdf(path)
    s, _ = _streams(path, dejitter_timestamps=False)
    np.testing.assert_array_equal(s["eeg"]["time_series"], data)
