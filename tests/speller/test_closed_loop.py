"""Closed loop with real EEG: a calibrated profile, real EEGMMIDB trials played on cue by the
simulated subject, the real DecoderWorker + dwell commander, and the speller.

Subject 7 (runs 4/8/12) is calibrated on 10 cued trials per class at max speed. The profile's
decoder is the tangent-space baseline fitted on those trials only (the shipped pretrained bundle
saw every EEGMMIDB subject, so its adapted version would have seen the trials being spelled);
the speller then plays only trials the calibration never played.
"""

from __future__ import annotations

import time

import pytest

from acquisition.simulated import SimulatedSubjectSource
from bci_app.speller.engine import SpellerEngine
from bci_app.speller.simulation import SimulatedUser, closed_loop, confusion_of

SUBJECT = 7
PHRASE = "yes"
MAX_COMMANDS = 60


@pytest.fixture(scope="module")
def s7_profile(eegmmidb_path, tmp_path_factory):
    from bci_app.commands.calibrate import default_pretrained, run_calibration
    from bci_app.config import REPO_ROOT
    from bci_app.profiles import load_profile
    from decoders.bundle import load_bundle

    # the CSP+LDA bundle calibrates in seconds (the EEGNet one fine-tunes for half a minute);
    # only the baseline fitted on the user's trials is used here either way
    pretrained = REPO_ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"
    if not (pretrained / "config.json").is_file():
        pretrained = default_pretrained()

    src = SimulatedSubjectSource.from_eegmmidb(SUBJECT, data_dir=eegmmidb_path, speed="max",
                                               seed=0, buffer_seconds=600)
    run = run_calibration(src, load_bundle(pretrained), trials_per_class=10,
                          record=None, user=f"s{SUBJECT}", choose="baseline",
                          profiles_root=tmp_path_factory.mktemp("profiles"), cv_folds=5,
                          finetune_epochs=5)
    played = {p.trial.key for p in src.played}
    return load_profile(run.profile), played


def test_closed_loop_real_eeg_writes_a_phrase(s7_profile, eegmmidb_path, lm):
    from decoders.online import DecoderWorker
    from decoders.smoothing import DwellCommander

    profile, played = s7_profile
    bundle = profile.bundle
    assert profile.classes == ["left", "right"] and profile.meta["chosen"] == "baseline"
    src = SimulatedSubjectSource.from_eegmmidb(
        SUBJECT, data_dir=eegmmidb_path, speed="max", seed=1, chunk_samples=32,
        buffer_seconds=60, trial_filter=lambda t: t.key not in played)
    src.connect(timeout=10, acquisition=False)
    t0 = time.monotonic()
    try:
        worker = DecoderWorker(src, bundle, hop=0.1, smoothing=0.5,
                               commander=DwellCommander(bundle.classes, threshold=0.7,
                                                        dwell=0.5, refractory=1.0))
        engine = SpellerEngine(lm, scheme="posterior", accuracy=0.85, confidence=0.9,
                               command_map={"left": 0, "right": 1})
        res, trials = closed_loop(engine, SimulatedUser(PHRASE), src, worker,
                                  max_commands=MAX_COMMANDS, wall_timeout_s=120)
    finally:
        src.disconnect()
    wall = time.monotonic() - t0
    cm = confusion_of(trials, bundle.classes)
    print(f"\nclosed loop S{SUBJECT}: {res.summary()}; confusion {cm.tolist()}; "
          f"{res.seconds:.0f} s of EEG in {wall:.1f} s")
    # every command came from a real trial the calibration never played
    assert len(src.played) == res.commands
    assert not {p.trial.key for p in src.played} & played
    assert [p.cls for p in src.played] == [t.intended for t in trials]
    assert res.finished and res.text == PHRASE and res.error_rate == 0
    assert res.commands <= MAX_COMMANDS
    assert res.command_accuracy > 0.7
    assert res.seconds > 4.0 * res.commands  # stream time: one trial (+ rest) per command
    assert wall < res.seconds / 5  # far faster than real time
