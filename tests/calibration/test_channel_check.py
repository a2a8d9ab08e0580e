"""A source without the pretrained bundle's channels is refused before the first cue.

BrainFlow's synthetic board (the app's default source) and an OpenBCI Cyton stream channels the
shipped bundles (21 FC/C/CP channels) do not have. `calibrate` ran every cued trial and only
then failed on the channels. Now the check comes right after the connect, and its fix (a
pretrained bundle trained on the source's channels with `bci-app train`) calibrates that board.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bci_app.commands.calibrate import run_calibration
from bci_app.errors import StreamMismatchError
from bci_app.sources import make_source
from decoders.bundle import load_bundle
from decoders.data import EEGMMIDB_CHANNELS
from tests.conftest import SYNTHETIC_CHANNELS

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED_CSP = ROOT / "decoders" / "pretrained" / "mi_left_right_csp_lda_ea"
#: fixation, cue, imagery, rest min, rest max (s): the task window is 0.5-2.5 s after the cue,
#: the pre-cue reference 1.5-0.5 s before it
SHORT = (2.0, 0.5, 2.0, 0.2, 0.3)


def test_a_source_without_the_bundles_channels_is_refused_before_any_cue(tmp_path):
    cues: list = []
    src = make_source("synthetic")
    with pytest.raises(StreamMismatchError) as err:
        run_calibration(src, load_bundle(PRETRAINED_CSP), trials_per_class=2, timings=SHORT,
                        record=tmp_path / "rec", profiles_root=tmp_path / "profiles",
                        print_cue=lambda *a: cues.append(a), cv_folds=2)
    assert cues == [], "cues were shown for trials that could never be used"
    assert not src.connected
    assert not (tmp_path / "rec").exists() and not (tmp_path / "profiles").exists()
    msg = str(err.value)
    assert "lacks 18 of them" in msg and "FC5" in msg and "CP6" in msg
    # the fix names every channel of the board that the pretraining data has, as a command
    m = re.search(r"`bci-app train --subjects 1-20 --channels (\S+) --model csp_lda", msg)
    assert m, msg
    assert set(m.group(1).split(",")) == set(SYNTHETIC_CHANNELS) <= set(EEGMMIDB_CHANNELS)


def test_the_named_fix_calibrates_that_board(synthetic_pretrained, tmp_path):
    """A bundle trained as the error says (here on 3 subjects) runs the whole calibration on
    the synthetic board: cues, recording, adaptation, profile on its 16 channels."""
    cues: list = []
    # a 0.6 s fixation (trials kept without a pre-cue reference) keeps this real-time run short
    run = run_calibration(make_source("synthetic"), load_bundle(synthetic_pretrained),
                          trials_per_class=2, timings=(0.6, *SHORT[1:]), record=tmp_path / "rec",
                          profiles_root=tmp_path / "profiles",
                          print_cue=lambda *a: cues.append(a), cv_folds=2, finetune_epochs=1)
    assert len(cues) == 4 and len(run.epochs.y) == 4
    assert run.result.ch_names == list(SYNTHETIC_CHANNELS)
    assert run.profile is not None and (run.profile / "profile.json").is_file()
    assert run.recording is not None and run.recording.stat().st_size > 0


def test_a_board_with_unnamed_channels_is_told_to_name_them():
    """No 10-10 names (e.g. an LSL amplifier sending Ch1..Ch8): no train command that could not
    work, but the advice to name the channels after their electrode positions."""
    from bci_app.commands.calibrate import check_pretrained_channels

    with pytest.raises(StreamMismatchError, match="name the device's channels after their "
                                                   "electrode positions") as err:
        check_pretrained_channels(load_bundle(PRETRAINED_CSP), [f"Ch{i}" for i in range(1, 9)])
    assert "bci-app train" not in str(err.value)
    check_pretrained_channels(load_bundle(PRETRAINED_CSP),  # EDF-style labels are matched
                              [c + "." for c in load_bundle(PRETRAINED_CSP).channels])
