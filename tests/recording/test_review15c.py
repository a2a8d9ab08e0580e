"""Review 15c: ``bci-app repair`` of a recording whose StreamHeader chunk is garbled.

Without its header a stream's Samples, ClockOffset and StreamFooter chunks cannot be read. The
old repair dropped each of them as one more "malformed chunk inside the file ... the chunks
after it are intact" (170 lines for a garbled EEG header), overwrote the recording in place
(all of its EEG gone, exit status 0), and the file then did not load. Now the stream is listed
once with what it held, left out whole, and an in-place repair keeps the original beside the
repaired file. A session on BrainFlow's synthetic board recorded by the real Recorder; each
test fails on the code before its fix."""

from __future__ import annotations

import hashlib
import shutil
import struct

import numpy as np
import pytest

from acquisition.xdf_writer import scan_xdf
from bci_app.cli import main
from bci_app.errors import DataFileError
from bci_app.recording import load_recording

# ``session``: about 3 s of the synthetic board and five user markers, recorded by the Recorder
from .test_review15 import LABELS, session  # noqa: F401
from .test_xdf_writer import _streams


def _header_span(raw: bytes, stream_id: int) -> tuple[int, int]:
    """Bytes of the StreamHeader chunk of ``stream_id`` in an intact XDF file."""
    pos = 4
    while pos < len(raw):
        nb = raw[pos]
        length = {1: raw[pos + 1], 4: struct.unpack_from("<I", raw, pos + 1)[0],
                  8: struct.unpack_from("<Q", raw, pos + 1)[0]}[nb]
        p = pos + 1 + nb
        tag = struct.unpack_from("<H", raw, p)[0]
        if tag == 2 and struct.unpack_from("<I", raw, p + 2)[0] == stream_id:
            return pos, p + length
        pos = p + length
    raise AssertionError(f"no header for stream {stream_id}")


def _garble_header(session, tmp_path, stream_id: int):
    """A copy of the recording with one byte of ``stream_id``'s header XML flipped (the chunk's
    length intact, as a bad sector or bit rot leaves it)."""
    path = tmp_path / "rec.xdf"
    raw = bytearray(session.read_bytes())
    a, b = _header_span(raw, stream_id)
    at = raw.index(b"<channel_format>", a, b) + 1
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path, hashlib.sha256(raw).hexdigest()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_garbled_marker_header_leaves_only_that_stream_out_and_keeps_the_original(
        session, tmp_path, capsys):
    """The markers stream's header is garbled. Loading names the unreadable stream (not "drop
    just those chunks and keep everything else"); the repair lists it once with its chunks and
    sample count, leaves it out whole, keeps the original as rec.before-repair.xdf, and the
    repaired file loads with every EEG sample of the recording."""
    path, damaged = _garble_header(session, tmp_path, 2)
    with pytest.raises(DataFileError, match=r"1 stream\(s\) that cannot be read.*stream 2 "
                       r"\('BrainFlow Synthetic-markers'.*StreamHeader.*bci-app repair"):
        load_recording(path)
    assert main(["repair", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("unreadable stream 2 ('BrainFlow Synthetic-markers'") == 1
    assert f"Samples ({len(LABELS)} samples)" in out
    assert f"its footer counts {len(LABELS)} samples" in out
    assert "malformed chunk" not in out  # its chunks are not reported one by one
    kept = tmp_path / "rec.before-repair.xdf"
    assert f"the original is kept as {kept}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.before-repair.xdf", "rec.xdf"]
    assert _sha(kept) == damaged  # byte for byte what was on disk before the repair
    after = scan_xdf(path)
    assert not after.cut_bytes and not after.lost and not after.missing_footers
    streams, _ = _streams(path, dejitter_timestamps=False)
    original, _ = _streams(session, dejitter_timestamps=False)
    assert set(streams) == {"BrainFlow Synthetic", "BrainFlow Synthetic-markers-details"}
    eeg = "BrainFlow Synthetic"
    np.testing.assert_array_equal(streams[eeg]["time_series"], original[eeg]["time_series"])
    np.testing.assert_array_equal(streams[eeg]["time_stamps"], original[eeg]["time_stamps"])
    raw = load_recording(path)
    np.testing.assert_array_equal(raw.get_data(), load_recording(session).get_data())


def test_a_garbled_eeg_header_says_so_and_keeps_every_sample_in_the_original(
        session, tmp_path, capsys):
    """The EEG stream's header is garbled: its samples cannot be read. ``--check`` and the
    repair name stream 1 with its sample count once, the repair says that no signal stream is
    left and where the samples still are (``--out``: the untouched recording; in place: the
    kept original), and exit 0 is not a silent loss any more."""
    path, damaged = _garble_header(session, tmp_path, 1)
    n = scan_xdf(session).streams[1].count
    with pytest.raises(DataFileError, match="No other signal stream is in the file"):
        load_recording(path)
    assert main(["repair", "--check", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count("unreadable stream 1 ('BrainFlow Synthetic'") == 1
    assert f"({n} samples)" in out and "leave out 1 unreadable stream(s) (1)" in out
    assert "malformed chunk" not in out

    copy = tmp_path / "fixed.xdf"
    assert main(["repair", str(path), "--out", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "warning: no signal stream is left" in out
    assert f"every recorded sample is still in {path}" in out
    assert _sha(path) == damaged and not (tmp_path / "rec.before-repair.xdf").exists()

    assert main(["repair", str(path)]) == 0
    out = capsys.readouterr().out
    kept = tmp_path / "rec.before-repair.xdf"
    assert f"every recorded sample is still in {kept}" in out
    assert _sha(kept) == damaged
    assert _sha(path) == _sha(copy)  # in place and --out repair alike
    after = scan_xdf(path)
    assert not after.cut_bytes and not after.lost and not after.missing_footers
    streams, _ = _streams(path, dejitter_timestamps=False)
    assert set(streams) == {"BrainFlow Synthetic-markers", "BrainFlow Synthetic-markers-details"}
    assert [row[0] for row in streams["BrainFlow Synthetic-markers"]["time_series"]] == LABELS
    # the damaged file back under its name and repaired again: the first kept original stays
    shutil.copyfile(kept, path)
    assert main(["repair", str(path)]) == 0
    assert f"kept as {tmp_path / 'rec.before-repair-2.xdf'}" in capsys.readouterr().out
    assert _sha(kept) == damaged == _sha(tmp_path / "rec.before-repair-2.xdf")


def test_read_file_names_the_repair_for_a_garbled_stream_header(data_dir, tmp_path):
    """`read_file` (replay, file: sources, calibrate, train) said only "use an intact copy" for a
    stream whose header is garbled, while `bci-app repair` now mends exactly that; it gives
    load_recording's message, naming the stream and the repair (review)."""
    from acquisition.files import read_file
    from bci_app.errors import DataFileError

    src = data_dir / "bci_essentials_xdf" / "sub-P001_ses-S001_task-MISwitch_run-001_eeg.xdf"
    raw = bytearray(src.read_bytes())
    j = raw.rfind(b"<?xml", 0, raw.find(b"<channel_format>string</channel_format>"))
    raw[j + 2:j + 6] = b"!!!!"  # the marker stream's header is no longer XML
    bad = tmp_path / "garbled.xdf"
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match=r"1 stream\(s\) that cannot be read.*"
                                            r"'PythonResponse'.*Run `bci-app repair "):
        read_file(bad)
