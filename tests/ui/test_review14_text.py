"""GUI review 14 (EEG-to-text and the speller), with tests that fail on the code before the fix:

- a text bundle of ``bci-app evaluate-text --bundle-out`` (a candidate sentence per class, 120)
  got a probability bar per sentence: the window grew to ~4000 px and the decoded text went off
  screen; the text's confidence was shown nowhere and not recorded;
- a classifier's panel grew with its number of classes;
- the speller assumed 80 % command accuracy whatever the loaded model's measured accuracy
  (``bci-app spell`` uses the profile's cross-validated accuracy, capped at 90 %).
"""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest

from tests.ui.fakes import SimulatedSource, decoding_a_replay, process_events_for, wait_until

EDF = "eegmmidb/MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"
N_CANDIDATES = 120  # what `bci-app evaluate-text --bundle-out` stores by default


@pytest.fixture(scope="session")
def text_bundle_path(tmp_path_factory, data_dir):
    """A small real text bundle: the EEG-to-text model trained 1 epoch on synthetic reading
    EEG (real EEGMMIDB S002 background), retrieving among 120 candidate sentences."""
    import torch

    from decoders.text.bundle import save_text_bundle
    from decoders.text.estimator import EEGTextDecoder, TextTrainSettings
    from decoders.text.synthetic import SyntheticReadingEEG

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ds = SyntheticReadingEEG(snr=4.0, n_sentences=N_CANDIDATES, subjects=(2,), reps=1,
                                 sfreq=80.0, seed=0).generate()
        dec = EEGTextDecoder(16, ds.sfreq, ds.window_s, {"d_model": 32},
                             TextTrainSettings(max_epochs=1, seed=1))
        dec.fit(ds.X, list(ds.sentences), candidates=ds.corpus)
    finally:
        torch.set_num_threads(threads)
    assert len(dec.candidates_) == N_CANDIDATES
    path = tmp_path_factory.mktemp("gui_text_bundle") / "eeg2text_120"
    return save_text_bundle(dec, path, {"channels": ds.ch_names,
                                        "preprocessing": ds.preprocessing})


def _visible_in(win, widget) -> bool:
    """``widget`` is shown and (part of) it lies inside the window, not scrolled away."""
    from PySide6 import QtCore

    if not widget.isVisible() or widget.visibleRegion().isEmpty():
        return False
    top = widget.mapTo(win, QtCore.QPoint(0, 0)).y()
    return 0 <= top < win.height()


# --------------------------------------------------------------------------- A1: the panel
def test_a_text_bundle_keeps_the_window_on_screen_and_shows_top_sentences_and_confidence(
        make_window, data_dir, text_bundle_path):
    """120 candidate sentences made 120 bars (and 120 feedback targets): the window grew past
    the screen, the decoded text below them. Now: the 5 most probable sentences of the window
    with their probabilities, the decoded text with its confidence, the window unchanged."""
    win = make_window("file:" + str(data_dir / EDF))
    screen = win.screen().availableGeometry()
    wait_until(lambda: win.source is not None and win.source.connected, 20)
    process_events_for(0.2)
    height_before = win.height()

    decoding_a_replay(win, text_bundle_path, n=3)
    process_events_for(0.3)
    panel = win.prediction
    assert panel.text_decoder and len(panel.classes) == N_CANDIDATES
    # the window kept its size, within the screen; the panel's height is bounded
    assert win.height() <= max(height_before, screen.height()) and win.height() <= 1000
    assert win.minimumSizeHint().height() <= screen.height()
    assert panel.sizeHint().height() <= 1000 and panel.minimumSizeHint().height() <= 700
    assert len(panel._bars) <= 8  # no bar per sentence

    # the decoded text and its confidence are on screen
    worker = win.decoder
    wait_until(lambda: panel.last is not None and panel.last.reliable
               and panel.last.text is not None, 20)
    worker.stop()  # the last prediction shown is the last one made: compare with it
    process_events_for(0.3)
    last = panel.last
    assert last is worker.history[-1] and last.reliable and last.text_confidence is not None
    assert _visible_in(win, panel.text_box) and _visible_in(win, panel.text_label)
    assert panel.text_box.toPlainText().splitlines()[-1] == last.text
    assert f"confidence {100 * last.text_confidence:.0f} %" in panel.text_label.text()
    assert panel.text_confidence == pytest.approx(last.text_confidence)

    # the sentences shown are the window's most probable ones, most probable first
    p = np.asarray(last.probabilities)
    shown = panel.shown_sentences()
    assert len(shown) == 5 and _visible_in(win, panel.top_box)
    order = np.argsort(-p, kind="stable")
    assert [s for s, _ in shown] == [last.classes[i] for i in order[:5]]
    assert shown[0][0] == last.label
    assert [v for _, v in shown] == pytest.approx([round(1000 * p[i]) / 1000 for i in order[:5]])
    assert min(p[last.classes.index(s)] for s, _ in shown) >= np.delete(p, order[:5]).max()


def test_a_classifier_panel_does_not_grow_with_its_number_of_classes(gui, qtbot):
    """A bar per class, all shown: a 16-class model made the panel twice as tall as an 8-class
    one. At most 8 bars show at once now (the others scroll); every class keeps its bar."""
    from ui.prediction import Prediction, PredictionPanel

    heights = {}
    for n in (8, 16, 40):
        classes = tuple(f"class{i}" for i in range(n))
        panel = PredictionPanel()
        qtbot.addWidget(panel)
        panel.set_model(f"{n} classes", classes)
        panel.show()
        p = np.full(n, 0.5 / (n - 1))
        p[n - 1] = 0.5
        panel.on_prediction(Prediction(window_end=1.0, probabilities=p, classes=classes,
                                       label=classes[-1]))
        assert len(panel._bars) == n and panel._bars[-1].value() == 500
        heights[n] = (panel.minimumSizeHint().height(), panel.sizeHint().height())
    assert heights[16] == heights[8] and heights[40] == heights[8], heights


# --------------------------------------------------------------------------- A2: recording
def test_a_recording_keeps_the_text_confidence_of_each_prediction(
        make_window, data_dir, text_bundle_path, tmp_path):
    """The predictions' details in the recording had the decoded text but not its confidence."""
    import pyxdf

    win = make_window("file:" + str(data_dir / EDF))
    target = tmp_path / "text_decoding.xdf"
    decoding_a_replay(win, text_bundle_path, record_to=target, n=3)
    worker, rec = win.decoder, win.recorder
    win.set_decoding(False)
    win._stop_recording()
    wait_until(lambda: rec.state.value == "stopped", 15)
    wait_until(lambda: worker._thread is None, 10)

    streams, _ = pyxdf.load_xdf(str(target))
    labels = [s for s in streams if s["info"]["name"][0] == "predictions-labels"]
    assert len(labels) == 1
    rows = [json.loads(row[3]) for row in labels[0]["time_series"]]
    assert rows and all("text_confidence" in d for d in rows)
    made = {p.seq: p for p in worker.history}
    reliable = [d for d in rows if d["text"] is not None]
    assert reliable
    for d in reliable:
        assert d["text_confidence"] == pytest.approx(made[d["seq"]].text_confidence, rel=1e-6)
        assert 0.0 <= d["text_confidence"] <= 1.0


# --------------------------------------------------------------------------- B: speller accuracy
def _profile(root, bundle_path, accuracy: float, user: str = "alice"):
    """A profile folder as `bci-app calibrate` lays it out (profile.json + bundle/), whose
    chosen decoder's cross-validated accuracy is ``accuracy``."""
    folder = root / user
    shutil.copytree(bundle_path, folder / "bundle")
    (folder / "profile.json").write_text(json.dumps({
        "format_version": 1, "user": user, "chosen": "adapted", "classes": ["left", "right"],
        "scores": {"adapted": {"accuracy": accuracy, "ci95": [0.8, 0.99]}},
        "accuracy": accuracy}))
    return folder


def _calibrated_bundle(path, bundle_path, accuracy: float):
    """The bundle of ``bundle_path`` saved with a calibration's cross-validation, as the
    calibration writes it (``validation.calibration_cv``)."""
    from decoders.bundle import load_bundle, save_bundle

    b = load_bundle(bundle_path)
    cfg = b.config
    return save_bundle(b.decoder, path, {
        "channels": cfg["channels"], "classes": cfg["classes"],
        "preprocessing": cfg["preprocessing"], "training": cfg.get("training", {}),
        "validation": {"calibration_cv": {"accuracy": accuracy, "n_trials": 40}}})


def _cli_accuracy(measured):
    """The command accuracy `bci-app spell` gives its engine by default for a model whose
    accuracy is ``measured`` (None: unknown)."""
    from bci_app.commands.spell import build_engine

    args = argparse.Namespace(no_lm=True, lang="en", vocab=None, commands=None, accuracy=None,
                              scheme="posterior", confidence=0.9, completions=3)
    return build_engine(args, ["left", "right"], measured).accuracy


def test_the_speller_assumes_the_loaded_models_accuracy_as_the_cli_does(
        make_window, gui_bundle_path, tmp_path, monkeypatch):
    """The GUI's speller assumed 80 % command accuracy for every model; a profile's measured
    accuracy (capped at 90 %, as `bci-app spell`) is assumed now, and shown."""
    monkeypatch.setenv("BCI_APP_PROFILES_DIR", str(tmp_path / "profiles"))
    good = _profile(tmp_path / "profiles", gui_bundle_path, 0.95)
    fair = _calibrated_bundle(tmp_path / "calibrated", gui_bundle_path, 0.72)
    win = make_window(source=SimulatedSource(4, 250.0), show=False)
    assert win.load_model(str(good))
    win.open_speller()
    wait_until(lambda: win.speller is not None, 90)  # the language model builds off-thread
    engine = win.speller.engine
    assert engine.accuracy == pytest.approx(_cli_accuracy(0.95)) == pytest.approx(0.9)
    assert "90 %" in win.speller_dock.windowTitle()
    assert "95 %" in win.speller_accuracy_note and "90 %" in win.speller_accuracy_note

    assert win.load_model(str(fair))  # a calibrated bundle: its own cross-validation
    assert win.speller.engine is engine and engine.accuracy == pytest.approx(0.72)
    assert "72 %" in win.speller_dock.windowTitle()

    assert win.load_model(str(gui_bundle_path))  # no measured accuracy: 80 %
    assert engine.accuracy == pytest.approx(_cli_accuracy(None)) == pytest.approx(0.8)
    assert "80 %" in win.speller_dock.windowTitle()
    assert "no measured accuracy" in win.speller_accuracy_note


def test_a_speller_opened_without_a_model_assumes_80_percent(make_window):
    """Guard (passes on the old code too): no model, no measured accuracy: 80 %."""
    win = make_window(source=SimulatedSource(4, 250.0), show=False)
    win.open_speller()
    wait_until(lambda: win.speller is not None, 90)
    assert win.speller.engine.accuracy == pytest.approx(0.8)
