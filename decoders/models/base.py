"""Base class of the torch models: signal parameters in, dry forward pass at construction."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import nn

from bci_app.errors import ConfigError


class EEGModel(nn.Module):
    """A model built from signal parameters.

    Subclasses implement :meth:`_build` (create layers from ``self.n_chans``, ``self.n_times``,
    ``self.sfreq`` and their hyper-parameters) and :meth:`forward` mapping
    ``(batch, n_chans, n_times)`` float32 to logits ``(batch, n_outputs)``. The constructor runs a
    dry forward pass and turns a too-short window into a ConfigError naming the fix.

    Attributes
    ----------
    model_version : int
        Bumped whenever the layer layout changes; bundles saved with another version are refused.
    hparams : dict
        Hyper-parameters as passed (with defaults filled), saved in bundles.
    """

    model_version: int = 1
    registry_name: str = "?"

    def __init__(self, n_chans: int, n_outputs: int, sfreq: float, window_s: float,
                 **hparams: Any) -> None:
        super().__init__()
        for pname, val in (("n_chans", n_chans), ("n_outputs", n_outputs)):
            if int(val) < 1:
                raise ConfigError(f"{pname}: expected >= 1, got {val}")
        if sfreq <= 0 or window_s <= 0:
            raise ConfigError(f"sfreq/window_s: expected > 0, got {sfreq}, {window_s}")
        self.n_chans = int(n_chans)
        self.n_outputs = int(n_outputs)
        self.sfreq = float(sfreq)
        self.window_s = float(window_s)
        self.n_times = int(round(self.sfreq * self.window_s))
        self.check_hparams(hparams)
        try:
            self.hparams = self._build(**hparams)
        except TypeError as err:
            raise ConfigError(f"model_params: {type(self).__name__} rejected {hparams} ({err}); "
                              f"fix: use only {self.hparam_names()} with values of their "
                              "types") from None
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                out = self(torch.zeros(1, self.n_chans, self.n_times))
        except (RuntimeError, ValueError) as err:
            raise ConfigError(
                f"window_s: {self.window_s} s at {self.sfreq} Hz ({self.n_times} samples) is too "
                f"short for {type(self).__name__} with {self.hparams} ({err}). Fix: use a longer "
                "window or smaller kernels/pooling."
            ) from None
        self.train(was_training)
        if tuple(out.shape) != (1, self.n_outputs):
            raise ConfigError(
                f"{type(self).__name__}: dry forward pass gave shape {tuple(out.shape)}, "
                f"expected (1, {self.n_outputs})"
            )

    @classmethod
    def hparam_names(cls) -> list[str]:
        """Names of the hyper-parameters :meth:`_build` takes."""
        import inspect

        return [n for n, p in inspect.signature(cls._build).parameters.items()
                if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    @classmethod
    def check_hparams(cls, hparams: dict[str, Any]) -> None:
        """Raise ConfigError for a hyper-parameter :meth:`_build` does not take, or a value of
        the wrong type (a number for a numeric default, true/false for a flag).

        Needs no signal parameters, so a command line can check ``--model-param`` before it
        loads any data.
        """
        import inspect

        name = cls.__name__
        params = inspect.signature(cls._build).parameters
        takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        known = cls.hparam_names()
        unknown = [k for k in hparams if k not in known]
        if unknown and not takes_any:
            raise ConfigError(f"model_params: {name} does not take {unknown}; fix: use only "
                              f"{known}")
        for key, value in hparams.items():
            p = params.get(key)
            if p is None or p.default is inspect.Parameter.empty:
                continue
            default, ann = p.default, str(p.annotation)
            if isinstance(default, bool) or (default is None and "bool" in ann):
                if not isinstance(value, (bool, np.bool_)) and \
                        not (default is None and value is None):
                    raise ConfigError(f"{key}: expected true or false, got {value!r} "
                                      f"(model_params of {name})")
            elif isinstance(default, (int, float)) or (
                    default is None and ("int" in ann or "float" in ann)):
                number = isinstance(value, numbers.Real) and not isinstance(value, bool)
                if not number and not (default is None and value is None):
                    raise ConfigError(f"{key}: expected a number, got {value!r} "
                                      f"(model_params of {name})")
                whole = "float" not in ann and (isinstance(default, int) or default is None)
                if number and whole and not isinstance(value, numbers.Integral):
                    raise ConfigError(f"{key}: expected a whole number, got {value!r} "
                                      f"(model_params of {name})")

    def _build(self, **hparams: Any) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_length(self, n: int, what: str) -> None:
        if n < 1:
            raise ConfigError(
                f"window_s: {self.window_s} s at {self.sfreq} Hz ({self.n_times} samples) is too "
                f"short for {type(self).__name__}: {what} leaves {n} samples. Fix: use a longer "
                "window or smaller kernels/pooling."
            )

    def signal_params(self) -> dict[str, Any]:
        return {"n_chans": self.n_chans, "n_outputs": self.n_outputs, "sfreq": self.sfreq,
                "window_s": self.window_s}
