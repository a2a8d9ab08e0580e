"""Online decoding: a worker thread that turns the newest EEG window into a Prediction every hop.

The worker reads the source's ring buffer ``since(k)``, runs every new sample through the
bundle's causal, stateful preprocessing (:class:`~decoders.preprocessing.StreamingFilter` — the
same code the offline evaluation uses), keeps the filtered signal in its own ring buffer, and at
every hop boundary (every ``hop`` seconds of signal) predicts on the window that ends there.

Threads
-------
``start()`` runs one thread that wakes when the source writes new data (``source.new_data``).
If inference falls behind, stale windows are skipped and counted: only the newest boundary is
decoded; acquisition never waits for the worker. ``step()`` does the same work synchronously
(tests, max-speed replay), and with ``catch_up=True`` decodes every boundary instead of skipping.
Callbacks run on the worker thread; the GUI re-emits them as queued Qt signals.

A source connected again by hand (``source.disconnect(); source.connect()``) has a new ring
buffer whose sample count starts at 0: the worker reads what is left of the old buffer, then
follows the new one from its first sample as after a gap (filter restarted, the windows over the
seam and the filter's settling time unreliable). A new connection to another stream (other
channels, types, units or rate) stops the worker with a :class:`StreamMismatchError` that says
to build a new worker.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from acquisition.base import Source, gap_threshold
from acquisition.ring_buffer import Chunk, RingBuffer
from bci_app.errors import ConfigError, StreamMismatchError

from .bundle import Bundle
from .preprocessing import ChannelMapping
from .smoothing import DiscriminativeKalmanFilter, DwellCommander, EMASmoother

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """One decision of a decoder.

    Attributes
    ----------
    window_end : float
        LSL time of the window's last sample.
    probabilities : ndarray, shape (n_classes,)
        Raw class probabilities of this window.
    classes : tuple of str
    label : str
        Class with the highest raw probability (``"unreliable"`` when ``reliable`` is False).
    seq : int
        Sequence number (in the source's buffer) one past the window's last input sample; after
        the source was connected again, in its new buffer (which counts from 0).
    latency : dict
        Seconds: ``window_ready`` (last sample written → window filtered and cut),
        ``inference`` (→ model done), ``emitted`` (→ smoothing done, callbacks start),
        ``total`` (last sample written → emitted).
    smoothed : ndarray or None
        EMA-smoothed probabilities.
    control : float or None
        Continuous control signal in [-1, 1] (Kalman-filtered, 2-class decoders).
    command : str or None
        Discrete command issued by the dwell rule at this window, if any.
    reliable : bool
        False for windows holding non-finite, railed or flat-line samples, spanning a gap / lost
        samples, or for which the model returned non-finite probabilities; their probabilities
        are not fed to smoothing or commands.
    reason : str
        Why a window is unreliable.
    text : str or None
        Decoded text (text decoders), generated free-running.
    text_confidence : float or None
        The text decoder's confidence in ``text``.
    emitted_at : float
        ``time.monotonic()`` when the prediction was emitted (a consumer such as the GUI can add
        its own "shown" latency).
    """

    window_end: float
    probabilities: np.ndarray
    classes: tuple[str, ...]
    label: str
    seq: int
    latency: dict = field(default_factory=dict)
    smoothed: np.ndarray | None = None
    control: float | None = None
    command: str | None = None
    reliable: bool = True
    reason: str = ""
    text: str | None = None
    text_confidence: float | None = None
    emitted_at: float = 0.0


PredictionCallback = Callable[[Prediction], None]


class DecoderWorker:
    """Run a model bundle on sliding windows of a connected source.

    Parameters
    ----------
    source : Source
        Connected source (its StreamInfo is checked against the bundle at construction).
    bundle : Bundle
        The model and its preprocessing, channels, rate and window length.
    hop : float
        Seconds of signal between two predictions (default 0.1).
    mapping : ChannelMapping | dict | None
        Explicit map ``{bundle_channel: source_channel}`` when names differ; logged.
    smoothing : float | None
        EMA time constant in seconds (None: no smoothing).
    kalman : bool
        Compute a Discriminative-Kalman-filtered control signal (2-class bundles).
    commander : DwellCommander | None
        Dwell/threshold rule turning smoothed probabilities into commands.
    alignment_seconds : float
        For bundles trained on Euclidean-aligned data without a user alignment yet: seconds of
        signal (after the first full window) whose windows, taken every 0.5 s, fit the user's
        alignment before the first prediction (unsupervised, no labels).
    publish : str | None
        Name of an LSL stream to publish predictions on (class probabilities, control,
        reliable: 1 or 0), plus a ``<name>-commands`` marker stream. None: no LSL output.
    history : int
        Number of recent predictions kept in :attr:`history`.
    rail_volts : float | None
        Input samples at or beyond this magnitude (volts) on the model's channels mark the
        windows that hold them unreliable (a saturated amplifier: OpenBCI's Cyton rails at
        ±0.187 V). EEG never reaches 0.1 V. None disables the check.
    flat_volts : float | None
        A model channel whose raw peak-to-peak over the last second stays below this (volts)
        is flat (electrode off, amplifier channel dead, or a device sending zeros) and marks the
        windows that hold it unreliable: covariance-based models return NaN on such windows and
        deep models decode noise-free garbage. Default 0.5 µV, the scope's "flat" rule. None
        disables the check.
    engine : "auto" | "torch" | "onnx"
        Inference engine for deep models. ``auto`` exports the model to ONNX, checks that ONNX
        Runtime gives the same probabilities (max abs difference < 1e-4) and uses it when it is
        faster on one window; :attr:`engine_used` says what runs.

    Raises
    ------
    StreamMismatchError
        When the source lacks channels the bundle needs (without a mapping) or has a rate the
        bundle's preprocessing cannot turn into the bundle's rate. Also from :meth:`step` (and
        in :attr:`last_error`, the thread then stops) when the source was connected again to a
        stream with other channels or rate: build a new worker for it.

    Notes
    -----
    ``source.disconnect(); source.connect()`` while the worker runs gives the source a new ring
    buffer counting from 0 (the source's own reconnection after a loss keeps its buffer). The
    worker finishes the old buffer, then follows the new one from its first sample: the filter
    restarts there and the windows holding the seam, or starting within the filter's settling
    time after it, are unreliable (reason ``"source connected again"``), as after a gap;
    :attr:`source_restarts` counts these.
    """

    def __init__(
        self,
        source: Source,
        bundle: Bundle,
        *,
        hop: float = 0.1,
        mapping: ChannelMapping | dict[str, str] | None = None,
        smoothing: float | None = 0.5,
        kalman: bool = True,
        commander: DwellCommander | None = None,
        alignment_seconds: float = 10.0,
        publish: str | None = None,
        history: int = 600,
        engine: str = "auto",
        rail_volts: float | None = 0.1,
        flat_volts: float | None = 0.5e-6,
    ) -> None:
        if source.info is None or source.buffer is None:
            raise RuntimeError("DecoderWorker needs a connected source; call source.connect() first.")
        if not (math.isfinite(hop) and hop > 0):  # NaN passed "hop <= 0" to int(round(nan))
            raise ConfigError(f"hop must be a finite number of seconds > 0, got {hop}; e.g. "
                              "--hop 0.1.")
        self.source = source
        self._info = source.info  # the stream this worker's filter and model were built for
        if bundle.needs_alignment and bundle.alignment is None:
            # the alignment this worker fits belongs to this source's user: fit it on a copy,
            # so the caller's bundle (e.g. the GUI's loaded model) stays unaligned for the next
            bundle = dataclasses.replace(bundle)
        self.bundle = bundle
        info = source.info
        if mapping:
            logger.info("Channel mapping bundle -> source: %s", dict(
                mapping.mapping if isinstance(mapping, ChannelMapping) else mapping))
        self._filter = bundle.streaming_filter(info.sfreq, list(info.ch_names), mapping)
        self.n_times = bundle.n_times
        self.hop_samples = max(1, int(round(hop * bundle.sfreq)))
        self.hop = self.hop_samples / bundle.sfreq
        if abs(self.hop - hop) > 1e-9:
            logger.info("hop %g s is %g samples at the model's %g Hz: predicting every %d "
                        "samples (%.4g s)", hop, hop * bundle.sfreq, bundle.sfreq,
                        self.hop_samples, self.hop)
        self.classes = tuple(bundle.classes)
        self._fbuf_capacity = self.n_times + 32 * self.hop_samples + 64
        # input samples per piece so that one piece never overwrites an unread window
        ratio = info.sfreq / bundle.sfreq
        self._ratio = bundle.sfreq / info.sfreq  # output samples per input sample
        self._piece = max(1, int((self._fbuf_capacity - self.n_times - 2) * ratio) - 2)
        self.ema = EMASmoother(smoothing) if smoothing is not None else None
        self.kalman = DiscriminativeKalmanFilter() if kalman and len(self.classes) == 2 else None
        self.commander = commander
        self.alignment_seconds = float(alignment_seconds)
        self._align_every = max(1, int(round(0.5 / self.hop)))
        self._align_buf: list[np.ndarray] = []
        self._align_first: int | None = None
        # windows (taken every 0.5 s) that fit the user's alignment: as many as the alignment
        # span holds; unreliable windows (flat, railed, gaps) are not used
        self._align_needed = int(self.alignment_seconds * bundle.sfreq
                                 // (self._align_every * self.hop_samples)) + 1
        self.history: deque[Prediction] = deque(maxlen=history)
        self._callbacks: list[PredictionCallback] = []
        self._latencies: deque[float] = deque(maxlen=2000)
        self._inference_times: deque[float] = deque(maxlen=2000)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._outlet = None
        self._cmd_outlet = None
        self.publish = publish
        if engine not in ("auto", "torch", "onnx"):
            raise ConfigError(f"engine must be 'auto', 'torch' or 'onnx', got {engine!r}.")
        self.engine = engine
        self.rail_volts = rail_volts
        self.flat_volts = flat_volts
        self._flat_n = max(2, int(round(info.sfreq)))  # one second of raw input samples
        self._warm_up()
        self._reset_variables()

    def _warm_up(self) -> None:
        """Run the model on dummy windows so lazy imports and first-call allocations do not land
        on the first live prediction, and pick the inference engine (``engine="auto"``): PyTorch
        eager, the exact fused rewrite of the net (:mod:`decoders.fused`), or ONNX Runtime —
        each checked to give the reference probabilities (max abs difference < 1e-4), the
        fastest on one window wins."""
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4, len(self.bundle.channels), self.n_times)).astype(np.float32)
        x *= 1e-5
        dec = self.bundle.decoder
        ref = dec.predict_proba(x)
        candidates = {"torch" if getattr(dec, "kind", "") == "torch" else "sklearn":
                      dec.predict_proba}
        if self.engine != "torch" and getattr(dec, "kind", "") == "torch":
            candidates.update(_fast_engines(dec, self.engine))
        timings = {}
        for name, fn in list(candidates.items()):
            try:
                diff = float(np.abs(np.asarray(fn(x)) - ref).max())
                if not diff < 1e-4:
                    raise RuntimeError(f"differs from the reference by {diff:.2e}")
                timings[name] = _best_time(lambda fn=fn: fn(x[:1]))
            except Exception as err:
                logger.info("Inference engine %s not used: %s", name, err)
                candidates.pop(name)
        if self.engine == "onnx" and "onnxruntime" not in timings:
            raise ConfigError("engine='onnx' was asked for but ONNX Runtime could not run this "
                              "model (see the log); use engine='auto'.")
        if not timings:
            from bci_app.errors import BundleError

            raise BundleError(
                "The model failed on a test window before the session started (see the log); "
                "the bundle is broken or does not fit this code. Retrain or re-export it.")
        pick = "onnxruntime" if self.engine == "onnx" else min(timings, key=timings.get)
        self.engine_used = pick
        self._engine_fn = candidates[pick]
        logger.info("Inference per window: %s -> %s",
                    ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in timings.items()), pick)

    def _model(self, X: np.ndarray) -> np.ndarray:
        """Probabilities for preprocessed windows (n, n_chans, n_times) with the chosen engine."""
        if self.bundle.needs_alignment:
            if self.bundle.alignment is None:
                raise RuntimeError("alignment not fitted")
            X = self.bundle.alignment.transform(X)
        return np.asarray(self._engine_fn(np.asarray(X, dtype=np.float32)), dtype=float)

    # ------------------------------------------------------------------ state
    def _reset_variables(self) -> None:
        self._buf = self.source.buffer  # the buffer self._k counts in (connect() makes a new one)
        self._k = self._buf.counter  # start with what arrives from now on
        # filtered signal, indexed by output sample count (a new one: after a restart, windows
        # are cut from what arrives from now on, never from what was filtered before the stop)
        self._fbuf = RingBuffer(self._fbuf_capacity, len(self.bundle.channels))
        self._out_count = 0
        self._next_boundary = self.n_times
        # windows ending at output sample b with lo < b <= hi are unreliable: (lo, hi, reason)
        self._bad: deque[tuple[int, int, str]] = deque()
        self._gaps_seen = len(self.source.gaps)
        self._recent_raw = np.zeros((0, len(self.bundle.channels)))  # for the flat-line check
        # (out_start, out_stop, in_start, last input row of each output, arrival time of the
        # chunk's last input sample)
        self._chunk_map: deque[tuple[int, int, int, np.ndarray, float]] = deque(maxlen=256)
        self.n_predictions = 0
        self.source_restarts = 0  # new connections of the source followed (see the Notes)
        self.skipped = 0
        self.lost_samples = 0
        self.errors = 0
        self.unreliable = 0
        self.last_error = ""
        self._filter.reset()
        # a (re)start decodes from a fresh window on: no smoothing, control or dwell carries over
        # the stop (a dwell begun before it would otherwise complete on the first window after)
        if self.ema is not None:
            self.ema.reset()
        if self.kalman is not None:
            self.kalman.reset()
        if self.commander is not None:
            self.commander.interrupt()

    @property
    def caught_up(self) -> bool:
        """True when every sample written to the source's buffer so far has been consumed."""
        return self.source.buffer is self._buf and self._k >= self._buf.counter

    @property
    def aligning(self) -> bool:
        """True while the worker collects windows to fit the user's alignment."""
        return self.bundle.needs_alignment and self.bundle.alignment is None

    def add_callback(self, callback: PredictionCallback) -> None:
        """Call ``callback(prediction)`` for every prediction (on the worker thread)."""
        self._callbacks.append(callback)

    def remove_callback(self, callback: PredictionCallback) -> None:
        self._callbacks.remove(callback)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> DecoderWorker:
        if self._thread is not None:
            raise RuntimeError("DecoderWorker already running; call stop() first.")
        if self.publish:
            self._open_outlets()
        self._reset_variables()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="decoder", daemon=True)
        self._thread.start()
        return self

    def drain(self, timeout: float = 5.0) -> bool:
        """Stop once every sample the source has written is decoded (at most ``timeout`` s).

        For a source that writes no more samples (a replay at the end of its file): the last
        windows are decoded and their predictions emitted before the thread stops, instead of a
        fixed wait that dropped them when the worker was slower. Blocks (not on the GUI thread).
        Returns whether it caught up before the timeout."""
        deadline = time.monotonic() + float(timeout)
        while not self.caught_up and self._thread is not None and time.monotonic() < deadline:
            time.sleep(0.01)  # polls the counter: the worker signals nothing when it catches up
        caught_up = self.caught_up
        self.stop()
        return caught_up

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self.source.new_data:
            self.source.new_data.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.error("Decoder thread did not stop within %.1f s", timeout)
        for out in (self._outlet, self._cmd_outlet):
            if out is not None:
                out.close()
        self._outlet = self._cmd_outlet = None

    def __enter__(self) -> DecoderWorker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _open_outlets(self) -> None:
        from acquisition.lsl_outlet import EEGOutlet, MarkerOutlet
        from acquisition.stream_info import StreamInfo

        # "reliable" (1 or 0): a window holding a gap, non-finite or railed samples still has
        # finite probabilities; a consumer must be able to tell (the recording's labels stream
        # has the same flag)
        names = [*self.classes, "control", "reliable"]
        info = StreamInfo(
            name=self.publish, source_kind="decoder", ch_names=tuple(names),
            ch_types=("misc",) * len(names),
            units=("probability",) * len(self.classes) + ("a.u.", "boolean"),
            sfreq=0.0, source_id=f"bci_app-predictions-{self.publish}",
        )
        self._outlet = EEGOutlet(info, stream_type="Predictions", channel_format="float32")
        self._cmd_outlet = MarkerOutlet(f"{self.publish}-commands")

    def _run(self) -> None:
        cond = self.source.new_data
        while not self._stop.is_set():
            with cond:
                if self.caught_up:
                    cond.wait(timeout=0.05)
            if self._stop.is_set():
                break
            try:
                self.step(catch_up=False)
            except StreamMismatchError as err:  # connected again to another stream: give up
                self.errors += 1
                self.last_error = str(err)
                logger.error("Decoder stopped: %s", err)
                break
            except Exception as err:  # never die silently: count, log, keep going
                self.errors += 1
                self.last_error = f"{type(err).__name__}: {err}"
                logger.exception("Decoder step failed")
                self._stop.wait(0.05)

    # ------------------------------------------------------------------ work
    def step(self, catch_up: bool = True) -> list[Prediction]:
        """Process everything new in the source buffer; predict at hop boundaries.

        Parameters
        ----------
        catch_up : bool
            True: decode every boundary reached (offline-equivalent replay). False: decode only
            the newest boundary and count the others as skipped (real time). Either way, while
            the user's alignment is being fitted every boundary gives it its window.

        Returns
        -------
        list of Prediction
            The predictions emitted by this call (empty while aligning).
        """
        out: list[Prediction] = []
        newest: int | None = None
        while True:
            buf = self._follow_source()
            target = buf.counter
            reached = self._consume(buf.since(self._k, max_samples=self._piece))
            if not catch_up:
                # windows for the user's alignment cost no inference: all of them take part, as
                # in catch-up mode (newest-only took one every few reads: the fit came late, on
                # other windows); the boundaries after the fit are decoded in real time
                while reached and self.aligning:
                    self._predict_many([reached.pop(0)])
            if reached:
                if catch_up:
                    out.extend(self._predict_many(reached))
                else:
                    self.skipped += len(reached) - (1 if newest is None else 0)
                    newest = reached[-1]
            if self._k >= target and buf is self.source.buffer:
                break
        if newest is not None:
            out.extend(self._predict_many([newest]))
        return out

    def _follow_source(self) -> RingBuffer:
        """The buffer to read now: the one ``self._k`` counts in until all of it is read, then
        the source's new one when it was connected again (``connect()`` makes a new buffer that
        counts from 0; the old one stays readable). Following it restarts the filter at its
        first sample and marks the windows over the seam and the settling time unreliable,
        as at a gap.

        Raises
        ------
        StreamMismatchError
            The new connection is another stream (channels, types, units or rate).
        """
        buf = self.source.buffer
        if buf is self._buf or self._k < self._buf.counter:
            return self._buf
        try:
            self._info.check_compatible(self.source.info)
        except StreamMismatchError as err:
            raise StreamMismatchError(
                f"DecoderWorker: {self.source.display_name} was connected again "
                f"(source.connect()) to another stream: {err} This worker's filter and model "
                "are for the old one. Fix: stop this worker and build a new "
                "DecoderWorker(source, bundle) for the new stream; the predictions so far stay "
                "in worker.history."
            ) from None
        logger.warning(
            "%s was connected again (a new buffer, counting from 0) after %d samples of the "
            "old one: decoding goes on from its first sample; the filter restarts there and "
            "the windows over the seam are unreliable", self.source.display_name, self._k)
        self._buf, self._k, self._gaps_seen = buf, 0, 0
        self.source_restarts += 1
        self._filter.restart()
        self._mark_unreliable("source connected again", extra=self._filter.settle_samples - 1,
                              rows=(0, 0))
        return buf

    def _consume(self, chunk) -> list[int]:
        """Filter one chunk into the window buffer; return the hop boundaries it completed.

        At a sample loss (full reset) or a source gap (``StreamingFilter.restart``) the band-pass
        starts again from the steady state of the first sample after it, as at the start of a
        stream, so a DC drift over the hole does not ring; the windows holding that sample, or
        starting less than the filter's settling time after it, are marked unreliable. A chunk
        holding gaps is filtered piece by piece. ``epochs_from_stream`` (calibration) does the
        same at the same gaps."""
        # the outputs q .. q + settle_samples - 1 from the first one after a restart (q) carry
        # the transient: windows holding any of them are unreliable, the one starting at
        # q + settle_samples is not ("extra" counts the outputs after q)
        settling = self._filter.settle_samples - 1
        if chunk.lost:
            self.lost_samples += chunk.lost
            self._filter.reset()
            self._mark_unreliable(f"{chunk.lost} samples lost (decoder fell behind)",
                                  extra=settling)
        cuts = self._gap_rows(chunk)
        self._k = chunk.stop
        if chunk.n_samples == 0:
            return []
        reached: list[int] = []
        bounds = sorted(set(cuts) | {0, chunk.n_samples})
        for a, b in zip(bounds[:-1], bounds[1:]):
            if a in cuts:
                self._filter.restart()
                self._mark_unreliable("gap in the signal", extra=settling, rows=(0, 0))
            piece = chunk if (a, b) == (0, chunk.n_samples) else Chunk(
                chunk.data[a:b], chunk.timestamps[a:b], chunk.start + a, chunk.start + b)
            reached.extend(self._filter_piece(piece))
        return reached

    def _filter_piece(self, chunk) -> list[int]:
        """Filter consecutive samples (no gap inside) into the window buffer; return the hop
        boundaries they completed."""
        data = chunk.data
        cols = getattr(self._filter, "_idx", slice(None))
        # only the model's channels count: a NaN in a channel the model never reads (an aux or
        # unused electrode) changes nothing it sees
        finite = np.isfinite(data[:, cols])
        if not finite.all():
            data = np.where(np.isfinite(data), data, 0.0)  # keep the IIR state finite
            rows = np.flatnonzero(~finite.all(axis=1))
            self._mark_unreliable("non-finite samples (NaN/inf) in the window",
                                  extra=self.n_times, rows=(int(rows[0]), int(rows[-1])))
        if self.rail_volts is not None:
            railed = (np.abs(data[:, cols]) >= self.rail_volts).any(axis=1)
            if railed.any():
                self._mark_unreliable(
                    f"railed channel(s) (|x| >= {self.rail_volts:g} V): amplifier saturated or "
                    "electrode off", extra=self.n_times,
                    rows=(int(np.flatnonzero(railed)[0]), int(np.flatnonzero(railed)[-1])))
        if self.flat_volts is not None:
            self._check_flat(data)
        # where each output lands on this chunk's input rows (resampling: fractional rows),
        # taken before process() moves the filter's state on
        pos = self._filter.output_positions(chunk.n_samples)
        filtered = self._filter.process(data)
        n_out = filtered.shape[0]
        if n_out:
            last_row = np.floor(pos).astype(int)  # last input row each output depends on
            self._fbuf.write(filtered, self._output_times(chunk, pos, last_row))
            self._chunk_map.append((self._out_count, self._out_count + n_out,
                                    chunk.stop - chunk.n_samples, last_row,
                                    self._arrival_of(chunk)))
            self._out_count += n_out
        reached = []
        while self._next_boundary <= self._out_count:
            reached.append(self._next_boundary)
            self._next_boundary += self.hop_samples
        return reached

    def _gap_rows(self, chunk) -> list[int]:
        """Rows of ``chunk`` holding the first sample after each new source gap, found by the
        gap's start time: a chunk read by a worker that fell behind spans several source chunks,
        and the acquisition thread registers a gap just before it writes the samples after it
        (a gap whose first sample is not in this chunk yet waits for the next one). The row is
        where the timestamps cross the gap's start, so a clock that went back later in the
        chunk does not hide it."""
        gaps = self.source.gaps
        if len(gaps) < self._gaps_seen:  # the source was reconnected: a new list
            self._gaps_seen = 0
        rows: list[int] = []
        ts = chunk.timestamps
        while self._gaps_seen < len(gaps) and chunk.n_samples:
            start = gaps[self._gaps_seen].start
            if ts[0] >= start and not rows:
                row = 0  # between the previous chunk and this one
            else:
                cross = np.flatnonzero((ts[:-1] < start) & (ts[1:] >= start))
                cross = cross[cross + 1 > (rows[-1] if rows else -1)]
                if not len(cross):
                    break  # its samples are not in this chunk yet
                row = int(cross[0]) + 1
            rows.append(row)
            self._gaps_seen += 1
        return rows

    def _check_flat(self, data: np.ndarray) -> None:
        """Mark windows unreliable while a model channel's raw signal is flat over 1 s (every
        1 s stretch ending in this chunk is checked, so a long chunk hides nothing)."""
        cols = getattr(self._filter, "_idx", slice(None))
        raw = np.asarray(data[:, cols], dtype=float)
        held = len(self._recent_raw)
        both = np.concatenate([self._recent_raw, raw])
        self._recent_raw = both[-(self._flat_n - 1):]
        n = self._flat_n
        if len(both) < n:
            return
        first_end = max(n - 1, held)  # stretches ending in this chunk (earlier ones are done)
        ptp = _running_ptp(both, n, first_end)
        flat_rows = (ptp < self.flat_volts).any(axis=1)
        if not flat_rows.any():
            return
        ends = np.flatnonzero(flat_rows)
        first, last = int(ends[0]), int(ends[-1])
        flat = ptp[last] < self.flat_volts
        names = [self.bundle.channels[i] for i in np.flatnonzero(flat)]
        shown = ", ".join(names[:6]) + (f" (+{len(names) - 6} more)" if len(names) > 6 else "")
        self._mark_unreliable(
            f"flat channel(s) {shown} (peak-to-peak < {self.flat_volts * 1e6:g} µV over 1 s): "
            "electrode off, or the device sends no signal", extra=self.n_times,
            rows=(first_end + first - (n - 1) - held, first_end + last - held))

    def _output_times(self, chunk, pos: np.ndarray, last_row: np.ndarray) -> np.ndarray:
        """Time of each output sample: the input time at its (fractional, when resampling)
        position on the chunk's rows, so it does not depend on how the source cut its chunks."""
        frac = pos - last_row
        return chunk.timestamps[last_row] + frac / self.source.info.sfreq

    def _mark_unreliable(self, reason: str, extra: int = 0,
                         rows: tuple[int, int] | None = None) -> None:
        """Mark unreliable every window holding output samples ``q0..q1`` (plus ``extra``
        samples after them, for the filter to settle): ``q0``/``q1`` are where input rows
        ``rows`` of the chunk being consumed land in the output (its first sample when None;
        negative rows are in earlier chunks)."""
        q0 = q1 = self._out_count
        if rows is not None:
            q0 += int(math.floor(rows[0] * self._ratio))
            q1 += int(math.ceil((rows[1] + 1) * self._ratio)) - 1
        self._bad.append((q0, q1 + self.n_times + extra, reason))

    def _unreliable_reason(self, b: int) -> str | None:
        """Why the window ending at output sample ``b`` is unreliable (None: it is reliable)."""
        while self._bad and self._bad[0][1] < b - self.n_times - 64 * self.hop_samples:
            self._bad.popleft()  # far behind every window still to come
        reason = None
        for lo, hi, why in self._bad:
            if lo < b <= hi:
                reason = why  # the latest event that covers it
        return reason

    def _arrival_of(self, chunk) -> float:
        t_last = self.source.arrival_time(chunk.stop - 1)
        return t_last if t_last is not None else time.monotonic()

    def _input_stop(self, b: int) -> tuple[int, float]:
        """Input sample count one past the last input sample of the window ending at output
        sample ``b``, and the time that sample was written to the source buffer."""
        for out_start, out_stop, in_start, last_row, t_arr in self._chunk_map:
            if out_start < b <= out_stop:
                in_stop = in_start + int(last_row[b - 1 - out_start]) + 1
                # the arrival of the window's own last sample: a worker that fell behind reads
                # several source writes at once, and the chunk's last one came later
                t_own = self.source.arrival_time(in_stop - 1)
                return in_stop, t_own if t_own is not None else t_arr
        return self._k, time.monotonic()

    def _predict_many(self, boundaries: list[int]) -> list[Prediction]:
        """Predict the windows ending at ``boundaries`` (one batched model call)."""
        items = []
        for b in boundaries:
            win = self._fbuf.since(b - self.n_times, max_samples=self.n_times)
            if win.n_samples != self.n_times:
                continue
            x = win.data.T  # (n_chans, n_times)
            if self.aligning:
                if self._align_first is None:
                    self._align_first = b
                if (((b - self._align_first) // self.hop_samples) % self._align_every == 0
                        and self._unreliable_reason(b) is None):
                    self._align_buf.append(x)
                if len(self._align_buf) >= self._align_needed:
                    self.bundle.fit_alignment(np.stack(self._align_buf))
                    logger.info("Fitted the user's Euclidean alignment on %d windows (%.1f s)",
                                len(self._align_buf), self.alignment_seconds)
                    self._align_buf = []
                continue
            items.append((b, win, x))
        if not items:
            return []
        t_ready = time.monotonic()
        X = np.stack([x for _, _, x in items])
        probs_all = self._model(X).reshape(len(items), -1)
        texts = None
        if hasattr(self.bundle, "decode_text"):  # text decoders: free-running generated text
            texts = self.bundle.decode_text(X)
        t_inf = time.monotonic()
        per_window = (t_inf - t_ready) / len(items)
        out = []
        for i, ((b, win, _), probs) in enumerate(zip(items, probs_all)):
            in_stop, t_arr = self._input_stop(b)
            why = self._unreliable_reason(b)
            reliable = why is None
            reason = why or ""
            if reliable and not np.isfinite(probs).all():
                reliable = False
                reason = ("the model returned non-finite probabilities for this window "
                          "(degenerate signal)")
            smoothed = control = command = None
            t_end = float(win.timestamps[-1])
            if reliable:
                if self.ema is not None:
                    smoothed = self.ema.update(probs, t_end)
                basis = smoothed if smoothed is not None else probs
                if self.kalman is not None:
                    control = self.kalman.update_from_proba(basis)
                if self.commander is not None:
                    cmd = self.commander.update(basis, t_end)
                    command = cmd.label if cmd else None
            else:
                self.unreliable += 1
                if self.commander is not None:
                    self.commander.interrupt()  # a dwell must be unbroken reliable windows
            label = self.classes[int(np.argmax(probs))] if reliable else "unreliable"
            t_emit = time.monotonic()
            latency = {"window_ready": t_ready - t_arr, "inference": per_window,
                       "emitted": t_emit - t_inf, "total": t_emit - t_arr}
            pred = Prediction(
                window_end=t_end, probabilities=probs, classes=self.classes, label=label,
                seq=int(in_stop), latency=latency, smoothed=smoothed, control=control,
                command=command, reliable=reliable,
                reason=reason,
                text=texts[i][0] if texts is not None and reliable else None,
                text_confidence=(float(texts[i][1]) if texts is not None and reliable
                                 else None),
                emitted_at=t_emit,
            )
            self.n_predictions += 1
            self._latencies.append(latency["total"])
            self._inference_times.append(per_window)
            self.history.append(pred)
            self._emit(pred)
            out.append(pred)
        return out

    def _emit(self, pred: Prediction) -> None:
        if self._outlet is not None:
            row = np.r_[pred.probabilities, pred.control if pred.control is not None else np.nan,
                        1.0 if pred.reliable else 0.0]
            self._outlet.push_chunk(row[None, :].astype(np.float64) / self._outlet.scale,
                                    [pred.window_end])
            if pred.command and self._cmd_outlet is not None:
                self._cmd_outlet.push(pred.command, pred.window_end)
        for cb in list(self._callbacks):
            try:
                cb(pred)
            except Exception:
                logger.exception("Prediction callback %r failed", cb)

    # ------------------------------------------------------------------ statistics
    def stats(self) -> dict:
        """Counters and latency percentiles (seconds) over the last 2000 predictions."""
        lat = np.asarray(self._latencies) if self._latencies else np.zeros(0)
        inf = np.asarray(self._inference_times) if self._inference_times else np.zeros(0)

        def p(a, q):
            return float(np.percentile(a, q)) if a.size else float("nan")

        return {
            "predictions": self.n_predictions, "skipped": self.skipped, "errors": self.errors,
            "unreliable": self.unreliable, "lost_samples": self.lost_samples,
            "latency_p50": p(lat, 50), "latency_p99": p(lat, 99),
            "inference_p50": p(inf, 50), "inference_p99": p(inf, 99),
            "aligning": self.aligning,
        }


def _running_ptp(x: np.ndarray, n: int, first_end: int) -> np.ndarray:
    """Peak-to-peak (per column) of every ``n``-row stretch of ``x`` ending at rows
    ``first_end .. len(x) - 1``.

    Runs on every chunk, so it costs about one pass over the last ``n`` rows when few stretches
    end in the chunk (the usual case): the rows all of them share are reduced once, the rest by
    running maxima/minima outward from them. Long chunks use scipy's running filters.
    """
    m = len(x) - first_end
    if m > n:
        from scipy.ndimage import maximum_filter1d, minimum_filter1d

        o = (n - 1) // 2  # shifts each window to end at its row
        return (maximum_filter1d(x, n, axis=0, origin=o)
                - minimum_filter1d(x, n, axis=0, origin=o))[first_end:]
    core = x[len(x) - n:first_end + 1]  # rows every stretch holds
    left = x[first_end - n + 1:len(x) - n]  # stretch k also holds left[k:]
    right = x[first_end + 1:]  # stretch k also holds right[:k]
    out = []
    for red, acc in ((np.max, np.maximum), (np.min, np.minimum)):
        v = np.repeat(red(core, axis=0)[None], m, axis=0)
        if m > 1:
            v[:-1] = acc(v[:-1], acc.accumulate(left[::-1], axis=0)[::-1])
            v[1:] = acc(v[1:], acc.accumulate(right, axis=0))
        out.append(v)
    return out[0] - out[1]


def _best_time(fn, reps: int = 5) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _fast_engines(dec, engine: str) -> dict:
    """Faster exact equivalents of a DeepDecoder's predict_proba: fused torch net, ONNX Runtime."""
    import tempfile
    from pathlib import Path
    from types import SimpleNamespace

    import torch

    from .fused import fuse_for_inference

    out = {}
    scale = np.float32(dec.scale_)
    net = dec.net_.eval()
    fused = fuse_for_inference(net, dec.n_chans, dec.n_times)
    if fused is not None and engine == "auto":
        def fused_fn(X, fused=fused):
            with torch.inference_mode():
                return torch.softmax(fused(torch.as_tensor(X * scale)), dim=1).numpy()

        out["torch-fused"] = fused_fn
    try:
        from .export import export_onnx, onnx_predict_proba, onnx_session

        target = SimpleNamespace(net_=fused if fused is not None else net, scale_=dec.scale_,
                                 n_chans=dec.n_chans, n_times=dec.n_times)
        with tempfile.TemporaryDirectory() as tmp:
            session = onnx_session(export_onnx(target, Path(tmp) / "model.onnx"), n_threads=1)
        out["onnxruntime"] = lambda X, s=session: onnx_predict_proba(s, X)
    except Exception as err:
        logger.info("ONNX export not available: %s", err)
    return out


def offline_window_predictions(
    data: np.ndarray, sfreq: float, ch_names: list[str], bundle: Bundle, hop: float = 0.1,
    mapping: ChannelMapping | dict[str, str] | None = None, batch: int = 256,
    alignment_seconds: float = 10.0, times: np.ndarray | None = None,
    return_reliable: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The offline reference of what :class:`DecoderWorker` computes on a replay.

    Filters the signal causally (the same StreamingFilter code), cuts the windows ending at every
    hop boundary, and predicts them in batches. With ``times``, every gap in them (a step larger
    than :func:`acquisition.base.gap_threshold`, the sources' rule) is treated as the worker
    treats a source gap: the band-pass restarts on the first sample after it, and the windows
    holding that sample or starting within ``StreamingFilter.settle_samples`` after it are
    unreliable. Without ``times`` the signal is taken as continuous. For a bundle that needs the
    user's Euclidean alignment and has none yet, the alignment is fitted exactly as the worker
    does (reliable windows every 0.5 s over the first ``alignment_seconds`` after the first full
    window; those boundaries give no prediction) on a copy — the caller's bundle is not changed.
    Windows the worker marks unreliable for their content (non-finite, railed, flat input) are
    not detected here.

    Parameters
    ----------
    data : ndarray, shape (n_samples, n_channels)
        Signal from the first sample the worker would see, in the source's units (volts).
    times : ndarray, shape (n_samples,), optional
        Each sample's time in seconds (a :class:`~acquisition.files.FileRecording`'s ``times``:
        what a replay stamps its samples with).
    return_reliable : bool
        Also return which windows the worker would call reliable.

    Returns
    -------
    ends : ndarray of int, shape (n_windows,)
        Output-sample index one past each predicted window's last sample.
    probabilities : ndarray, shape (n_windows, n_classes)
    reliable : ndarray of bool, shape (n_windows,)
        Only with ``return_reliable``: False where the worker's prediction is ``unreliable``
        (a gap, see above).
    """
    data = np.asarray(data, dtype=float)
    filt = bundle.streaming_filter(sfreq, list(ch_names), mapping)
    cuts = np.zeros(0, int)
    if times is not None:
        times = np.asarray(times, dtype=float)
        if times.shape != (len(data),):
            raise ConfigError(f"times: expected one time per sample, shape ({len(data)},), got "
                              f"{times.shape}; pass the recording's own times.")
        cuts = np.flatnonzero(np.diff(times) > gap_threshold(sfreq)) + 1
    pieces, gap_out = [], []  # gap_out: outputs filtered before each gap's first sample
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(data)]):
        if a:
            filt.restart()
            gap_out.append(sum(map(len, pieces)))
        pieces.append(filt.process(data[a:b]))
    out = np.concatenate(pieces)
    n_times = bundle.n_times
    hop_samples = max(1, int(round(hop * bundle.sfreq)))
    ends = np.arange(n_times, out.shape[0] + 1, hop_samples)
    # as DecoderWorker._mark_unreliable at a gap: windows ending after the first output at or
    # after the gap and starting before the settling time after it is over
    reach = math.ceil(filt.sfreq_out / float(sfreq)) - 1 + n_times + filt.settle_samples - 1
    reliable = np.ones(len(ends), bool)
    for q in gap_out:
        reliable &= ~((ends > q) & (ends <= q + reach))
    if bundle.needs_alignment and bundle.alignment is None:
        # as DecoderWorker: a window every 0.5 s from the first one, the reliable ones kept; the
        # fit happens at the boundary that brings the count to what ``alignment_seconds``
        # holds, and only later boundaries are predicted
        every = max(1, int(round(0.5 / (hop_samples / bundle.sfreq))))
        needed = int(alignment_seconds * bundle.sfreq // (every * hop_samples)) + 1
        first = int(ends[0]) if len(ends) else n_times
        on_grid = ((ends - first) // hop_samples) % every == 0
        grid = ends[on_grid & reliable][:needed]
        if len(grid) < needed:
            empty = (np.zeros(0, int), np.zeros((0, len(bundle.classes))))
            return (*empty, np.zeros(0, bool)) if return_reliable else empty
        windows = np.stack([out[e - n_times:e].T for e in grid])
        bundle = dataclasses.replace(bundle, alignment=None).fit_alignment(windows)
        later = ends > grid[-1]
        ends, reliable = ends[later], reliable[later]
    probs = []
    for i in range(0, len(ends), batch):
        sel = ends[i:i + batch]
        X = np.stack([out[e - n_times:e].T for e in sel])
        probs.append(np.asarray(bundle.predict_proba(X)))
    probs = np.concatenate(probs) if probs else np.zeros((0, len(bundle.classes)))
    return (ends, probs, reliable) if return_reliable else (ends, probs)
