"""A user profile written by `bci-app calibrate` runs directly in `replay` / `live` (its
alignment is already fitted: every window is decoded, none is spent on alignment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers.processes import ROOT


def _cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "bci_app.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_calibrated_profile_replays_with_its_alignment(tmp_path, data_dir):
    env = {**os.environ, "BCI_APP_RECORDINGS_DIR": str(tmp_path / "rec")}
    # this test checks the profile, not its figures: 2 folds and 5 epochs keep it short
    r = _cli("calibrate", "--source", "simulated:2", "--trials", "6", "--headless", "--speed",
             "max", "--user", "p2", "--profiles-dir", str(tmp_path / "profiles"), "--quiet",
             "--cv-folds", "2", "--finetune-epochs", "5", env=env)
    assert r.returncode == 0, r.stderr
    # the shipped bundle saw S001-S020: the run says its figures are optimistic
    assert "note: the pretrained bundle was trained on simulated subject(s) [2]" in r.stdout
    profile = tmp_path / "profiles" / "p2"
    assert (profile / "profile.json").is_file()
    edf = data_dir / "eegmmidb/MNE-eegbci-data/files/eegmmidb/1.0.0/S002/S002R12.edf"
    r = _cli("replay", str(edf), "--model", str(profile), "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # 125 s of signal, windows every 0.1 s: ~1200 predictions; an unsupervised alignment
    # warm-up (10 s of signal) would have cost 100 of them
    assert out["predictions"] >= 1200
    assert out["n_trials"] == 15
