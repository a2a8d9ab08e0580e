"""The wizard's controller: composes the non-Qt pieces and drives them from the GUI thread.

No signal processing or protocol logic lives here: the protocol is :mod:`bci_app.protocol`, the
simulated subject :mod:`acquisition.simulated`, training :mod:`decoders.calibration`, profiles
:mod:`bci_app.profiles`. This object owns them for one wizard session, ticks them from a QTimer
(``pump``, GUI thread), runs training in a background thread and re-emits what happens as Qt
signals.

Sources in manual mode (a simulated subject at ``speed="max"``) have no acquisition thread: the
pump pulls them, only while something needs data (signal check, cued acquisition, feedback), so
the buffer never runs past a finished calibration.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path

import numpy as np
from PySide6 import QtCore

from bci_app.errors import ConfigError, OperationCancelled

logger = logging.getLogger(__name__)


class CalibrationController(QtCore.QObject):
    """State of one calibration wizard session (GUI thread only, except :meth:`_train_job`).

    Signals
    -------
    connected(str)            source connected ("" ) or the error text
    protocolState(str, int)   protocol state value, trial index (acquisition and feedback)
    cue(str, int)             a cue of class at trial index
    acquisitionFinished(str)  "done" or "aborted"; the calibration data is kept
    trainingProgress(float, str)
    trained(object, str)      CalibrationResult or None, error text
    prediction(object)        a decoder Prediction during feedback
    feedbackTrial(str, str, bool)  target, decided class, hit
    feedbackFinished(float)   hit rate of the run
    coadapted(object, str)    new CalibrationResult or None, error text

    Training and co-adaptation run on one worker thread at a time (``_job``). It is not a daemon:
    the interpreter waits for it at exit, and :meth:`cancel_training` (called by the wizard's
    shutdown) makes it stop within one batch, so no GUI thread ever joins it.

    :meth:`open_source` runs on a background thread (the device page's ``BackgroundCall``): it
    never touches the pump's QTimer itself (a QTimer stops only in its own thread; Qt refused
    with "Timers cannot be stopped from another thread" and the pump went on pulling the source
    being closed), and a source it connects after :meth:`shutdown` is disconnected there, not
    left acquiring for the rest of the process.
    """

    connected = QtCore.Signal(str)
    protocolState = QtCore.Signal(str, int)
    cue = QtCore.Signal(str, int)
    acquisitionFinished = QtCore.Signal(str)
    trainingProgress = QtCore.Signal(float, str)
    trained = QtCore.Signal(object, str)
    prediction = QtCore.Signal(object)
    feedbackTrial = QtCore.Signal(str, str, bool)
    feedbackFinished = QtCore.Signal(float)
    coadapted = QtCore.Signal(object, str)
    # worker thread -> GUI thread (queued), tagged with the job so a cancelled or superseded
    # job never reaches the pages
    _jobProgress = QtCore.Signal(object, float, str)
    _jobEnded = QtCore.Signal(object, str, object, str)  # job, kind, result, error
    # any thread -> GUI thread: stop the pump's timer, then set the threading.Event passed
    _stopPump = QtCore.Signal(object)

    def __init__(self, pretrained=None, *, profiles_root=None, record_dir=None,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.pretrained_arg = pretrained
        self.pretrained = None
        self.profiles_root = profiles_root
        self.record_dir = record_dir
        self.source = None
        self.source_spec = ""
        self.montage = "standard_1005"
        self.session = None
        self.recorder = None
        self.recording_path: Path | None = None
        self.protocol = None
        self.runner = None
        self.mode = "idle"  # idle | signal | acquisition | tail | feedback | tail-feedback
        self.calib_data = None  # (data, timestamps) of the calibration run
        self.calib_cues: list[tuple[float, str]] = []
        self.epochs = None
        self.result = None
        self.profile_path: Path | None = None
        self.worker = None
        self.feedback_preds: list = []
        self.feedback_hits: list[bool] = []
        self.feedback_runs = 0
        #: XDF files of the feedback runs (EEG, cues, predictions); recorded when the cued run
        #: was: a co-adaptive update trains on that EEG, which must exist on disk too
        self.feedback_recordings: list[Path] = []
        #: (data (n_samples, n_channels), timestamps (n_samples,)) of the last feedback run
        #: (what :meth:`coadapt` refines the model with); None before one ends
        self.feedback_data: tuple[np.ndarray, np.ndarray] | None = None
        self._k0 = 0
        self._pace_t0 = time.monotonic()
        self._pace_n0 = 0
        self.sim_factor = math.inf  # manual sources: signal per wall second (inf: budget-bound)
        #: Seconds of signal the source's ring buffer holds (the signal check, the decoder).
        #: The cued and feedback runs are copied out of it as they arrive (:class:`_RunCopy`):
        #: their trial counts are chosen after the source connects, and a run longer than the
        #: buffer (more than ~55 trials per class at 900 s) lost its first trials.
        self.buffer_seconds = 900.0
        self._run: _RunCopy | None = None  # the cued or feedback run being copied out
        self.pump_budget_s = 0.012
        #: torch threads for training (1: small model; 2 OpenMP threads on a busy 2-core machine
        #: measured 3-30x slower, see bench/RESULTS.md)
        self.torch_threads = 1
        #: True: the pump does nothing (a manual-mode source then stands still: used to hold a
        #: cue on screen for a screenshot)
        self.hold = False
        self._train_thread: threading.Thread | None = None
        self._job: _Job | None = None  # the training / co-adaptation job that may report
        self._thread_job: _Job | None = None  # the job of _train_thread (maybe cancelled)
        self._pending_train: tuple | None = None  # train() asked while a cancelled job ends
        self._closed = False
        #: Called (connect thread) before a source opens; set by the wizard.
        self.before_connect = None
        #: Channel names of the last source refused for lacking the pretrained bundle's
        #: channels (None after a successful connect).
        self.refused_channels: list[str] | None = None
        #: EEGMMIDB subjects of :meth:`train_pretrained_for_refused`.
        self.pretrain_subjects = "1-20"
        #: Guards ``_closed`` and the hand-over of source, session and decoder between the GUI
        #: thread and the thread of :meth:`open_source`.
        self._source_lock = threading.Lock()
        #: (classes, trials per class) of the last cued run started
        self.acquisition_settings: tuple[tuple[str, ...], int] | None = None
        #: :meth:`source_key` of the source the last cued run came from
        self.acquisition_source: tuple | None = None
        #: ``GrazProtocol.settings()`` of the last cued run (what the profile records: the
        #: feedback runs have protocols of their own)
        self.acquisition_protocol: dict | None = None
        self._jobProgress.connect(self._on_job_progress)
        self._jobEnded.connect(self._on_job_ended)
        self._stopPump.connect(self._on_stop_pump)  # direct in the GUI thread, else queued
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(16)
        self.timer.timeout.connect(self.pump)

    # ------------------------------------------------------------------ source
    def load_pretrained(self):
        from decoders.bundle import Bundle, load_bundle

        if self.pretrained is None:
            arg = self.pretrained_arg
            if isinstance(arg, Bundle):
                self.pretrained = arg
            else:
                if arg is None:
                    from bci_app.commands.calibrate import default_pretrained

                    arg = default_pretrained()
                self.pretrained = load_bundle(arg)
        return self.pretrained

    def train_pretrained_for_refused(self) -> Path:
        """Train (or reuse) a cross-subject CSP+LDA bundle on the channels of the source that
        :meth:`open_source` refused, under ``<profiles>/_pretrained/`` (blocking: about 15 s;
        call through BackgroundCall). The next :meth:`open_source` can start from it."""
        import hashlib

        from bci_app.commands.calibrate import pretraining_channels, train_pretrained_for
        from bci_app.profiles import profiles_dir

        names = self.refused_channels
        if not names:
            raise ConfigError("no refused source to train for: Connect first.")
        channels = pretraining_channels(names)
        key = hashlib.sha1(",".join(channels).encode()).hexdigest()[:8]
        root = Path(self.profiles_root) if self.profiles_root is not None else profiles_dir()
        out = root / "_pretrained" / f"csp_lda_ea_{len(channels)}ch_{key}"
        if (out / "config.json").is_file():  # trained before for the same channels
            return out
        return train_pretrained_for(names, out, subjects=self.pretrain_subjects)

    @property
    def pretrained_path(self) -> str:
        """Folder of the pretrained bundle the wizard starts from ("" for one given in memory)."""
        arg = self.pretrained if self.pretrained is not None else self.pretrained_arg
        if arg is None:
            from bci_app.commands.calibrate import default_pretrained

            return str(default_pretrained())
        if isinstance(arg, (str, Path)):
            return str(arg)
        return str(arg.path or "")  # a Bundle

    def open_source(self, spec: str, speed: str = "1", montage: str = "standard_1005",
                    pretrained=None) -> None:
        """Create and connect the source (blocking: a simulated subject reads its files in about
        a second; call through BackgroundCall for devices).

        ``pretrained``: a bundle folder to start from instead of the current one (None: keep).
        A source without the pretrained bundle's channels is disconnected again and refused
        (``StreamMismatchError`` naming the missing channels and the fix) before any trial.

        Safe on a background thread: the pump is stopped in the GUI thread first, and when the
        wizard was shut down meanwhile the new source is disconnected again
        (``OperationCancelled``)."""
        from bci_app.commands.calibrate import (
            check_pretrained_channels,
            make_calibration_source,
            parse_speed,
        )

        self._check_open()
        self.close_source()
        if pretrained is not None and str(pretrained) != str(self.pretrained_path):
            self.pretrained_arg, self.pretrained = pretrained, None
        if self.before_connect is not None:  # e.g. the main window releasing the same board
            self.before_connect()
        self.load_pretrained()  # first: the pages need it once the source shows as connected
        sp = parse_speed(speed)
        # at max speed 0.1 s of signal per pull keeps the pump cheap
        src = make_calibration_source(spec, speed=sp, buffer_seconds=self.buffer_seconds,
                                      chunk_samples=16 if math.isinf(sp) else None)
        manual = math.isinf(sp) and callable(getattr(src, "cue", None))
        src.connect(timeout=10.0, acquisition=not manual)
        if not self._closed:
            try:  # the trials are cut with the bundle's channels: say so now, not after them
                check_pretrained_channels(self.pretrained, src.info.ch_names)
            except Exception:
                self.refused_channels = list(src.info.ch_names)
                src.disconnect()
                raise
        self.refused_channels = None
        with self._source_lock:
            closed = self._closed
            if not closed:
                self.source_spec, self.montage = spec, montage
                self.source = src
        if closed:  # shut down while connecting: nobody would ever disconnect it
            src.disconnect()
            self._check_open()

    def source_key(self) -> tuple | None:
        """What a cued run's samples are only valid for: the source spec, its channel names and
        rate (None without a source)."""
        src = self.source
        if src is None or src.info is None:
            return None
        return (self.source_spec, tuple(src.info.ch_names), float(src.info.sfreq))

    def run_fits_source(self) -> bool:
        """The last cued run was recorded from the source connected now (a run of another
        source, connected since on the Device page, must not be trained on as this one's)."""
        return self.acquisition_source is not None and \
            self.acquisition_source == self.source_key()

    def _check_open(self) -> None:
        if self._closed:
            raise OperationCancelled(
                "the calibration wizard was closed: the source is not opened")

    @property
    def manual(self) -> bool:
        return self.source is not None and self.source.connected and \
            getattr(self.source, "_thread", None) is None

    def close_source(self) -> None:
        """Stop the pump, the decoder and the session or source (any thread)."""
        self._stop_pump()
        self._stop_worker()
        with self._source_lock:  # taken out first: the pump sees no source from here on
            session, self.session = self.session, None
            source, self.source = self.source, None
            # the protocol runner drives (and holds) that source: kept, it held the source's
            # 900 s ring buffer (75 MB for 64 channels at 160 Hz) as long as the wizard lived
            self.runner = None
            self._run = None  # (a run cut short: its samples so far)
            if session is not None:
                self.recorder = None  # a session component: stopped (file closed) with it
        if session is not None:
            try:
                session.stop()
            except Exception:
                logger.exception("stopping the calibration session failed")
        elif source is not None:
            source.disconnect()

    def _stop_pump(self, timeout: float = 5.0) -> None:
        """Stop the pump's timer in the GUI thread and return once it is stopped (called from
        :meth:`open_source`'s thread the slot runs queued, between two pumps)."""
        done = threading.Event()
        try:
            self._stopPump.emit(done)
        except RuntimeError:  # the controller was deleted: no timer, no pump
            return
        if not done.wait(timeout):
            logger.warning("the calibration pump did not stop within %.1f s", timeout)

    def _on_stop_pump(self, done) -> None:  # GUI thread
        self.timer.stop()
        done.set()

    def start_signal(self) -> None:
        self.mode = "signal"
        self._pace_t0, self._pace_n0 = time.monotonic(), self.source.n_samples
        self.timer.start()

    def latest(self, seconds: float):
        buf = self.source.buffer
        n = min(buf.counter, buf.capacity, int(seconds * self.source.info.sfreq))
        return buf.latest(n)

    # ------------------------------------------------------------------ pump (GUI thread)
    def pump(self) -> None:
        if self.source is None or self.hold:
            return
        try:
            t_end = time.monotonic() + self.pump_budget_s
            if self.mode in ("acquisition", "feedback") and self.runner is not None:
                while True:
                    self.runner.step()
                    self._feedback_step()
                    # chunk by chunk: at max speed one pump can make more signal than a small
                    # buffer holds (25-35 s of it in 12 ms, measured), and the run lost samples
                    self._collect_run()
                    if not self.manual or self.protocol.finished or self.hold or \
                            time.monotonic() > t_end:
                        break
                if self.protocol.finished:
                    self.mode = "tail" if self.mode == "acquisition" else "tail-feedback"
            elif self.mode in ("tail", "tail-feedback"):
                end = self.protocol.ended_at + 0.5
                while self.manual and self._data_end() < end and time.monotonic() < t_end:
                    self.source.acquire()
                self._collect_run()
                self._feedback_step()
                if self._data_end() >= end:
                    if self.mode == "tail":
                        self._finish_acquisition()
                    else:
                        self._finish_feedback()
            elif self.mode == "signal" and self.manual:
                due = self._pace_n0 + (time.monotonic() - self._pace_t0) * \
                    self.source.info.sfreq * min(self.sim_factor, 1e9)
                while self.source.n_samples < due and time.monotonic() < t_end:
                    self.source.acquire()
        except Exception:
            logger.exception("calibration pump failed")

    def _data_end(self) -> float:
        buf = self.source.buffer
        return float(buf.latest(1).timestamps[-1]) if buf.counter else -math.inf

    # ------------------------------------------------------------------ cued acquisition
    def start_acquisition(self, classes, trials_per_class: int, timings=None, seed: int = 0,
                          user: str = "anonymous", record: bool = True) -> None:
        from bci_app.protocol import GrazProtocol, ProtocolRunner
        from bci_app.session import Session

        if self.session is None:
            self.session = Session(self.source)
        if not record:  # an unrecorded run: the profile must not name an earlier run's file
            self.recording_path = None
        if record and self.recorder is None:
            from bci_app.recording import attach_recorder

            path = None
            if self.record_dir is not None:  # a folder (made here): one new file per run
                path = Path(self.record_dir)
                path.mkdir(parents=True, exist_ok=True)
            self.recorder = attach_recorder(self.session, path, subject=user,
                                            prefix=f"calibration_{user}")
            self.recording_path = Path(self.recorder.path)
        try:
            self.session.start()
        except Exception:  # e.g. the recording file cannot be created: no half-started run
            if self.recorder is not None and self.recorder in self.session.components:
                self.session.components.remove(self.recorder)
            self.recorder, self.recording_path = None, None
            raise
        self.protocol = GrazProtocol(classes, trials_per_class, timings, seed,
                                     marker_log=self.source.markers)
        self.acquisition_settings = (tuple(classes), int(trials_per_class))
        self.acquisition_source = self.source_key()
        self.acquisition_protocol = self.protocol.settings()
        self.calib_data, self.calib_cues = None, []
        self._hook_protocol()
        self.runner = ProtocolRunner(self.protocol, self.source)
        self._k0 = self.source.buffer.counter
        self._run = _RunCopy("calibration", self._k0)
        self._m0 = self.source.markers.counter
        self.mode = "acquisition"
        self.runner.start()
        self.timer.start()

    def _hook_protocol(self) -> None:
        p = self.protocol
        p.add_state_callback(lambda proto, s, t: self.protocolState.emit(s.value, proto.trial))
        p.add_cue_callback(lambda proto, cls, t, i: self.cue.emit(cls, i))

    def pause(self) -> None:
        if self.runner is not None:
            self.runner.pause()

    def resume(self) -> None:
        if self.runner is not None:
            self.runner.resume()

    def abort(self) -> None:
        if self.runner is not None and not self.protocol.finished:
            self.runner.abort()

    @property
    def acquiring(self) -> bool:
        """A cued run is going (or waiting for its last samples)."""
        return self.mode in ("acquisition", "tail")

    def discard_acquisition(self) -> None:
        """Forget the cued run: abort it if it is still going (its recording keeps the
        ``calibration/abort`` marker and is closed) and drop its trials, so the next run starts
        from nothing. Used when the user goes back from the cued recording."""
        if self.acquiring:
            self.abort()
            self.mode = "idle"
            self._stop_recorder()
        self.calib_data, self.calib_cues = None, []
        self._run = None
        self.acquisition_settings = self.acquisition_source = self.acquisition_protocol = None

    def _stop_recorder(self) -> None:
        if self.recorder is not None:
            self.recorder.stop()
            if self.session is not None and self.recorder in self.session.components:
                self.session.components.remove(self.recorder)
            self.recorder = None

    def _collect_run(self) -> None:
        """Copy the running cued or feedback run's new samples out of the ring buffer (GUI
        thread, every pump)."""
        if self._run is not None:
            self._run.collect(self.source.buffer)

    def _take_run(self) -> tuple[np.ndarray, np.ndarray]:
        """The run that just ended, whole: ``(data (n_samples, n_channels), timestamps
        (n_samples,))``; no run is copied out any more."""
        self._collect_run()
        run, self._run = self._run, None
        n_ch = self.source.info.n_channels
        return run.take(n_ch) if run is not None else (np.zeros((0, n_ch)), np.zeros(0))

    def _finish_acquisition(self) -> None:
        from bci_app.protocol import completed_trials

        self.mode = "idle"
        self.calib_data = self._take_run()
        self.calib_cues = completed_trials(self.source.markers.since(self._m0),
                                           self.protocol.classes)
        self._stop_recorder()
        self.acquisitionFinished.emit(self.protocol.state.value)

    def counts(self) -> dict[str, int]:
        out = {c: 0 for c in (self.protocol.classes if self.protocol else [])}
        for _, c in self.calib_cues:
            out[c] = out.get(c, 0) + 1
        return out

    # ------------------------------------------------------------------ training
    def train(self, finetune_epochs: int = 30, cv_folds: int = 5, seed: int = 0) -> None:
        """Cut the epochs and run :func:`decoders.calibration.calibrate` on a worker thread.

        A job still running (the user went back and forth) is cancelled; the new one starts as
        soon as it has ended (``trainingProgress`` / ``trained`` only ever report the newest)."""
        if self._closed:
            raise OperationCancelled("the wizard is shut down: no more training")
        args = (finetune_epochs, cv_folds, seed)
        if self.training_running:
            self.cancel_training()
            self._pending_train = args
            return
        self._start_job("calibration-training", self._train_job, args)

    @property
    def running_job(self) -> str | None:
        """The job a shutdown now would lose: ``"calibration-training"``, ``"coadapt"``, or
        None (none, or only a cancelled one still ending on its thread)."""
        if self._pending_train is not None:  # starts once the cancelled job has ended
            return "calibration-training"
        job = self._job
        if job is None or job.ended or job.cancel.is_set():
            return None
        return job.name

    @property
    def training_running(self) -> bool:
        """The newest job's thread has not reported its end yet."""
        t, job = self._train_thread, self._thread_job
        return t is not None and t.is_alive() and job is not None and not job.ended

    def cancel_training(self) -> None:
        """Ask the training / co-adaptation job to stop (returns at once; the thread ends
        within one training batch and reports nothing)."""
        self._pending_train = None
        job, self._job = self._job, None
        if job is not None:
            job.cancel.set()

    def _start_job(self, name: str, fn, args: tuple) -> None:
        job = _Job(name)
        self._job = self._thread_job = job
        # not a daemon: the interpreter waits for it at exit instead of tearing torch down
        # under a running thread (that aborted the process); cancel_training() ends it quickly
        self._train_thread = threading.Thread(target=fn, args=(job, *args), name=name,
                                              daemon=False)
        self._train_thread.start()

    def _emit_job(self, signal, *args) -> None:  # worker thread
        try:
            signal.emit(*args)
        except RuntimeError:  # the controller was deleted meanwhile: nobody to tell
            logger.debug("training job finished after the wizard was deleted")

    def _on_job_progress(self, job, f: float, msg: str) -> None:  # GUI thread
        if job is self._job and not job.cancel.is_set():
            self.trainingProgress.emit(f, msg)

    def _on_job_ended(self, job, kind: str, result, error: str) -> None:  # GUI thread
        job.ended = True
        if job is self._job and not job.cancel.is_set():
            self._job = None
            if kind == "train":
                if result is not None:
                    self.epochs, self.result = job.epochs, result
                    # the profile saved before is another result's: the Results page must save
                    # this one before feedback or Finish use a profile
                    self.profile_path = None
                self.trained.emit(result, error)
            else:
                self.coadapted.emit(result, error)
        if self._pending_train is not None and job is self._thread_job and not self._closed:
            args, self._pending_train = self._pending_train, None
            self._start_job("calibration-training", self._train_job, args)

    def _epochs(self, data, ts, cues):
        from bci_app.commands.calibrate import window_of
        from decoders.calibration import epochs_from_stream

        b = self.pretrained
        tmin, tmax = window_of(b)
        return epochs_from_stream(data, ts, self.source.info.ch_names, self.source.info.sfreq,
                                  cues, b.classes, b.preprocessor, tmin=tmin, tmax=tmax)

    def _train_job(self, job, finetune_epochs, cv_folds, seed) -> None:  # worker thread
        from decoders.calibration import CalibrationCancelled

        result, error = None, ""
        try:
            import torch

            from decoders.calibration import calibrate

            torch.set_num_threads(self.torch_threads)
            if self.calib_data is None:
                raise RuntimeError("no cued trials recorded yet: go back to the cued recording")
            data, ts = self.calib_data
            self._emit_job(self._jobProgress, job, 0.0, "cutting the trials")
            epochs = job.epochs = self._epochs(data, ts, self.calib_cues)
            job.check()
            result = calibrate(epochs.X, epochs.y, self.pretrained,
                               X_ref=epochs.X_ref, trials=epochs.accounting(),
                               finetune_epochs=finetune_epochs,
                               cv_folds=cv_folds, seed=seed, cancel=job.cancel,
                               progress=lambda f, m: self._emit_job(self._jobProgress, job, f, m),
                               provenance={"recording": str(self.recording_path or ""),
                                           "source": self.source_spec})
            job.check()
        except CalibrationCancelled:
            logger.info("calibration training cancelled")
            result, error = None, "cancelled"
        except Exception as err:  # shown in the wizard, never swallowed
            logger.exception("calibration training failed")
            result, error = None, f"{type(err).__name__}: {err}"
        self._emit_job(self._jobEnded, job, "train", result, error)

    def wait_training(self, timeout: float) -> bool:
        """Join the training thread (tests and scripts; never from a GUI slot)."""
        t = self._train_thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    def shutdown(self) -> None:
        """Cancel training and close the source; no more jobs start (GUI thread, no waiting).
        A source still connecting on the device page's thread is disconnected there."""
        with self._source_lock:
            self._closed = True
        self.cancel_training()
        self.close_source()
        self.mode = "idle"
        self.protocol = None  # (it holds its runner, which held the source, through a callback)

    @property
    def closed(self) -> bool:
        """:meth:`shutdown` was called."""
        return self._closed

    def save(self, user: str, chosen: str) -> Path:
        from bci_app.profiles import save_profile

        info = self.source.info
        self.profile_path = save_profile(
            self.result, user, root=self.profiles_root, chosen=chosen, source=self.source_spec,
            stream={"name": info.name, "kind": info.source_kind, "sfreq": info.sfreq,
                    "ch_names": list(info.ch_names)},
            montage=self.montage, protocol=self.acquisition_protocol or {},
            recording=self.recording_path,
            extra={"feedback_runs": self.feedback_runs,
                   "feedback_recordings": [str(f) for f in self.feedback_recordings]})
        self.chosen, self.user = chosen, user
        return self.profile_path

    # ------------------------------------------------------------------ feedback
    def start_feedback(self, trials_per_class: int = 5, timings=None, seed: int = 100) -> None:
        """An online run with cued targets, decoded by the profile's decoder."""
        from bci_app.profiles import load_profile
        from bci_app.protocol import GrazProtocol, ProtocolRunner
        from decoders.online import DecoderWorker

        profile = load_profile(self.profile_path)
        self._stop_worker()
        self.worker = DecoderWorker(self.source, profile.bundle, hop=0.1, smoothing=0.5)
        self.bundle = profile.bundle
        self.feedback_preds, self.feedback_hits = [], []
        self._pending: list[tuple[float, str, float]] = []
        if not self.manual:
            from ui.qt_bridge import PredictionBridge

            self._bridge = PredictionBridge(self)
            self._bridge.predicted.connect(self._on_prediction)
            self._bridge.attach(self.worker)
            self.worker.start()
        self.protocol = GrazProtocol(self.result.classes, trials_per_class, timings, seed,
                                     marker_log=self.source.markers)
        self._hook_protocol()
        self.protocol.add_state_callback(self._feedback_state)
        self.runner = ProtocolRunner(self.protocol, self.source)
        self.feedback_data = None
        self._record_feedback()
        self._run = _RunCopy("feedback run", self.source.buffer.counter)
        self._fb_m0 = self.source.markers.counter
        self.mode = "feedback"
        self.runner.start()
        self.timer.start()

    def _record_feedback(self) -> None:
        """Record the feedback run (EEG from now, its cues, the decoder's predictions) beside
        the cued run's file, when that run was recorded."""
        if self.recording_path is None or self.recorder is not None:
            return
        from bci_app.recording import attach_recorder, prediction_recorder
        from bci_app.session import Session

        if self.session is None:  # (the source was connected again since the cued run)
            self.session = Session(self.source)
        user = getattr(self, "user", None) or "anonymous"
        folder = self.recording_path.parent
        rec = None
        try:
            folder.mkdir(parents=True, exist_ok=True)  # (a folder, not taken for a file name)
            rec = attach_recorder(self.session, folder, subject=user,
                                  prefix=f"feedback_{user}", history=False,
                                  protocol=self.protocol.settings())
            rec.start()
            self.worker.add_callback(prediction_recorder(rec, self.bundle.classes))
        except Exception:
            logger.exception("The feedback run will not be recorded")
            if rec is not None:
                rec.stop()
                if rec in self.session.components:
                    self.session.components.remove(rec)
            return
        self.recorder = rec
        self.feedback_recordings.append(Path(rec.path))

    def _note_feedback_recordings(self) -> None:
        """Add the feedback runs (count, files) to the saved profile's ``profile.json``; a
        co-adaptive update re-saves the whole profile, a run without one is noted here."""
        if self.profile_path is None:
            return
        import json
        import os

        from bci_app.profiles import PROFILE_JSON

        meta_path = Path(self.profile_path) / PROFILE_JSON
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            meta["feedback_runs"] = self.feedback_runs
            meta["feedback_recordings"] = [str(f) for f in self.feedback_recordings]
            tmp = meta_path.with_name(meta_path.name + ".tmp")
            tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, meta_path)
        except (OSError, ValueError) as err:
            logger.warning("The feedback runs could not be noted in %s: %s", meta_path, err)

    def _feedback_step(self) -> None:
        if self.worker is not None and self.mode in ("feedback", "tail-feedback"):
            if self.manual:
                for pred in self.worker.step(catch_up=True):
                    self._on_prediction(pred)
            self._decide_pending()

    def _on_prediction(self, pred) -> None:
        self.feedback_preds.append(pred)
        self.prediction.emit(pred)

    def _feedback_state(self, proto, state, t) -> None:
        if state.value != "rest" or not proto.completed:
            return
        i = proto.completed[-1]
        target = proto.order[i]
        cue_t = [m.timestamp for m in self.source.markers.since(self._fb_m0)
                 if m.label == f"cue/{target}" and m.extra.get("trial") == i][-1]
        self._pending.append((cue_t, target, t))

    def _decide_pending(self, flush: bool = False) -> None:
        """Decide every finished feedback trial whose predictions are in (all with flush)."""
        last = self.feedback_preds[-1].window_end if self.feedback_preds else -math.inf
        while self._pending and (flush or last >= self._pending[0][2] - 1e-6):
            self._decide(*self._pending.pop(0))

    def _decide(self, cue_t: float, target: str, t_end: float) -> None:
        lo = cue_t + 0.5 + self.bundle.window_s
        P = [p.probabilities for p in self.feedback_preds
             if lo - 1e-6 <= p.window_end <= t_end + 1e-6 and p.reliable]
        if not P:
            P = [p.probabilities for p in self.feedback_preds if p.window_end <= t_end][-5:]
        if not P:
            return
        decided = self.bundle.classes[int(np.argmax(np.mean(P, axis=0)))]
        hit = decided == target
        self.feedback_hits.append(hit)
        self.feedbackTrial.emit(target, decided, hit)

    @property
    def hit_rate(self) -> float:
        return float(np.mean(self.feedback_hits)) if self.feedback_hits else float("nan")

    def _finish_feedback(self) -> None:
        self._decide_pending(flush=True)
        self.feedback_data = self._take_run()
        self.mode = "idle"
        self.feedback_runs += 1
        self._stop_worker()
        self._stop_recorder()
        self._note_feedback_recordings()
        self.feedbackFinished.emit(self.hit_rate)

    def _stop_worker(self) -> None:
        with self._source_lock:
            worker, self.worker = self.worker, None
            bridge, self._bridge = getattr(self, "_bridge", None), None
        if worker is not None:
            if bridge is not None:
                bridge.detach()
            worker.stop()

    def coadapt(self, finetune_epochs: int = 30, seed: int = 0) -> None:
        """Refine the user's model with the last feedback run's trials (known targets) on a
        thread: the whole run (:attr:`feedback_data`), however long it was."""
        from bci_app.protocol import completed_trials

        if self.feedback_data is None:
            raise RuntimeError("no feedback run has ended yet: run one before the update")
        cues = completed_trials(self.source.markers.since(self._fb_m0), self.protocol.classes)
        data, ts = self.feedback_data

        def job(job):
            from decoders.calibration import CalibrationCancelled, calibrate

            result, error = None, ""
            try:
                both = self.epochs.joined(self._epochs(data, ts, cues))
                result = calibrate(both.X, both.y, self.pretrained, X_ref=both.X_ref,
                                   trials=both.accounting(),
                                   finetune_epochs=finetune_epochs, seed=seed, cancel=job.cancel,
                                   provenance={"coadaptive_update": self.feedback_runs})
                job.check()
                self.result = result
                self.epochs = both
                self.save(self.user, self.chosen)
            except CalibrationCancelled:
                logger.info("co-adaptive update cancelled")
                result, error = None, "cancelled"
            except Exception as err:
                logger.exception("co-adaptive update failed")
                result, error = None, f"{type(err).__name__}: {err}"
            self._emit_job(self._jobEnded, job, "coadapt", result, error)

        if self.training_running:
            raise RuntimeError("a training job is still running; wait for it to end")
        self._start_job("coadapt", job, ())


class _RunCopy:
    """The samples of one run (cued or feedback), copied out of the source's ring buffer as
    they arrive, so that the run is kept whole however long it lasts, not only the buffer's last
    ``buffer_seconds`` (GUI thread: the pump calls :meth:`collect` on every tick).

    Parameters
    ----------
    name : str
        What the run is, for the log ("calibration", "feedback run").
    start : int
        The buffer's sample counter when the run started: its first sample.
    """

    def __init__(self, name: str, start: int) -> None:
        self.name = name
        self.next = int(start)  # counter of the next sample to copy
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []

    def collect(self, buffer) -> None:
        """Copy the samples written to ``buffer`` (a :class:`~acquisition.ring_buffer.RingBuffer`)
        since the last call."""
        chunk = buffer.since(self.next)
        if chunk.lost:
            logger.warning("%s: %d samples no longer in the buffer", self.name, chunk.lost)
        if chunk.n_samples:
            self._chunks.append((chunk.data, chunk.timestamps))
        self.next = chunk.stop

    def take(self, n_channels: int) -> tuple[np.ndarray, np.ndarray]:
        """Everything copied, as ``(data (n_samples, n_channels), timestamps (n_samples,))``
        (the copy is empty afterwards)."""
        chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros((0, n_channels)), np.zeros(0)
        return (np.concatenate([d for d, _ in chunks]),
                np.concatenate([t for _, t in chunks]))


class _Job:
    """One training / co-adaptation run: its cancel flag (set from the GUI thread)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cancel = threading.Event()
        self.epochs = None  # the trials cut by a training job
        self.ended = False  # set in the GUI thread when its end was received

    def check(self) -> None:
        if self.cancel.is_set():
            from decoders.calibration import CalibrationCancelled

            raise CalibrationCancelled(f"{self.name} cancelled")
