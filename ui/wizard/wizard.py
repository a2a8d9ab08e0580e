"""The QWizard that strings the calibration pages together."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtWidgets

from ui.dialogs import ask_yes_no

from .controller import CalibrationController
from .pages import (
    AcquisitionPage, DevicePage, FeedbackPage, InstructionsPage, ResultsPage, SignalCheckPage,
    TrainingPage,
)

logger = logging.getLogger(__name__)


class CalibrationWizard(QtWidgets.QWizard):
    """Guide a new user from putting on the cap to controlling a cursor.

    Parameters
    ----------
    parent : QWidget | None
    source_spec : str
        Pre-filled source (``simulated:N``, ``synthetic``, ``lsl:NAME``, ``brainflow:…``, ``file:…``).
    pretrained : str | Path | Bundle | None
        The cross-subject bundle to adapt (default: the one in ``decoders/pretrained/``).
    speed : str
        Simulated subject speed: ``"1"`` (real time), ``"N"``, ``"max"``.
    user : str
        Pre-filled user id.
    trials_per_class, feedback_trials, finetune_epochs : defaults of the pages.
    profiles_root, record_dir : where profiles and recordings go (defaults: ``profiles/``,
        ``recordings/``).
    use_profile : callable(str) | None
        Called (GUI thread) with the saved profile's folder when the user presses Finish and keeps
        "Use this profile in the main window" checked on the last page. The main window passes
        its ``load_model_async``; without it (a stand-alone wizard) the option is not shown.
    before_connect : callable() | None
        Called on the connect thread before the source opens: the main window passes a wait
        for its own release of the same BrainFlow board.

    The wizard owns its source and session; closing it (or ``done``) stops them. Cancel or
    closing the window never hands the profile on. While a cued run, a feedback run or a
    training job is going, Cancel, Esc, the window's close button and Finish first ask
    (:attr:`confirm`, with :meth:`close_question`) and do nothing on No; :meth:`shutdown`
    (the main window's, after its own question) never asks.
    """

    def __init__(self, parent=None, source_spec: str = "simulated:1", pretrained=None, *,
                 speed: str = "1", user: str = "anonymous", trials_per_class: int = 20,
                 feedback_trials: int = 5, finetune_epochs: int = 30, profiles_root=None,
                 record_dir=None, use_profile: Callable[[str], None] | None = None,
                 before_connect: Callable[[], None] | None = None) -> None:
        if use_profile is not None and not callable(use_profile):
            raise TypeError(f"use_profile: expected a callable taking the profile folder or None, "
                            f"got {type(use_profile).__name__}.")
        super().__init__(parent)
        self.use_profile = use_profile
        self.setWindowTitle("bci_app · calibration")
        self.setWizardStyle(QtWidgets.QWizard.WizardStyle.ClassicStyle)
        self.setOption(QtWidgets.QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.controller = CalibrationController(pretrained, profiles_root=profiles_root,
                                                record_dir=record_dir, parent=self)
        self.controller.before_connect = before_connect
        c = self.controller
        self.device = DevicePage(c, source_spec, speed, user)
        self.signal = SignalCheckPage(c)
        self.instructions = InstructionsPage(c, trials_per_class)
        self.acquisition = AcquisitionPage(c)
        self.training = TrainingPage(c, finetune_epochs)
        self.results = ResultsPage(c)
        self.feedback = FeedbackPage(c, feedback_trials)
        for p in (self.device, self.signal, self.instructions, self.acquisition, self.training,
                  self.results, self.feedback):
            self.addPage(p)
        self.resize(1100, 820)
        #: ``confirm(title, question) -> bool``: asks the user (a modal question box) before
        #: closing ends a run or a training; tests replace it to answer without a dialog.
        self.confirm = functools.partial(ask_yes_no, self)

    @property
    def profile_to_use(self) -> Path | None:
        """The saved profile to hand to :attr:`use_profile` on Finish: None without a saved
        profile, without a main window to use it in, or when the user unchecked the option."""
        path = self.controller.profile_path
        if path is None or self.use_profile is None or not self.feedback.use_profile.isChecked():
            return None
        return Path(path)

    def close_question(self) -> tuple[str, str] | None:
        """``(title, question)`` to ask before closing ends a cued run, a feedback run or a
        training job, naming what would be lost and what is kept; None when none is going
        (closing then asks nothing, even with recorded trials not saved as a profile)."""
        c = self.controller
        if c.closed:
            return None
        if c.acquiring and c.protocol is not None:
            rec = c.recording_path
            kept = (f"the recording file {rec} is kept, with the run up to now" if rec is not None
                    else "this run is not recorded to a file")
            return ("Cued run in progress",
                    f"A cued run is in progress: {_n(c.protocol.n_done, 'trial')} so far would be "
                    f"lost ({kept}).\n\nClose anyway?")
        if c.mode in ("feedback", "tail-feedback") and c.protocol is not None:
            update = (" and the co-adaptive update of your model with them"
                      if self.feedback.coadapt.isChecked() else "")
            return ("Feedback run in progress",
                    f"A feedback run is in progress: {_n(c.protocol.n_done, 'trial')} so far"
                    f"{update} would be lost (the saved profile {c.profile_path} is kept as it "
                    "is).\n\nClose anyway?")
        job = c.running_job
        if job == "coadapt":
            return ("Model update in progress",
                    "Your model is being updated with the feedback run's trials: the update "
                    f"would be lost (the saved profile {c.profile_path} is kept without it)."
                    "\n\nClose anyway?")
        if job is not None:
            rec = c.recording_path
            lost = "the training" if rec is not None else "the training and the trials"
            kept = [f"the recording file {rec} is kept, with the trials" if rec is not None
                    else "the run was not recorded to a file"]
            if c.profile_path is not None:
                kept.append(f"the profile saved before, {c.profile_path}, is kept")
            return ("Training in progress",
                    f"The model is being trained on the cued run's "
                    f"{_n(len(c.calib_cues), 'trial')}: {lost} would be lost "
                    f"({'; '.join(kept)}).\n\nClose anyway?")
        return None

    def _may_close(self) -> bool:
        """Ask first when closing would end a run or a training (see :meth:`close_question`);
        True to go on closing."""
        asked = self.close_question()
        if asked is None:
            return True
        title, question = asked
        if not self.confirm(title, question):
            logger.info("calibration wizard kept open: %s", title.lower())
            return False
        logger.info("calibration wizard closed during: %s", title.lower())
        return True

    def reject(self) -> None:
        """Cancel, and Esc (QDialog's key handler calls this)."""
        if self._may_close():
            super().reject()

    def accept(self) -> None:
        """Finish (on the last page a feedback run or a model update may still be going)."""
        if self._may_close():
            super().accept()

    def done(self, result: int) -> None:
        accepted = int(result) == int(QtWidgets.QDialog.DialogCode.Accepted)  # Finish, not Cancel
        path = self.profile_to_use if accepted else None
        self.shutdown()
        super().done(result)
        if path is not None:
            logger.info("calibration finished: using profile %s in the main window", path)
            self.use_profile(str(path))

    def closeEvent(self, ev) -> None:  # noqa: N802
        """The window's close button (and ``close()``): asks first like Cancel. After the
        shutdown QDialog's handler calls :meth:`reject`, which then has nothing to ask."""
        if not self._may_close():
            ev.ignore()
            return
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self) -> None:
        """Stop timers, the decoder, the recorder and the source (idempotent, GUI thread).

        A training job still running is cancelled, not waited for: it ends within one training
        batch on its own thread (the interpreter waits for it at exit) and reports nothing."""
        self.signal.timer.stop()
        self.acquisition.timer.stop()
        self.controller.shutdown()

    @property
    def busy(self) -> bool:
        """Closing now would lose work: a cued or feedback run, a training job, or recorded
        trials not saved as a profile yet."""
        c = self.controller
        if c.closed:
            return False
        return (c.mode not in ("idle", "signal") or c.training_running
                or (c.calib_data is not None and c.profile_path is None))


def _n(n: int, what: str) -> str:
    """``"1 trial"``, ``"3 trials"``."""
    return f"{n} {what}{'' if n == 1 else 's'}"
