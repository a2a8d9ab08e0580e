"""Review 15: marker labels that are not Latin-1 survive ``bci-app export --to fif`` exactly.

A session on BrainFlow's synthetic board recorded by the real Recorder, markers typed by the user;
the export read back with MNE and with bci-app's own reader. Each test fails on the code before
its fix unless said otherwise."""

from __future__ import annotations

import dataclasses
import logging

import mne
import pytest

from acquisition.brainflow_source import BrainFlowSource
from acquisition.files import EXACT_LABEL_KEY, read_file, to_raw
from acquisition.recorder import Recorder
from bci_app.cli import main

from .conftest import wait_for

#: What users type: an arrow, Chinese, Latin-1 letters, a colon, and a label typed as the very
#: character reference MNE writes for the arrow (must stay a different label).
LABELS = ["→", "左手", "Ünï", "cue: left", "&#8594;"]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "rec.xdf"
    src = BrainFlowSource("synthetic").connect(timeout=5)
    try:
        with Recorder(path, poll_interval=0.05) as rec:
            rec.add_source(src)
            wait_for(lambda: src.buffer.counter > 500, 10, "2 s of samples")
            t = float(src.buffer.latest(1).timestamps[0])
            for i, label in enumerate(LABELS):
                src.markers.add(t - 1.5 + 0.25 * i, label, 0.1, "user")
            n = src.buffer.counter
            wait_for(lambda: src.buffer.counter > n + 250, 10, "1 s more")
    finally:
        src.disconnect()
    return path


def _user_labels(labels):
    return sorted(x for x in labels if not x.startswith(("BAD", "EDGE")))


def test_fif_export_keeps_every_marker_label_exactly(session, tmp_path, caplog):
    """``bci-app export --to fif`` wrote "→" as "&#8594;" and "左手" as "&#24038;&#25163;" (FIF
    stores Latin-1; MNE writes other characters as character references), so the label the user
    typed was lost and "→" could not be told from a label typed as "&#8594;". The exact text is
    now in each annotation's extras, MNE reads it back, bci-app's reader restores it, and the
    export says what it did."""
    out = tmp_path / "s01_raw.fif"
    with caplog.at_level(logging.WARNING, logger="bci_app.recording"):
        assert main(["export", str(session), "--to", "fif", "--out", str(out)]) == 0
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "2 marker label(s) are not Latin-1" in said and EXACT_LABEL_KEY in said
    ann = mne.io.read_raw_fif(out, verbose="error").annotations
    exact = [(e or {}).get(EXACT_LABEL_KEY, d) for d, e in zip(ann.description, ann.extras)]
    assert _user_labels(exact) == sorted(LABELS)
    assert _user_labels(m.label for m in read_file(out).markers) == sorted(LABELS)


def test_to_raw_saved_as_fif_keeps_the_labels(eegmmidb_path, tmp_path):
    """``to_raw`` of a real EEGMMIDB run whose markers carry such labels, saved as FIF by MNE and
    read back by bci-app: the labels (and their times) are the ones given."""
    path = mne.datasets.eegbci.load_data(1, [4], path=str(eegmmidb_path), update_path=False)[0]
    rec = read_file(path)
    markers = [dataclasses.replace(m, label=LABELS[i % len(LABELS)])
               for i, m in enumerate(rec.markers[:10])]
    raw = to_raw(dataclasses.replace(rec, markers=markers))
    raw.save(tmp_path / "x_raw.fif", verbose="error")
    back = read_file(tmp_path / "x_raw.fif").markers
    assert [m.label for m in back] == [m.label for m in markers]
    assert [m.timestamp for m in back] == pytest.approx(
        [m.timestamp for m in markers], abs=0.5 / rec.sfreq)  # FIF onsets are float32


def test_edf_export_keeps_the_labels_as_text(session, tmp_path):
    """EDF+ stores annotations in UTF-8 (edfio): the labels are the description itself. This
    passed before the fix too; it guards the other export format."""
    out = tmp_path / "s01.edf"
    assert main(["export", str(session), "--to", "edf", "--out", str(out)]) == 0
    raw = mne.io.read_raw_edf(out, verbose="error")
    assert _user_labels(raw.annotations.description) == sorted(LABELS)
