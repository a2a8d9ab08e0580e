"""Closed loop, headless: a simulated subject (held-out EEGMMIDB subjects) runs `calibrate`;
the saved profile is scored on the trials it never played. Shuffled cue labels score at chance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from acquisition.files import read_file
from acquisition.simulated import SimulatedSubjectSource
from bci_app.cli import main
from bci_app.commands.calibrate import run_calibration, score_unplayed
from bci_app.profiles import load_profile
from decoders.calibration import CVScore

from .conftest import PRETRAIN_SUBJECTS, TARGET_SUBJECTS

#: Stated margin: pooled held-out accuracy must exceed chance by this much (and be significant).
MARGIN = 0.10


def closed_loop(subject, pretrained, tmp_path, *, compliance=1.0, seed=0, record=None,
                cv_folds=5):
    src = SimulatedSubjectSource.from_eegmmidb(subject, speed="max", buffer_seconds=600,
                                               seed=seed, compliance=compliance)
    run = run_calibration(src, pretrained, trials_per_class=10, seed=seed, user=f"sim{subject}",
                          profiles_root=tmp_path / "profiles", record=record,
                          finetune_epochs=5, cv_folds=cv_folds,
                          source_spec=f"simulated:{subject}")
    profile = load_profile(run.profile)
    return run, profile, score_unplayed(src, profile.bundle)


def pooled(scores):
    y = np.concatenate([s.y_true for s in scores])
    p = np.concatenate([s.y_pred for s in scores])
    return CVScore("pooled", y, p, 2, 0)


def test_closed_loop_above_chance_and_shuffled_at_chance(pretrained_csp, tmp_path):
    """Real cues: pooled held-out accuracy > chance + MARGIN and above the binomial 95 % chance
    threshold. Shuffled cues (a simulated subject that ignores them, compliance 0): the decoder
    fitted on the user's trials alone (the tangent-space baseline) is at chance, and the adapted
    pretrained decoder is no better than the pretrained model with alignment only (no labels).

    The adapted CSP+LDA refits its classifier on the pretraining trials plus the user's (as in
    memory, the bundle keeps its training features), so wrong user labels cannot pull it to
    chance: what the pretrained model knows stays; the labels must add nothing, not take it.
    A decoder fitted on random labels is a random direction in a feature space where the classes
    may be well separated, so *one* such decoder can score far from 50 % on held-out trials (its
    sign is a coin flip); chance is its expectation. So the shuffled check averages 10 refits per
    subject on label permutations of the same recordings."""
    from decoders.calibration import calibrate

    assert not set(TARGET_SUBJECTS) & set(pretrained_csp.config["training"]["subjects"])
    assert pretrained_csp.config["training"]["subjects"] == PRETRAIN_SUBJECTS
    real, shuffled_acc, shuffled_own, prior_acc = [], [], [], []
    rng = np.random.default_rng(0)
    for s in TARGET_SUBJECTS:
        run, profile, held = closed_loop(s, pretrained_csp, tmp_path)
        assert run.epochs.X.shape[0] == 20 and np.bincount(run.epochs.y).tolist() == [10, 10]
        assert held.n == 45 - 20  # every trial not played is scored, none twice
        assert len({p.trial.key for p in run.source.played}) == 20
        real.append(held)
        run_s, _, held_s = closed_loop(s, pretrained_csp, tmp_path, compliance=0.0, seed=1)
        assert [p.cued for p in run_s.source.played] == run_s.protocol.order
        assert held_s.n == 45 - 20
        prior = calibrate(run_s.epochs.X, run_s.epochs.y, pretrained_csp, fit_baseline=False,
                          cross_validation=False, finetune_epochs=0)  # alignment only
        prior_acc.append(score_unplayed(run_s.source, prior.adapted).accuracy)
        for _ in range(10):
            y = rng.permutation(run_s.epochs.y)
            res = calibrate(run_s.epochs.X, y, pretrained_csp, cross_validation=False,
                            finetune_epochs=5)
            shuffled_acc.append(score_unplayed(run_s.source, res.adapted).accuracy)
            shuffled_own.append(score_unplayed(run_s.source, res.baseline).accuracy)
    r = pooled(real)
    mean_sh, mean_own = float(np.mean(shuffled_acc)), float(np.mean(shuffled_own))
    mean_prior = float(np.mean(prior_acc))
    print(f"closed loop, subjects {TARGET_SUBJECTS}: {r.text()}; shuffled cues: mean held-out "
          f"accuracy {mean_own:.1%} (user's trials only, {len(shuffled_own)} decoders), "
          f"{mean_sh:.1%} adapted pretrained vs {mean_prior:.1%} with alignment only")
    assert r.accuracy >= r.chance + MARGIN
    assert r.accuracy > r.chance_upper_95
    assert abs(mean_own - 0.5) < 0.08
    assert mean_sh <= mean_prior + 0.05


def test_cli_calibrate_headless_records_and_saves_a_profile(pretrained_csp, tmp_path, capsys):
    rc = main(["calibrate", "--source", "simulated:7", "--trials", "10", "--classes",
               "left,right", "--headless", "--speed", "max", "--pretrained",
               str(pretrained_csp.path), "--user", "s7", "--profiles-dir",
               str(tmp_path / "profiles"), "--record", str(tmp_path / "calib.xdf"),
               "--finetune-epochs", "5", "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.count("cue: LEFT") == 10 and out.count("cue: RIGHT") == 10
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["n_trials"] == 20 and summary["held_out"]["n_trials"] == 25
    assert summary["held_out"]["accuracy"] > 0.5
    assert "warning" not in summary and "note:" not in out  # pretrained on S011-S020 only
    meta = json.loads((tmp_path / "profiles" / "s7" / "profile.json").read_text())
    for key in ("user", "created", "classes", "accuracy", "ci95", "chance", "source", "montage",
                "protocol", "recording", "scores", "band_power", "stream"):
        assert key in meta, key
    assert meta["source"] == "simulated:7" and meta["protocol"]["trials_per_class"] == 10
    lo, hi = meta["ci95"]
    assert lo <= meta["accuracy"] <= hi
    # the recording is a labelled recording: EEG + protocol markers, read back from disk
    rec = read_file(meta["recording"])
    labels = [m.label for m in rec.markers]
    assert labels.count("cue/left") == 10 and labels.count("cue/right") == 10
    assert labels.count("imagery_end") == 20
    assert rec.n_channels == 64 and rec.sfreq == 160.0
    # nothing in the profile is a pickle
    files = [p for p in (tmp_path / "profiles" / "s7").rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".json", ".safetensors"}


def test_abort_and_resume_keep_the_data(pretrained_csp, tmp_path):
    """Pause mid-trial, resume, abort after 6 trials: the recording and the training use exactly
    the completed trials."""
    import threading

    from bci_app.protocol import GrazProtocol, ProtocolRunner, completed_trials
    from bci_app.recording import attach_recorder
    from bci_app.session import Session

    src = SimulatedSubjectSource.from_eegmmidb(2, speed="max", buffer_seconds=600)
    src.connect(acquisition=False)
    session = Session(src)
    rec = attach_recorder(session, tmp_path / "aborted.xdf")
    proto = GrazProtocol(("left", "right"), 10, seed=3, marker_log=src.markers)
    runner = ProtocolRunner(proto, src)
    session.start()
    stop = threading.Event()
    paused = []

    def on_step(p):
        if p.n_done == 2 and p.state.value == "imagery" and not paused:
            runner.pause()
            paused.append(p.trial)
            src.acquire_until(src.next_timestamp + 5.0)  # the subject rests while paused
            runner.resume()
        if p.n_done == 6:
            stop.set()

    try:
        runner.run(stop_event=stop, on_step=on_step)
    finally:
        session.stop()
    assert proto.state.value == "aborted" and paused == [2]
    done = completed_trials(src.markers.all())
    assert len(done) == 6
    back = read_file(rec.path)
    assert [(round(t, 4), c) for t, c in completed_trials(back.markers)] == \
        [(round(t, 4), c) for t, c in done]
    assert back.n_samples == src.n_samples  # every sample streamed is on disk
    assert [m.label for m in back.markers].count("calibration/discard") == 1
    # what was recorded trains a decoder
    from decoders.calibration import calibrate, epochs_from_stream

    ep = epochs_from_stream(back.data, back.times, back.info.ch_names, back.sfreq, done,
                            pretrained_csp.classes, pretrained_csp.preprocessor)
    assert len(ep) == 6
    res = calibrate(ep.X, ep.y, pretrained_csp, X_ref=ep.X_ref, cv_folds=3)
    assert res.scores["adapted"].n == 6


@pytest.mark.parametrize("epochs", [2])
def test_deep_pretrained_fine_tuning_and_profile_round_trip(pretrained_eegnet_tiny, tmp_path,
                                                            epochs):
    run, profile, held = closed_loop(7, pretrained_eegnet_tiny, tmp_path, cv_folds=2)
    from decoders.calibration import calibrate

    res = calibrate(run.epochs.X, run.epochs.y, pretrained_eegnet_tiny, X_ref=run.epochs.X_ref,
                    finetune_epochs=epochs, cv_folds=2)
    w_before = pretrained_eegnet_tiny.decoder.net_.state_dict()
    w_after = res.adapted.decoder.net_.state_dict()
    assert any(not np.array_equal(w_before[k].numpy(), w_after[k].numpy()) for k in w_before)
    assert res.adapted.alignment is not None and res.baseline.config["model"] == "ts_lr"
    from bci_app.profiles import save_profile

    path = save_profile(res, "deep", root=tmp_path)
    back = load_profile("deep", root=tmp_path)
    assert back.path == path and back.bundle.alignment is not None
    X = run.epochs.X[:5]
    np.testing.assert_allclose(back.bundle.predict_proba(X), res.adapted.predict_proba(X),
                               rtol=1e-5, atol=1e-6)
    assert res.band_power.shape == (2, 21) and np.isfinite(res.band_power).all()
