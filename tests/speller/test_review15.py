"""Review 15 (speller): live spelling from a replayed file stops when the file has ended."""

from __future__ import annotations

import re
import time
from pathlib import Path

import mne

from bci_app.cli import main

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"


def test_live_spelling_from_a_file_stops_at_its_end(eegmmidb_path, tmp_path, capsys):
    """``bci-app spell --source file:...`` replays in real time; when the file ended it went on
    waiting for ``--duration`` (or Ctrl-C, without one) and then said "--duration ... reached".
    It now stops at the end, after the decoder's last windows, with ``stopped: end of file``.
    The file: the first 14 s of a real EEGMMIDB run (10 s of alignment, then decoding),
    replayed at ``--speed 4``."""
    edf = mne.datasets.eegbci.load_data(1, [4], path=str(eegmmidb_path), update_path=False)[0]
    short = tmp_path / "s001r04_14s_raw.fif"
    mne.io.read_raw_edf(edf, verbose="error").crop(tmax=14.0).save(short, verbose="error")
    t0 = time.monotonic()
    rc = main(["spell", "--source", f"file:{short}", "--model", str(BUNDLE), "--headless",
               "--no-lm", "--threshold", "0.51", "--dwell", "0.1", "--refractory", "0.1",
               "--duration", "45", "--speed", "4"])
    elapsed = time.monotonic() - t0
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert "stopped: end of file" in out, out[-3:]
    assert 3.5 <= elapsed < 20.0  # the file's 14 s at 4x, not the 45 s of --duration
    # the decoded windows after the alignment reached the speller before the stop
    assert any(re.match(r"\s+\d+\s+(left|right) ", line) for line in out), out
    assert out[-1].startswith('summary: "')
