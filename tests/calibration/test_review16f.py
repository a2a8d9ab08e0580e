"""Review 16f: the calibration path.

- the Graz order keeps ``max_run`` for long runs (a uniform shuffle failed 1000 tries from about
  40 trials per class on, and the order then had runs of 6 and more);
- ``--seed -1`` and ``--trials 1`` are refused before the session (a numpy traceback once the
  source opened; an error after every trial had been cued);
- the wizard's Pause is off once the last trial is done (it raised in the slot until the run's
  last samples came in); the wizard never trains on a run recorded from another source, never
  lets feedback or Finish use a profile saved from an earlier result, and a co-adaptive update
  keeps the calibration's protocol in ``profile.json``.

The wizard tests drive a simulated subject (real EEGMMIDB EEG) at max speed with the shipped
CSP+LDA bundle, 2 trials per class.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from bci_app.errors import ConfigError
from bci_app.protocol import GrazProtocol, balanced_order
from tests.helpers.cli import fails

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED_CSP = ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"


def _longest_run(order) -> int:
    best = run = 1
    for a, b in zip(order, order[1:]):
        run = run + 1 if a == b else 1
        best = max(best, run)
    return best


@pytest.mark.parametrize("classes, per_class", [(("left", "right"), 60),
                                                (("left", "right", "feet"), 80)])
def test_long_runs_keep_the_longest_run_of_equal_cues(classes, per_class):
    for seed in range(3):
        order = balanced_order(classes, per_class, seed, max_run=3)
        assert Counter(order) == {c: per_class for c in classes}
        assert _longest_run(order) <= 3, f"seed {seed}: a run of {_longest_run(order)}"
        assert order == balanced_order(classes, per_class, seed, max_run=3)  # deterministic
    assert GrazProtocol(classes, per_class, seed=0).order == balanced_order(classes, per_class, 0)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_a_bad_seed_is_a_config_error(seed):
    with pytest.raises(ConfigError, match=r"seed: expected an integer >= 0"):
        GrazProtocol(("left", "right"), 2, seed=seed)


@pytest.mark.parametrize("args, match", [(("--seed", "-1"), r"--seed: expected an integer >= 0"),
                                         (("--trials", "1"), r"--trials: expected 2 or more")])
def test_cli_refuses_before_the_session(capsys, tmp_path, args, match):
    err = fails(capsys, "calibrate", "--source", "simulated:2", "--speed", "max", "--headless",
                "--no-record", "--profiles-dir", str(tmp_path), *args)
    assert re.search(match, err), err
    assert "Traceback" not in err and "Fix:" in err
    assert not any(tmp_path.iterdir())  # nothing ran


# ------------------------------------------------------------------------------------ wizard
@pytest.fixture
def wizard(qtbot, tmp_path):
    pytest.importorskip("PySide6")
    pytest.importorskip("pytestqt")
    from ui.wizard import CalibrationWizard

    wiz = CalibrationWizard(source_spec="simulated:2", pretrained=str(PRETRAINED_CSP),
                            speed="max", user="rev16f", trials_per_class=2, feedback_trials=2,
                            finetune_epochs=1, profiles_root=tmp_path / "profiles",
                            record_dir=tmp_path / "rec")
    wiz.confirm = lambda title, question: True
    wiz.results.confirm = lambda title, question: True
    qtbot.addWidget(wiz)
    wiz.show()
    yield wiz
    wiz.close()
    assert wiz.controller.wait_training(30.0)


def _connect(w, spec: str) -> None:
    from tests.ui.fakes import wait_until

    w.device.source.setCurrentText(spec)
    w.device.connect_source()
    wait_until(lambda: w.device.isComplete() and w.device.connect_btn.isEnabled(), 60)
    assert w.controller.source_spec == spec


def _record_and_train(w) -> None:
    from tests.ui.fakes import wait_until

    assert w.currentPage() is w.acquisition
    w.acquisition.start_btn.click()
    wait_until(w.acquisition.isComplete, 60)
    w.next()
    wait_until(w.training.isComplete, 60)
    w.next()
    assert w.currentPage() is w.results


def test_a_run_recorded_from_another_source_is_not_trained_on(wizard):
    w, c = wizard, wizard.controller
    _connect(w, "simulated:2")
    w.next(), w.next(), w.next()
    w.acquisition.start_btn.click()
    from tests.ui.fakes import wait_until

    wait_until(w.acquisition.isComplete, 60)
    w.back(), w.back(), w.back()
    assert w.currentPage() is w.device
    _connect(w, "simulated:7")  # another person's EEG (same channels)
    w.next(), w.next(), w.next()
    # the finished run was subject 2's: kept, it was trained on and saved as simulated:7's
    assert not w.acquisition.isComplete() and c.calib_data is None
    assert w.acquisition.start_btn.isEnabled() and w.acquisition.info.text() == "not started"


def test_pause_is_off_once_the_last_trial_is_done(wizard):
    """Between the protocol's end and the run's last samples (0.5 s of signal) Pause was still
    enabled, and a click raised 'GrazProtocol.pause: cannot pause while done' in the slot."""
    from tests.ui.fakes import process_events_for, wait_until

    w, c = wizard, wizard.controller
    _connect(w, "simulated:2")
    w.next(), w.next(), w.next()
    page = w.acquisition
    # hold the pump when the protocol ends: the run's tail is not in yet
    c.protocolState.connect(lambda state, i: setattr(c, "hold", True) if state == "done" else None)
    page.start_btn.click()
    wait_until(lambda: c.protocol.state.value == "done", 60)
    process_events_for(0.05)
    assert c.mode == "tail" and not page.isComplete()
    assert not page.pause_btn.isEnabled() and not page.abort_btn.isEnabled()
    c.hold = False
    wait_until(page.isComplete, 60)
    assert page.finished == "done"


def test_feedback_uses_the_profile_of_the_result_shown_and_keeps_its_protocol(wizard):
    from tests.ui.fakes import wait_until

    w, c = wizard, wizard.controller
    _connect(w, "simulated:2")
    w.next(), w.next(), w.next()
    _record_and_train(w)
    w.results.save_btn.click()
    first = c.profile_path
    assert first is not None and w.results.isComplete()
    # a new training (Back to the cued recording, Next): the Results page shows its result
    w.back(), w.back()
    assert w.currentPage() is w.acquisition
    w.next()
    wait_until(w.training.isComplete, 60)
    w.next()
    # the profile saved before is the earlier result's: Next (feedback, Finish) waited for a save
    assert c.profile_path is None and not w.results.isComplete()
    w.results.save_btn.click()
    assert c.profile_path == first and w.results.isComplete()
    calib = json.loads((first / "profile.json").read_text())["protocol"]
    assert calib["trials_per_class"] == 2 and len(calib["order"]) == 4
    # a co-adaptive update re-saves the profile: its protocol stays the calibration's
    w.next()
    w.feedback.trials.setValue(1)
    w.feedback.coadapt.setChecked(True)
    updates = []
    c.coadapted.connect(lambda result, error: updates.append(error))
    w.feedback.start_btn.click()
    wait_until(lambda: updates, 60)
    assert updates == [""]
    meta = json.loads((first / "profile.json").read_text())
    assert meta["n_trials"] == 6 and meta["feedback_runs"] == 1
    assert meta["protocol"] == calib  # was the feedback run's (1 target per class, seed 100)
    # the feedback run the update trained on is on disk (it was recorded nowhere): its EEG from
    # the run's start, its cues and the decoder's predictions
    import pyxdf

    (fb,) = meta["feedback_recordings"]
    assert fb != meta["recording"] and Path(fb).parent == Path(meta["recording"]).parent
    streams, _ = pyxdf.load_xdf(fb)
    by_type = {s["info"]["type"][0]: s for s in streams}
    assert {"EEG", "Markers", "Predictions"} <= set(by_type)
    cues = [m[0] for m in by_type["Markers"]["time_series"] if m[0].startswith("cue/")]
    assert len(cues) == 2  # 1 target per class
    eeg = by_type["EEG"]["time_stamps"]
    assert eeg[0] <= by_type["Predictions"]["time_stamps"][0]
    calib_eeg = next(s for s in pyxdf.load_xdf(meta["recording"])[0]
                     if s["info"]["type"][0] == "EEG")
    assert eeg[0] > calib_eeg["time_stamps"][-1]  # from the run's start, not the whole buffer


def test_feedback_is_recorded_after_the_same_source_is_connected_again(wizard, tmp_path):
    """Connecting the same source again (the cued run is kept) closed the wizard's session, and
    the feedback run was then recorded nowhere; a run without a co-adaptive update was not noted
    in profile.json either."""
    from tests.ui.fakes import wait_until

    w, c = wizard, wizard.controller
    _connect(w, "simulated:2")
    w.next(), w.next(), w.next()
    _record_and_train(w)
    for _ in range(5):
        w.back()
    assert w.currentPage() is w.device
    _connect(w, "simulated:2")  # the same source again (e.g. the cap plugged in again)
    w.next(), w.next(), w.next()
    assert w.acquisition.isComplete()  # the run is kept
    w.next()
    wait_until(w.training.isComplete, 60)
    w.next()
    w.results.save_btn.click()
    w.next()
    w.feedback.trials.setValue(1)
    done = []
    c.feedbackFinished.connect(lambda rate: done.append(rate))
    w.feedback.start_btn.click()
    wait_until(lambda: done, 60)
    (fb,) = c.feedback_recordings
    assert fb.is_file() and fb.suffix == ".xdf" and fb.parent == tmp_path / "rec"
    meta = json.loads((c.profile_path / "profile.json").read_text())
    assert meta["feedback_runs"] == 1 and meta["feedback_recordings"] == [str(fb)]
