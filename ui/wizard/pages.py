"""Pages of the calibration wizard. Each page only shows state and forwards clicks to the
:class:`~ui.wizard.controller.CalibrationController`."""

from __future__ import annotations

import functools
import html
import logging
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ui.dialogs import ask_yes_no
from ui.prediction import FeedbackView, class_directions
from ui.qt_bridge import BackgroundCall

from .widgets import ConfusionTable, CueWidget, QualityGrid, topomap_image

logger = logging.getLogger(__name__)

MONTAGES = ("standard_1005", "standard_1020", "biosemi64", "biosemi32", "easycap-M1")


def _fmt_time(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 60}:{s % 60:02d}"


#: Training errors that mean too few usable trials (too few recorded, or dropped when the trials
#: were cut: outside the data, across a gap): recording again is the fix.
_TOO_FEW_TRIALS = re.compile(r"at least \d+ trials|no complete trial", re.IGNORECASE)


def too_few_trials(error: str) -> bool:
    """True when a training error is about too few (or dropped) trials."""
    return bool(_TOO_FEW_TRIALS.search(error or ""))


def training_data_note(source_spec: str, pretrained) -> str | None:
    """The "optimistic accuracy" note of the Results page, worded for the window (no CLI
    commands or options): None unless the pretrained model has seen this simulated subject."""
    import re

    from bci_app.commands.calibrate import training_data_warning

    warning = training_data_warning(source_spec, pretrained)
    if not warning:
        return None
    m = re.search(r"subject\(s\) (\[[^\]]*\])", warning)
    seen = f"simulated subject(s) {m.group(1)}" if m else "this simulated subject"
    return (f"the pretrained model was trained on {seen}: the adapted decoder's accuracy here is "
            "optimistic (the tangent-space baseline, trained on these trials alone, is not). "
            "To check honestly, calibrate a simulated subject the pretrained model has not seen "
            "(choose another subject on the Device page).")


class DevicePage(QtWidgets.QWizardPage):
    """Device and montage: which source, how fast (simulated subject), which cap layout."""

    def __init__(self, ctrl, source_spec: str, speed: str, user: str, parent=None) -> None:
        super().__init__(parent)
        self.ctrl = ctrl
        self.setTitle("1 · Device and montage")
        self.setSubTitle("Choose the EEG source and the cap layout, then connect. "
                         "'simulated:N' plays real EEG of EEGMMIDB subject N that answers the "
                         "cues (demo mode, no headset needed).")
        form = QtWidgets.QFormLayout(self)
        self.source = QtWidgets.QComboBox()
        self.source.setEditable(True)
        for s in dict.fromkeys([source_spec, "simulated:1", "simulated:7", "synthetic",
                                "lsl:type=EEG", "brainflow:cyton:/dev/ttyUSB0"]):
            self.source.addItem(s)
        self.source.setCurrentText(source_spec)
        self.speed = QtWidgets.QComboBox()
        self.speed.setEditable(True)
        for s in dict.fromkeys([speed, "1", "2", "5", "max"]):
            self.speed.addItem(s)
        self.speed.setCurrentText(speed)
        self.montage = QtWidgets.QComboBox()
        self.montage.addItems(MONTAGES)
        self.user = QtWidgets.QLineEdit(user)
        # the cross-subject bundle to adapt: its channels must be on the source (a board with
        # other electrodes needs a bundle trained on them; the Connect error gives the command)
        try:
            start = ctrl.pretrained_path
        except Exception as err:  # no bundle shipped: the user picks one
            logger.warning("no default pretrained bundle: %s", err)
            start = ""
        self.pretrained = QtWidgets.QLineEdit(start)
        self.pretrained.setToolTip("Folder of the pretrained model bundle (config.json + "
                                   "weights) that calibration adapts to you")
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse_pretrained)
        pre_row = QtWidgets.QHBoxLayout()
        pre_row.addWidget(self.pretrained, 1)
        pre_row.addWidget(browse)
        self.connect_btn = QtWidgets.QPushButton("Connect")
        # shown when Connect refused the source for the pretrained model's channels
        self.train_btn = QtWidgets.QPushButton("Train a pretrained model for these channels")
        self.train_btn.setToolTip("Cross-subject CSP+LDA with alignment on the channels this "
                                  "source has, from PhysioNet EEGMMIDB (about 15 s, plus the "
                                  "download of files not on this computer); then connects "
                                  "again with it")
        self.train_btn.setVisible(False)
        self.train_btn.clicked.connect(self.train_for_channels)
        self.status = QtWidgets.QLabel("not connected")
        self.status.setWordWrap(True)
        form.addRow("Source", self.source)
        form.addRow("Speed (simulated subject)", self.speed)
        form.addRow("Montage", self.montage)
        form.addRow("Pretrained model", pre_row)
        form.addRow("User id", self.user)
        form.addRow(self.connect_btn, self.status)
        form.addRow("", self.train_btn)
        self.connect_btn.clicked.connect(self.connect_source)
        self._call = None
        self._connecting = False  # a Connect is running (Next waits for its outcome)

    def _browse_pretrained(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Pretrained model bundle (a folder with config.json)",
            self.pretrained.text().strip())
        if path:
            self.pretrained.setText(path)

    def connect_source(self) -> None:
        spec, speed, montage = (self.source.currentText().strip(), self.speed.currentText(),
                                self.montage.currentText())
        pretrained = self.pretrained.text().strip() or None
        self.status.setText(f"connecting to {spec} …")
        self.connect_btn.setEnabled(False)
        self._connecting = True
        self.completeChanged.emit()  # no Next while the source changes (isComplete)
        self._call = BackgroundCall(lambda: self.ctrl.open_source(spec, speed, montage,
                                                                  pretrained),
                                    name="wizard-connect", parent=self)
        self._call.finished.connect(self._connected)
        self._call.start()

    def train_for_channels(self) -> None:
        from bci_app.commands.calibrate import pretraining_channels

        channels = pretraining_channels(self.ctrl.refused_channels or [])
        self.status.setText(f"training a pretrained model on {', '.join(channels)} (EEGMMIDB "
                            f"subjects {self.ctrl.pretrain_subjects}; files not on this computer "
                            "are downloaded from PhysioNet first, 7.8 MB per subject) …")
        self.train_btn.setVisible(False)
        self.connect_btn.setEnabled(False)
        self._connecting = True
        self.completeChanged.emit()
        self._call = BackgroundCall(self.ctrl.train_pretrained_for_refused,
                                    name="wizard-pretrain", parent=self)
        self._call.finished.connect(self._pretrained_ready)
        self._call.start()

    def _pretrained_ready(self, path, error: str) -> None:
        self._connecting = False
        self.connect_btn.setEnabled(True)
        self.completeChanged.emit()
        if error:
            self.status.setText("<span style='color:#d23c3c'>could not train the pretrained "
                                f"model: {html.escape(error, quote=False)}</span>")
            self.train_btn.setVisible(True)
            return
        self.pretrained.setText(str(path))
        self.connect_source()  # with the new model

    def _connected(self, _result, error: str) -> None:
        from bci_app.commands.calibrate import pretraining_channels

        self._connecting = False
        self.connect_btn.setEnabled(True)
        refused = error.startswith("StreamMismatchError: ")
        self.train_btn.setVisible(
            refused and len(pretraining_channels(self.ctrl.refused_channels or [])) >= 2)
        if refused:  # connected, but not for this bundle
            text = error.partition(": ")[2].removeprefix("pretrained: ")
            self.status.setText("<span style='color:#d23c3c'>this source cannot be used with the "
                                f"pretrained model: {html.escape(text, quote=False)}</span>")
        elif error:
            self.status.setText("<span style='color:#d23c3c'>could not connect: "
                                f"{html.escape(error, quote=False)}</span>")
        else:
            info = self.ctrl.source.info
            self.status.setText(f"connected: {info.name}, {info.n_channels} channels @ "
                                f"{info.sfreq:g} Hz; decoder {self.ctrl.pretrained.config['model']}"
                                f" ({', '.join(self.ctrl.pretrained.classes)})")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802
        return not self._connecting and self.ctrl.source is not None and \
            self.ctrl.source.connected


def is_recorded_source(spec: str | None) -> bool:
    """Whether ``spec`` replays recorded EEG ("simulated:N", "file:…") rather than a live cap."""
    kind = (spec or "").split(":", 1)[0].strip().lower()
    return kind in ("simulated", "file")


class SignalCheckPage(QtWidgets.QWizardPage):
    """Per-channel quality with a traffic-light view and advice."""

    def __init__(self, ctrl, parent=None) -> None:
        super().__init__(parent)
        self.ctrl = ctrl
        self.setTitle("2 · Signal check")
        self.setSubTitle("Green: good. Yellow: usable, could be better. Red: fix before "
                         "recording (hover a channel for details). Updated twice a second "
                         "from the last 2 s.")
        lay = QtWidgets.QVBoxLayout(self)
        self.grid = QualityGrid()
        self.summary = QtWidgets.QLabel("waiting for data …")
        self.advice = QtWidgets.QPlainTextEdit()
        self.advice.setReadOnly(True)
        self.advice.setMaximumHeight(110)
        self.recorded_note = QtWidgets.QLabel(
            "This source replays recorded EEG (a simulated subject or a file): the colours and "
            "advice describe the recorded data, not electrode contact. There is nothing to fix "
            "on a cap; go on when the data look as expected.")
        self.recorded_note.setObjectName("recordedNote")
        self.recorded_note.setWordWrap(True)
        self.recorded_note.setVisible(False)
        lay.addWidget(self.recorded_note)
        lay.addWidget(self.grid, 1)
        lay.addWidget(self.summary)
        lay.addWidget(self.advice)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(500)
        self.timer.timeout.connect(self.refresh)
        self.last = []

    def initializePage(self) -> None:  # noqa: N802
        self.recorded_note.setVisible(is_recorded_source(self.ctrl.source_spec))
        self.ctrl.start_signal()
        self.timer.start()
        self.refresh()

    def cleanupPage(self) -> None:  # noqa: N802
        self.timer.stop()

    def validatePage(self) -> bool:  # noqa: N802
        self.timer.stop()
        return True

    def refresh(self) -> None:
        from decoders.calibration import channel_quality

        src = self.ctrl.source
        if src is None or src.buffer is None or src.buffer.counter < src.info.sfreq // 2:
            return
        chunk = self.ctrl.latest(2.0)
        eeg = src.info.picks("eeg") or list(range(src.info.n_channels))
        names = [src.info.ch_names[i] for i in eeg]
        self.last = channel_quality(chunk.data[:, eeg], src.info.sfreq, names)
        self.grid.set_quality(self.last)
        c = Counter(q.status for q in self.last)
        self.summary.setText(f"{c.get('good', 0)} good · {c.get('warn', 0)} to check · "
                             f"{c.get('bad', 0)} bad  (of {len(self.last)} channels)")
        lines = []
        by_problem: dict[str, list[str]] = {}
        for q in self.last:
            for p in q.problems:
                by_problem.setdefault(p, []).append(q.name)
        from decoders.calibration import _ADVICE

        for p, chans in by_problem.items():
            lines.append(f"{p} on {', '.join(chans[:12])}{' …' if len(chans) > 12 else ''}: "
                         f"{_ADVICE.get(p, '')}")
        self.advice.setPlainText("\n".join(lines) or "All channels look fine.")


class InstructionsPage(QtWidgets.QWizardPage):
    """What the user will do, and how many trials."""

    def __init__(self, ctrl, trials_per_class: int, parent=None) -> None:
        super().__init__(parent)
        self.ctrl = ctrl
        self.setTitle("3 · Instructions")
        lay = QtWidgets.QVBoxLayout(self)
        self.text = QtWidgets.QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(QtCore.Qt.TextFormat.RichText)
        form = QtWidgets.QFormLayout()
        self.trials = QtWidgets.QSpinBox()
        self.trials.setRange(2, 200)
        self.trials.setValue(trials_per_class)
        self.record = QtWidgets.QCheckBox("record EEG and markers to an XDF file")
        self.record.setChecked(True)
        self.length = QtWidgets.QLabel()
        form.addRow("Trials per class", self.trials)
        form.addRow("", self.record)
        form.addRow("Duration", self.length)
        lay.addWidget(self.text)
        lay.addLayout(form)
        lay.addStretch(1)
        self.trials.valueChanged.connect(self._update_length)

    def initializePage(self) -> None:  # noqa: N802
        classes = self.ctrl.pretrained.classes
        self.text.setText(
            "<p>Sit comfortably, relax your face and shoulders, and keep your eyes on the "
            "screen.</p><ol>"
            "<li>A <b>cross</b> appears: look at it and stay still.</li>"
            "<li>A <b>beep</b> and an <b>arrow</b>: imagine the movement it shows, e.g. "
            "squeezing your <b>left</b> or <b>right</b> fist, again and again, without moving. "
            "Keep imagining until the cross disappears (about 4 s).</li>"
            "<li><b>Blank screen</b>: rest, blink, swallow.</li></ol>"
            f"<p>Classes: {', '.join(classes)}. You can pause at any time; a trial interrupted "
            "by a pause is repeated. Aborting keeps every completed trial.</p>")
        self._update_length()

    def _update_length(self) -> None:
        from bci_app.protocol import Timings

        n = self.trials.value() * len(self.ctrl.pretrained.classes)
        self.length.setText(f"{n} trials, about {_fmt_time(n * Timings().mean_trial)} at real "
                            "time")


class AcquisitionPage(QtWidgets.QWizardPage):
    """Cued acquisition: full-area cue display, progress, pause/resume, abort."""

    def __init__(self, ctrl, parent=None) -> None:
        super().__init__(parent)
        self.ctrl = ctrl
        self.setTitle("4 · Cued recording")
        lay = QtWidgets.QVBoxLayout(self)
        self.cue = CueWidget()
        self.progress = QtWidgets.QProgressBar()
        self.info = QtWidgets.QLabel("not started")
        row = QtWidgets.QHBoxLayout()
        self.start_btn = QtWidgets.QPushButton("Start")
        self.pause_btn = QtWidgets.QPushButton("Pause")
        self.abort_btn = QtWidgets.QPushButton("Abort (keep what was recorded)")
        self.full_btn = QtWidgets.QPushButton("Full screen")
        self.full_btn.setCheckable(True)
        for b in (self.start_btn, self.pause_btn, self.abort_btn, self.full_btn):
            row.addWidget(b)
        lay.addWidget(self.cue, 1)
        lay.addWidget(self.progress)
        lay.addWidget(self.info)
        lay.addLayout(row)
        self.pause_btn.setEnabled(False)
        self.abort_btn.setEnabled(False)
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.toggle_pause)
        self.abort_btn.clicked.connect(self.abort)
        self.full_btn.toggled.connect(self._full)
        ctrl.protocolState.connect(self._on_state)
        ctrl.cue.connect(self._on_cue)
        ctrl.acquisitionFinished.connect(self._finished)
        ctrl.trained.connect(self._training_ended)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self._update_progress)
        self.finished = ""
        self.active = False

    def initializePage(self) -> None:  # noqa: N802
        self.cue.set_classes(self.ctrl.pretrained.classes)
        ins = self.wizard().instructions if self.wizard() is not None else None
        wanted = (tuple(self.ctrl.pretrained.classes),
                  ins.trials.value() if ins is not None else None)
        if self.finished and self.ctrl.acquisition_settings == wanted and \
                self.ctrl.run_fits_source():
            return  # back and forth without changes: keep the finished run
        if self.finished:  # the trial count or the source changed: the run no longer applies
            self.ctrl.discard_acquisition()
        self._reset()

    def cleanupPage(self) -> None:  # noqa: N802
        """Back: a run still going is aborted and forgotten (cues must not fire on another
        page, nor count as trials); a finished run is kept unless the settings change."""
        if self.active or self.ctrl.acquiring:
            self.ctrl.discard_acquisition()
            self._reset()

    def _reset(self) -> None:
        self.active = False
        self.finished = ""
        self.timer.stop()
        if self.full_btn.isChecked():
            self.full_btn.setChecked(False)
        self.cue.set_state("idle", message="Press Start when you are ready")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.info.setText("not started")
        self.start_btn.setText("Start")
        self.start_btn.setEnabled(True)
        self.pause_btn.setEnabled(False)
        self.pause_btn.setText("Pause")
        self.abort_btn.setEnabled(False)
        self.completeChanged.emit()

    def _set_back_enabled(self, on: bool) -> None:
        wiz = self.wizard()
        if wiz is not None:
            wiz.button(QtWidgets.QWizard.WizardButton.BackButton).setEnabled(on)

    def start(self) -> None:
        wiz = self.wizard()
        ins = wiz.instructions
        try:
            self.ctrl.start_acquisition(self.ctrl.pretrained.classes, ins.trials.value(),
                                        user=wiz.device.user.text().strip() or "anonymous",
                                        record=ins.record.isChecked())
        except Exception as err:  # shown on the page, never a traceback in a slot
            logger.exception("could not start the cued recording")
            self.info.setText(f"<span style='color:#d23c3c'>could not start: "
                              f"{html.escape(str(err))}</span>")
            return  # a finished run (if any) is still the controller's: keep it
        self.active = True
        if self.finished:  # "Start again": the earlier run is replaced, Next waits for this one
            self.finished = ""
            self.completeChanged.emit()
        self.progress.setRange(0, self.ctrl.protocol.n_trials)
        self.start_btn.setText("Start")
        self.start_btn.setEnabled(False)
        self.pause_btn.setEnabled(True)
        self.pause_btn.setText("Pause")
        self.abort_btn.setEnabled(True)
        self._set_back_enabled(False)  # QWizard re-enables it on completeChanged (at the end)
        self.timer.start()
        self._update_progress()

    def toggle_pause(self) -> None:
        p = self.ctrl.protocol
        if p.state.value == "paused":
            self.ctrl.resume()
            self.pause_btn.setText("Pause")
        else:
            self.ctrl.pause()
            self.pause_btn.setText("Resume")

    def abort(self) -> None:
        self.ctrl.abort()

    def _full(self, on: bool) -> None:
        w = self.wizard()
        w.showFullScreen() if on else w.showNormal()

    def _on_state(self, state: str, trial: int) -> None:
        if not self.active:
            return
        msg = {"rest": "", "paused": "Paused — press Resume to continue",
               "done": "Done. Thank you!", "aborted": "Stopped."}.get(state, "")
        self.cue.set_state(state, message=msg)
        if state in ("done", "aborted"):  # (the run's last samples still come in: no pause)
            self.pause_btn.setEnabled(False)
            self.abort_btn.setEnabled(False)
        self._update_progress()

    def _on_cue(self, cls: str, trial: int) -> None:
        if not self.active:
            return
        QtWidgets.QApplication.beep()
        self.cue.set_state("cue", cls)

    def _update_progress(self) -> None:
        p = self.ctrl.protocol
        if p is None or not self.active:
            return
        self.progress.setValue(p.n_done)
        self.info.setText(f"trials done {p.n_done} / {p.n_trials} · about "
                          f"{_fmt_time(p.time_left(self.ctrl.runner.now()))} left · "
                          f"{p.state.value}")

    def _finished(self, how: str) -> None:
        if not self.active:
            return
        self.active = False
        self.timer.stop()
        self.finished = how
        counts = self.ctrl.counts()
        self.progress.setValue(self.ctrl.protocol.n_done)
        self.info.setText(f"{how}: {sum(counts.values())} trials recorded "
                          f"({', '.join(f'{c} {n}' for c, n in counts.items())})"
                          + (f" · {self.ctrl.recording_path}" if self.ctrl.recording_path else ""))
        self.pause_btn.setEnabled(False)
        self.abort_btn.setEnabled(False)
        if self.full_btn.isChecked():
            self.full_btn.setChecked(False)
        if not self.enough_trials():
            # an early abort: training needs MIN_TRIALS of each class. Without a way to record
            # again the page was a dead end (Start stayed disabled, Next too, and Back + Next
            # kept the unusable run)
            short = [c for c, n in counts.items() if n < self.MIN_TRIALS]
            self.info.setText(
                self.info.text() + f" — too few to train: at least {self.MIN_TRIALS} trials of "
                f"each class are needed ({', '.join(short)} has fewer). Press Start again to "
                "record a new run" + (" (this run's file is kept)." if self.ctrl.recording_path
                                      else "."))
            self.start_btn.setText("Start again")
            self.start_btn.setEnabled(True)
        self.completeChanged.emit()

    def _training_ended(self, _result, error: str) -> None:
        """Training on this page's finished run failed: offer to record a new run (Back from
        the training page lands here; without this the only way on was the same failing
        training again)."""
        if not error or error == "cancelled" or not self.finished or self.active:
            return
        self.start_btn.setText("Start again")
        self.start_btn.setEnabled(True)
        if "Start again" not in self.info.text():
            self.info.setText(
                self.info.text() + " — training on this run failed. Press Start again to record "
                "a new run" + (" (this run's file is kept)." if self.ctrl.recording_path
                               else "."))

    #: Trials of each class a run needs before training can start.
    MIN_TRIALS = 2

    def enough_trials(self) -> bool:
        return min(self.ctrl.counts().values(), default=0) >= self.MIN_TRIALS

    def isComplete(self) -> bool:  # noqa: N802
        return bool(self.finished) and self.enough_trials()


class TrainingPage(QtWidgets.QWizardPage):
    """Adaptation of the pretrained decoder + tangent-space baseline, with progress."""

    def __init__(self, ctrl, finetune_epochs: int = 30, parent=None) -> None:
        super().__init__(parent)
        self.ctrl = ctrl
        self.finetune_epochs = finetune_epochs
        self.setTitle("5 · Training")
        self.setSubTitle("Starting from the pretrained cross-subject decoder: your alignment and "
                         "fine-tuning on your trials; the tangent-space baseline is fitted on the "
                         "same trials. Accuracy is cross-validated.")
        lay = QtWidgets.QVBoxLayout(self)
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, 1000)
        self.msg = QtWidgets.QLabel("")
        lay.addWidget(self.bar)
        lay.addWidget(self.msg)
        lay.addStretch(1)
        ctrl.trainingProgress.connect(self._progress)
        ctrl.trained.connect(self._trained)
        self.done_ok = False

    def initializePage(self) -> None:  # noqa: N802
        self.done_ok = False
        self.bar.setValue(0)
        self.msg.setText("training …")
        # a job still running from an earlier visit is cancelled; this one starts after it
        self.ctrl.train(finetune_epochs=self.finetune_epochs)

    def cleanupPage(self) -> None:  # noqa: N802
        """Back: stop the training (the trials may change before the next one)."""
        self.ctrl.cancel_training()
        self.done_ok = False
        self.msg.setText("")

    def _progress(self, f: float, msg: str) -> None:
        self.bar.setValue(int(f * 1000))
        self.msg.setText(msg)

    def _trained(self, result, error: str) -> None:
        if error:
            hint = ("<br>Too few usable trials: go Back to the cued recording and press Start "
                    "again to record a new run." if too_few_trials(error) else "")
            self.msg.setText(f"<span style='color:#d23c3c'>training failed: "
                             f"{html.escape(error, quote=False)}</span>{hint}")
        else:
            self.bar.setValue(1000)
            self.msg.setText(f"done in {result.seconds.get('total', 0):.1f} s")
            self.done_ok = True
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802
        return self.done_ok


class ResultsPage(QtWidgets.QWizardPage):
    """Accuracy with chance and CI, confusion matrices, ERD/ERS topomaps, save the profile."""

    def __init__(self, ctrl, parent=None) -> None:
        super().__init__(parent)
        self.ctrl = ctrl
        self.setTitle("6 · Results")
        lay = QtWidgets.QVBoxLayout(self)
        self.scores = QtWidgets.QLabel()
        self.scores.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.scores.setWordWrap(True)
        tables = QtWidgets.QHBoxLayout()
        self.cm = {}
        for key, title in (("adapted", "Adapted decoder"), ("baseline", "Tangent-space baseline")):
            box = QtWidgets.QGroupBox(f"{title}: confusion (rows: true)")
            bl = QtWidgets.QVBoxLayout(box)
            self.cm[key] = ConfusionTable()
            bl.addWidget(self.cm[key])
            tables.addWidget(box)
        self.topo = QtWidgets.QLabel("")
        self.topo.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.topo.setMinimumHeight(200)
        row = QtWidgets.QHBoxLayout()
        self.use_adapted = QtWidgets.QRadioButton("use the adapted decoder")
        self.use_baseline = QtWidgets.QRadioButton("use the tangent-space baseline")
        self.user = QtWidgets.QLineEdit()
        self.save_btn = QtWidgets.QPushButton("Save profile")
        self.saved = QtWidgets.QLabel("")
        for w in (self.use_adapted, self.use_baseline, QtWidgets.QLabel("user"), self.user,
                  self.save_btn):
            row.addWidget(w)
        lay.addWidget(self.scores)
        lay.addLayout(tables)
        lay.addWidget(QtWidgets.QLabel("Where the classes differ: band power during imagery vs. "
                                       "the fixation before the cue (ERD < 0 blue, ERS > 0 red)"))
        lay.addWidget(self.topo, 1)
        lay.addLayout(row)
        lay.addWidget(self.saved)
        self.save_btn.clicked.connect(self.save)
        #: ``confirm(title, question) -> bool``: asks the user (a modal question box); tests
        #: replace it to answer without a dialog.
        self.confirm = functools.partial(ask_yes_no, self)

    def existing_profile(self, user: str) -> Path | None:
        """The folder of ``user``'s profile when one exists that this wizard did not save
        (another calibration, maybe another person's under the default "anonymous")."""
        from bci_app.profiles import PROFILE_JSON, profiles_dir

        root = Path(self.ctrl.profiles_root) if self.ctrl.profiles_root is not None \
            else profiles_dir()
        folder = root / user
        if not (folder / PROFILE_JSON).is_file():
            return None
        mine = self.ctrl.profile_path
        if mine is not None and Path(mine).resolve() == folder.resolve():
            return None  # saved by this wizard a moment ago (e.g. the other decoder chosen)
        return folder

    def initializePage(self) -> None:  # noqa: N802
        res = self.ctrl.result
        lines = []
        for key, s in res.scores.items():
            lo, hi = s.ci95
            sig = "above chance" if s.accuracy > s.chance_upper_95 else "not above chance"
            lines.append(f"<b>{s.name}</b>: <b>{s.accuracy:.0%}</b> cross-validated "
                         f"({s.correct}/{s.n}; 95% CI {lo:.0%}–{hi:.0%}); chance {s.chance:.0%}, "
                         f"significant above {s.chance_upper_95:.0%} → {sig}")
            self.cm[key].set_matrix(s.confusion, res.classes)
        lines.append(f"training took {res.seconds.get('total', 0):.1f} s")
        warning = training_data_note(self.ctrl.source_spec, self.ctrl.pretrained)
        if warning:
            lines.append(f"<span style='color:#c07000'>Note: {html.escape(warning)}</span>")
        if res.trials is not None:  # every cued trial: kept, or dropped with the reason
            from decoders.calibration import describe_trials

            first, *notes = describe_trials(res.trials)
            lines.append(html.escape(first))
            lines += [f"<span style='color:#c07000'>Note: {html.escape(n.strip())}</span>"
                      for n in notes]
        self.scores.setText("<br>".join(lines))
        best = res.best
        (self.use_adapted if best == "adapted" else self.use_baseline).setChecked(True)
        self.user.setText(self.wizard().device.user.text().strip() or "anonymous")
        self.saved.setText("")
        try:
            bp = res.band_power
            titles = [f"{c} (ERD/ERS)" for c in res.classes]
            vals = bp
            if len(res.classes) == 2:
                vals = np.vstack([bp, bp[1] - bp[0]])
                titles.append(f"{res.classes[1]} − {res.classes[0]}")
            w = max(600, self.topo.width() or 900)
            img = topomap_image(vals, res.ch_names, titles, self.ctrl.montage, width=w,
                                height=260)
            self.topo.setPixmap(QtGui.QPixmap.fromImage(img))
        except Exception as err:  # a missing montage position must not block saving
            logger.exception("topomap failed")
            self.topo.setText(f"(no topomap: {err})")

    def save(self) -> None:
        import json

        from bci_app.profiles import PREVIOUS_SUFFIX, PROFILE_JSON

        chosen = "adapted" if self.use_adapted.isChecked() else "baseline"
        user = self.user.text().strip() or "anonymous"
        old = None
        try:
            old = self.existing_profile(user)
        except Exception:  # (an invalid user id: save() below names it)
            logger.debug("could not look for an existing profile", exc_info=True)
        if old is not None:
            # saving replaced it without a word: the replaced one became <user>.previous and
            # the <user>.previous before it was deleted
            try:
                meta = json.loads((old / PROFILE_JSON).read_text())
            except (OSError, ValueError):
                meta = {}
            what = ", ".join(str(x) for x in (
                f"created {meta['created']}" if meta.get("created") else "",
                f"{meta['n_trials']} trials" if meta.get("n_trials") else "") if x)
            prev = old.with_name(old.name + PREVIOUS_SUFFIX)
            if not self.confirm(
                    "Replace the profile?",
                    f"A profile named '{user}' already exists in {old.parent}"
                    + (f" ({what})" if what else "") + ".\n\n"
                    f"Replace it with this calibration? The replaced profile is kept as "
                    f"{prev.name}" + (f" (the {prev.name} there now is deleted)"
                                      if prev.exists() else "")
                    + ".\n\nTo keep both, answer No and type another user name."):
                self.saved.setText(
                    f"<span style='color:#d23c3c'>not saved: a profile named "
                    f"{html.escape(user)} already exists in {html.escape(str(old.parent))}; "
                    "type another user name, or press Save again to replace it</span>")
                return
        try:
            path = self.ctrl.save(user, chosen)
        except Exception as err:
            self.saved.setText("<span style='color:#d23c3c'>not saved: "
                               f"{html.escape(str(err), quote=False)}</span>")
            return
        note = f"; the profile it replaced is kept as {path.name}{PREVIOUS_SUFFIX}" \
            if old is not None else ""
        self.saved.setText(f"saved profile {path} (uses the {chosen} decoder){note}")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802
        return self.ctrl.profile_path is not None


class FeedbackPage(QtWidgets.QWizardPage):
    """Online feedback: the cursor moves with the decoder; cued targets; live hit rate;
    optional co-adaptive update of the model with the run's known targets."""

    def __init__(self, ctrl, feedback_trials: int = 5, parent=None) -> None:
        super().__init__(parent)
        self.ctrl = ctrl
        self.setTitle("7 · Online feedback")
        self.setSubTitle("Move the ball to the cued side by imagining the movement.")
        lay = QtWidgets.QVBoxLayout(self)
        self.target = QtWidgets.QLabel("")
        self.target.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        f = self.target.font()
        f.setPointSize(20)
        f.setBold(True)
        self.target.setFont(f)
        self.view = FeedbackView()
        self.hits = QtWidgets.QLabel("hit rate: –")
        row = QtWidgets.QHBoxLayout()
        self.trials = QtWidgets.QSpinBox()
        self.trials.setRange(1, 100)
        self.trials.setValue(feedback_trials)
        self.coadapt = QtWidgets.QCheckBox("co-adaptive: refine my model with this run")
        self.start_btn = QtWidgets.QPushButton("Start feedback run")
        for w in (QtWidgets.QLabel("targets per class"), self.trials, self.coadapt,
                  self.start_btn):
            row.addWidget(w)
        self.status = QtWidgets.QLabel("")
        self.use_profile = QtWidgets.QCheckBox("Use this profile in the main window when I finish")
        self.use_profile.setChecked(True)
        self.use_profile.setToolTip("On Finish, the main window loads the profile saved on the "
                                    "Results page (as File ▸ Load model bundle… would)")
        self.use_profile_note = QtWidgets.QLabel("")
        self.use_profile_note.setObjectName("useProfileNote")
        self.use_profile_note.setWordWrap(True)
        self.use_profile_note.setStyleSheet("color: #888888;")
        self.use_profile_note.setVisible(False)
        lay.addWidget(self.target)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.hits)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(self.use_profile)
        lay.addWidget(self.use_profile_note)
        self.start_btn.clicked.connect(self.start)
        ctrl.prediction.connect(self._prediction)
        ctrl.protocolState.connect(self._state)
        ctrl.cue.connect(self._cue)
        ctrl.feedbackTrial.connect(self._trial)
        ctrl.feedbackFinished.connect(self._finished)
        ctrl.coadapted.connect(self._coadapted)
        self.active = False
        self.runs_done = 0
        self.updates_done = 0
        self._dirs = {}

    def initializePage(self) -> None:  # noqa: N802
        classes = tuple(self.ctrl.result.classes)
        d = class_directions(classes)
        self._dirs = dict(zip(classes, d))
        self.view.set_targets(classes, d)
        self.refresh_use_profile()

    def refresh_use_profile(self) -> None:
        """Offer "Use this profile in the main window" when there is a main window to use it in
        (the wizard has ``use_profile``); disabled, with the reason, while no profile is saved."""
        wiz = self.wizard()
        offered = wiz is not None and getattr(wiz, "use_profile", None) is not None
        saved = self.ctrl.profile_path is not None
        self.use_profile.setVisible(offered)
        self.use_profile.setEnabled(offered and saved)
        self.use_profile_note.setVisible(offered and not saved)
        self.use_profile_note.setText(
            "" if saved else "No profile saved yet: save one on the Results page to use it.")

    def start(self) -> None:
        self.active = True
        self.start_btn.setEnabled(False)
        self.status.setText("feedback run …")
        self.hits.setText("hit rate: –")
        self.ctrl.start_feedback(self.trials.value())

    def _prediction(self, pred) -> None:
        if not self.active:
            return
        if pred.control is not None and len(self._dirs) == 2:
            d = np.array(list(self._dirs.values()))
            pos = d[1] * (pred.control + 1) / 2 + d[0] * (1 - pred.control) / 2
        else:
            p = pred.smoothed if pred.smoothed is not None else pred.probabilities
            pos = np.asarray(p) @ np.array(list(self._dirs.values()))
        self.view.set_position(pos, pred.reliable)

    def _state(self, state: str, trial: int) -> None:
        if not self.active:
            return
        if state in ("rest", "fixation"):
            self.target.setText("+" if state == "fixation" else "")
            self.view.set_position(np.zeros(2), False)

    def _cue(self, cls: str, trial: int) -> None:
        if self.active:
            self.target.setText(f"target: {cls.upper()}")

    def _trial(self, target: str, decided: str, hit: bool) -> None:
        n, h = len(self.ctrl.feedback_hits), sum(self.ctrl.feedback_hits)
        self.hits.setText(f"hit rate: {h}/{n} = {h / n:.0%} (last: {target} → {decided}, "
                          f"{'hit' if hit else 'miss'})")

    def _finished(self, rate: float) -> None:
        self.active = False
        self.runs_done += 1
        self.target.setText("")
        self.view.set_position(self.view.position, False)  # grey: the run no longer drives it
        msg = f"run {self.runs_done} done: hit rate {rate:.0%}" if not math.isnan(rate) else \
            "run done"
        if self.coadapt.isChecked():
            msg += " · updating your model …"
            self.ctrl.coadapt()
        else:
            self.start_btn.setEnabled(True)
        self.status.setText(msg)

    def _coadapted(self, result, error: str) -> None:
        self.start_btn.setEnabled(True)
        if error:
            self.status.setText(f"model update failed: {error}")
            return
        self.updates_done += 1
        s = result.scores.get(self.ctrl.chosen) or result.scores["adapted"]
        self.status.setText(f"model updated with {result.n_trials} trials: cross-validated "
                            f"{s.accuracy:.0%}; profile saved ({self.ctrl.profile_path})")
