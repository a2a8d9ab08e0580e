"""Review 10 of the calibration path: honest chance levels, clear errors, profiles that load
whole or not at all. Real EEGMMIDB trials (subject 7), a real pretrained CSP+LDA bundle."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from scipy.stats import binom

from bci_app.errors import BundleError, ConfigError
from bci_app.profiles import check_profile_target, list_profiles, load_profile, save_profile
from decoders.calibration import CVScore, calibrate, epochs_from_stream

EVENTS = {"T1": "left", "T2": "right"}


@pytest.fixture(scope="module")
def s7_epochs(s7_recordings, pretrained_csp):
    """Subject 7's 45 real trials, cut with the pretrained bundle's chain (as calibration does)."""
    Xs, ys, Rs = [], [], []
    for rec in s7_recordings:
        cues = [(m.timestamp, EVENTS[m.label]) for m in rec.markers if m.label in EVENTS]
        ep = epochs_from_stream(rec.data, rec.times, rec.info.ch_names, rec.info.sfreq, cues,
                                pretrained_csp.classes, pretrained_csp.preprocessor)
        Xs.append(ep.X), ys.append(ep.y), Rs.append(ep.X_ref)
    return np.concatenate(Xs), np.concatenate(ys), np.concatenate(Rs)


@pytest.fixture(scope="module")
def s7_result(s7_epochs, pretrained_csp):
    X, y, R = s7_epochs
    return calibrate(X, y, pretrained_csp, X_ref=R, cv_folds=3)


# ------------------------------------------------------------------------------- chance level
def test_significance_of_unbalanced_trials_is_around_the_majority_share(s7_epochs, pretrained_csp, tmp_path):
    """Trials dropped (gaps) or discarded unevenly leave unbalanced classes: a decoder that
    always answers the majority class scores its share, so the significance threshold is the
    binomial one around that share (it was around 1 / n_classes: 75 % for 12 left vs 4 right
    was 'significant above 68.8 %' while it is what guessing the majority gets)."""
    X, y, R = s7_epochs
    idx = np.r_[np.flatnonzero(y == 0)[:12], np.flatnonzero(y == 1)[:4]]
    res = calibrate(X[idx], y[idx], pretrained_csp, X_ref=R[idx], cv_folds=4)
    p = 12 / 16
    guess = CVScore("majority", y[idx], np.zeros(16, dtype=int), 2, 4)
    assert guess.accuracy == pytest.approx(p)
    assert not guess.accuracy > guess.chance_upper_95, "guessing the majority is not above chance"
    for score in res.scores.values():
        assert score.chance_upper_95 == pytest.approx(binom.ppf(0.95, 16, p) / 16)
        assert score.majority == pytest.approx(p)
        assert score.to_dict()["majority_share"] == pytest.approx(p, abs=1e-4)
        assert score.chance == 0.5 and "majority class 75%" in score.text()
    # the saved profile says the same
    meta = load_profile(save_profile(res, "unbalanced", root=tmp_path)).meta
    assert meta["scores"]["adapted"]["chance_upper_95"] == pytest.approx(0.9375, abs=1e-4)
    # balanced trials keep the textbook values
    bal = CVScore("x", np.array([0, 1] * 10), np.array([0, 1] * 10), 2, 5)
    assert bal.chance == bal.majority == 0.5 and bal.chance_upper_95 == pytest.approx(0.70)
    assert "majority" not in bal.text()


# ------------------------------------------------------------------------------- cv_folds
@pytest.mark.parametrize("folds", [1, 0])
def test_cv_folds_below_two_is_named(s7_epochs, pretrained_csp, folds):
    """cv_folds=1 said 'cross-validation needs at least 2 trials of every class ... Fix: record
    more trials' to a user with 20 trials of each: wrong problem, wrong fix."""
    X, y, _ = s7_epochs
    with pytest.raises(ConfigError, match=r"cv_folds: expected an integer >= 2 .*got "
                                          rf"{folds}\. Fix"):
        calibrate(X, y, pretrained_csp, cv_folds=folds)
    # without cross-validation the number of folds does not matter
    res = calibrate(X[:12], y[:12], pretrained_csp, cv_folds=1, cross_validation=False,
                    fit_baseline=False)
    assert res.scores == {} and res.adapted.alignment is not None


# ------------------------------------------------------------------------------- profiles
def _saved(result, tmp_path, user="alice", chosen="adapted"):
    return save_profile(result, user, root=tmp_path, chosen=chosen)


def test_damaged_alignment_file_is_a_bundle_error(s7_result, tmp_path):
    """A truncated alignment.safetensors raised safetensors' SafetensorError: `bci-app live
    --model PROFILE` printed a traceback, not the app's error with a fix."""
    path = _saved(s7_result, tmp_path)
    (path / "alignment.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(BundleError, match=r"alignment\.safetensors is damaged.*Fix: calibrate "
                                          r"again, or restore the previous profile"):
        load_profile(path)


def test_missing_alignment_file_is_a_bundle_error(s7_result, tmp_path):
    """Without alignment.safetensors the profile loaded and ran its decoder with no alignment
    at all: not the decoder whose accuracy the profile reports."""
    path = _saved(s7_result, tmp_path)
    assert load_profile(path).bundle.alignment is not None
    (path / "alignment.safetensors").unlink()
    with pytest.raises(BundleError, match=r"alignment\.safetensors is missing.*Fix"):
        load_profile(path)


def test_alignment_of_the_wrong_size_is_a_bundle_error(s7_result, tmp_path):
    from safetensors.numpy import save_file

    path = _saved(s7_result, tmp_path)
    save_file({"mean_cov": np.eye(3), "matrix": np.eye(3), "n_seen": np.array([5])},
              str(path / "alignment.safetensors"))
    with pytest.raises(BundleError, match=r"damaged: a \(3, 3\) alignment .*for 21 channels"):
        load_profile(path)


def test_chosen_baseline_missing_is_an_error_not_the_other_decoder(s7_result, tmp_path):
    """A profile that chose the baseline but lost baseline/ silently ran the adapted decoder."""
    path = _saved(s7_result, tmp_path, chosen="baseline")
    back = load_profile(path)
    assert back.bundle is back.baseline and back.bundle.config["model"] == "ts_lr"
    shutil.rmtree(path / "baseline")
    with pytest.raises(BundleError, match="baseline"):
        load_profile(path)


@pytest.mark.parametrize("text", ["[]", '"profile"', "3"])
def test_profile_json_not_an_object_is_a_bundle_error(s7_result, tmp_path, text):
    path = _saved(s7_result, tmp_path)
    (path / "profile.json").write_text(text)
    with pytest.raises(BundleError, match=r"profile\.json holds a JSON .*expected an object"):
        load_profile(path)


def test_user_id_cannot_take_the_previous_profile_folder(s7_result, tmp_path):
    """'alice.previous' was a valid user id: its profile was hidden from list_profiles, and
    saving 'alice' twice deleted it (that folder keeps alice's replaced profile)."""
    with pytest.raises(ConfigError, match=r"user: 'alice\.previous' ends with '\.previous'.*Fix"):
        save_profile(s7_result, "alice.previous", root=tmp_path)
    with pytest.raises(ConfigError, match=r"--user: 'bob\.previous'"):
        check_profile_target("bob.previous", tmp_path)
    # what the suffix is for: the replaced profile stays loadable
    first = _saved(s7_result, tmp_path)
    created = json.loads((first / "profile.json").read_text())["created"]
    _saved(s7_result, tmp_path, chosen="baseline")
    prev = load_profile(tmp_path / "alice.previous")
    assert prev.meta["chosen"] == "adapted" and prev.meta["created"] == created
    assert load_profile("alice", root=tmp_path).meta["chosen"] == "baseline"
    assert [m["user"] for m in list_profiles(tmp_path)] == ["alice"]


def test_a_save_cut_between_its_renames_is_finished_not_lost(s7_result, tmp_path, monkeypatch):
    """save_profile renames <user> to <user>.previous, then .<user>.tmp to <user>. A crash
    between the two left no <user>: load_profile('alice') failed, list_profiles showed nobody,
    and the next save deleted .alice.tmp, the complete new profile, with it."""
    from pathlib import Path

    _saved(s7_result, tmp_path)  # alice: adapted
    real_rename = Path.rename

    def power_cut(self, target):
        if self.name == ".alice.tmp":
            raise KeyboardInterrupt("power cut")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", power_cut)
    with pytest.raises(KeyboardInterrupt):
        _saved(s7_result, tmp_path, chosen="baseline")
    monkeypatch.setattr(Path, "rename", real_rename)
    assert not (tmp_path / "alice").exists() and (tmp_path / ".alice.tmp").is_dir()

    assert [m["user"] for m in list_profiles(tmp_path)] == ["alice"]  # finished by the listing
    assert not (tmp_path / ".alice.tmp").exists()
    assert load_profile("alice", root=tmp_path).meta["chosen"] == "baseline"
    assert load_profile(tmp_path / "alice.previous").meta["chosen"] == "adapted"

    # cut again; this time the next load finishes it (by folder path), and a later save keeps
    # the finished profile as alice.previous
    monkeypatch.setattr(Path, "rename", power_cut)
    with pytest.raises(KeyboardInterrupt):
        _saved(s7_result, tmp_path, chosen="adapted")
    monkeypatch.setattr(Path, "rename", real_rename)
    assert load_profile(tmp_path / "alice").meta["chosen"] == "adapted"
    monkeypatch.setattr(Path, "rename", power_cut)
    with pytest.raises(KeyboardInterrupt):
        _saved(s7_result, tmp_path, chosen="baseline")
    monkeypatch.setattr(Path, "rename", real_rename)
    _saved(s7_result, tmp_path, chosen="adapted")  # finishes the cut save first, then replaces
    assert load_profile(tmp_path / "alice.previous").meta["chosen"] == "baseline"
    assert load_profile(tmp_path / "alice").meta["chosen"] == "adapted"


def test_an_unfinished_tmp_profile_is_not_taken_and_the_error_names_previous(s7_result,
                                                                           tmp_path):
    """A save cut before its profile.json was complete must not be put in place; the error for
    the missing profile then points to <user>.previous."""
    first = _saved(s7_result, tmp_path)
    first.rename(tmp_path / "alice.previous")
    tmp = tmp_path / ".alice.tmp"
    tmp.mkdir()
    (tmp / "profile.json").write_text('{"format_version": 1, "user": "al')  # cut mid-write
    with pytest.raises(BundleError, match=r"previous profile is .*alice\.previous.*rename it "
                                          r"to alice"):
        load_profile("alice", root=tmp_path)
    assert tmp.is_dir() and not (tmp_path / "alice").exists()
    assert list_profiles(tmp_path) == []


# ------------------------------------------------------------------------------- runner timing
def test_real_time_simulated_subject_is_cued_at_the_markers_sample(eegmmidb_path):
    """With its acquisition thread, the simulated subject got each cue after it had emitted the
    chunk holding the cue's time: every trial was spliced 1-3 samples (6-19 ms) after its
    ``cue/<class>`` marker, so the calibration windows were off by that much."""
    from acquisition.simulated import SimulatedSubjectSource
    from bci_app.protocol import (CUE_PREFIX, MARKER_SOURCE, GrazProtocol, ProtocolRunner,
                                  ProtocolState, completed_trials)

    src = SimulatedSubjectSource.from_eegmmidb(7, data_dir=eegmmidb_path, speed=1.0, seed=3)
    src.connect(timeout=10)
    try:
        proto = GrazProtocol(("left", "right"), 3, (0.5, 0.25, 0.5, 0.3, 0.3), seed=2,
                             marker_log=src.markers)
        runner = ProtocolRunner(proto, src)
        assert runner.clock == "stream" and not runner.manual
        paused = []

        def on_step(p):  # pause inside the second trial's imagery, resume 0.3 s later
            if not paused and p.trial == 1 and p.state == ProtocolState.IMAGERY:
                runner.pause()
                paused.append(runner.now())
            elif p.state == ProtocolState.PAUSED and runner.now() > paused[0] + 0.3:
                runner.resume()

        assert runner.run(timeout=60, on_step=on_step, tail=0.2) == ProtocolState.DONE
    finally:
        src.disconnect()
    lags = [round(pl.lag * src.sfreq, 3) for pl in src.played]
    assert len(lags) == 7 and paused  # 6 trials + the one discarded by the pause
    assert sum(lag == 0 for lag in lags) >= 6, f"trials spliced late by {lags} samples"
    cues = [m.timestamp for m in src.markers.all() if m.label.startswith(CUE_PREFIX)]
    onsets = [pl.onset for pl in src.played]
    assert sum(abs(c - o) < 0.5 / src.sfreq for c, o in zip(cues, onsets)) >= 6
    # the protocol's markers are in time order (a pause never stamps before a done transition)
    stamps = [m.timestamp for m in src.markers.all() if m.source == MARKER_SOURCE]
    assert stamps == sorted(stamps)
    assert len(completed_trials(src.markers.all(), proto.classes)) == 6
