"""Review 15d: the wizard's results account for every cued trial; flag labels in a squeezed scope.

1. A cued run whose first fixation is 1 s (the pre-cue reference window [-1.5, -0.5) s of the
   first trial is not in the data): the trial is trained on, and the Results page (and the
   saved profile) say that it has no reference; before, the page said nothing about it.
2. A scope squeezed by the start-up layout labels every n-th channel only, the flagged ones
   always, on their own rows; with room again every channel is named.
"""

from __future__ import annotations

import functools
import json

from tests.ui.fakes import (SimulatedSource, assert_flags_shown, record_cued_trials, wait_streaming,
                            wait_until)


def test_results_page_accounts_for_a_first_trial_without_its_reference(make_wizard):
    w = make_wizard(trials_per_class=3)
    c = w.controller
    # the user's run with a 1 s fixation (fixation, cue, imagery, rest_min, rest_max)
    c.start_acquisition = functools.partial(c.start_acquisition, timings=(1.0, 1.0, 4.0, 1.5, 2.5))
    record_cued_trials(w, 3)
    assert c.protocol.timings.fixation == 1.0
    w.next()  # training
    wait_until(w.training.isComplete, 120)
    w.next()  # results
    txt = w.results.scores.text()
    assert "cued trials: 6, kept for training: 6" in txt, txt
    assert "Note: kept without a pre-cue reference 1:" in txt, txt
    assert f"other trials); trial 1 ({c.calib_cues[0][1]})" in txt, txt
    assert len(c.epochs) == 6 and c.epochs.no_reference == 1
    w.results.save_btn.click()
    meta = json.loads((c.profile_path / "profile.json").read_text())
    assert (meta["trials"]["cued"], meta["trials"]["kept_without_reference"]) == (6, 1)
    assert meta["trials"]["trials"][0]["reference"] is False


def test_flag_labels_stay_on_their_rows_in_a_squeezed_scope(make_window, qtbot):
    src = SimulatedSource(n_channels=6, sfreq=250.0, flat=(2,), railed=(4,))
    win = make_window(source=src)
    plot = win.scope.plot_widget
    plot.setMaximumHeight(60)  # as a start-up layout that gives the scope 60 px
    wait_streaming(qtbot, win)
    flags = {2: "flat", 4: "railed"}

    def squeezed():
        assert_flags_shown(win.scope, flags)
        assert len(win.scope.plot.getAxis("left")._tickLevels[0]) < 6  # some names left out

    qtbot.waitUntil(squeezed, timeout=5000)
    plot.setMaximumHeight(16_777_215)  # QWIDGETSIZE_MAX: the layout's height again
    qtbot.waitUntil(lambda: assert_flags_shown(win.scope, flags, every_row_named=True),
                    timeout=5000)
