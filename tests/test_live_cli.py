"""``bci-app live`` as a user runs it: options that need --headless, SIGTERM, no empty files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pyxdf

from tests.helpers.processes import ROOT
from tests.test_cli import bci_app


def test_headless_only_options_without_headless_are_refused(tmp_path):
    path = tmp_path / "gui.xdf"
    r = bci_app("live", "--source", "synthetic", "--record", str(path), "--duration", "3",
                timeout=30)
    assert r.returncode == 2
    assert "--duration, --record" in r.stderr and "only apply with --headless" in r.stderr
    assert not path.exists()


def test_duration_must_be_positive():
    r = bci_app("live", "--headless", "--duration", "0", timeout=30)
    assert r.returncode == 2 and "--duration must be > 0" in r.stderr


def test_a_model_that_does_not_fit_the_source_leaves_no_recording(tmp_path):
    path = tmp_path / "rec.xdf"
    r = bci_app("live", "--headless", "--source", "synthetic", "--duration", "2",
                "--model", "decoders/pretrained/mi_left_right_csp_lda_ea", "--record", str(path),
                timeout=60)
    assert r.returncode == 2 and "FC5" in r.stderr  # the synthetic board has no FC5
    assert not path.exists()
    assert "recorded" not in r.stdout  # it said "recorded <path>" of a file never written


def test_sigterm_finishes_the_recording(tmp_path):
    path = tmp_path / "rec.xdf"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bci_app.cli", "live", "--headless", "--source", "synthetic",
         "--record", str(path)],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        head = []
        while not any(ln.startswith("[") for ln in head):  # a status line: 1 s streamed
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            head.append(line)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        out = "".join(head) + out
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"recording to {path}" in out and f"recorded {path}" in out
    check = bci_app("repair", str(path), "--check", timeout=30)
    assert check.returncode == 0 and "file is complete" in check.stdout
    streams, _ = pyxdf.load_xdf(str(path))
    eeg = next(s for s in streams if s["info"]["type"][0] == "EEG")
    assert len(eeg["time_stamps"]) > 250


def test_stream_picks_a_stream_inside_an_xdf_file(tmp_path, data_dir):
    xdf = data_dir / "xdf-example-files" / "empty_streams.xdf"  # no stream of type EEG
    r = bci_app("live", "--headless", "--source", f"file:{xdf}", "--duration", "1", timeout=30)
    assert r.returncode == 2 and "--stream NAME" in r.stderr
    out = tmp_path / "rec.xdf"
    name = "Data stream: test stream 0 counter"
    r = bci_app("record", "--source", f"file:{xdf}", "--stream", name, "--speed", "100",
                "--out", str(out), "--quiet", timeout=60)
    assert r.returncode == 0, r.stderr
    streams, _ = pyxdf.load_xdf(str(out))
    rec = next(s for s in streams if s["info"]["name"][0] == name)
    assert len(rec["time_stamps"]) == 10


def test_stream_needs_a_file_source():
    r = bci_app("live", "--headless", "--stream", "x", "--duration", "1", timeout=30)
    assert r.returncode == 2 and "is not a file" in r.stderr
