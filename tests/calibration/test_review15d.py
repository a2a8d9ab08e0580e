"""Review 15d: the calibration report accounts for every cued trial (real EEGMMIDB EEG).

A clean trial whose pre-cue reference window is missing (the fixation before the first cue
shorter than 1.5 s, or a gap there) is kept for training; the reference only serves the ERD/ERS
maps. The report said nothing of it, nor of trials dropped because their task window was not in
the data: the user saw "N trials" and could not tell what happened to the others. Every cued
trial is now listed as kept (with or without its reference) or dropped with its reason, in the
printed report, the ``--json`` summary and ``profile.json``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from acquisition.files import read_file
from acquisition.simulated import eegmmidb_files
from bci_app.cli import main
from bci_app.commands.calibrate import window_of
from decoders.calibration import calibrate, epochs_from_stream

T0 = 1000.0  # a stream clock that does not start at zero


def test_a_first_trial_with_a_short_fixation_is_kept_and_reported(pretrained_csp, tmp_path,
                                                                   capsys):
    """The headless calibration on a simulated subject (real S007 EEG) with a 1 s fixation: the
    first trial has no pre-cue window [-1.5, -0.5) s. It is trained on, and the report says so."""
    rc = main(["calibrate", "--source", "simulated:7", "--trials", "3", "--headless",
               "--speed", "max", "--timings", "1,1,4,1.5,2.5", "--pretrained",
               str(pretrained_csp.path), "--user", "s7", "--profiles-dir",
               str(tmp_path / "profiles"), "--no-record", "--cv-folds", "2",
               "--finetune-epochs", "1", "--quiet", "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "cued trials: 6, kept for training: 6" in out, out
    assert "kept without a pre-cue reference 1:" in out and "other trials); trial 1 (" in out, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["n_trials"] == 6
    acc = summary["trials"]
    assert (acc["cued"], acc["kept"], acc["kept_without_reference"]) == (6, 6, 1)
    assert sum(acc["dropped"].values()) == 0
    assert [t["reference"] for t in acc["trials"]] == [False] + [True] * 5
    assert all(t["kept"] and t["reason"] is None for t in acc["trials"])
    meta = json.loads((tmp_path / "profiles" / "s7" / "profile.json").read_text())
    assert meta["trials"] == acc and meta["n_trials"] == 6
    assert np.isfinite(meta["band_power"]["values"]).all()  # maps from the 5 other trials


def test_every_cued_trial_is_kept_or_dropped_with_its_reason(pretrained_csp, eegmmidb_path):
    """S001 run 4 (15 cues) recorded from 1 s before the first cue, with 0.2 s of samples lost
    in the 4th trial's task window and the recording ending inside the last one's: 13 trials
    are kept (the first without a reference) and 2 dropped, each named with its reason, in the
    epochs' accounting and in the calibration result's report and summary."""
    from decoders.calibration import describe_trials

    rec = read_file(eegmmidb_files(1, (4,), eegmmidb_path)[0])
    sf = rec.sfreq
    times = T0 + np.arange(rec.n_samples) / sf
    cues = [(T0 + m.timestamp - rec.times[0], {"T1": "left", "T2": "right"}[m.label])
            for m in rec.markers if m.label in ("T1", "T2")]
    onsets = np.array([t for t, _ in cues]) - T0
    assert len(cues) == 15
    keep = np.zeros(rec.n_samples, bool)
    keep[int(round((onsets[0] - 1.0) * sf)):int(round((onsets[-1] + 1.5) * sf))] = True
    hole = int(round((onsets[3] + 1.0) * sf))
    keep[hole:hole + int(0.2 * sf)] = False
    tmin, tmax = window_of(pretrained_csp)
    ep = epochs_from_stream(rec.data[keep], times[keep], rec.info.ch_names, sf, cues,
                            pretrained_csp.classes, pretrained_csp.preprocessor,
                            tmin=tmin, tmax=tmax)
    acc = ep.accounting()
    assert (acc["cued"], acc["kept"], acc["kept_without_reference"]) == (15, 13, 1)
    assert acc["dropped"] == {"outside": 1, "gap": 1, "clock": 0}
    by_trial = {t["trial"]: t for t in acc["trials"]}
    assert [by_trial[i]["reason"] for i in (4, 15)] == ["gap", "outside"]
    assert by_trial[1]["kept"] and by_trial[1]["reference"] is False
    assert sum(t["kept"] for t in acc["trials"]) == len(ep) == 13
    lines = describe_trials(acc)
    assert lines[0] == "cued trials: 15, kept for training: 13, dropped: 2"
    gap = next(x for x in lines if "dropped 1: its task window spans a gap" in x)
    outside = next(x for x in lines if "dropped 1: its task window is not in the recorded" in x)
    noref = next(x for x in lines if "kept without a pre-cue reference 1" in x)
    assert gap.endswith(f"trial 4 ({cues[3][1]})")
    assert outside.endswith(f"trial 15 ({cues[14][1]})")
    assert noref.endswith(f"the 12 other trials); trial 1 ({cues[0][1]})")

    res = calibrate(ep.X, ep.y, pretrained_csp, X_ref=ep.X_ref, trials=acc, cv_folds=2,
                    finetune_epochs=1, fit_baseline=False)
    assert res.summary()["trials"] == acc and res.n_trials == 13
    assert all(line in res.text() for line in lines)
    from bci_app.errors import ConfigError

    with pytest.raises(ConfigError, match="trials: expected the accounting of these 12"):
        calibrate(ep.X[1:], ep.y[1:], pretrained_csp, trials=acc, cv_folds=2,
                  finetune_epochs=1, fit_baseline=False)

    # a second run (as the wizard's feedback run): the accounting adds up, trials numbered on
    both = ep.joined(ep)
    acc2 = both.accounting()
    assert (acc2["cued"], acc2["kept"], acc2["kept_without_reference"]) == (30, 26, 2)
    assert acc2["dropped"] == {"outside": 2, "gap": 2, "clock": 0}
    assert [t["trial"] for t in acc2["trials"]] == list(range(1, 31))
    assert len(both) == 26 and both.X_ref.shape[0] == 26
