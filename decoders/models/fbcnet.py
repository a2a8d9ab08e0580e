"""FBCNet (Mane et al. 2021, "FBCNet: A multi-view convolutional neural network for
brain-computer interface", arXiv 2104.01233): a learned filter-bank CSP for small per-subject
motor-imagery data.

Filter bank (fixed) → depthwise spatial conv per band (``n_filters`` filters each, max-norm 2)
→ BatchNorm → SiLU → log-variance over ``n_segments`` non-overlapping time segments → linear
(max-norm 0.5). As the paper's code and braindecode's ``FBCNet`` (SiLU, as in the code; the paper
says ELU), with these departures, all in the hyper-parameters:

* The default bank is the paper's 4 Hz bands restricted to the app's default 8–30 Hz pass band
  (8–12, …, 28–32 Hz); the paper's 4–8 and 32–40 Hz bands would carry only the band-pass's
  leakage. ``bands`` takes any list of ``[low, high]`` pairs in Hz; a band reaching the Nyquist
  frequency becomes a high-pass, one starting above it is refused.
* The filters are zero-phase FIR (:func:`scipy.signal.firwin`, Hamming window, ``filter_s``
  seconds) applied inside the model to each window, with reflected edges. The paper filters the
  continuous signal with Chebyshev II filters; a window-local filter keeps the online window
  contract (the same window in, the same output out) and the shared preprocessing identical for
  every model. The taps are a buffer, not parameters: the bank is not trained.
* A window that is not a whole number of segments drops its oldest samples (braindecode pads
  with zeros, which biases the variance of the last segment).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from bci_app.errors import ConfigError

from ..registry import register_model
from .base import EEGModel

#: The paper's 4 Hz bands within the app's default 8–30 Hz band-pass.
DEFAULT_BANDS = ((8.0, 12.0), (12.0, 16.0), (16.0, 20.0), (20.0, 24.0), (24.0, 28.0),
                 (28.0, 32.0))


def fir_bank(bands, sfreq: float, n_taps: int) -> np.ndarray:
    """Zero-phase band-pass FIR taps, one row per band, ``(n_bands, n_taps)``, odd ``n_taps``.

    A band whose upper edge reaches the Nyquist frequency is designed as a high-pass from its
    lower edge; a band must start above 0 Hz and below the Nyquist frequency.
    """
    from scipy.signal import firwin

    nyq = sfreq / 2.0
    rows = []
    for band in bands:
        try:
            lo, hi = (float(v) for v in band)
        except (TypeError, ValueError):
            raise ConfigError(f"bands: expected [low, high] pairs in Hz, got {band!r}") from None
        if not 0 < lo < hi:
            raise ConfigError(f"bands: {band!r} must satisfy 0 < low < high (Hz)")
        if lo >= nyq:
            raise ConfigError(
                f"bands: {lo:g}–{hi:g} Hz starts at or above the Nyquist frequency ({nyq:g} Hz "
                f"at {sfreq:g} Hz); fix: drop that band or use a higher sampling rate")
        if hi >= nyq:
            rows.append(firwin(n_taps, lo, pass_zero=False, fs=sfreq))
        else:
            rows.append(firwin(n_taps, [lo, hi], pass_zero=False, fs=sfreq))
    return np.stack(rows)


@register_model("fbcnet")
class FBCNet(EEGModel):
    """Filter bank → depthwise spatial conv → BatchNorm → SiLU → segment log-variance → linear.

    Input (batch, n_chans, n_times) → logits (batch, n_outputs).
    """

    model_version = 1

    def _build(self, bands: list | None = None, n_filters: int = 32, filter_s: float = 0.8,
               n_segments: int = 4, spatial_max_norm: float = 2.0,
               linear_max_norm: float = 0.5) -> dict:
        bands = [list(map(float, b)) for b in (DEFAULT_BANDS if bands is None else bands)]
        if not bands:
            raise ConfigError("bands: expected at least one [low, high] band")
        for name, val in (("n_filters", n_filters), ("n_segments", n_segments)):
            if int(val) < 1:
                raise ConfigError(f"{name}: expected >= 1, got {val}")
        if filter_s <= 0 or spatial_max_norm <= 0 or linear_max_norm <= 0:
            raise ConfigError("filter_s / spatial_max_norm / linear_max_norm: expected > 0")
        taps = max(3, int(round(filter_s * self.sfreq)))
        taps += 1 - taps % 2  # odd: zero phase with a symmetric pad
        self._check_length(self.n_times // n_segments, f"{n_segments} variance segments")
        self._check_length(self.n_times - taps // 2,
                           f"reflecting a {taps}-sample filter ({filter_s} s) at its edges")
        nb = len(bands)
        bank = fir_bank(bands, self.sfreq, taps)
        self.register_buffer("bank", torch.as_tensor(bank, dtype=torch.float32).unsqueeze(1))
        self.n_bands, self.n_filters, self.n_segments = nb, int(n_filters), int(n_segments)
        self.seg_len = self.n_times // self.n_segments
        self.spatial = nn.Conv2d(nb, nb * self.n_filters, (self.n_chans, 1), groups=nb)
        self.bn = nn.BatchNorm2d(nb * self.n_filters)
        self.act = nn.SiLU()
        self.classifier = nn.Linear(nb * self.n_filters * self.n_segments, self.n_outputs)
        self.spatial_max_norm, self.linear_max_norm = float(spatial_max_norm), \
            float(linear_max_norm)
        return dict(bands=bands, n_filters=int(n_filters), filter_s=filter_s,
                    n_segments=int(n_segments), spatial_max_norm=spatial_max_norm,
                    linear_max_norm=linear_max_norm)

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """The paper's max-norm constraints, after every optimiser step."""
        for layer, norm in ((self.spatial, self.spatial_max_norm),
                            (self.classifier, self.linear_max_norm)):
            layer.weight.copy_(torch.renorm(layer.weight, p=2, dim=0, maxnorm=norm))

    def filter_bank(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_chans, n_times) → (batch, n_bands, n_chans, n_times), zero phase."""
        b, c, t = x.shape
        pad = self.bank.shape[-1] // 2
        h = F.pad(x.reshape(b * c, 1, t), (pad, pad), mode="reflect")
        return F.conv1d(h, self.bank).reshape(b, c, self.n_bands, t).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.bn(self.spatial(self.filter_bank(x))))  # (b, nb*m, 1, t)
        h = h[..., self.n_times - self.seg_len * self.n_segments:]  # drop the oldest remainder
        h = h.reshape(h.shape[0], h.shape[1], self.n_segments, self.seg_len)
        h = torch.log(torch.clamp(h.var(dim=-1), min=1e-6, max=1e6))
        return self.classifier(h.flatten(1))
