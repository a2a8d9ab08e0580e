"""Review 16e: the command line refuses what it cannot use, early and clearly.

- An EEG-to-text bundle given to a command that needs a motor-imagery one (``evaluate
  --bundle``, ``spell --model``, ``calibrate --pretrained``) is named as such, with the command
  that does take it, before any model or data is loaded (``evaluate`` crashed with
  ``KeyError: 'params'``; ``spell`` turned candidate sentences into speller commands).
- A bundle config without ``kind`` names the missing key, not "weights do not fit".
- ``--source brainflow:playback:BOARD:PATH`` replays a BrainFlow CSV (the playback board had no
  spec that could give it its file and board).
- A recording that cannot be created (``record --out``, ``live --record``, ``calibrate
  --record``) is refused before the source connects (a folder that cannot be created was a
  traceback after the connect).
- ``bci-app devices`` counts the boards it leaves out right.
- The playback board's session ends with its file; ``XDFWriter`` names a folder it cannot create
  (a ``FileNotFoundError`` traceback for the GUI and Python callers); ``bci-app devices | head``
  ends without a ``BrokenPipeError`` traceback.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from bci_app.cli import main
from bci_app.errors import BundleError, ConfigError
from tests.helpers.cli import fails
from tests.helpers.processes import ROOT

UNWRITABLE = "/proc/bci-app-test"  # not creatable, even for root
NO_DATA = "/nonexistent/eegmmidb"
CSP_BUNDLE = ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"




@pytest.fixture
def text_bundle(tmp_path) -> Path:
    """A folder that ``decoders.text.bundle.is_text_bundle`` takes for an EEG-to-text bundle
    (its config says ``"kind": "text"``, as ``save_text_bundle`` writes)."""
    path = tmp_path / "tb"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(
        {"format_version": 1, "kind": "text", "model": "eeg2text", "model_version": 1}))
    (path / "weights.safetensors").write_bytes(b"")
    return path


# ------------------------------------------------------------------ 1. text bundles
def test_evaluate_refuses_a_text_bundle_before_loading_data(text_bundle, capsys):
    err = fails(capsys, "evaluate", "--bundle", str(text_bundle), "--subjects", "1",
                "--no-report", "--data-dir", NO_DATA)
    assert f"--bundle: {text_bundle} is an EEG-to-text bundle" in err, err
    assert "`bci-app train --out`" in err and "`bci-app evaluate-text`" in err


def test_spell_refuses_a_text_bundle(text_bundle, capsys):
    for extra in (["--source", "synthetic", "--headless"], ["--simulate", "profile",
                                                            "--target", "ab"]):
        err = fails(capsys, "spell", "--model", str(text_bundle), *extra)
        assert f"--model: {text_bundle} is an EEG-to-text bundle" in err, err
        assert "`bci-app live --model`" in err and "`bci-app calibrate`" in err


def test_calibrate_refuses_a_text_pretrained_bundle_before_the_session(text_bundle, tmp_path,
                                                                       capsys):
    err = fails(capsys, "calibrate", "--headless", "--source", "simulated:7", "--pretrained",
                str(text_bundle), "--no-record", "--profiles-dir", str(tmp_path / "p"),
                "--data-dir", NO_DATA)
    assert f"--pretrained: {text_bundle} is an EEG-to-text bundle" in err, err
    assert "`bci-app train --out`" in err


def test_a_motor_imagery_bundle_is_not_taken_for_a_text_bundle(tmp_path):
    from bci_app.commands import refuse_text_bundle

    refuse_text_bundle(CSP_BUNDLE, "--bundle", "never")  # no error
    refuse_text_bundle(tmp_path / "missing", "--bundle", "never")  # the loader says it


# ------------------------------------------------------------------ 2. a config without "kind"
@pytest.mark.parametrize("key", ["kind", "params"])
def test_bundle_config_without_a_key_names_the_key(tmp_path, key):
    from decoders.bundle import load_bundle

    path = shutil.copytree(CSP_BUNDLE, tmp_path / "b")
    cfg = json.loads((path / "config.json").read_text())
    del (cfg if key == "kind" else cfg["decoder"])[key]
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match=rf"config.json lacks the key '{key}'") as exc:
        load_bundle(path)
    assert "weights" not in str(exc.value)


# ------------------------------------------------------------------ 3. the playback board
def _brainflow_csv(path: Path, n: int = 100) -> tuple[Path, np.ndarray]:
    """``n`` samples of the synthetic board's layout at 250 Hz, written by BrainFlow's own
    writer; returns the path and the EEG rows (microvolts, as in the file)."""
    from brainflow.board_shim import BoardShim
    from brainflow.data_filter import DataFilter

    rows = BoardShim.get_num_rows(-1)
    table = np.zeros((rows, n))
    eeg = BoardShim.get_eeg_channels(-1)
    table[eeg] = np.random.default_rng(0).standard_normal((len(eeg), n)) * 10.0
    table[BoardShim.get_package_num_channel(-1)] = np.arange(n) % 256
    table[BoardShim.get_timestamp_channel(-1)] = 1.7e9 + np.arange(n) / 250.0
    DataFilter.write_file(table, str(path), "w")
    return path, table[eeg]


def test_playback_spec_gives_the_board_its_file_and_master(tmp_path):
    from acquisition.brainflow_source import BrainFlowSource
    from bci_app.sources import make_source

    csv, _ = _brainflow_csv(tmp_path / "rec.csv")
    src = make_source(f"brainflow:playback:synthetic:{csv}?channels=" + ",".join(
        f"E{i}" for i in range(16)))
    assert isinstance(src, BrainFlowSource)
    assert (src.board_id, src.master_board, src.file) == (-3, -1, str(csv))
    for spec in ("brainflow:playback", "brainflow:playback:synthetic", "brainflow:-3:"):
        with pytest.raises(ConfigError, match=r"brainflow:playback:BOARD:PATH"):
            make_source(spec)


def test_record_from_the_playback_board(tmp_path, capsys):
    from acquisition.files import read_file

    csv, eeg = _brainflow_csv(tmp_path / "rec.csv")
    out = tmp_path / "pb.xdf"
    t0 = time.monotonic()  # 0.4 s of file: the session ends with it, not at --duration
    assert main(["record", "--source", f"brainflow:playback:synthetic:{csv}", "--out",
                 str(out), "--duration", "30", "--quiet"]) == 0, capsys.readouterr().err
    assert time.monotonic() - t0 < 10
    rec = read_file(out)
    assert rec.data.shape == (eeg.shape[1], eeg.shape[0])  # every sample of the file
    np.testing.assert_allclose(rec.data, eeg.T * 1e-6, rtol=1e-5, atol=1e-12)


# ------------------------------------------------------------------ 4. recording targets
def test_record_refuses_an_existing_out_before_connecting(tmp_path, capsys):
    old = tmp_path / "old.xdf"
    old.write_bytes(b"keep")
    t0 = time.monotonic()
    err = fails(capsys, "record", "--source", "lsl:review16e-no-such-stream", "--timeout", "3",
                "--out", str(old))
    assert time.monotonic() - t0 < 2.5  # not after the 3 s wait for the stream
    assert f"--out: {old} already exists" in err
    assert old.read_bytes() == b"keep"


def test_live_record_in_a_folder_that_cannot_be_created(capsys):
    err = fails(capsys, "live", "--headless", "--source", "synthetic", "--record",
                f"{UNWRITABLE}/x.xdf", "--duration", "1")
    assert "--record: cannot write into" in err and UNWRITABLE in err


@pytest.mark.parametrize("record", [f"{UNWRITABLE}/x.xdf", f"{UNWRITABLE}/"])
def test_calibrate_unwritable_record_refused_before_the_session(record, tmp_path, capsys):
    err = fails(capsys, "calibrate", "--headless", "--source", "simulated:7", "--record",
                record, "--profiles-dir", str(tmp_path / "p"), "--data-dir", NO_DATA)
    assert "--record: cannot write into" in err and UNWRITABLE in err


# ------------------------------------------------------------------ 5. devices
def test_devices_counts_the_boards_it_leaves_out(capsys):
    assert main(["devices", "--timeout", "0.05"]) == 0
    short = capsys.readouterr().out
    assert main(["devices", "--timeout", "0.05", "--all-boards"]) == 0
    full = capsys.readouterr().out
    board = re.compile(r"^\s+-?\d+\s+\S+\s+\d+ EEG ch", re.M)
    shown, every = len(board.findall(short)), len(board.findall(full))
    more = int(re.search(r"\.\.\. (\d+) more", short).group(1))
    assert shown + more == every, (shown, more, every)


# ------------------------------------------------------------------ 6. lead's follow-ups
@pytest.mark.parametrize("parent", ["missing", "file"])
def test_xdf_writer_names_a_folder_it_cannot_create(tmp_path, parent):
    from acquisition.xdf_writer import XDFWriter
    from bci_app.errors import RecordingError

    folder = Path(UNWRITABLE) if parent == "missing" else tmp_path / "a-file"
    if parent == "file":
        folder.write_bytes(b"not a folder")
    with pytest.raises(RecordingError, match=rf"Cannot create the folder {re.escape(str(folder))}"
                                             r".*Fix: choose a folder you can write"):
        XDFWriter(folder / "x.xdf")
    if parent == "file":
        assert folder.read_bytes() == b"not a folder"


def test_output_closed_by_its_reader_ends_without_a_traceback():
    import os
    import subprocess
    import sys

    # unbuffered, so that lines are written as printed (block-buffered, ~1 KB would be written
    # once at exit, after the reader's close, without the pipe ever breaking mid-run)
    proc = subprocess.Popen([sys.executable, "-m", "bci_app.cli", "devices", "--timeout", "0.1"],
                            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_bundle_records_the_command_with_global_options(tmp_path, capsys, data_dir):
    """The bundle's provenance command (what reproduces it) was recorded only when ``train``
    came first in ``sys.argv``: ``bci-app -v train ...`` recorded none."""
    out = tmp_path / "b"
    args = ["--lsl-scope", "machine", "train", "--model", "csp_lda", "--subjects", "1",
            "--channels", "C3,Cz,C4", "--data-dir", str(data_dir / "eegmmidb"), "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training"]["command"] == "bci-app " + " ".join(args)


@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_evaluate_text_refuses_no_training_epochs(capsys, epochs):
    """``train`` refuses ``--epochs 0``; ``evaluate-text`` evaluated the untrained model."""
    err = fails(capsys, "evaluate-text", "--epochs", epochs, "--snr", "4")
    assert f"--epochs: expected an integer >= 1, got {epochs}" in err



def test_a_broken_pipe_that_is_not_stdout_is_an_error(monkeypatch, capsys):
    """Only a closed stdout ends quietly with 141; a broken socket is an unexpected error."""
    import bci_app.commands.devices as devices

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")  # e.g. a download's socket

    monkeypatch.setattr(devices, "run", broken)
    with pytest.raises(BrokenPipeError):
        main(["devices"])


def test_playback_path_may_hold_question_marks_and_a_home_folder():
    from bci_app.sources import make_source, split_channel_option

    spec = "brainflow:playback:synthetic:/data/what?.csv"
    assert split_channel_option(spec) == (spec, None)  # (was: "source option '.csv'")
    assert split_channel_option(spec + "?channels=C3") == (spec, "C3")
    assert make_source("brainflow:playback:synthetic:~/rec.csv").file == str(Path.home() / "rec.csv")
