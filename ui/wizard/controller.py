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
        self._fb_k0 = 0
        self._k0 = 0
        self._pace_t0 = time.monotonic()
        self._pace_n0 = 0
        self.sim_factor = math.inf  # manual sources: signal per wall second (inf: budget-bound)
        self.pump_budget_s = 0.012
        #: torch threads for training (1: small model; 2 OpenMP threads on a busy 2-core machine
        #: measured 3-30x slower, see bench/RESULTS.md)
        self.torch_threads = 1
        #: True: the pump does nothing (a manual-mode source then stands still: used to hold a
        #: cue on screen for a screenshot)
        self.hold = False
        self._train_thread: threading.Thread | None = None
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

    def open_source(self, spec: str, speed: str = "1", montage: str = "standard_1005") -> None:
        """Create and connect the source (blocking: a simulated subject reads its files in about
        a second; call through BackgroundCall for devices)."""
        from bci_app.commands.calibrate import make_calibration_source, parse_speed

        self.close_source()
        self.load_pretrained()  # first: the pages need it once the source shows as connected
        sp = parse_speed(speed)
        # at max speed 0.1 s of signal per pull keeps the pump cheap
        src = make_calibration_source(spec, speed=sp, buffer_seconds=900.0,
                                      chunk_samples=16 if math.isinf(sp) else None)
        manual = math.isinf(sp) and callable(getattr(src, "cue", None))
        src.connect(timeout=10.0, acquisition=not manual)
        self.source_spec, self.montage = spec, montage
        self.source = src

    @property
    def manual(self) -> bool:
        return self.source is not None and self.source.connected and \
            getattr(self.source, "_thread", None) is None

    def close_source(self) -> None:
        self.timer.stop()
        self._stop_worker()
        if self.session is not None:
            try:
                self.session.stop()
            except Exception:
                logger.exception("stopping the calibration session failed")
            self.session = None
        elif self.source is not None:
            self.source.disconnect()
        self.source = None

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
                    if not self.manual or self.protocol.finished or self.hold or \
                            time.monotonic() > t_end:
                        break
                if self.protocol.finished:
                    self.mode = "tail" if self.mode == "acquisition" else "tail-feedback"
            elif self.mode in ("tail", "tail-feedback"):
                end = self.protocol.ended_at + 0.5
                while self.manual and self._data_end() < end and time.monotonic() < t_end:
                    self.source.acquire()
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
        if record and self.recorder is None:
            from bci_app.recording import attach_recorder

            path = self.record_dir if self.record_dir is not None else None
            self.recorder = attach_recorder(self.session, path, subject=user,
                                            prefix=f"calibration_{user}")
            self.recording_path = Path(self.recorder.path)
        self.session.start()
        self.protocol = GrazProtocol(classes, trials_per_class, timings, seed,
                                     marker_log=self.source.markers)
        self._hook_protocol()
        self.runner = ProtocolRunner(self.protocol, self.source)
        self._k0 = self.source.buffer.counter
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

    def _finish_acquisition(self) -> None:
        from bci_app.protocol import completed_trials

        self.mode = "idle"
        chunk = self.source.buffer.since(max(self._k0, self.source.buffer.counter
                                             - self.source.buffer.capacity))
        if chunk.lost:
            logger.warning("calibration: %d samples no longer in the buffer", chunk.lost)
        self.calib_data = (chunk.data, chunk.timestamps)
        self.calib_cues = completed_trials(self.source.markers.since(self._m0),
                                           self.protocol.classes)
        if self.recorder is not None:
            self.recorder.stop()
            self.session.components.remove(self.recorder)
            self.recorder = None
        self.acquisitionFinished.emit(self.protocol.state.value)

    def counts(self) -> dict[str, int]:
        out = {c: 0 for c in (self.protocol.classes if self.protocol else [])}
        for _, c in self.calib_cues:
            out[c] = out.get(c, 0) + 1
        return out

    # ------------------------------------------------------------------ training
    def train(self, finetune_epochs: int = 30, cv_folds: int = 5, seed: int = 0) -> None:
        """Cut the epochs and run :func:`decoders.calibration.calibrate` on a worker thread."""
        if self._train_thread is not None and self._train_thread.is_alive():
            raise RuntimeError("training already running")
        args = (finetune_epochs, cv_folds, seed)
        self._train_thread = threading.Thread(target=self._train_job, args=args,
                                              name="calibration-training", daemon=True)
        self._train_thread.start()

    def _epochs(self, data, ts, cues):
        from bci_app.commands.calibrate import window_of
        from decoders.calibration import epochs_from_stream

        b = self.pretrained
        tmin, tmax = window_of(b)
        return epochs_from_stream(data, ts, self.source.info.ch_names, self.source.info.sfreq,
                                  cues, b.classes, b.preprocessor, tmin=tmin, tmax=tmax)

    def _train_job(self, finetune_epochs, cv_folds, seed) -> None:  # worker thread
        try:
            import torch

            from decoders.calibration import calibrate

            torch.set_num_threads(self.torch_threads)
            data, ts = self.calib_data
            self.trainingProgress.emit(0.0, "cutting the trials")
            self.epochs = self._epochs(data, ts, self.calib_cues)
            res = calibrate(self.epochs.X, self.epochs.y, self.pretrained,
                            X_ref=self.epochs.X_ref, finetune_epochs=finetune_epochs,
                            cv_folds=cv_folds, seed=seed,
                            progress=lambda f, m: self.trainingProgress.emit(f, m),
                            provenance={"recording": str(self.recording_path or ""),
                                        "source": self.source_spec})
            self.result = res
            self.trained.emit(res, "")
        except Exception as err:  # shown in the wizard, never swallowed
            logger.exception("calibration training failed")
            self.trained.emit(None, f"{type(err).__name__}: {err}")

    def wait_training(self, timeout: float) -> bool:
        t = self._train_thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    def save(self, user: str, chosen: str) -> Path:
        from bci_app.profiles import save_profile

        info = self.source.info
        self.profile_path = save_profile(
            self.result, user, root=self.profiles_root, chosen=chosen, source=self.source_spec,
            stream={"name": info.name, "kind": info.source_kind, "sfreq": info.sfreq,
                    "ch_names": list(info.ch_names)},
            montage=self.montage, protocol=self.protocol.settings() if self.protocol else {},
            recording=self.recording_path,
            extra={"feedback_runs": self.feedback_runs})
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
        self._fb_k0 = self.source.buffer.counter
        self._fb_m0 = self.source.markers.counter
        self.mode = "feedback"
        self.runner.start()
        self.timer.start()

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
        self.mode = "idle"
        self.feedback_runs += 1
        self._stop_worker()
        self.feedbackFinished.emit(self.hit_rate)

    def _stop_worker(self) -> None:
        if self.worker is not None:
            if getattr(self, "_bridge", None) is not None:
                self._bridge.detach()
                self._bridge = None
            self.worker.stop()
            self.worker = None

    def coadapt(self, finetune_epochs: int = 30, seed: int = 0) -> None:
        """Refine the user's model with the feedback run's trials (known targets) on a thread."""
        from bci_app.protocol import completed_trials

        chunk = self.source.buffer.since(max(self._fb_k0, self.source.buffer.counter
                                             - self.source.buffer.capacity))
        cues = completed_trials(self.source.markers.since(self._fb_m0), self.protocol.classes)
        data, ts = chunk.data, chunk.timestamps

        def job():
            try:
                from decoders.calibration import calibrate

                ep = self._epochs(data, ts, cues)
                X = np.concatenate([self.epochs.X, ep.X])
                y = np.concatenate([self.epochs.y, ep.y])
                R = np.concatenate([self.epochs.X_ref, ep.X_ref])
                res = calibrate(X, y, self.pretrained, X_ref=R, finetune_epochs=finetune_epochs,
                                seed=seed, provenance={"coadaptive_update": self.feedback_runs})
                self.result = res
                self.epochs.X, self.epochs.y, self.epochs.X_ref = X, y, R
                self.save(self.user, self.chosen)
                self.coadapted.emit(res, "")
            except Exception as err:
                logger.exception("co-adaptive update failed")
                self.coadapted.emit(None, f"{type(err).__name__}: {err}")

        self._train_thread = threading.Thread(target=job, name="coadapt", daemon=True)
        self._train_thread.start()
