"""Training entry points shared by ``bci-app train`` / ``bci-app evaluate`` and the benchmarks.

:func:`train_cross_subject` fits one decoder on all given subjects (each Euclidean-aligned with
its own reference when ``align``), early-stopping on a stratified split of those trials, and
saves a bundle with full provenance.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bci_app.errors import ConfigError

from . import defaults as _defaults
from .data import EpochsData, load_eegmmidb
from .defaults import CHANNEL_SETS, DEFAULT_TMAX, DEFAULT_TMIN, MOTOR21  # noqa: F401 (re-exported)
from .estimators import Decoder, _parse_augment, make_decoder
from .preprocessing import EuclideanAlignment, Preprocessor
from .registry import get_entry

logger = logging.getLogger(__name__)

#: Defaults used by the CLI, the benchmarks and the pretrained bundle (values in
#: :mod:`decoders.defaults`, which the parser reads without importing scipy).
DEFAULT_PREPROCESSING = Preprocessor(car=_defaults.CAR, l_freq=_defaults.L_FREQ,
                                     h_freq=_defaults.H_FREQ,
                                     filter_order=_defaults.FILTER_ORDER, sfreq=_defaults.SFREQ)


@dataclass
class TrainSettings:
    """Decoder settings (JSON-friendly); ``decoder_params`` go to :func:`make_decoder`."""

    model: str = "eegnet"
    decoder_params: dict[str, Any] = field(default_factory=dict)
    align: bool = True
    seed: int = 0

    def factory(self, data: EpochsData):
        def make() -> Decoder:
            params = dict(self.decoder_params)
            if get_entry(self.model).kind == "torch":
                # the settings' seed wins over a "seed" in decoder_params (a bundle's own
                # parameters carry the seed it was trained with): it is the one recorded
                # and the one --seed sets
                params["seed"] = self.seed
            return make_decoder(self.model, data.X.shape[1], len(data.classes), data.sfreq,
                                data.window_s, **params)

        return make


def parse_model_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``["F1=16", "dropout=0.5"]`` -> dict with JSON-decoded values."""
    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigError(f"--model-param: expected KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def load_data(subjects: Sequence[int], data_dir: str | Path | None, pre: Preprocessor,
              tmin: float, tmax: float, progress: bool = False,
              span_tmax: float | None = None) -> EpochsData:
    return load_eegmmidb(subjects, data_dir, pre, tmin=tmin, tmax=tmax, progress=progress,
                         span_tmax=span_tmax)


def align_subjects(data: EpochsData, span: bool = False) -> np.ndarray:
    """Each subject's trials re-centred with its own reference (fitted on its windows); with
    ``span``, its ``X_span`` transformed by that reference instead."""
    X = (data.X_span if span else data.X).copy()
    for s in data.subjects:
        m = data.subject == s
        X[m] = EuclideanAlignment().fit(data.X[m]).transform(X[m])
    return X


def train_cross_subject(data: EpochsData, settings: TrainSettings, out: str | Path | None,
                        provenance: dict[str, Any] | None = None,
                        export_onnx: bool = False) -> tuple[Decoder, Path | None]:
    """Fit on every trial of ``data`` (validation split carved from them) and save a bundle.

    With ``data.X_span`` and a deep decoder with ``augment`` ``crop``, it trains on random crops
    of the spans (validation and the bundle keep the window)."""
    from .bundle import save_bundle

    span = data.X_span is not None and "crop" in _parse_augment(
        settings.decoder_params.get("augment"))
    X = align_subjects(data, span) if settings.align else (data.X_span if span else data.X)
    validation: dict[str, Any] = {}
    factory = settings.factory(data)
    if get_entry(settings.model).kind != "torch":
        # baselines have no early stopping: report a stratified 20 % hold-out, then refit on all
        from .estimators import stratified_split

        tr, va = stratified_split(data.y, 0.2, settings.seed)
        validation = {"val_accuracy": factory().fit(X[tr], data.y[tr]).score(X[va], data.y[va]),
                      "val_split": "stratified 20 % of the pooled trials (then refit on all)"}
    dec = factory().fit(X, data.y)
    if not validation:
        validation = {"val_accuracy": getattr(dec, "val_accuracy_", None),
                      "val_loss": getattr(dec, "val_loss_", None),
                      "best_epoch": getattr(dec, "best_epoch_", None),
                      "val_split": "stratified 20 % of the pooled trials (early stopping)"}
    validation = {k: (None if isinstance(v, float) and np.isnan(v) else v)
                  for k, v in validation.items()}
    if out is None:
        return dec, None
    meta = {
        "channels": data.ch_names,
        "classes": list(data.classes),
        "preprocessing": data.preprocessing,
        "alignment": "euclidean" if settings.align else None,
        "training": {
            "dataset": "PhysioNet EEGMMIDB runs 4/8/12 (T1=left, T2=right imagined fist)",
            "subjects": data.subjects,
            "n_trials": int(len(data)),
            "protocol": "cross-subject: all listed subjects, per-subject Euclidean alignment"
            if settings.align else "cross-subject: all listed subjects, no alignment",
            "window": {"tmin": data.tmin, "tmax": data.tmax},
            **({"train_span": {"tmin": data.tmin, "tmax": data.span_tmax}} if span else {}),
            "settings": {"model": settings.model, "decoder_params": settings.decoder_params,
                         "align": settings.align, "seed": settings.seed},
            **(provenance or {}),
        },
        "validation": validation,
    }
    path = save_bundle(dec, out, meta, export_onnx=export_onnx)
    dec.validation_ = validation
    return dec, path
