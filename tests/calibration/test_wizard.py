"""The calibration wizard, offscreen, driven through to a saved profile and a feedback run on a
simulated subject at max speed; and screenshots of its pages under Xvfb."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def wizard(qtbot, pretrained_csp, tmp_path):
    from ui.wizard import CalibrationWizard

    wiz = CalibrationWizard(source_spec="simulated:2", pretrained=pretrained_csp.path,
                            speed="max", user="wiz", trials_per_class=6, feedback_trials=3,
                            finetune_epochs=5, profiles_root=tmp_path / "profiles",
                            record_dir=tmp_path / "rec")
    qtbot.addWidget(wiz)
    wiz.show()
    yield wiz
    wiz.close()


def test_wizard_to_saved_profile_and_feedback(wizard, qtbot, tmp_path):
    w, c = wizard, wizard.controller
    # 1. device
    assert not w.device.isComplete()
    w.device.connect_source()
    qtbot.waitUntil(lambda: w.device.isComplete() and w.device.connect_btn.isEnabled(),
                    timeout=30_000)
    assert "64 channels @ 160 Hz" in w.device.status.text()
    w.next()
    # 2. signal check: traffic lights for every channel
    qtbot.waitUntil(lambda: len(w.signal.grid.statuses) == 64, timeout=20_000)
    assert set(w.signal.grid.statuses.values()) <= {"good", "warn", "bad"}
    assert "good" in w.signal.summary.text()
    w.next()
    # 3. instructions
    assert "left" in w.instructions.text.text() and w.instructions.trials.value() == 6
    w.next()
    # 4. cued recording: pause, resume, then to the end
    page = w.acquisition
    assert not page.isComplete()
    states = []
    c.protocolState.connect(lambda s, i: states.append(s))
    page.start_btn.click()
    qtbot.waitUntil(lambda: c.protocol.n_done >= 2, timeout=30_000)
    page.pause_btn.click()
    assert c.protocol.state.value == "paused" and page.pause_btn.text() == "Resume"
    page.pause_btn.click()
    qtbot.waitUntil(page.isComplete, timeout=60_000)
    assert page.finished == "done" and c.counts() == {"left": 6, "right": 6}
    assert "paused" in states and "cue" in states and page.progress.value() == 12
    assert c.recording_path is not None and c.recording_path.is_file()
    w.next()
    # 5. training
    qtbot.waitUntil(w.training.isComplete, timeout=120_000)
    assert w.training.bar.value() == 1000
    w.next()
    # 6. results: scores with chance and CI, confusion matrices, topomap
    r = w.results
    txt = r.scores.text()
    assert "chance 50%" in txt and "95% CI" in txt
    assert r.cm["adapted"].rowCount() == 2 and r.cm["baseline"].item(0, 0) is not None
    assert r.topo.pixmap() is not None and not r.topo.pixmap().isNull()
    assert "optimistic" not in txt  # pretrained on S011-S020, the subject is S002
    cfg = w.controller.pretrained.config  # a bundle that saw S002: the page says so
    w.controller.pretrained.config = {**cfg, "training": {**cfg["training"], "subjects": [2, 3]}}
    try:
        r.initializePage()
        assert "trained on simulated subject(s) [2]" in r.scores.text()
    finally:
        w.controller.pretrained.config = cfg
    r.initializePage()
    assert not r.isComplete()
    r.save_btn.click()
    assert r.isComplete()
    meta = json.loads((tmp_path / "profiles" / "wiz" / "profile.json").read_text())
    assert meta["n_trials"] == 12 and meta["recording"] == str(c.recording_path)
    assert meta["source"] == "simulated:2" and meta["montage"] == "standard_1005"
    w.next()
    # 7. online feedback with cued targets, live hit rate, co-adaptive update
    fb = w.feedback
    fb.coadapt.setChecked(True)
    fb.start_btn.click()
    qtbot.waitUntil(lambda: fb.runs_done == 1, timeout=60_000)
    assert len(c.feedback_hits) == 6 and "hit rate" in fb.hits.text()
    assert len(c.feedback_preds) > 50
    qtbot.waitUntil(lambda: fb.updates_done == 1, timeout=120_000)
    meta = json.loads((tmp_path / "profiles" / "wiz" / "profile.json").read_text())
    assert meta["n_trials"] == 18 and meta["feedback_runs"] == 1


def test_wizard_abort_keeps_the_recorded_trials(wizard, qtbot):
    w, c = wizard, wizard.controller
    w.device.connect_source()
    qtbot.waitUntil(lambda: w.device.isComplete() and w.device.connect_btn.isEnabled(),
                    timeout=30_000)
    w.next()
    w.next()
    w.next()
    w.acquisition.start_btn.click()
    qtbot.waitUntil(lambda: c.protocol.n_done >= 5, timeout=30_000)
    w.acquisition.abort_btn.click()
    qtbot.waitUntil(lambda: bool(w.acquisition.finished), timeout=20_000)
    assert w.acquisition.finished == "aborted"
    n = sum(c.counts().values())
    assert n == c.protocol.n_done >= 5 and len(c.calib_cues) == n
    assert w.acquisition.isComplete() == (min(c.counts().values()) >= 2)


def _have_xvfb() -> bool:
    return shutil.which("Xvfb") is not None


@pytest.mark.skipif(not _have_xvfb(), reason="Xvfb not installed (apt-get install xvfb "
                    "libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0)")
def test_wizard_screenshots_under_xvfb(tmp_path, pretrained_csp):
    from tests.ui.xvfb import x11_env, xvfb

    out = tmp_path / "shots"
    with xvfb(1100, 820) as display:
        env = x11_env(display)
        env["BCI_APP_SETTINGS"] = str(tmp_path / "settings.ini")
        cmd = [sys.executable, "-m", "ui.wizard.screenshot", "--out-dir", str(out),
               "--pretrained", str(pretrained_csp.path), "--source", "simulated:1",
               "--speed", "max", "--trials", "10", "--profiles-dir", str(tmp_path / "p"),
               "--record-dir", str(tmp_path / "r")]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "platform xcb" in proc.stdout, proc.stdout
    from PySide6 import QtGui

    for name in ("wizard_cue.png", "wizard_results.png", "wizard_signal_check.png"):
        img = QtGui.QImage(str(out / name))
        assert (img.width(), img.height()) == (1100, 820), name
        colours = {img.pixel(x, y) for x in range(0, 1100, 31) for y in range(0, 820, 19)}
        assert len(colours) > 5, name
    keep = os.environ.get("BCI_APP_SCREENSHOT_DIR")  # e.g. bench/out to keep the PNGs
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for f in out.glob("*.png"):
            shutil.copy(f, Path(keep) / f.name)
