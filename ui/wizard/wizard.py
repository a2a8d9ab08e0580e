"""The QWizard that strings the calibration pages together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtWidgets

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
    closing the window never hands the profile on.
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

    @property
    def profile_to_use(self) -> Path | None:
        """The saved profile to hand to :attr:`use_profile` on Finish: None without a saved
        profile, without a main window to use it in, or when the user unchecked the option."""
        path = self.controller.profile_path
        if path is None or self.use_profile is None or not self.feedback.use_profile.isChecked():
            return None
        return Path(path)

    def done(self, result: int) -> None:
        accepted = int(result) == int(QtWidgets.QDialog.DialogCode.Accepted)  # Finish, not Cancel
        path = self.profile_to_use if accepted else None
        self.shutdown()
        super().done(result)
        if path is not None:
            logger.info("calibration finished: using profile %s in the main window", path)
            self.use_profile(str(path))

    def closeEvent(self, ev) -> None:  # noqa: N802
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
