"""Preprocessing shared by offline evaluation and the online engine.

One code path, two drivers:

* **Online** (DecoderWorker thread): build a :class:`StreamingFilter` once per stream with
  :meth:`Preprocessor.streaming`, then call :meth:`StreamingFilter.process` on every chunk as it
  arrives, in order. The filter keeps the ``sosfilt`` state (``zi``) and the resampler's history,
  so a signal cut into chunks of any size gives exactly the same output as the whole signal.
* **Offline** (training, evaluation): :meth:`Preprocessor.process_offline` runs the *same*
  :class:`StreamingFilter` over each *continuous* recording (one run = one chunk) **before**
  epoching. Filters are causal, so a window cut from the offline result equals the window the
  online engine sees at the same time stamp (once the filters have settled): online == offline.

Order of operations (all linear and causal): channel picking/mapping -> common average reference
(CAR) -> notch -> band-pass (Butterworth, second-order sections) -> resampling (polyphase FIR
with state, anti-aliased) -> scaling.

:class:`EuclideanAlignment` (He & Wu 2019) re-centres one subject's (or session's) trials so that
their mean spatial covariance becomes the identity; it is fitted on unlabeled trials of that
subject only and is what makes cross-subject transfer work.

Arrays are float64 during filtering; units are those of the input (volts for MNE data) times
``Preprocessor.scale``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
from scipy import signal

from bci_app.errors import ConfigError, StreamMismatchError

logger = logging.getLogger(__name__)

__all__ = [
    "ChannelMapping",
    "EuclideanAlignment",
    "Preprocessor",
    "StreamingFilter",
    "StreamingResampler",
    "euclidean_alignment_matrix",
]


# --------------------------------------------------------------------------------------------
# Channel mapping
# --------------------------------------------------------------------------------------------
def _normalize_label(name: str) -> str:
    """Lower-case label without padding dots/spaces and a leading ``EEG`` / trailing ``-REF``."""
    n = name.strip().lower().rstrip(".").strip()
    if n.startswith("eeg ") or n.startswith("eeg-"):
        n = n[4:]
    if n.endswith("-ref"):
        n = n[:-4]
    return n.replace(" ", "").replace(".", "")


@dataclass(frozen=True)
class ChannelMapping:
    """Explicit map from the channels a consumer needs to the channels a source provides.

    Parameters
    ----------
    mapping : dict of str to str
        ``{needed_channel: source_channel}``. Needed channels absent from the mapping are looked
        up by name (exact, then case-insensitive).

    Examples
    --------
    >>> m = ChannelMapping({"C3": "EXG1", "C4": "EXG2"})
    >>> m.indices(["C3", "C4"], ["EXG1", "EXG2", "EXG3"]).tolist()
    [0, 1]
    """

    mapping: dict[str, str] = field(default_factory=dict)

    def indices(self, needed: Sequence[str], available: Sequence[str]) -> np.ndarray:
        """Source column of every needed channel, shape (len(needed),).

        Raises
        ------
        StreamMismatchError
            If some needed channels are neither mapped nor present, naming them.
        """
        avail = list(available)
        exact = {name: i for i, name in enumerate(avail)}
        lower: dict[str, int] = {}
        normalized: dict[str, int] = {}
        for i, name in enumerate(avail):
            lower.setdefault(name.lower(), i)
            normalized.setdefault(_normalize_label(name), i)
        out, missing = [], []
        for ch in needed:
            src = self.mapping.get(ch, ch)
            if src in exact:
                out.append(exact[src])
            elif src.lower() in lower:
                out.append(lower[src.lower()])
            elif _normalize_label(src) in normalized:
                # same electrode, other spelling (EDF padding such as PhysioNet's "Fc5.")
                i = normalized[_normalize_label(src)]
                logger.info("Channel %s matched to source channel %r by normalized label", ch,
                            avail[i])
                out.append(i)
            else:
                missing.append(ch if src == ch else f"{ch} (mapped to {src!r})")
        if missing:
            raise StreamMismatchError(
                f"channels: the model needs {len(needed)} channels but the source lacks "
                f"{len(missing)}: {', '.join(missing)}; the source has {avail}. Fix: map each "
                "to a source channel (`bci-app live --map MODEL_CH=SOURCE_CH`, repeatable; in "
                "Python ChannelMapping({needed_name: source_name, ...})), or use a source that "
                "records them."
            )
        return np.asarray(out, dtype=int)


# --------------------------------------------------------------------------------------------
# Streaming resampler
# --------------------------------------------------------------------------------------------
class StreamingResampler:
    """Causal rational resampling (polyphase FIR) with state, chunk-size invariant.

    Output sample ``k`` is at time ``k / sfreq_out`` on the input's time axis (plus the FIR's group
    delay, ``half_len / (sfreq_in * up)`` seconds).

    Parameters
    ----------
    sfreq_in, sfreq_out : float
        Rates in Hz; their ratio must be a fraction with numerator and denominator <= 1000.
    n_channels : int
        Columns of every chunk.
    half_len_factor : int
        FIR half length in units of ``max(up, down)`` input-upsampled samples (scipy uses 10; 5
        halves the delay and is enough after a band-pass).
    """

    def __init__(
        self, sfreq_in: float, sfreq_out: float, n_channels: int, half_len_factor: int = 5
    ) -> None:
        if not (math.isfinite(sfreq_in) and sfreq_in > 0 and math.isfinite(sfreq_out)
                and sfreq_out > 0):
            raise ConfigError(
                f"resampling: rates must be finite and > 0 Hz, got {sfreq_in:g} Hz (the signal) "
                f"and {sfreq_out:g} Hz (the model's rate). Fix: a positive --sfreq (e.g. 80), "
                "or 0 to keep the signal's rate."
            )
        ratio = Fraction(float(sfreq_out) / float(sfreq_in)).limit_denominator(1000)
        if ratio <= 0 or abs(float(ratio) * sfreq_in - sfreq_out) > 1e-6 * sfreq_out:
            raise ConfigError(
                f"resampling: cannot resample {sfreq_in:g} Hz (the signal) to {sfreq_out:g} Hz "
                "(the model's rate) in real time: their ratio is not a fraction with a "
                "denominator of at most 1000. Fix: if the device's nominal rate is off (a "
                "stream declaring e.g. 250.01 Hz), declare its true nominal rate (250 Hz); "
                "otherwise train the model at a rate such as "
                f"{sfreq_in / 2:g} Hz (bci-app train --sfreq)."
            )
        self.up, self.down = ratio.numerator, ratio.denominator
        self.sfreq_in, self.sfreq_out = float(sfreq_in), float(sfreq_out)
        self.n_channels = int(n_channels)
        m = max(self.up, self.down)
        half_len = half_len_factor * m
        taps = signal.firwin(2 * half_len + 1, 1.0 / m, window=("kaiser", 5.0)) * self.up
        n_phase_taps = math.ceil(len(taps) / self.up)
        taps = np.concatenate([taps, np.zeros(n_phase_taps * self.up - len(taps))])
        # poly[phase, p] = taps[phase + p * up]
        self._poly = taps.reshape(n_phase_taps, self.up).T.copy()
        self._P = n_phase_taps
        self.delay_s = half_len / (self.sfreq_in * self.up)
        self.reset()

    def reset(self) -> None:
        """Forget the history (start of a new recording)."""
        self._hist = np.zeros((self._P - 1, self.n_channels))
        self._n_in = 0  # input samples consumed so far
        self._k = 0  # next output index

    def positions(self, n_samples: int) -> np.ndarray:
        """Where the outputs of the next chunk of ``n_samples`` lie on that chunk's input rows.

        Returns shape (n_out,), float: output ``j`` of :meth:`process` is the signal at input
        row ``positions[j]`` (fractional; ``floor`` of it is the last input row the output
        depends on), so its time is the input time interpolated there. Changes no state.
        """
        n_in_total = self._n_in + int(n_samples)
        k_end = (n_in_total * self.up + self.down - 1) // self.down
        ks = np.arange(self._k, k_end)
        return (ks * self.down - self._n_in * self.up) / self.up

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Resample one chunk, shape (n_samples, n_channels) -> (n_out, n_channels)."""
        chunk = np.asarray(chunk, dtype=float)
        buf = np.concatenate([self._hist, chunk], axis=0)
        n_in_total = self._n_in + len(chunk)
        # Output k needs input m0 = floor(k * down / up) <= n_in_total - 1.
        k_end = (n_in_total * self.up + self.down - 1) // self.down  # first k with m0 >= n_in
        ks = np.arange(self._k, k_end)
        n = ks * self.down
        phase, m0 = n % self.up, n // self.up
        # buffer row of input m: m - (self._n_in - (P - 1))
        base = m0 - (self._n_in - (self._P - 1))
        idx = base[:, None] - np.arange(self._P)[None, :]
        w = self._poly[phase]  # (n_out, P)
        out = np.einsum("kp,kpc->kc", w, buf[idx]) if len(ks) else np.zeros((0, self.n_channels))
        self._k = int(k_end)
        self._n_in = n_in_total
        self._hist = buf[len(buf) - (self._P - 1):] if self._P > 1 else buf[:0]
        return out


# --------------------------------------------------------------------------------------------
# Preprocessor (config) and StreamingFilter (state)
# --------------------------------------------------------------------------------------------
@dataclass
class Preprocessor:
    """Configuration of the preprocessing chain (serializable with :meth:`to_dict`).

    Parameters
    ----------
    channels : list of str or None
        Channels to keep, in this order (the model's input order). ``None`` keeps all.
    car : bool
        Common average reference over the kept channels.
    l_freq, h_freq : float or None
        Band-pass edges in Hz (``None`` = no high-pass / no low-pass).
    filter_order : int
        Butterworth order of the band-pass.
    notch : float or None
        Mains frequency to notch out (50 or 60 Hz), with quality ``notch_q``.
    sfreq : float or None
        Output rate in Hz (resampled causally); ``None`` keeps the input rate.
    scale : float
        Factor applied last (1.0 keeps volts).
    """

    channels: list[str] | None = None
    car: bool = True
    l_freq: float | None = 8.0
    h_freq: float | None = 30.0
    filter_order: int = 4
    notch: float | None = None
    notch_q: float = 30.0
    sfreq: float | None = None
    scale: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(
                f"preprocessing: unknown keys {sorted(unknown)}; expected a subset of {sorted(known)}"
            )
        return cls(**d)

    def output_sfreq(self, sfreq_in: float) -> float:
        return float(self.sfreq) if self.sfreq else float(sfreq_in)

    def design_sos(self, sfreq_in: float) -> np.ndarray | None:
        """Second-order sections of notch + band-pass at ``sfreq_in``, or None."""
        nyq = sfreq_in / 2.0
        sections = []
        if self.notch:
            if not 0 < self.notch < nyq:
                raise ConfigError(f"notch: expected 0 < notch < {nyq} Hz, got {self.notch}")
            b, a = signal.iirnotch(self.notch, self.notch_q, fs=sfreq_in)
            sections.append(signal.tf2sos(b, a))
        lo, hi = self.l_freq, self.h_freq
        if hi is not None and hi >= nyq:
            raise ConfigError(
                f"h_freq: expected below the Nyquist frequency {nyq} Hz of the input, got {hi}. "
                "Fix: lower h_freq or use a faster source."
            )
        if lo is not None and hi is not None and not 0 < lo < hi:
            raise ConfigError(f"l_freq/h_freq: expected 0 < l_freq < h_freq, got {lo}, {hi}")
        if self.filter_order < 1:
            raise ConfigError(f"filter_order: expected >= 1, got {self.filter_order}")
        if lo and hi:
            sections.append(
                signal.butter(self.filter_order, [lo, hi], "bandpass", fs=sfreq_in, output="sos")
            )
        elif lo:
            sections.append(signal.butter(self.filter_order, lo, "highpass", fs=sfreq_in, output="sos"))
        elif hi:
            sections.append(signal.butter(self.filter_order, hi, "lowpass", fs=sfreq_in, output="sos"))
        return np.concatenate(sections, axis=0) if sections else None

    def streaming(
        self,
        sfreq_in: float,
        ch_names_in: Sequence[str],
        mapping: ChannelMapping | dict[str, str] | None = None,
    ) -> StreamingFilter:
        """A fresh stateful filter for a stream with these channels and rate."""
        return StreamingFilter(self, sfreq_in, ch_names_in, mapping)

    def output_channels(self, ch_names_in: Sequence[str]) -> list[str]:
        return list(self.channels) if self.channels is not None else list(ch_names_in)

    def process_offline(
        self,
        data: Any,
        sfreq: float | None = None,
        ch_names: Sequence[str] | None = None,
        mapping: ChannelMapping | dict[str, str] | None = None,
    ):
        """Filter a whole continuous recording causally, exactly as the online path would.

        Parameters
        ----------
        data : mne.io.BaseRaw | mne.BaseEpochs | ndarray
            * ``Raw``: returns a new ``RawArray`` (annotations kept, new rate and channels).
            * ``Epochs``: each epoch is filtered on its own from a fresh state (only for epochs
              cut with long margins; prefer filtering the continuous raw, then epoching).
            * ndarray, shape (n_samples, n_channels), continuous: returns the same layout;
              ``sfreq`` and ``ch_names`` are then required.
        """
        import mne

        if isinstance(data, mne.io.BaseRaw):
            raw = data
            eeg = raw.get_data()  # (n_ch, n_times), volts
            filt = self.streaming(raw.info["sfreq"], raw.ch_names, mapping)
            out = filt.process(eeg.T).T
            info = mne.create_info(filt.ch_names_out, filt.sfreq_out, ch_types="eeg")
            new = mne.io.RawArray(out, info, first_samp=0, verbose="error")
            new.set_meas_date(raw.info["meas_date"])
            # annotations onsets relative to the recording start are rate-independent
            ann = raw.annotations.copy()
            new.set_annotations(
                mne.Annotations(
                    ann.onset - raw.first_time, ann.duration, ann.description, orig_time=None
                )
            )
            return new
        if isinstance(data, mne.BaseEpochs):
            ep = data
            arr = ep.get_data()
            outs = []
            for e in arr:
                filt = self.streaming(ep.info["sfreq"], ep.ch_names, mapping)
                outs.append(filt.process(e.T).T)
            info = mne.create_info(filt.ch_names_out, filt.sfreq_out, ch_types="eeg")
            return mne.EpochsArray(
                np.stack(outs), info, events=ep.events, tmin=ep.tmin, event_id=ep.event_id,
                verbose="error",
            )
        arr = np.asarray(data)
        if arr.ndim != 2 or sfreq is None or ch_names is None:
            raise ConfigError(
                "data: expected mne Raw/Epochs, or an array (n_samples, n_channels) with sfreq "
                f"and ch_names given; got array ndim={arr.ndim}, sfreq={sfreq}, ch_names="
                f"{'None' if ch_names is None else len(ch_names)}"
            )
        return self.streaming(sfreq, ch_names, mapping).process(arr)


class StreamingFilter:
    """Stateful, causal preprocessing of a stream, chunk by chunk.

    Call :meth:`process` from one thread (the DecoderWorker) with consecutive chunks. The first
    chunk initialises the IIR state to the steady state for its first sample (so a DC offset does
    not ring); the offline path does the same, so results stay identical.

    Attributes
    ----------
    ch_names_out : list of str
        Output channel order.
    sfreq_out : float
        Output rate in Hz.
    """

    def __init__(
        self,
        config: Preprocessor,
        sfreq_in: float,
        ch_names_in: Sequence[str],
        mapping: ChannelMapping | dict[str, str] | None = None,
    ) -> None:
        if sfreq_in <= 0:
            raise ConfigError(f"sfreq_in: expected > 0 Hz, got {sfreq_in}")
        if isinstance(mapping, dict):
            mapping = ChannelMapping(mapping)
        mapping = mapping or ChannelMapping()
        self.config = config
        self.sfreq_in = float(sfreq_in)
        self.ch_names_in = list(ch_names_in)
        self.ch_names_out = config.output_channels(ch_names_in)
        self._idx = mapping.indices(self.ch_names_out, self.ch_names_in)
        self._sos = config.design_sos(self.sfreq_in)
        self.sfreq_out = config.output_sfreq(self.sfreq_in)
        n = len(self.ch_names_out)
        self._resampler = (
            StreamingResampler(self.sfreq_in, self.sfreq_out, n)
            if abs(self.sfreq_out - self.sfreq_in) > 1e-9
            else None
        )
        self._settle: int | None = None
        if self._resampler is not None and config.h_freq is None:
            logger.info("Resampling without a low-pass: relying on the resampler's anti-alias FIR")
        self.reset()

    @property
    def settle_samples(self) -> int:
        """Output samples the chain needs to forget what came before a restart: the band-pass
        (and notch) impulse response's length up to where all but 1e-4 of its energy has passed
        (0.36 s for 8-30 Hz order 4; longer for lower high-pass edges), plus the resampler's
        FIR span. Windows starting sooner after a gap carry its transient."""
        if self._settle is None:
            n = 0
            if self._sos is not None:
                h = signal.sosfilt(self._sos, np.r_[1.0, np.zeros(int(120 * self.sfreq_in))])
                tail = np.cumsum((h * h)[::-1])[::-1]
                n = int(np.argmax(tail < 1e-4 * tail[0])) or len(h)
            seconds = n / self.sfreq_in
            if self._resampler is not None:
                seconds += 2 * self._resampler.delay_s
            self._settle = int(math.ceil(seconds * self.sfreq_out))
        return self._settle

    def restart(self) -> None:
        """Restart the band-pass at a gap in the stream: its state is set again to the steady
        state of the next sample, as at the start, so the jump over the hole does not ring. The
        resampler goes on (its output grid stays on the input sample count; its short FIR
        memory is inside :attr:`settle_samples`)."""
        self._zi = None

    def reset(self) -> None:
        """Forget all state (a new recording)."""
        self._zi: np.ndarray | None = None
        if self._resampler is not None:
            self._resampler.reset()

    def output_positions(self, n_samples: int) -> np.ndarray:
        """Input row (fractional) of each output the next chunk of ``n_samples`` will give.

        Shape (n_out,): ``arange(n_samples)`` without resampling; with it, output ``j`` is the
        signal at input row ``positions[j]`` of that chunk (its time is the input time
        interpolated there, ``floor`` is the last input row it depends on). Changes no state;
        call it before :meth:`process`.
        """
        if self._resampler is None:
            return np.arange(int(n_samples), dtype=float)
        return self._resampler.positions(n_samples)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Process the next chunk.

        Parameters
        ----------
        chunk : ndarray, shape (n_samples, n_channels_in)
            Consecutive samples of the source, in the source's channel order.

        Returns
        -------
        ndarray, shape (n_out, n_channels_out)
            ``n_out`` is ``n_samples`` without resampling, else the resampled count (may be 0).
        """
        x = np.asarray(chunk, dtype=float)
        if x.ndim != 2 or x.shape[1] != len(self.ch_names_in):
            raise StreamMismatchError(
                f"chunk: expected shape (n_samples, {len(self.ch_names_in)}), got {x.shape}"
            )
        x = x[:, self._idx]
        if self.config.car and x.shape[1] > 1:
            x = x - x.mean(axis=1, keepdims=True)
        if self._sos is not None and len(x):
            if self._zi is None:
                zi0 = signal.sosfilt_zi(self._sos)  # (n_sections, 2)
                self._zi = zi0[:, None, :] * x[0][None, :, None]  # (n_sections, n_ch, 2)
                self._zi = np.transpose(self._zi, (0, 2, 1))  # (n_sections, 2, n_ch) for axis=0
            x, self._zi = signal.sosfilt(self._sos, x, axis=0, zi=self._zi)
        if self._resampler is not None:
            x = self._resampler.process(x)
        if self.config.scale != 1.0:
            x = x * self.config.scale
        return x


# --------------------------------------------------------------------------------------------
# Euclidean alignment
# --------------------------------------------------------------------------------------------
def _trial_covariances(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    return np.einsum("nct,ndt->ncd", X, X) / X.shape[-1]


def _inv_sqrtm(C: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((C + C.T) / 2)
    floor = max(w.max(), 1e-30) * 1e-10
    w = np.maximum(w, floor)
    return (V / np.sqrt(w)) @ V.T


def euclidean_alignment_matrix(X: np.ndarray) -> np.ndarray:
    """``R^{-1/2}`` with ``R`` the arithmetic mean of the trials' covariances.

    X : ndarray, shape (n_trials, n_chans, n_times). Returns (n_chans, n_chans).
    """
    return _inv_sqrtm(_trial_covariances(X).mean(axis=0))


class EuclideanAlignment:
    """Euclidean alignment for one subject/session: ``X_aligned = R^{-1/2} X``.

    After ``fit(X)``, the mean covariance of ``transform(X)`` is the identity. Fit it on unlabeled
    trials of *one* person (calibration trials, or rest), never across people.
    ``partial_fit`` keeps a running mean so the online engine can refine it as trials arrive.
    """

    def __init__(self) -> None:
        pass

    def fit(self, X: np.ndarray, y: Any = None) -> EuclideanAlignment:
        C = _trial_covariances(X)
        self.n_seen_ = len(C)
        self.mean_cov_ = C.mean(axis=0)
        self.matrix_ = _inv_sqrtm(self.mean_cov_)
        return self

    def partial_fit(self, X: np.ndarray, y: Any = None) -> EuclideanAlignment:
        C = _trial_covariances(X)
        if not hasattr(self, "mean_cov_"):
            return self.fit(X)
        n = self.n_seen_ + len(C)
        self.mean_cov_ = (self.mean_cov_ * self.n_seen_ + C.sum(axis=0)) / n
        self.n_seen_ = n
        self.matrix_ = _inv_sqrtm(self.mean_cov_)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "matrix_"):
            raise RuntimeError("EuclideanAlignment is not fitted: call fit(X_unlabeled) first")
        return np.einsum("cd,ndt->nct", self.matrix_, np.asarray(X, dtype=float)).astype(
            np.asarray(X).dtype if np.asarray(X).dtype.kind == "f" else float
        )

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        return self.fit(X).transform(X)

    def problem(self, n_chans: int) -> str | None:
        """What makes this fitted alignment unusable for ``n_chans`` channels, or None.

        A stored alignment (a user profile's ``alignment.safetensors``) must be what :meth:`fit`
        writes: ``mean_cov_`` a finite symmetric positive semi-definite (n_chans, n_chans)
        covariance of ``n_seen_ >= 1`` windows, and ``matrix_`` its inverse square root (so
        symmetric positive definite). Anything else re-mixes the channels into windows the
        model never saw: no error, wrong predictions (or NaN ones for a zero matrix).
        """
        shape = (int(n_chans), int(n_chans))
        C = np.asarray(getattr(self, "mean_cov_", np.zeros(0)), dtype=float)
        M = np.asarray(getattr(self, "matrix_", np.zeros(0)), dtype=float)
        if C.shape != shape or M.shape != shape:
            return (f"a {M.shape} alignment (mean covariance {C.shape}) for {n_chans} channels; "
                    f"expected matrices of shape {shape}")
        if not (np.all(np.isfinite(C)) and np.all(np.isfinite(M))):
            return "NaN or infinite values in the alignment"
        if int(getattr(self, "n_seen_", 0)) < 1:
            return f"n_seen {getattr(self, 'n_seen_', None)}: fitted on no window"
        scale = float(np.abs(C).max())
        if scale == 0 or not np.allclose(C, C.T, rtol=0, atol=1e-9 * scale) \
                or np.linalg.eigvalsh(C).min() < -1e-9 * scale:
            return "a mean covariance that is not symmetric positive semi-definite"
        if not np.allclose(M, _inv_sqrtm(C), rtol=1e-6, atol=1e-6 * float(np.abs(M).max())):
            return ("a matrix that is not the inverse square root of its mean covariance (not "
                    "symmetric positive definite, or edited)")
        return None
