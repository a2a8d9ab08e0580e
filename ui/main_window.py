"""The live session window: scope, spectrum, prediction panel, session controls, status bar.

Threads
-------
- The source acquires on its own thread; this window never calls ``acquire()`` or ``_pull``.
- A display timer (~60 Hz) lets the scope copy what is new from the ring buffer and draw it; a
  4 Hz timer updates the spectrum, the status bar and the replay/recording read-outs. Neither
  waits on anything: they read counters and copies.
- Source state changes come from the acquisition thread as queued signals
  (:class:`~ui.qt_bridge.SourceStateBridge`), predictions from the decoder thread likewise
  (:class:`~ui.qt_bridge.PredictionBridge`).
- Connecting and disconnecting a source (LSL resolve, serial open, thread join) run on background
  threads (:class:`~ui.qt_bridge.BackgroundCall`): the window keeps painting meanwhile. They run
  one after the other (each waits for the one started before it), so a device is released before
  it is opened again. A finished call is deleted in the GUI thread once its thread has ended.
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import os
import time
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from .controls import SessionControls, VerticalScroll, scrollable, short_spec
from .dialogs import ask_yes_no
from .prediction import MAX_VISIBLE_BARS, MIN_VISIBLE_HEIGHT, PredictionPanel
from .qt_bridge import BackgroundCall, PredictionBridge, SourceStateBridge
from .scope import ChannelPanel, ScopeWidget
from .settings import AppSettings
from .source_dialog import SourceDialog
from .spectrum import SpectrumWidget
from .status import Banner, StatusPanel, StatusSnapshot, stat_value

logger = logging.getLogger(__name__)

#: The repository root (the model dialog starts in its ``decoders/pretrained``, whatever the CWD).
REPO_ROOT = Path(__file__).resolve().parents[1]

#: Where the online decoder worker may live (it is written by the decoders team).
DECODER_WORKER_MODULES = ("decoders.worker", "decoders.online", "decoders.realtime")

#: Seconds a decoder gets to decode the last samples of a replay that ended before it is stopped
#: (``DecoderWorker.drain``).
DRAIN_TIMEOUT_S = 2.0

#: Why decoding waits after a replay ended (the decode button's tooltip, the banner).
DECODING_PAUSED = ("Decoding is paused: the replay ended. It starts again when the file plays "
                   "again (Play, Replay again or a seek).")


def find_decoder_worker():
    """The ``DecoderWorker`` class if the decoders package provides one yet, else None."""
    for name in DECODER_WORKER_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        cls = getattr(mod, "DecoderWorker", None)
        if cls is not None:
            return cls
    return None



def model_title(path: str | os.PathLike, name: str) -> str:
    """How a loaded model is named in the panels.

    A user profile folder gives e.g. "profile alice (adapted eegnet)", so it cannot be mistaken
    for the pretrained bundle it started from; a bundle folder gives ``name`` as it is.
    """
    import json

    from bci_app.profiles import PROFILE_JSON

    f = Path(path) / PROFILE_JSON
    if not f.is_file():
        return name
    try:
        meta = json.loads(f.read_text())
    except (OSError, ValueError):
        return f"profile {Path(path).name} ({name})"
    user = meta.get("user") or Path(path).name
    chosen = meta.get("chosen") or "adapted"
    return f"profile {user} ({chosen} {name})"


class MainWindow(QtWidgets.QMainWindow):
    """The desktop window of a live session.

    Parameters
    ----------
    source_spec : str
        Spec of the source to open (``make_source``); default the BrainFlow synthetic board.
    source : Source | None
        An already created source (tests, benchmarks) instead of ``source_spec``.
    settings : AppSettings | None
        Where settings persist (default: ``$BCI_APP_SETTINGS`` or the user's store).
    model : str | None
        Model bundle to load at start.
    display_fps : float
        Target display rate of the scope.
    connect_timeout : float
        Seconds to wait for the device / stream when connecting.
    """

    def __init__(self, source_spec: str = "synthetic", *, source=None, settings: AppSettings | None = None,
                 model: str | None = None, display_fps: float = 60.0, connect_timeout: float = 10.0,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("bci_app — live session")
        self.settings = settings or AppSettings()
        self.connect_timeout = float(connect_timeout)
        self.session = None
        self.source = None
        self.source_spec: str | None = None
        self.connect_error = ""
        self.bundle = None
        self._model_title: str | None = None  # e.g. "profile alice (adapted eegnet)"
        #: The loaded model's cross-validated accuracy (None: unknown) and where it comes from.
        self.model_accuracy: tuple[float | None, str] = (None, "")
        self.decoder = None
        self.recorder = None
        self._record_t0: float | None = None
        self._background: set[BackgroundCall] = set()
        self._connecting: set = set()  # sessions whose connect() runs on a background thread
        #: Thread of the last source connect / disconnect started (the next one waits for it).
        self._lifecycle_thread = None
        self._decoder_pending: BackgroundCall | None = None
        self._prediction_recording = None  # (worker, callback) recording predictions
        self._closing = False
        self._decoder_error = False  # the banner shows a failed decoder start
        self._speller_call: BackgroundCall | None = None
        self._replay_start_at: float | None = None  # "replay again" from this position (s)
        #: The end of the current replay was handled (decoder drained, recording saved).
        self._replay_ended = False
        #: Decoding was on when the replay ended: it is paused, playing the file again resumes it.
        self._resume_decoding = False
        #: Start decoding once the source being connected streams (a replay played again).
        self._decode_on_connect = False
        #: ``confirm(title, question) -> bool``: asks the user (a modal question box); tests
        #: replace it to answer without a dialog.
        self.confirm = functools.partial(ask_yes_no, self)

        # ------------------------------------------------------------ widgets
        central = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(central)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(0)
        self.banner = Banner()
        self.scope = ScopeWidget()
        v.addWidget(self.banner)
        v.addWidget(self.scope, 1)
        self.setCentralWidget(central)

        self.controls = SessionControls()
        self.channels = ChannelPanel(self.scope)
        self.prediction = PredictionPanel()
        self.spectrum = SpectrumWidget()
        self.controls_dock = self._dock("Session", scrollable(self.controls),
                                        QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        self.channels_dock = self._dock("Channels", self.channels, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self.controls_dock, self.channels_dock)
        self.controls_dock.raise_()
        # scrollable like the Session dock: a short screen scrolls the panel instead of the
        # window growing past it
        self.prediction_dock = self._dock("Decoder output",
                                          VerticalScroll(self.prediction, MIN_VISIBLE_HEIGHT),
                                          QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        self.spectrum_dock = self._dock("Spectrum and band power", self.spectrum,
                                        QtCore.Qt.DockWidgetArea.BottomDockWidgetArea)
        self.status = StatusPanel(self.statusBar())
        self._build_menus()

        # ------------------------------------------------------------ bridges and timers
        self.state_bridge = SourceStateBridge(self)
        self.state_bridge.stateChanged.connect(self._on_state)
        self.prediction_bridge = PredictionBridge(self)
        self.prediction_bridge.predicted.connect(self.prediction.on_prediction)

        self.display_timer = QtCore.QTimer(self)
        self.display_timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.display_timer.setInterval(max(1, int(round(1000.0 / display_fps))))
        self.display_timer.timeout.connect(self.scope.refresh)
        self.slow_timer = QtCore.QTimer(self)
        self.slow_timer.setInterval(250)
        self.slow_timer.timeout.connect(self._slow_tick)

        # ------------------------------------------------------------ wiring
        c = self.controls
        c.chooseSourceRequested.connect(self.choose_source)
        c.loadModelRequested.connect(self.choose_model)
        c.decodeToggled.connect(self.set_decoding)
        c.recordToggled.connect(self._on_record_toggled)
        c.markerRequested.connect(self.add_marker)
        c.playPauseToggled.connect(self._on_play)
        c.seekRequested.connect(self._on_seek)
        c.speedChanged.connect(self._on_speed)
        self.banner.actionRequested.connect(self.choose_source)
        self.banner.replayRequested.connect(lambda: self.replay_again(0.0))
        self.scope.settingsChanged.connect(self._save_display_settings)
        self.scope.channelsChanged.connect(self._sync_hidden)
        self._shortcuts = []
        sc = QtGui.QShortcut(QtGui.QKeySequence("M"), self)
        sc.activated.connect(lambda: self.controls.request_marker())
        self._shortcuts.append(sc)
        for d in range(1, 10):
            sc = QtGui.QShortcut(QtGui.QKeySequence(str(d)), self)
            sc.activated.connect(lambda d=d: self.add_marker(str(d)))
            self._shortcuts.append(sc)

        # ------------------------------------------------------------ settings
        self.resize(*self.default_size())
        #: No saved layout: the first show gives the plots their default shares of the height.
        self._first_layout = self.settings.get_bytes("window/state") is None
        self.settings.restore_window(self)
        self.scope.restore(self.settings.scope)
        self.spectrum.restore(self.settings.spectrum)
        #: The default file name shown (re-stamped when Record is pressed, unless edited).
        self._default_record_path = ""
        self._show_default_record_path()
        self._update_record_controls()
        self._update_model_controls()

        self.display_timer.start()
        self.slow_timer.start()
        self.spectrum.start()
        if source is not None:
            self.open_source(source_spec if source_spec != "synthetic" else f"<{type(source).__name__}>",
                             source=source)
        else:
            self.open_source(source_spec)
        if model:
            self.load_model_async(model)

    # ------------------------------------------------------------------ layout helpers
    def _dock(self, title: str, widget: QtWidgets.QWidget, area) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_"))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        act = m.addAction("Choose &source…")
        act.setShortcut(QtGui.QKeySequence("Ctrl+O"))
        act.triggered.connect(self.choose_source)
        self.reopen_action = m.addAction("Reopen last source")
        self.reopen_action.triggered.connect(self._reopen_last)
        act = m.addAction("&Load model bundle…")
        act.setShortcut(QtGui.QKeySequence("Ctrl+L"))
        act.triggered.connect(self.choose_model)
        m.addSeparator()
        act = m.addAction("&Quit")
        act.setShortcut(QtGui.QKeySequence.StandardKey.Quit)
        act.triggered.connect(self.close)
        view = self.menuBar().addMenu("&View")
        for dock in (self.controls_dock, self.channels_dock, self.prediction_dock, self.spectrum_dock):
            view.addAction(dock.toggleViewAction())
        tools = self.menuBar().addMenu("&Tools")
        self.wizard_action = tools.addAction("&Calibration wizard…")
        self.wizard_action.setShortcut(QtGui.QKeySequence("Ctrl+K"))
        self.wizard_action.triggered.connect(self.open_calibration_wizard)
        self.speller_action = tools.addAction("&Speller")
        self.speller_action.setShortcut(QtGui.QKeySequence("Ctrl+P"))
        self.speller_action.triggered.connect(self.open_speller)
        self.wizard = None
        self.speller_dock = None
        self.speller = None  # the SpellerView, once its language model is built
        #: Why the speller assumes its command accuracy (shown in the status bar).
        self.speller_accuracy_note = ""

    # ------------------------------------------------------------------ tools
    def open_calibration_wizard(self) -> None:
        """Guide a new user from signal check to a saved profile (ui/wizard).

        On Finish the wizard hands the saved profile back (unless the user unchecked "Use this
        profile in the main window"): it is loaded like one chosen in the model dialog."""
        from .wizard import CalibrationWizard

        old = self.wizard
        if old is not None and not old.controller.closed:  # still open (it is not modal)
            old.show()  # a second one would go unnoticed by closeEvent's question and shutdown
            old.raise_()
            old.activateWindow()
            return
        if old is not None:
            self._release_wizard(old)
        spec = self.source_spec if self.source_spec and self.source_spec != "synthetic" \
            else "simulated:1"
        handed = self._hand_board_to_wizard(spec)
        release = self._lifecycle_thread if handed else None
        self.wizard = CalibrationWizard(
            self, source_spec=spec, use_profile=self.load_model_async,
            before_connect=(lambda t=release: t.join(self.connect_timeout + 10.0))
            if release is not None else None)
        if handed:
            self.wizard.finished.connect(lambda _r, sp=spec: self._board_back_from_wizard(sp))
        self.wizard.show()

    def _hand_board_to_wizard(self, spec: str) -> bool:
        """A BrainFlow board open here (an OpenBCI Cyton, ...) cannot be opened by the wizard too:
        BrainFlow allows one session per board, and the wizard's Connect failed with
        ANOTHER_BOARD_IS_CREATED. The window lets go of it while the wizard runs (the wizard's
        connect waits for the release) and connects it again when the wizard closes. Not while
        recording: the recording is the user's; the wizard then says the board is in use."""
        from bci_app.sources import source_kind

        if source_kind(spec) not in ("brainflow", "synthetic") or self.session is None or \
                self.recorder is not None:
            return False
        self._close_session()
        self.controls.set_source_text(f"{short_spec(spec)} — in use by the calibration wizard",
                                      spec)
        self.banner.show_message("info", f"{spec} is in use by the calibration wizard; it comes "
                                         "back here when the wizard closes.")
        return True

    def _board_back_from_wizard(self, spec: str) -> None:
        """The wizard closed (its shutdown released the board): connect it here again, unless the
        user chose another source meanwhile or the window is closing."""
        if self._closing or self.session is not None:
            return
        self.banner.clear()
        self.open_source(spec)

    def _release_wizard(self, wiz) -> None:
        """Delete a closed wizard (a child of this window: kept, every calibration session's
        wizard, trials and models stayed in memory until the window closed), once none of its
        threads can still emit on it: a cancelled training job ends within a batch, a connect
        started before the close ends with its timeout. Deleting a QObject while another thread
        emits on it crashes."""
        call = getattr(wiz.device, "_call", None)
        thread = wiz.controller._train_thread
        if (thread is not None and thread.is_alive()) or (call is not None and call.is_running()):
            # (the timer is dropped if wiz is deleted with this window meanwhile)
            QtCore.QTimer.singleShot(500, wiz, lambda: self._release_wizard(wiz))
            return
        wiz.deleteLater()

    def open_speller(self) -> None:
        """Show the motor-imagery speller, driven by this window's decoder predictions.

        The speller goes under the plots, beside the spectrum (its boxes of symbols lie side by
        side): in the right column, under the decoder output, it made the window taller and
        wider than a 1366×768 laptop screen.

        The language model takes seconds to build: it is built on a background thread while
        the dock shows a placeholder; :attr:`speller` is None until the view is ready."""
        if self.speller_dock is None:
            placeholder = QtWidgets.QLabel("Loading the language model…")
            placeholder.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            self.speller = None
            bottom = QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
            dock = QtWidgets.QDockWidget("Speller", self)
            dock.setObjectName("Speller")
            dock.setWidget(placeholder)
            self.speller_dock = dock
            # where the user left it last time (the window's saved state names it), else the
            # default place; restored docks are also shown again
            restored = self.restoreDockWidget(dock)
            if restored:
                dock.show()
            else:
                self.addDockWidget(bottom, dock)
            spectrum = self.spectrum_dock
            if not restored and spectrum.isVisible() and not spectrum.isFloating() and \
                    self.dockWidgetArea(spectrum) == bottom:
                self.splitDockWidget(spectrum, self.speller_dock, QtCore.Qt.Orientation.Horizontal)
                half = max(1, spectrum.width() // 2)
                self.resizeDocks([spectrum, self.speller_dock], [half, half],
                                 QtCore.Qt.Orientation.Horizontal)

            measured = self.model_accuracy[0]

            def build():
                from bci_app.speller import LanguageModel, SpellerEngine
                from bci_app.speller.engine import DEFAULT_COMMAND_MAP, assumed_accuracy

                n_choice = len({v for v in DEFAULT_COMMAND_MAP.values() if v != "undo"})
                return SpellerEngine(LanguageModel("en"), scheme="posterior",
                                     accuracy=assumed_accuracy(measured, n_choice))

            call = BackgroundCall(build, "gui-speller-lm", self)
            call.finished.connect(self._speller_ready)
            self._speller_call = call
            self._run_background(call)
        self.speller_dock.show()
        self.speller_dock.raise_()

    def _speller_ready(self, engine, error: str) -> None:
        self._speller_call = None
        if self._closing or self.speller_dock is None:
            return
        if error:
            label = QtWidgets.QLabel(f"The speller could not start:\n{error}")
            label.setWordWrap(True)
            self.speller_dock.setWidget(label)
            return
        from .speller_view import SpellerView

        self.speller = SpellerView(engine)
        self.speller_dock.setWidget(self.speller)
        self.prediction_bridge.predicted.connect(self.speller.on_prediction)
        # a closed (or tabbed-away) speller dock only hides: it must not go on writing
        self.speller_dock.visibilityChanged.connect(self.speller.set_active)
        self._update_speller_accuracy()  # (the model may have changed while it was built)
        # once laid out, the speller gets the height it needs (the placeholder needed less)
        QtCore.QTimer.singleShot(0, self._fit_bottom_docks)

    def _update_speller_accuracy(self) -> None:
        """The speller assumes the loaded model's accuracy (the rule of ``bci-app spell``:
        :func:`bci_app.speller.engine.assumed_accuracy`), and says so in its dock's title and the
        status bar. GUI thread (where the engine is used)."""
        if self.speller is None or self.speller_dock is None:
            return
        from bci_app.speller.engine import assumed_accuracy, assumed_accuracy_note

        engine = self.speller.engine
        measured, origin = self.model_accuracy
        acc = assumed_accuracy(measured, engine.arity)
        engine.accuracy = acc  # (used from the next command on)
        self.speller_dock.setWindowTitle(f"Speller — assumes {100 * acc:.0f} % command accuracy")
        note = assumed_accuracy_note(acc, measured, origin, "no measured accuracy for this model"
                                     if self.bundle is not None else "no model loaded")
        self.speller_accuracy_note = (f"The speller assumes {100 * acc:.0f} % command accuracy "
                                      f"({note}).")
        self.statusBar().showMessage(self.speller_accuracy_note, 8000)

    # ------------------------------------------------------------------ source lifecycle
    def choose_source(self) -> None:
        # check_files: a mistyped file name is refused in the dialog; accepted, it stopped the
        # running source (its recording and decoding) before the replay failed to read it
        dlg = SourceDialog(self.settings.last_source or self.source_spec or "synthetic", self,
                           check_files=True)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted and dlg.spec:
            self.open_source(dlg.spec)

    def _reopen_last(self) -> None:
        if self.settings.last_source and self._file_still_there(self.settings.last_source):
            self.open_source(self.settings.last_source)

    def _file_still_there(self, spec: str) -> bool:
        """Before a file source is opened again (File ▸ Reopen, Replay again): a file moved or
        deleted since is named in the banner and the running source, its recording and decoding
        go on (``open_source`` stops them first)."""
        from .source_dialog import check_file_spec

        try:
            check_file_spec(spec)
        except ValueError as err:
            self.banner.show_message("error", f"Cannot open {short_spec(spec)} again: {err}")
            return False
        return True

    def open_source(self, spec: str, *, source=None, decode: bool = False) -> None:
        """Stop the current source (in the background) and connect a new one (in the background).

        With ``decode`` (a replay played again while decoding was on), decoding starts again
        once the new source is connected."""
        from bci_app.session import Session

        self._close_session()
        self.prediction.reset("stopped — the source changed; start decoding again")
        self._replay_ended = False
        self._decode_on_connect = bool(decode)
        self.source_spec = spec
        self.connect_error = ""
        given = source is not None
        if source is None:
            try:
                from bci_app.sources import make_source

                source = make_source(spec)
            except Exception as err:
                self._show_connect_error(spec, f"{type(err).__name__}: {err}")
                return
        if given and math.isfinite(float(getattr(source, "speed", math.nan))) and \
                hasattr(source, "set_speed"):
            self._show_speed(float(source.speed))  # a replay handed in plays at its own speed
        self.source = source
        self.session = Session(source)
        self.scope.set_source(source)
        self.spectrum.set_source(source)
        self.state_bridge.attach(source)
        self.controls.set_source_text(f"{short_spec(spec)} — connecting…", spec)
        self.controls.set_replay_available(hasattr(source, "pause") and hasattr(source, "seek"))
        self.banner.show_message("connecting", f"Connecting to {spec}…")
        session = self.session
        if source.connected:
            self._on_connected(session, spec, session, "")
            return
        self._connecting.add(session)
        timeout = self.connect_timeout
        self._run_lifecycle(
            lambda: session.start(timeout=timeout), "gui-connect",
            lambda result, error, s=session, sp=spec: self._on_connected(s, sp, result, error))

    def _run_background(self, call: BackgroundCall) -> None:
        self._background.add(call)
        call.finished.connect(lambda *_: self._background_done(call))
        call.start()

    def _background_done(self, call: BackgroundCall) -> None:
        """A call finished (GUI thread, after its other receivers): it is deleted once its thread
        has ended. Kept as a child of the window, every call held its closure and its result (a
        session with its source and ring buffer, a decoder worker, a bundle) for as long as the
        window lived: each source change or decoder start kept the old ones in memory."""
        self._background.discard(call)
        if call.wait(1.0):  # the thread is past its emit: deleting now cannot race with it
            call.deleteLater()

    def _run_lifecycle(self, fn, name: str, on_finished=None) -> BackgroundCall:
        """Run a source connect or disconnect in the background after the one started before it.

        Started side by side, the old session's stop and the new session's connect raced for the
        device: reopening the BrainFlow board failed with ANOTHER_BOARD_IS_CREATED, or the old
        session's release took the new session's board down (lost, reconnect, a gap). The wait
        runs on the new call's thread (the GUI keeps painting); the closure holds the previous
        call's thread, no Qt object."""
        previous = self._lifecycle_thread
        wait_s = self.connect_timeout + 10.0

        def run():
            if previous is not None:
                previous.join(wait_s)
            return fn()

        call = BackgroundCall(run, name, self)
        if on_finished is not None:
            call.finished.connect(on_finished)
        self._lifecycle_thread = call.worker_thread
        self._run_background(call)
        return call

    def _on_connected(self, session, spec: str, _result, error: str) -> None:
        self._connecting.discard(session)
        if session is not self.session:  # superseded by another choice meanwhile: its stop
            return  # was queued after this connect by _close_session
        if error:
            self._show_connect_error(spec, error)
            return
        info = session.source.info
        self.controls.set_source_text(
            f"{info.name}\n{info.n_channels} ch @ {info.sfreq:g} Hz ({short_spec(spec)})", spec)
        self.setWindowTitle(f"bci_app — {info.name}")
        self.banner.clear()
        saved = self.settings.channels(info.source_id)
        self.scope.restore_channels(saved)
        scale = saved.get("scale_uv")
        if isinstance(scale, (int, float)) and scale > 0:  # the scale last used for this stream
            self.scope.set_scale(float(scale))
        else:  # a stream seen for the first time: fit the scale to it once data is in
            QtCore.QTimer.singleShot(1500, lambda s=session: s is self.session and self.scope.auto_scale())
        if not spec.startswith("<"):
            self.settings.last_source = spec
        self._start_replay(session.source)
        self._on_state(session.source.state.value, "")
        self._update_model_controls()
        self._update_record_controls()
        if self._decode_on_connect:  # the replay plays again: decoding goes on as it was
            self._decode_on_connect = False
            self.set_decoding(True)

    def _show_speed(self, speed: float) -> None:
        """Select ``speed`` in the replay speed box (added if it is not one of its steps),
        without applying it: :meth:`_start_replay` plays the replay at the box's value."""
        combo = self.controls.speed_combo
        i = combo.findData(speed)
        if i < 0:
            combo.addItem(f"{speed:g}×", speed)
            i = combo.count() - 1
        combo.blockSignals(True)
        combo.setCurrentIndex(i)
        combo.blockSignals(False)

    def _start_replay(self, src) -> None:
        """A replay that just connected: play at the speed shown, from where "replay again" asked."""
        start_at, self._replay_start_at = self._replay_start_at, None
        if not hasattr(src, "seek"):
            return
        speed = self.controls.speed_combo.currentData()
        if speed is not None and hasattr(src, "set_speed"):
            src.set_speed(float(speed))
        if start_at:
            try:
                src.seek(min(start_at, max(0.0, float(src.duration) - 0.1)))
            except Exception:
                logger.exception("Could not start the replay at %.3f s", start_at)

    def _show_connect_error(self, spec: str, error: str) -> None:
        self.connect_error = error
        self._decode_on_connect = False
        self.prediction.reset("stopped — no source connected")
        self.controls.set_source_text(f"{short_spec(spec)} — not connected", spec)
        self._decoder_error = False
        self.banner.show_message("error", f"Could not open {spec}: {error}")
        self._update_record_controls()

    def _close_session(self) -> None:
        self.set_decoding(False)
        if self.recorder is not None:
            self._stop_recording()
        session, self.session = self.session, None
        if self.source is not None and self.scope.n_channels:
            self._save_channel_settings()
        self.state_bridge.detach()
        self.source = None
        if session is not None:  # (one still connecting stops once its connect has returned)
            self._stop_in_background(session)
        self._update_record_controls()

    def _stop_in_background(self, session) -> None:
        self._run_lifecycle(session.stop, "gui-disconnect")

    def _on_state(self, state: str, message: str) -> None:
        """Source state changed (queued from the acquisition thread)."""
        src = self.source
        if src is None:
            return
        name = src.display_name
        if state in ("lost", "reconnecting"):
            extra = f" ({message})" if message else ""
            self.banner.show_message(state, f"Signal LOST from {name}{extra}. "
                                     + ("Reconnecting automatically… " if src.reconnect else "")
                                     + "The app keeps running; the gap will be marked in the recording.")
        elif state == "stalled" and getattr(src, "paused", False):
            if self.banner.kind not in ("error", "finished"):  # the user paused: nothing amiss
                self.banner.clear()
        elif state == "stalled":
            self.banner.show_message("stalled", f"No data from {name} ({message or 'stalled'}).")
        elif state == "streaming":
            if self.banner.kind != "error":
                self.banner.clear()
        elif state == "stopped":
            if getattr(src, "finished", False):
                again = ("Press Play (or Replay again)" if hasattr(src, "seek")  # a ReplaySource
                         else "Press Replay again")  # BrainFlow's playback board has no Play
                self.banner.show_message("finished", f"Replay of {name} finished. {again} to "
                                         "play it from the start.")
                self._on_replay_end()
        self._update_record_controls()
        self._update_status()

    def _on_replay_end(self) -> None:
        """The replay delivered the last sample of its file (its source stopped, "end of file").

        No new window can come: the decoder decodes what was delivered and is stopped (on a
        background thread, ``DecoderWorker.drain``); its last decision stays on screen, marked as
        stale, and decoding is shown as paused. A recording is then saved, with those last
        predictions. Playing the file again (Play, Replay again, a seek:
        :meth:`replay_again`) turns decoding back on. The scope keeps what it shows. A looping
        replay never ends: this is never called for it. GUI thread, once per replay."""
        if self._replay_ended:  # (_on_state runs again for the same state)
            return
        self._replay_ended = True
        worker = self.decoder
        self._resume_decoding = worker is not None or self._decoder_pending is not None
        # a decoder still warming up would find no window: _on_decoder_started stops it
        self._decoder_pending = None
        logger.info("Replay ended%s", "; decoding paused" if self._resume_decoding else "")
        if worker is None:
            self._replay_end_done()
            return
        call = BackgroundCall(functools.partial(worker.drain, DRAIN_TIMEOUT_S), "gui-decoder-drain",
                              self)
        call.finished.connect(lambda *_, w=worker: self._on_decoder_drained(w))
        self._run_background(call)

    def _on_decoder_drained(self, worker) -> None:
        """The decoder of a replay that ended decoded its last window and stopped (GUI thread;
        its predictions, queued before this call's end, were shown)."""
        if self.decoder is not worker:  # stopped by the user, or the source changed meanwhile
            return
        self._stop_recording_predictions()
        self.prediction_bridge.detach()
        self.decoder = None
        self._replay_end_done()

    def _replay_end_done(self) -> None:
        """Show the end of a replay: the last decision as stale, decoding paused, the recording
        saved."""
        if self._resume_decoding:
            self.prediction.mark_stale(self._replay_end_note())
            if self.banner.kind == "finished" and "Decoding" not in self.banner.text:
                self.banner.show_message("finished", f"{self.banner.text} Decoding resumes when "
                                                     "the file plays again.")
        if self.recorder is not None:  # nothing more will come: the file is finalised now
            self._stop_recording()
        self._update_model_controls()
        if self._resume_decoding:
            self.controls.set_decoding(True, paused=DECODING_PAUSED)
        self._update_status()

    def _replay_end_note(self) -> str:
        """"replay ended — last decision at t = …" (seconds from the start of the file)."""
        pred, src = self.prediction.last, self.source
        buf = getattr(src, "buffer", None)
        if pred is None or buf is None or buf.counter == 0:
            return "replay ended — no decision was made; no new windows are decoded"
        # the last sample written is the file's last one: count back from the end of the file
        last_ts = float(buf.latest(1).timestamps[-1])
        duration = getattr(src, "duration", None)
        if duration is None:  # (a source that cannot say how long its file is)
            ago = max(0.0, last_ts - float(pred.window_end))
            return (f"replay ended — last decision {ago:.1f} s before the end; no new windows "
                    "are decoded")
        t = max(0.0, float(duration) - (last_ts - float(pred.window_end)))
        return f"replay ended — last decision at t = {t:.1f} s; no new windows are decoded"

    # ------------------------------------------------------------------ markers
    def add_marker(self, label: str) -> None:
        """A user marker now (button, M key, digit keys)."""
        if self.session is None or self.source is None or not self.source.connected:
            self.statusBar().showMessage("No source: marker not added", 3000)
            return
        m = self.session.add_marker(label)
        self.statusBar().showMessage(f"marker '{m.label}' at {m.timestamp:.3f}", 3000)

    # ------------------------------------------------------------------ model and decoding
    def model_dialog(self) -> QtWidgets.QFileDialog:
        """The folder dialog of :meth:`choose_model`: "Pretrained" and "Profiles" in its sidebar.

        It starts at the last model loaded (bundle or profile folder), else at the profiles folder
        when it holds a profile, else at the pretrained bundles.
        """
        from bci_app.profiles import PROFILE_JSON, profiles_dir

        pretrained, profiles = REPO_ROOT / "decoders" / "pretrained", profiles_dir()
        has_profiles = profiles.is_dir() and any(profiles.glob(f"*/{PROFILE_JSON}"))
        start = self.settings.last_model or str(profiles if has_profiles else pretrained)
        dlg = QtWidgets.QFileDialog(self, "Model bundle or user profile folder", start)
        dlg.setFileMode(QtWidgets.QFileDialog.FileMode.Directory)
        dlg.setOption(QtWidgets.QFileDialog.Option.ShowDirsOnly, True)
        # The sidebar is a feature of Qt's own dialog (native ones ignore setSidebarUrls).
        dlg.setOption(QtWidgets.QFileDialog.Option.DontUseNativeDialog, True)
        places = [pretrained, profiles, Path.home()]
        dlg.setSidebarUrls([QtCore.QUrl.fromLocalFile(str(p)) for p in places if p.is_dir()])
        return dlg

    def choose_model(self) -> None:
        dlg = self.model_dialog()
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted and dlg.selectedFiles():
            self.load_model_async(dlg.selectedFiles()[0])

    def load_model(self, path: str) -> bool:
        """Load a model bundle now (blocks while torch etc. import); errors are shown, never raised."""
        try:
            from bci_app.profiles import load_model

            bundle = load_model(path)  # a bundle folder or a user profile
        except Exception as err:
            self._model_failed(path, f"{type(err).__name__}: {err}")
            return False
        self._model_loaded(path, bundle)
        return True

    def load_model_async(self, path: str) -> None:
        """Load a model bundle on a background thread (the GUI keeps drawing meanwhile)."""

        def load():
            from bci_app.profiles import load_model  # may import torch: off the GUI thread

            return load_model(path)  # a bundle folder or a user profile

        self.controls.set_model(f"loading {Path(path).name}…", False, "Loading the model bundle")
        call = BackgroundCall(load, "gui-load-model", self)
        call.finished.connect(
            lambda bundle, error, p=path: self._model_failed(p, error) if error else self._model_loaded(p, bundle))
        self._run_background(call)

    def _model_failed(self, path: str, error: str) -> None:
        logger.error("Could not load model bundle %s: %s", path, error)
        self._update_model_controls()
        QtWidgets.QMessageBox.warning(self, "Model bundle", f"Could not load {path}:\n{error}")

    def _model_loaded(self, path: str, bundle) -> None:
        self.set_decoding(False)
        self.bundle = bundle
        self.settings.last_model = str(path)
        cfg = getattr(bundle, "config", {}) or {}
        name = str(cfg.get("name") or cfg.get("model") or Path(path).name)
        self._model_title = model_title(path, name)
        name = self._model_title
        classes = tuple(getattr(bundle, "classes", None) or cfg.get("classes") or ())
        is_text = cfg.get("kind") == "text" or bool(cfg.get("text", False)) or \
            getattr(bundle, "kind", None) == "text"
        self.prediction.set_model(name, classes, text_decoder=is_text)
        from bci_app.profiles import measured_accuracy

        self.model_accuracy = measured_accuracy(path, bundle)
        self._update_speller_accuracy()
        self._clear_decoder_error()
        self._update_model_controls()

    def _update_model_controls(self) -> None:
        if self.bundle is None:
            self.controls.set_model(None, False, "Load a model bundle first")
            return
        cfg = getattr(self.bundle, "config", {}) or {}
        title = self._model_title or cfg.get("model", "?")
        classes = [str(c) for c in cfg.get("classes", [])]
        if self.prediction.text_decoder:  # its classes are its candidate sentences (120...)
            what = f"text decoder, {len(classes)} candidate sentences"
        elif len(classes) > MAX_VISIBLE_BARS:
            what = f"{len(classes)} classes: {', '.join(classes[:MAX_VISIBLE_BARS])}, …"
        else:
            what = ", ".join(classes)
        text = (f"{title} ({what})\n"
                f"{len(cfg.get('channels', []))} ch, {cfg.get('sfreq', 0):g} Hz, {cfg.get('window_s', 0):g} s window")
        worker_cls = find_decoder_worker()
        if worker_cls is None:
            self.controls.set_model(text, False, "The online DecoderWorker is not available yet")
        elif self._resume_decoding:  # paused at the end of a replay: a click stops decoding
            self.controls.set_model(text, True)
        elif self._replay_finished():
            self.controls.set_model(text, False, "The replay ended: press Play to play the file "
                                                 "again, then start decoding")
        elif self.source is None or not self.source.connected:
            self.controls.set_model(text, False, "Connect a source first")
        else:
            self.controls.set_model(text, True)

    def set_decoding(self, on: bool) -> None:
        """Start or stop the online decoder (a DecoderWorker thread).

        Building the worker checks the bundle against the stream and warms the model up (engine
        choice, first-call allocations): that runs on a background thread, the GUI keeps drawing.
        """
        if not on:
            was_running = self.decoder is not None or self._decoder_pending is not None
            paused, self._resume_decoding = self._resume_decoding, False
            self._stop_recording_predictions()
            worker, self.decoder = self.decoder, None
            if worker is not None:
                self.prediction_bridge.detach()
                self._run_background(BackgroundCall(worker.stop, "gui-decoder-stop", self))
            self._decoder_pending = None
            self.controls.set_decoding(False)
            # no stale decision stays on screen (nor arrives late from the stopped worker)
            self.prediction.reset("stopped — start decoding to see predictions", drop_late=was_running)
            if paused:  # (a replay that ended: the button no longer offers to stop)
                self._update_model_controls()
            return
        if self.decoder is not None or getattr(self, "_decoder_pending", None) is not None:
            return
        worker_cls = find_decoder_worker()
        source, bundle = self.source, self.bundle
        if worker_cls is None or bundle is None or source is None or not source.connected:
            self.controls.set_decoding(False)
            return
        def build():
            # The prediction bridge is attached in the GUI thread when the window takes the
            # worker (_on_decoder_started): attached here, a build that was cancelled (Decode
            # off and on while it warmed up) took the bridge from the worker that runs, and its
            # predictions never reached the window. Nothing is missed: the first prediction
            # needs a full window of samples that arrive after start().
            worker = worker_cls(source, bundle)
            worker.start()
            return worker

        call = BackgroundCall(build, "gui-decoder-start", self)
        self._decoder_pending = call
        call.finished.connect(lambda worker, error, c=call: self._on_decoder_started(c, worker, error))
        self.controls.set_decoding(True)
        self.statusBar().showMessage("Starting the decoder (checking channels, warming the model up)…", 5000)
        self._run_background(call)

    def _on_decoder_started(self, call, worker, error: str) -> None:
        if getattr(self, "_decoder_pending", None) is not call:  # stopped or superseded meanwhile
            if worker is not None:  # (never attached to the bridge: the running one keeps it)
                self._run_background(BackgroundCall(worker.stop, "gui-decoder-stop", self))
            return
        self._decoder_pending = None
        if error:
            self.prediction_bridge.detach()
            self.controls.set_decoding(False)
            self.statusBar().clearMessage()
            hint = ""
            if error.startswith("StreamMismatchError: channels"):  # the CLI's --map is no help here
                hint = (" The synthetic board streams generated signals on other channels: to "
                        "see this model decode, replay a recording that has them (File → Choose "
                        "source → File replay, e.g. an EEGMMIDB S001R04.edf)."
                        if self.source_spec == "synthetic" else
                        " Here: Tools → Calibration wizard (Ctrl+K) trains a decoder for this "
                        "source's channels.")
            self.banner.show_message("error", f"Could not start decoding: {error}{hint}")
            self._decoder_error = True
            self.prediction.reset("stopped — the decoder could not start (see the banner)")
            return
        self.prediction_bridge.attach(worker)
        self.decoder = worker
        self.prediction.set_decoding(True)
        self.controls.set_decoding(True)
        self.statusBar().showMessage("Decoding", 3000)
        self._clear_decoder_error()
        self._record_predictions()

    def _clear_decoder_error(self) -> None:
        """Take down the banner of a failed decoder start (the source's own state shows again)."""
        if not self._decoder_error:
            return
        self._decoder_error = False
        if self.banner.kind == "error":
            self.banner.clear()
            if self.source is not None:
                self._on_state(self.source.state.value, "")

    def _record_predictions(self) -> None:
        """While both run, the decoder's predictions go into the recording (own XDF streams)."""
        rec, worker = self.recorder, self.decoder
        if rec is None or worker is None or self._prediction_recording is not None:
            return
        from bci_app.recording import prediction_recorder

        try:
            callback = prediction_recorder(rec, worker.classes)
            worker.add_callback(callback)
        except Exception:
            logger.exception("Predictions will not be recorded")
            return
        self._prediction_recording = (worker, callback)

    def _stop_recording_predictions(self) -> None:
        entry, self._prediction_recording = self._prediction_recording, None
        if entry is not None:
            worker, callback = entry
            try:
                worker.remove_callback(callback)
            except ValueError:
                pass

    # ------------------------------------------------------------------ recording
    def _on_record_toggled(self, on: bool, path: str) -> None:
        if on:
            self.start_recording(path)
        else:
            self._stop_recording()

    def record_folder(self) -> Path:
        """Folder of recordings: the last one used, else the app's recordings folder."""
        if self.settings.record_dir:
            return Path(self.settings.record_dir)
        from bci_app.config import recordings_dir

        return recordings_dir()

    def _show_default_record_path(self) -> None:
        from acquisition.recorder import default_recording_path

        try:
            path = str(default_recording_path(folder=self.record_folder()).resolve())
        except Exception:  # no recordings folder configured: leave the placeholder
            logger.debug("No default recording path", exc_info=True)
            return
        self._default_record_path = path
        self.controls.set_record_path(path)

    def _record_target(self, path: str | None) -> Path:
        """The file to record to: the default name stamped now, or the user's name; a relative
        name is taken in the recordings folder."""
        from acquisition.recorder import default_recording_path

        text = (path or "").strip()
        if not text or text == self._default_record_path:
            return default_recording_path(folder=self.record_folder()).resolve()
        target = Path(text).expanduser()
        if not target.is_absolute():
            target = self.record_folder() / target
        if not target.suffix:
            target = target.with_suffix(".xdf")
        return target.resolve()

    @staticmethod
    def _gui_wording(message: str) -> str:
        """Messages written for the command line, worded for the window (no CLI options)."""
        import re

        message = re.sub(r"\s*\(--out PATH\)", "", message)
        message = re.sub(r"(another )?--out path", "another file name", message)
        return message.replace("--out", "the file name")

    def start_recording(self, path: str | None = None) -> bool:
        """Record the source (signal + markers) to XDF on the recorder's own thread."""
        from acquisition.recorder import Recorder

        if self.source is None or not self.source.connected:
            self.controls.set_recording(False)
            self.statusBar().showMessage("No connected source: nothing to record", 5000)
            self._update_record_controls()
            return False
        target = None
        try:
            target = self._record_target(path)
            if target.exists():
                raise FileExistsError(
                    f"A recording named {target.name} already exists in {target.parent}. "
                    "Choose another file name (or delete the old file yourself).")
            target.parent.mkdir(parents=True, exist_ok=True)
            meta = {"source": self.source_spec or "", "app": "bci_app gui"}
            if self.bundle is not None:
                meta["model_bundle"] = str(getattr(self.bundle, "path", "") or "")
            rec = Recorder(target, session_meta=meta)
            rec.add_source(self.source)
            rec.start()
        except Exception as err:
            logger.exception("Could not start recording")
            self.controls.set_recording(False)
            QtWidgets.QMessageBox.warning(self, "Recording", f"Could not record to {target or path}:\n"
                                          + self._gui_wording(str(err)))
            return False
        self.recorder = rec
        self._record_t0 = time.monotonic()
        self._record_predictions()
        self.settings.record_dir = str(target.parent)
        self.controls.set_record_path(str(target))
        self.controls.set_recording(True, 0.0, 0)
        self._update_status()
        return True

    def _stop_recording(self) -> None:
        self._stop_recording_predictions()
        rec, self.recorder = self.recorder, None
        self._record_t0 = None
        if rec is not None:
            self._run_background(BackgroundCall(rec.stop, "gui-recorder-stop", self))
            saved = str(Path(rec.path).resolve())
            self.statusBar().showMessage(f"Recording saved to {saved}", 8000)
            self.controls.set_last_saved(saved)
            self._show_default_record_path()
        self.controls.set_recording(False)
        self._update_record_controls()

    def _update_record_controls(self) -> None:
        """Record is available only with a connected source (or to stop a running recording)."""
        if self.recorder is not None:
            self.controls.set_recording_available(True)
        elif self._replay_finished():
            self.controls.set_recording_available(
                False, "The replay ended: press Play to play the file again, then record")
        elif self.source is None or not self.source.connected:
            self.controls.set_recording_available(False, "Connect a source first")
        else:
            self.controls.set_recording_available(True)

    # ------------------------------------------------------------------ replay controls
    def _replay_finished(self) -> bool:
        src = self.source
        return src is not None and bool(getattr(src, "finished", False))

    def _on_play(self, playing: bool) -> None:
        src = self.source
        if src is None or not hasattr(src, "pause"):
            return
        if playing and self._replay_finished():
            self.replay_again(0.0)  # Play after the end plays the file again
            return
        (src.resume if playing else src.pause)()

    def _on_seek(self, seconds: float) -> None:
        src = self.source
        if src is None or not hasattr(src, "seek"):
            return
        if self._replay_finished():
            self.replay_again(seconds)  # seeking after the end replays from there
            return
        try:
            src.seek(seconds)
        except Exception:
            logger.exception("Seek to %.3f s failed", seconds)
            self.statusBar().showMessage(
                "Could not jump to that position: the replay is not running. "
                "Press Play (or reopen the file) first.", 5000)

    def replay_again(self, seconds: float = 0.0) -> None:
        """Replay the current file again (from ``seconds``): the same file source, reconnected.

        The file is opened anew (as File ▸ Reopen does); the chosen speed is kept and the replay
        jumps to ``seconds`` once it streams. Decoding that was on (or paused by the end of the
        replay) starts again."""
        spec = self.source_spec
        if not spec or spec.startswith("<"):  # a source object handed in: nothing to reopen
            self.statusBar().showMessage("Choose the file again (File ▸ Choose source…) to replay it.",
                                         5000)
            return
        if not self._file_still_there(spec):
            return
        decode = (self._resume_decoding or self.decoder is not None
                  or self._decoder_pending is not None)
        self._replay_start_at = max(0.0, float(seconds))
        self.open_source(spec, decode=decode)

    def _on_speed(self, speed: float) -> None:
        src = self.source
        if src is None or not hasattr(src, "speed"):
            return
        if hasattr(src, "set_speed"):  # re-anchors the replay's pacing (no jump)
            src.set_speed(float(speed))

    # ------------------------------------------------------------------ periodic updates
    def _slow_tick(self) -> None:
        self._update_status()
        self._update_alignment_progress()
        src = self.source
        if src is not None and hasattr(src, "position") and hasattr(src, "duration"):
            try:
                finished = bool(getattr(src, "finished", False))
                self.controls.set_replay_position(
                    float(src.position), float(src.duration),
                    not getattr(src, "paused", False) and not finished, finished=finished)
            except Exception:
                logger.debug("replay position unavailable", exc_info=True)

    def _update_alignment_progress(self) -> None:
        """While the decoder fits the user's alignment (no predictions yet), say so and how far.

        Reads the worker's counters only (a list length and ints: no lock needed for a read-out)."""
        worker = self.decoder
        if worker is None or not getattr(worker, "aligning", False):
            return
        needed = int(getattr(worker, "_align_needed", 0) or 0)
        if needed <= 0:
            return
        collected = len(getattr(worker, "_align_buf", ()) or ())
        self.prediction.set_alignment_progress(collected, needed,
                                               float(getattr(worker, "alignment_seconds", 10.0)))

    def status_snapshot(self) -> StatusSnapshot:
        src = self.source
        s = StatusSnapshot()
        if src is None:
            s.state = "error" if self.connect_error else "none"
        else:
            s.state = src.state.value
            if s.state == "stopped" and getattr(src, "finished", False):
                s.state = "finished"
            elif s.state == "stalled" and getattr(src, "paused", False):
                s.state = "paused"  # a replay the user paused is not a device problem
            s.source_name = src.display_name
            s.rate = src.effective_rate() if src.connected else 0.0
            s.nominal_rate = src.info.sfreq if src.info is not None else 0.0
            s.samples_missing = src.samples_missing
            s.gaps = len(src.gaps)
        if self.decoder is not None:
            stats = getattr(self.decoder, "stats", None)
            stats = stats() if callable(stats) else stats
            p50 = stat_value(stats, "p50", "latency_p50", "p50_ms", "latency_p50_ms")
            p99 = stat_value(stats, "p99", "latency_p99", "p99_ms", "latency_p99_ms")
            scale = 1.0 if stat_value(stats, "p50_ms", "latency_p50_ms") is not None else 1e3
            s.decoder_p50_ms = None if p50 is None or p50 != p50 else float(p50) * scale  # NaN: none yet
            s.decoder_p99_ms = None if p99 is None or p99 != p99 else float(p99) * scale
            skipped = stat_value(stats, "skipped", "skipped_windows", "n_skipped")
            s.skipped_windows = None if skipped is None else int(skipped)
            s.decoding = True
        elif self._resume_decoding:
            s.decoder_note = "paused (replay ended)"
        if self.recorder is not None:
            s.recording_path = str(self.recorder.path)
            try:
                s.recording_bytes = os.path.getsize(self.recorder.path)
            except OSError:
                s.recording_bytes = self.recorder.bytes_written
            s.recording_elapsed = None if self._record_t0 is None else time.monotonic() - self._record_t0
        return s

    def _update_status(self) -> None:
        s = self.status_snapshot()
        self.status.update(s)
        if self.recorder is not None:
            self.controls.set_recording(True, s.recording_elapsed, s.recording_bytes)
            if getattr(self.recorder.state, "value", "") == "failed":
                self.banner.show_message("error", "Recording stopped: "
                                         + self._gui_wording(str(self.recorder.error)))
                self._stop_recording()

    # ------------------------------------------------------------------ settings
    def _save_display_settings(self) -> None:
        self.settings.scope = self.scope.state()
        self._save_channel_settings()

    def _save_channel_settings(self) -> None:
        info = self.scope._info
        if info is not None:
            state = self.scope.channel_state()
            state["scale_uv"] = self.scope.scale_uv  # each stream keeps its own µV/div
            self.settings.set_channels(info.source_id, state)

    def _sync_hidden(self) -> None:
        self.spectrum.hidden = set(self.scope.hidden) | set(self.scope.bad)

    #: Share of the window height the spectrum dock gets back when the window grows.
    SPECTRUM_SHARE = 0.25

    #: Most of the window height the docks under the plots get back to fit the speller.
    BOTTOM_MAX_SHARE = 0.45

    #: The window's size on a first start, when the screen is large enough.
    DEFAULT_SIZE = (1500, 950)

    def default_size(self) -> tuple[int, int]:
        """:attr:`DEFAULT_SIZE`, shrunk to the screen's available area (a 1366×768 laptop got a
        1500×950 window running off its bottom and right edges); room is left for the title
        bar."""
        w, h = self.DEFAULT_SIZE
        screen = self.screen() or QtGui.QGuiApplication.primaryScreen()
        if screen is not None:
            avail = screen.availableGeometry()
            w = min(w, avail.width())
            h = min(h, avail.height() - 40)  # the window manager's title bar and frame
        return max(w, 640), max(h, 480)

    def showEvent(self, ev) -> None:  # noqa: N802
        super().showEvent(ev)
        if self._first_layout:
            self._first_layout = False
            # after Qt's first layout of the docks: until then it splits their heights by size
            # hints, which gave the spectrum more height than the scope
            QtCore.QTimer.singleShot(0, self._default_dock_heights)

    def _default_dock_heights(self) -> None:
        """A first start: the spectrum gets :attr:`SPECTRUM_SHARE` of the height, the scope the
        rest (a saved layout is restored as it was instead)."""
        docks = self._bottom_docks()
        if docks:
            self.resizeDocks([docks[0]], [int(self.SPECTRUM_SHARE * self.height())],
                             QtCore.Qt.Orientation.Vertical)

    def resizeEvent(self, ev) -> None:  # noqa: N802
        """When the window grows, the docks under the plots (spectrum, speller) squeezed by a
        smaller window get their share of the height back (QMainWindow gives all new height to
        the scope otherwise)."""
        super().resizeEvent(ev)
        grew = ev.oldSize().isValid() and ev.size().height() > ev.oldSize().height()
        if grew:
            self._fit_bottom_docks(ev.size().height())

    def _bottom_docks(self) -> list[QtWidgets.QDockWidget]:
        bottom = QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
        return [d for d in (self.spectrum_dock, self.speller_dock)
                if d is not None and d.isVisible() and not d.isFloating()
                and self.dockWidgetArea(d) == bottom]

    def _fit_bottom_docks(self, window_height: int | None = None) -> None:
        """Give the docks under the plots their share of the height, if they have less: a
        quarter of the window for the spectrum; what the speller needs to show everything
        without scrolling (at most :attr:`BOTTOM_MAX_SHARE` of the window)."""
        docks = self._bottom_docks()
        if not docks:
            return
        h = self.height() if window_height is None else window_height
        want = int(self.SPECTRUM_SHARE * h)
        if self.speller is not None and self.speller_dock in docks:
            frame = self.speller_dock.height() - self.speller.height()  # the dock's title bar
            need = self.speller.needed_height() + max(0, frame)
            want = max(want, min(need, int(self.BOTTOM_MAX_SHARE * h)))
        if max(d.height() for d in docks) < want:
            self.resizeDocks([docks[0]], [want], QtCore.Qt.Orientation.Vertical)

    def closeEvent(self, ev) -> None:  # noqa: N802
        wiz = self.wizard
        if not self._closing and wiz is not None and wiz.busy and not self.confirm(
                "Calibration in progress",
                "The calibration wizard is still working (recording, training or feedback); "
                "closing the window ends it and loses what is not saved as a profile.\n\n"
                "Close anyway?"):
            ev.ignore()
            return
        self._closing = True
        if wiz is not None:  # a child window: stop its source, recorder and training cleanly
            wiz.shutdown()
            wiz.close()
        self.display_timer.stop()
        self.slow_timer.stop()
        self.spectrum.stop()
        try:
            self.settings.save_window(self)
            self._save_display_settings()
            self.settings.spectrum = self.spectrum.state()
            self.settings.sync()
        except Exception:
            logger.exception("Saving settings failed")
        session, self.session = self.session, None
        pending = self._decoder_pending
        self.set_decoding(False)
        if self.recorder is not None:
            rec, self.recorder = self.recorder, None
            rec.stop()
        self.state_bridge.detach()
        for call in list(self._background):  # connects and disconnects still running
            call.wait(self.connect_timeout + 5.0)
        if pending is not None and pending.result is not None:  # a decoder built while closing
            pending.result.stop()
        for s in {session, *self._connecting} - {None}:
            s.stop()
        self._connecting.clear()
        super().closeEvent(ev)
