"""``bci-app stream``: a recording published over LSL, received by real pylsl inlets."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from acquisition.files import read_file
from acquisition.lsl_env import import_pylsl
from acquisition.lsl_outlet import EEGOutlet, MarkerOutlet
from acquisition.stream_info import StreamInfo
from tests.helpers.processes import ROOT, stop_process, wait_until

BDF_STIM = "mne-io-test-files/bdf/test_bdf_stim_channel.bdf"  # 4 ch, 500 Hz, 10 s, 9 triggers
BDF_TRIGGER_SAMPLES = [242, 310, 952, 1606, 2249, 2900, 3537, 4162, 4790]


def _resolve(pylsl, name: str, timeout: float = 10.0):
    streams = pylsl.resolve_byprop("name", name, 1, timeout)
    assert streams, f"LSL stream {name!r} not found within {timeout} s"
    return streams[0]


def _channels(info) -> list[tuple[str, str, str]]:
    out = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty():
        out.append((ch.child_value("label"), ch.child_value("unit"), ch.child_value("type")))
        ch = ch.next_sibling()
    return out


def test_stream_command_publishes_file(data_dir, stream_name):
    pylsl = import_pylsl()
    rec = read_file(data_dir / BDF_STIM)
    cmd = [sys.executable, "-m", "bci_app.cli", "stream", str(data_dir / BDF_STIM),
           "--name", stream_name, "--speed", "4", "--wait-consumers", "20"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        eeg_info = _resolve(pylsl, stream_name)
        mk_info = _resolve(pylsl, f"{stream_name}-markers")
        eeg_in = pylsl.StreamInlet(eeg_info, max_buflen=60)
        mk_in = pylsl.StreamInlet(mk_info, max_buflen=60)
        eeg_in.open_stream(timeout=10)
        mk_in.open_stream(timeout=10)
        full = eeg_in.info(timeout=10)
        assert full.channel_count() == 4 and full.nominal_srate() == 500.0
        assert full.type() == "EEG" and mk_info.type() == "Markers"
        assert _channels(full) == [("C3", "microvolts", "EEG"), ("C4", "microvolts", "EEG"),
                                   ("Cz", "microvolts", "EEG"), ("Status", "n/a", "STIM")]
        data, stamps, labels, mstamps = [], [], [], []

        def pull() -> bool:
            chunk, ts = eeg_in.pull_chunk(timeout=0.0, max_samples=2000)
            if ts:
                data.append(np.asarray(chunk))
                stamps.extend(ts)
            while True:
                sample, t = mk_in.pull_sample(timeout=0.0)
                if sample is None:
                    break
                labels.append(sample[0])
                mstamps.append(t)
            return len(stamps) >= rec.n_samples and len(labels) >= 9

        wait_until(pull, timeout=30, interval=0.02, what="every sample and marker over LSL")
        out, err = proc.communicate(timeout=15)
    finally:
        stop_process(proc)
    assert proc.returncode == 0, err
    assert "READY" in out and f"DONE {rec.n_samples} 9" in out
    received = np.concatenate(data)
    assert received.shape == (5000, 4)
    expected = rec.data.copy()
    expected[:, :3] *= 1e6  # EEG goes out in microvolts, the Status channel as it is
    np.testing.assert_allclose(received, expected, rtol=1e-12, atol=1e-9)
    stamps = np.asarray(stamps)
    np.testing.assert_allclose(np.diff(stamps), 1 / 500, atol=1e-6)
    assert labels == ["4", "2"] + ["1"] * 7
    np.testing.assert_allclose(mstamps, stamps[BDF_TRIGGER_SAMPLES], atol=1e-6)


def test_stream_command_bad_file(tmp_path, capsys):
    from bci_app.cli import main

    assert main(["stream", str(tmp_path / "gone.edf")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "rec.gdf"
    bad.write_bytes(b"x")
    assert main(["stream", str(bad)]) == 2
    assert "Supported extensions" in capsys.readouterr().err


def test_stream_command_bad_speed(data_dir, capsys):
    from bci_app.cli import main

    with pytest.raises(SystemExit):
        main(["stream", str(data_dir / BDF_STIM), "--speed", "0"])
    assert "--speed must be > 0" in capsys.readouterr().err


def test_outlets_in_process(stream_name):
    """EEGOutlet publishes V as microvolts with per-sample timestamps; MarkerOutlet strings."""
    pylsl = import_pylsl()
    info = StreamInfo(stream_name, "replay", ("Cz", "acc"), ("eeg", "misc"), ("V", "g"), 100.0)
    eeg = EEGOutlet(info)
    mk = MarkerOutlet(f"{stream_name}-markers")
    try:
        with pytest.raises(ValueError, match=r"shape \(n_samples, 2\)"):
            eeg.push_chunk(np.zeros((3, 3)))
        eeg_in = pylsl.StreamInlet(_resolve(pylsl, stream_name), max_buflen=10)
        mk_in = pylsl.StreamInlet(_resolve(pylsl, f"{stream_name}-markers"), max_buflen=10)
        eeg_in.open_stream(timeout=10)
        mk_in.open_stream(timeout=10)
        wait_until(lambda: eeg.have_consumers() and mk.have_consumers(), timeout=10,
                   what="consumers")
        t0 = pylsl.local_clock()
        x = np.array([[1e-6, 0.5], [2e-6, 0.25], [-3e-6, 1.0]])
        eeg.push_chunk(x, t0 + np.arange(3) / 100)
        mk.push("left", t0 + 0.01)
        got: list = []
        marks: list = []

        def pull() -> bool:
            chunk, ts = eeg_in.pull_chunk(timeout=0.0)
            got.extend(zip(ts, chunk))
            s, t = mk_in.pull_sample(timeout=0.0)
            if s is not None:
                marks.append((t, s[0]))
            return len(got) >= 3 and marks

        wait_until(pull, timeout=10, what="pushed data")
        np.testing.assert_allclose([v for _, v in got], [[1.0, 0.5], [2.0, 0.25], [-3.0, 1.0]])
        np.testing.assert_allclose([t for t, _ in got], t0 + np.arange(3) / 100, atol=1e-9)
        assert marks[0][1] == "left" and marks[0][0] == pytest.approx(t0 + 0.01, abs=1e-9)
        assert _channels(eeg_in.info(timeout=5)) == [
            ("Cz", "microvolts", "EEG"), ("acc", "g", "MISC")]
    finally:
        eeg.close()
        mk.close()
    with pytest.raises(RuntimeError, match="closed"):
        eeg.push_chunk(np.zeros((1, 2)))
