"""From per-window probabilities to control: EMA smoothing, a discriminative Kalman filter for a
continuous control signal, and a dwell/threshold rule that issues discrete commands.

All of these are small state machines updated once per prediction, on the decoder thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bci_app.errors import ConfigError


class EMASmoother:
    """Exponential moving average of class probabilities.

    Parameters
    ----------
    time_constant : float
        Seconds for the weight of an old prediction to fall to 1/e; the per-update factor is
        derived from the actual time between predictions, so it works for any hop.
    """

    def __init__(self, time_constant: float = 0.5) -> None:
        if time_constant < 0:
            raise ConfigError(f"time_constant must be >= 0 s, got {time_constant}.")
        self.time_constant = float(time_constant)
        self.reset()

    def reset(self) -> None:
        self.value: np.ndarray | None = None
        self._t: float | None = None

    def update(self, probabilities: np.ndarray, t: float) -> np.ndarray:
        p = np.asarray(probabilities, dtype=float)
        if self.value is None or self.time_constant == 0 or self._t is None:
            self.value = p.copy()
        else:
            dt = max(0.0, t - self._t)
            alpha = 1.0 - math.exp(-dt / self.time_constant)
            self.value = (1 - alpha) * self.value + alpha * p
        self._t = t
        return self.value.copy()


class DiscriminativeKalmanFilter:
    """One-dimensional Discriminative Kalman Filter (Burkhart, Brandman, Franco, Hochberg &
    Harrison, Neural Computation 2020) for a continuous control signal in [-1, 1].

    State model: ``x_t = a x_{t-1} + w``, ``w ~ N(0, gamma)`` (stationary variance
    ``S = gamma / (1 - a**2)``). Observation model (discriminative): the decoder's output gives
    ``p(x_t | z_t) ~ N(f(z_t), q(z_t))``. For a binary decoder with ``p = P(class 1)``,
    ``f = 2p - 1`` and ``q = 1 - f**2 + q_floor`` (the variance of a ±1 variable with that mean):
    confident windows move the cursor, uncertain ones barely do. Update::

        m-, P- = a m, a^2 P + gamma
        P = (1/q - 1/S + 1/P-)^-1          (when 1/q - 1/S <= 0 the window adds no
        m = P (f/q + m-/P-)                 information: m, P = m-, P-)

    Parameters
    ----------
    a : float
        State persistence per update (0 < a < 1).
    gamma : float
        State noise variance per update.
    q_floor : float
        Added to the observation variance (keeps fully confident windows from teleporting).
    """

    def __init__(self, a: float = 0.95, gamma: float = 0.1, q_floor: float = 0.05) -> None:
        if not 0 < a < 1:
            raise ConfigError(f"a must be in (0, 1), got {a}.")
        if gamma <= 0 or q_floor <= 0:
            raise ConfigError(f"gamma and q_floor must be > 0, got {gamma} and {q_floor}.")
        self.a, self.gamma, self.q_floor = float(a), float(gamma), float(q_floor)
        self.S = self.gamma / (1 - self.a**2)
        self.reset()

    def reset(self) -> None:
        self.mean = 0.0
        self.var = self.S

    def update(self, f: float, q: float | None = None) -> float:
        """Fold in one observation ``f`` in [-1, 1] (variance ``q`` or derived from ``f``)."""
        f = float(np.clip(f, -1.0, 1.0))
        if q is None:
            q = 1.0 - f * f
        q = float(q) + self.q_floor
        m_prior = self.a * self.mean
        p_prior = self.a**2 * self.var + self.gamma
        # information the window adds beyond the stationary prior; an observation no sharper
        # than the prior adds none (the robust DKF variant), so uncertain windows do not move x
        lam = 1.0 / q - 1.0 / self.S
        if lam <= 0:
            self.mean, self.var = m_prior, p_prior
            return self.mean
        prec = lam + 1.0 / p_prior
        self.var = 1.0 / prec
        self.mean = self.var * (f / q + m_prior / p_prior)
        return self.mean

    def update_from_proba(self, probabilities: np.ndarray) -> float:
        """Binary decoders: class 1 pushes toward +1, class 0 toward -1."""
        p = np.asarray(probabilities, dtype=float)
        if p.shape[-1] != 2:
            raise ConfigError(
                f"The Kalman control signal needs a 2-class decoder, got {p.shape[-1]} classes; "
                "use the EMA probabilities and the dwell rule for more classes."
            )
        return self.update(2 * p[1] - 1)


@dataclass
class Command:
    """A discrete command issued by :class:`DwellCommander`."""

    label: str
    t: float
    probability: float


class DwellCommander:
    """Turn smoothed probabilities into discrete commands.

    A class becomes a command when its smoothed probability stays at or above ``threshold`` for
    ``dwell`` seconds; after a command, nothing is issued for ``refractory`` seconds and the
    dwell starts again from zero (so one long imagery period gives one command per dwell).

    Parameters
    ----------
    classes : sequence of str
    threshold : float
        In (1/n_classes, 1].
    dwell : float
        Seconds above threshold (0: the first window above threshold issues the command).
    refractory : float
        Seconds of silence after a command.
    """

    def __init__(self, classes, threshold: float = 0.7, dwell: float = 0.5,
                 refractory: float = 1.0) -> None:
        self.classes = tuple(classes)
        if not 1.0 / len(self.classes) < threshold <= 1.0:
            raise ConfigError(
                f"threshold must be in (1/{len(self.classes)}, 1], got {threshold}: below "
                "chance level every window would be a command."
            )
        if dwell < 0 or refractory < 0:
            raise ConfigError(f"dwell and refractory must be >= 0 s, got {dwell}, {refractory}.")
        self.threshold, self.dwell, self.refractory = float(threshold), float(dwell), float(refractory)
        self.reset()

    def reset(self) -> None:
        self._candidate: int | None = None
        self._since: float | None = None
        self._blocked_until = -math.inf
        self.commands: list[Command] = []

    def interrupt(self) -> None:
        """Forget the current candidate (an unreliable window broke the dwell); the refractory
        period and past commands are kept."""
        self._candidate, self._since = None, None

    def progress(self, t: float) -> float:
        """Fraction of the dwell completed by the current candidate (0 when none)."""
        if self._candidate is None or self._since is None or self.dwell == 0:
            return 0.0
        return min(1.0, (t - self._since) / self.dwell)

    def update(self, probabilities: np.ndarray, t: float) -> Command | None:
        p = np.asarray(probabilities, dtype=float)
        if t < self._blocked_until:
            self._candidate, self._since = None, None
            return None
        best = int(np.argmax(p))
        if p[best] < self.threshold:
            self._candidate, self._since = None, None
            return None
        if best != self._candidate:
            self._candidate, self._since = best, t
        if t - self._since >= self.dwell - 1e-9:
            cmd = Command(self.classes[best], t, float(p[best]))
            self.commands.append(cmd)
            self._blocked_until = t + self.refractory
            self._candidate, self._since = None, None
            return cmd
        return None
