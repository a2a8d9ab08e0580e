"""Registry of decoders by name.

Torch models register their ``nn.Module`` class with :func:`register_model`; the scikit-learn
style baselines register a factory of kind ``"sklearn"``. ``braindecode:<Model>`` names build a
braindecode model when braindecode is installed (imported lazily, optional).

>>> from decoders.registry import build_model, list_models
>>> net = build_model("eegnet", n_chans=64, n_outputs=2, sfreq=160, window_s=2.0)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from bci_app.errors import ConfigError

__all__ = ["RegistryEntry", "build_model", "get_entry", "list_models", "register_model"]


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    obj: Callable[..., Any]
    kind: str  # "torch" or "sklearn"


_REGISTRY: dict[str, RegistryEntry] = {}
_FAMILIES = ("eegnet", "shallow", "simpleconv", "conformer", "tsmnet", "fbcnet", "baselines")


def register_model(name: str, kind: str = "torch") -> Callable:
    """Class decorator registering a model under ``name`` (lower case)."""

    def deco(obj):
        key = name.lower()
        if key in _REGISTRY and _REGISTRY[key].obj is not obj:
            raise ConfigError(f"model name {name!r} is already registered by {_REGISTRY[key].obj}")
        _REGISTRY[key] = RegistryEntry(key, obj, kind)
        obj.registry_name = key
        return obj

    return deco


def _load_families() -> None:
    for fam in _FAMILIES:
        importlib.import_module(f"decoders.models.{fam}")
    importlib.import_module("decoders.text.model")  # eeg2text (issue 9)


def list_models(kind: str | None = None) -> list[str]:
    """Registered names (``kind``: "torch", "sklearn" or None for all)."""
    _load_families()
    return sorted(n for n, e in _REGISTRY.items() if kind is None or e.kind == kind)


def get_entry(name: str) -> RegistryEntry:
    _load_families()
    key = name.lower()
    if key.startswith("braindecode:"):
        return RegistryEntry(name, _braindecode_factory(name.split(":", 1)[1]), "torch")
    if key not in _REGISTRY:
        raise ConfigError(
            f"model: unknown name {name!r}; expected one of {list_models()} or "
            "'braindecode:<Model>'"
        )
    return _REGISTRY[key]


def build_model(
    name: str, n_chans: int, n_outputs: int, sfreq: float, window_s: float, **hparams: Any
):
    """Build a registered model from signal parameters.

    Torch entries return an ``nn.Module`` checked by a dry forward pass (ConfigError on a window
    too short for its kernels); sklearn entries return an unfitted baseline estimator.
    """
    entry = get_entry(name)
    return entry.obj(n_chans=n_chans, n_outputs=n_outputs, sfreq=sfreq, window_s=window_s,
                     **hparams)


def _braindecode_factory(model_name: str) -> Callable[..., Any]:
    def factory(n_chans, n_outputs, sfreq, window_s, **hparams):
        try:
            bd_models = importlib.import_module("braindecode.models")
        except ImportError as err:
            raise ConfigError(
                f"model: 'braindecode:{model_name}' needs the optional package braindecode, "
                f"which is not importable here ({err}). Fix: `pip install -c constraints.txt "
                "braindecode` (it needs a torchaudio build matching the installed CPU torch), "
                "or use a built-in model: " + ", ".join(list_models("torch"))
            ) from None
        cls = getattr(bd_models, model_name, None)
        if cls is None:
            raise ConfigError(f"model: braindecode has no model {model_name!r}")
        return cls(n_chans=n_chans, n_outputs=n_outputs, sfreq=sfreq,
                   n_times=int(round(sfreq * window_s)), **hparams)

    return factory
