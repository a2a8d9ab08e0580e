"""Review 12b: recording, export and repair, each test failing on the code before its fix."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.xdf_writer import XDFWriter, scan_xdf
from bci_app.errors import RecordingError
from bci_app.recording import load_recording

from .test_xdf_writer import _hdr, _streams


def test_disk_full_footers_describe_only_what_reached_the_file(tmp_path):
    """A full disk hit the batch that held a late stream's header (a prediction stream added
    after start) and 1900 more EEG samples. The footers then written named the lost stream
    (pyxdf: KeyError, our scan: "chunk for stream 2 before its header") and counted the lost
    samples, while the error said the file was "complete and readable"."""
    path = tmp_path / "r.xdf"
    ts = 1000.0 + np.arange(2000) / 250.0
    data = np.random.default_rng(0).standard_normal((2000, 4)) * 1e-5
    w = XDFWriter(path, byte_quota=20_000)
    w.add_stream(1, _hdr("eeg", 4, 250, "double64"))
    w.write_clock_offset(1, ts[0], 0.0)
    w.write_samples(1, ts[:100], data[:100])
    w.flush()
    w.add_stream(2, _hdr("late", 1, 0, "double64", "Predictions"))
    w.write_samples(2, ts[:3], data[:3, :1])
    w.write_clock_offset(1, ts[100], 0.0)
    w.write_samples(1, ts[100:], data[100:])
    with pytest.raises(RecordingError, match="disk is full.*complete and readable"):
        w.flush()
    scan = scan_xdf(path)
    assert not scan.skipped and scan.torn_bytes == 0 and not scan.missing_footers
    s, _ = _streams(path, dejitter_timestamps=False)
    assert set(s) == {"eeg"}
    np.testing.assert_array_equal(s["eeg"]["time_series"], data[:100])
    footer = s["eeg"]["footer"]["info"]
    assert int(footer["sample_count"][0]) == 100
    assert float(footer["last_timestamp"][0]) == ts[99]
    assert len(footer["clock_offsets"][0]["offset"]) == 1
    load_recording(path)


def test_disk_full_while_closing_still_writes_the_footers(tmp_path):
    """The last batch (the final samples + the footers of close()) did not fit: the file was
    cut back, but close() had already marked every footer written, so the file ended with a
    bare Boundary and no footer at all (``bci-app repair --check`` then reported damage)."""
    path = tmp_path / "r.xdf"
    ts = 1000.0 + np.arange(2000) / 250.0
    data = np.zeros((2000, 4))
    w = XDFWriter(path, byte_quota=20_000)
    w.add_stream(1, _hdr("eeg", 4, 250, "double64"))
    w.write_samples(1, ts[:100], data[:100])
    w.flush()
    w.write_samples(1, ts[100:], data[100:])
    with pytest.raises(RecordingError, match="disk is full"):
        w.close()
    assert w.closed
    scan = scan_xdf(path)
    assert scan.torn_bytes == 0 and not scan.missing_footers
    s, _ = _streams(path, dejitter_timestamps=False)
    assert int(s["eeg"]["footer"]["info"]["sample_count"][0]) == 100


def test_a_garbled_chunk_length_drops_only_the_bytes_up_to_the_next_boundary(tmp_path, capsys):
    """One flipped bit in the length field of a Samples chunk 40 % into the file: the chunk no
    longer ends where a chunk starts, so the scan took everything from there on as a torn tail
    and ``bci-app repair`` (in place) deleted the last 60 % of the recording. Now the repair
    resumes at the next Boundary chunk (XDF writes them for this): only that chunk is lost."""
    import struct

    from bci_app.cli import main

    from .test_xdf_writer import _write

    path = tmp_path / "r.xdf"
    data, ts, _ = _write(path)  # 10 chunks of 100 samples, a Boundary after each
    raw = bytearray(path.read_bytes())
    at = raw.find(b"\x08" + struct.pack("<d", ts[400]))  # first sample of the 5th chunk
    length_at = at - 2 - 4 - 2 - 4  # n-samples varlen, stream id, tag, uint32 length
    assert raw[length_at - 1] == 4
    raw[length_at + 1] ^= 0x01  # the length is now 256 bytes off
    path.write_bytes(bytes(raw))
    scan = scan_xdf(path)
    assert scan.torn_bytes == 0 and len(scan.skipped) == 1
    assert "next boundary chunk" in scan.skipped[0][2]
    assert main(["repair", str(path)]) == 0
    capsys.readouterr()
    s, _ = _streams(path, dejitter_timestamps=False)
    keep = np.r_[0:400, 500:1000]
    np.testing.assert_array_equal(s["eeg"]["time_series"], data[keep])
    np.testing.assert_array_equal(s["eeg"]["time_stamps"], ts[keep])
    assert int(s["eeg"]["footer"]["info"]["sample_count"][0]) == 900
    assert len(s["mk"]["time_series"]) == 9  # the marker of the dropped stretch only
    assert int(s["mk"]["footer"]["info"]["sample_count"][0]) == 9
    again = scan_xdf(path)
    assert not again.skipped and again.cut_bytes == 0 and not again.missing_footers
    load_recording(path)


def _record_labels(path, labels, n=1000):
    from acquisition.markers import Marker
    from acquisition.stream_info import StreamInfo

    from .test_review10 import T0, _record

    k = len(labels)
    info = StreamInfo("dev", "test", labels, ["eeg"] * k, ["uV"] * k, 100.0)
    data = np.random.default_rng(0).standard_normal((n, k)) * 10
    _record(path, info, data, [Marker(T0 + 0.5, "cue ü → left", 1.0, "t")])
    return data


@pytest.mark.parametrize(
    ("to", "labels", "bad"),
    [("fif", ["Fp1", "Kanal-Ü"], "'Kanal-Ü'"),
     ("edf", ["Fp1", "Kanal-Ü"], "'Kanal-Ü'"),
     ("edf", ["Fp1", "Fp1-Referenz-links"], "'Fp1-Referenz-links'")],
)
def test_export_of_labels_a_format_cannot_hold_names_them_and_writes_nothing(
        tmp_path, capsys, to, labels, bad):
    """A device with a non-ASCII channel label ("Kanal-Ü"), or one longer than EDF's 16
    characters: `bci-app export --to fif` ended in a bare UnicodeEncodeError traceback and left
    a half-written ``_raw.fif`` that the next run refused ("already exists"); --to edf ended in
    UnicodeEncodeError / RuntimeError. BIDS (BrainVision, UTF-8) keeps such labels."""
    from bci_app.cli import main

    path = tmp_path / "my rec.xdf"
    _record_labels(path, labels)
    out = tmp_path / "out"
    assert main(["export", str(path), "--to", to, "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert bad in err and "--to bids" in err and "rename_channels" in err
    assert not out.exists() or not any(out.iterdir())
    assert main(["export", str(path), "--to", "bids", "--out", str(out)]) == 0
    vhdr = next(out.rglob("*.vhdr")).read_text(encoding="utf-8")
    assert labels[1] in vhdr


def test_export_stopped_by_a_full_disk_leaves_no_half_written_file(tmp_path):
    """A FIF export that hit the file-size limit (as a full disk does) said "cannot write ...
    free disk space" but left the cut ``_raw.fif`` behind, so after freeing space the same
    command refused with "already exists; pass --overwrite"."""
    import resource
    import signal
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "rec.xdf"
    _record_labels(path, ["Fp1", "Fp2", "C3", "C4"], n=4000)  # FIF ~ 130 kB
    out = tmp_path / "out"

    def limit():  # in the child: write() past 100 kB fails with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))

    code = ("import sys; from bci_app.cli import main; "
            f"sys.exit(main(['export', {str(path)!r}, '--to', 'fif', '--out', {str(out)!r}]))")
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         timeout=120, preexec_fn=limit)
    assert res.returncode != 0, res.stdout + res.stderr
    assert "cannot write" in res.stderr and "free disk space" in res.stderr, res.stderr
    assert not (out / "rec_raw.fif").exists()
    from bci_app.recording import export_recording

    fif = export_recording(path, "fif", out)  # space freed: the same command now works
    assert fif.stat().st_size > 100_000
