"""Model bundles: a folder with ``config.json`` + ``weights.safetensors`` (+ optional ``model.onnx``).

Loading executes no pickled code: arrays come from safetensors, everything else from JSON.
A bundle whose ``model_version`` differs from the code's is refused with a BundleError.

``config.json`` holds: format version, decoder kind and name, model version, decoder parameters
(model hyper-parameters, training settings), signal parameters (channels, rate, window), the
preprocessing config, class names, alignment, training provenance (subjects, protocol, data),
validation metrics and library versions.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bci_app.errors import BundleError, ConfigError

from .estimators import Decoder, decoder_from_state
from .preprocessing import ChannelMapping, EuclideanAlignment, Preprocessor, StreamingFilter
from .registry import get_entry

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
ONNX_NAME = "model.onnx"
#: The values of a config's ``alignment``: ``"euclidean"`` (the model was trained on windows
#: re-centred on each person's own data; the user's alignment is fitted on their first windows
#: or at calibration) or None (no alignment).
ALIGNMENTS = (None, "euclidean")

__all__ = ["Bundle", "load_bundle", "save_bundle"]


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("bci-app", "torch", "numpy", "scipy", "mne", "scikit-learn", "pyriemann",
                "safetensors"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def pinned_preprocessor(preprocessing: dict, channels: list[str]) -> Preprocessor:
    """A bundle's preprocessing; one trained on "all channels" (``channels`` None) is pinned to
    the bundle's own ``channels``, so another source's order or extra channels cannot leak in.
    Used by MI and text bundles alike."""
    pre = Preprocessor.from_dict(preprocessing)
    if pre.channels is None:
        pre.channels = list(channels)
    return pre


@dataclass
class Bundle:
    """A loaded decoder with the facts needed to feed it.

    Attributes
    ----------
    decoder : Decoder
        Fitted decoder (``predict_proba`` on preprocessed, aligned windows).
    config : dict
        The JSON config (``channels``, ``sfreq``, ``window_s``, ``classes``, ``preprocessing``,
        ``alignment``, ``training``, ``validation``, ``versions``).
    alignment : EuclideanAlignment or None
        When ``config["alignment"] == "euclidean"``, the user's own re-centring, fitted with
        :meth:`fit_alignment` on a few of *their* windows (no labels needed).
    """

    decoder: Decoder
    config: dict[str, Any]
    path: Path | None = None
    alignment: EuclideanAlignment | None = field(default=None)

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
        return int(round(self.sfreq * self.window_s))

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    @property
    def preprocessor(self) -> Preprocessor:
        return pinned_preprocessor(self.config["preprocessing"], self.channels)

    @property
    def eegmmidb_training_subjects(self) -> set[int]:
        """EEGMMIDB subjects the bundle was trained on (its config's ``training``), or empty:
        recordings of these people are training data for it."""
        training = (self.config or {}).get("training") or {}
        if "eegmmidb" not in str(training.get("dataset", "")).lower():
            return set()
        subjects = training.get("subjects")
        return {s for s in subjects if isinstance(s, int)} if isinstance(subjects, list) else set()

    @property
    def needs_alignment(self) -> bool:
        """The model reads windows re-centred on the user's own data (``alignment:
        "euclidean"``); ``load_bundle`` refuses any value but that and null."""
        return self.config.get("alignment") == "euclidean"

    def streaming_filter(self, sfreq_in: float, ch_names_in: list[str],
                         mapping: ChannelMapping | dict[str, str] | None = None) -> StreamingFilter:
        """Stateful causal preprocessing from a source's channels/rate to this bundle's input.

        Raises StreamMismatchError naming missing channels (fix: a ChannelMapping), or when the
        chain's output rate is not the bundle's rate.
        """
        from bci_app.errors import StreamMismatchError

        filt = self.preprocessor.streaming(sfreq_in, ch_names_in, mapping)
        if abs(filt.sfreq_out - self.sfreq) > 1e-6:
            raise StreamMismatchError(
                f"sfreq: the bundle needs {self.sfreq} Hz windows but preprocessing a "
                f"{sfreq_in} Hz source gives {filt.sfreq_out} Hz. Fix: set the bundle's "
                "preprocessing 'sfreq' (resampling) or use a source at the bundle's rate."
            )
        return filt

    def fit_alignment(self, windows: np.ndarray) -> Bundle:
        """Fit the user's Euclidean alignment on unlabeled preprocessed windows
        (n, n_chans, n_times); call again (or ``alignment.partial_fit``) as more arrive."""
        self.alignment = EuclideanAlignment().fit(windows)
        return self

    def predict_proba(self, window: np.ndarray) -> np.ndarray:
        """Class probabilities of preprocessed window(s).

        Parameters
        ----------
        window : ndarray, shape (n_chans, n_times) or (n, n_chans, n_times)
            Output of :meth:`streaming_filter` (bundle channel order, bundle rate, volts).

        Returns
        -------
        ndarray, shape (n_classes,) for one window, else (n, n_classes).
        """
        x = np.asarray(window)
        single = x.ndim == 2
        if single:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (len(self.channels), self.n_times):
            raise BundleError(
                f"window: expected shape ({len(self.channels)}, {self.n_times}) = (bundle "
                f"channels, {self.window_s} s at {self.sfreq} Hz), got {np.asarray(window).shape}"
            )
        if self.needs_alignment:
            if self.alignment is None:
                raise RuntimeError(
                    "This bundle was trained on Euclidean-aligned data: call "
                    "bundle.fit_alignment(windows) with some of the user's preprocessed windows "
                    "(no labels needed) before predict_proba."
                )
            x = self.alignment.transform(x)
        p = self.decoder.predict_proba(x.astype(np.float32))
        return p[0] if single else p


def save_bundle(decoder: Decoder, path: str | Path, meta: dict[str, Any],
                export_onnx: bool = False) -> Path:
    """Write ``decoder`` as a bundle folder.

    Parameters
    ----------
    meta : dict
        Must hold ``channels`` (list), ``classes`` (list) and ``preprocessing`` (dict); may hold
        ``alignment`` ("euclidean" or None), ``training`` (subjects, protocol, data, command),
        ``validation`` (metrics). Rate and window come from the decoder.
    """
    from safetensors.numpy import save_file

    if export_onnx and decoder.kind != "torch":
        raise ConfigError(
            f"export_onnx: only torch models export to ONNX; {decoder.name!r} is a "
            f"{decoder.kind} model. Fix: save it without ONNX (drop --onnx), or use a torch model."
        )
    missing = [k for k in ("channels", "classes", "preprocessing") if k not in meta]
    if missing:
        raise BundleError(f"meta: missing keys {missing}; expected channels, classes, preprocessing")
    if len(meta["channels"]) != decoder.n_chans:
        raise BundleError(
            f"meta['channels']: {len(meta['channels'])} names for a decoder of {decoder.n_chans}"
        )
    _check_channels_agree(list(meta["channels"]), dict(meta["preprocessing"]).get("channels"),
                          "meta")
    if meta.get("alignment") not in ALIGNMENTS:
        raise BundleError(f"meta['alignment']: expected \"euclidean\" or None, got "
                          f"{meta.get('alignment')!r}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state, arrays = decoder.get_state()
    config = {
        "format_version": FORMAT_VERSION,
        "kind": decoder.kind,
        "model": decoder.name,
        "model_version": decoder.model_version,
        "decoder": state,
        "channels": list(meta["channels"]),
        "sfreq": float(decoder.sfreq),
        "window_s": float(decoder.window_s),
        "n_times": decoder.n_times,
        "classes": list(meta["classes"]),
        "preprocessing": dict(meta["preprocessing"]),
        "alignment": meta.get("alignment"),
        "training": meta.get("training", {}),
        "validation": meta.get("validation", {}),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    # a model.onnx left by an earlier bundle in this folder is another model's graph: it goes,
    # whether or not this one is exported (a failed export must not leave the old one either)
    (path / ONNX_NAME).unlink(missing_ok=True)
    save_file(arrays, str(path / WEIGHTS_NAME))
    (path / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=_json_default) + "\n")
    if export_onnx:
        from .export import export_onnx as _export

        try:
            _export(decoder, path / ONNX_NAME)
        except ConfigError as err:
            raise ConfigError(f"{err}. The bundle itself was written to {path}") from None
    return path


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o)}")


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle folder (no pickle). Raises BundleError when missing, corrupt or of another
    model version than this code.

    Beyond parsing, the loaded model must give finite probabilities that sum to 1 on a test
    window, so a bundle whose weights were damaged fails here, with a clear message, and not in
    the middle of a session.
    """
    from bci_app.errors import BciAppError

    path = Path(path)
    from .text.bundle import is_text_bundle, load_text_bundle

    if is_text_bundle(path):  # EEG-to-text bundles share the folder layout and the surface
        try:
            return load_text_bundle(path)
        except BciAppError:
            raise
        except Exception as err:  # noqa: BLE001
            raise BundleError(
                f"text bundle {path} is damaged ({type(err).__name__}: {err}). Fix: restore it "
                "from a backup, or write it again with `bci-app evaluate-text --bundle-out DIR`."
            ) from None
    try:
        bundle = _load_bundle(path)
        _check_loaded(bundle)
    except BundleError:
        raise
    except BciAppError as err:
        raise BundleError(f"bundle {path}: {err}") from None
    except KeyError as err:  # a setting the config must hold is not there
        raise BundleError(
            f"bundle {path}: {CONFIG_NAME} lacks the key {err.args[0]!r} (removed by an edit, "
            "or written by another program). Fix: restore it from a backup or retrain it with "
            "`bci-app train`."
        ) from None
    except Exception as err:  # noqa: BLE001 - anything else means a damaged bundle
        raise BundleError(
            f"bundle {path} is damaged or inconsistent ({type(err).__name__}: {err}). "
            "Fix: restore it from a backup or retrain it with `bci-app train`."
        ) from None
    return bundle


def _check_channels_agree(channels: list[str], pre_channels: Any, where: str) -> None:
    """The preprocessing's output channels, when it names them, must be the bundle's channels
    in the same order: the filter outputs them in its own order while the online worker and the
    calibration read the windows in ``channels`` order."""
    if pre_channels is None:
        return
    if not isinstance(pre_channels, (list, tuple)) or list(pre_channels) != list(channels):
        raise BundleError(
            f"{where}: 'channels' and 'preprocessing.channels' differ: channels = "
            f"{list(channels)}, preprocessing channels = {pre_channels}. The preprocessing "
            "outputs its own channels in its own order, so the model would read channels "
            "under other names. Fix: give both the same list in the same order (or leave "
            "preprocessing channels unset)."
        )


def _check_loaded(bundle: Bundle) -> None:
    n_ch, n_t = len(bundle.channels), bundle.n_times
    if n_ch == 0 or n_t <= 0 or bundle.sfreq <= 0 or len(bundle.classes) < 2:
        raise BundleError(
            f"bundle: channels ({n_ch}), window ({bundle.window_s} s at {bundle.sfreq} Hz) and "
            f"classes ({len(bundle.classes)}) must all be non-empty"
        )
    pre_cfg = bundle.config.get("preprocessing")
    _check_channels_agree(bundle.channels,
                          pre_cfg.get("channels") if isinstance(pre_cfg, dict) else None,
                          f"bundle {bundle.path}" if bundle.path else "bundle")
    bundle.preprocessor  # noqa: B018 - validates the preprocessing config
    _check_config_fits_model(bundle)
    x = np.random.default_rng(0).standard_normal((2, n_ch, n_t)).astype(np.float32) * 1e-5
    p = np.asarray(bundle.decoder.predict_proba(x), dtype=float)
    if p.shape != (2, len(bundle.classes)) or not np.all(np.isfinite(p)) \
            or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise BundleError(
            "bundle: the model does not give finite class probabilities on a test window "
            f"(shape {p.shape}, finite {bool(np.all(np.isfinite(p)))}); its weights are damaged"
        )


def _check_config_fits_model(bundle: Bundle) -> None:
    """The config's signal facts (what the online worker and the calibration feed the model)
    must be those the model was built with: a window of another rate or length, or class names
    for other outputs, would run without error on covariance models and decode garbage."""
    dec = bundle.decoder
    facts = [("channels", len(bundle.channels), getattr(dec, "n_chans", None), "names"),
             ("classes", len(bundle.classes), getattr(dec, "n_outputs", None), "names"),
             ("sfreq", bundle.sfreq, getattr(dec, "sfreq", None), "Hz"),
             ("window_s", bundle.window_s, getattr(dec, "window_s", None), "s")]
    bad = [f"'{key}' gives {cfg:g} {unit} but the model was built for {built:g}"
           for key, cfg, built, unit in facts
           if built is not None and not np.isclose(float(cfg), float(built), rtol=0, atol=1e-9)]
    if bad:
        where = bundle.path / CONFIG_NAME if bundle.path else CONFIG_NAME
        raise BundleError(
            f"bundle: {where} does not fit its model: {'; '.join(bad)} (the model's own "
            "values are under 'decoder' > 'params'). Fix: undo the edit of the config, or "
            "retrain with `bci-app train` for other channels, classes, rate or window."
        )


def _check_alignment_config(config: dict, cfg_path: Path) -> None:
    """``alignment`` must be ``"euclidean"`` or null, and say what the training did.

    Any other value (``"Euclidean"``, ``true``, a matrix) was read as "no alignment", and a
    null or "euclidean" that contradicts ``training`` > ``settings`` > ``align`` (what
    ``bci-app train`` did) feeds the model windows of another scale and mix than it learnt:
    both decode without an error and are wrong. A calibrated bundle (``training`` >
    ``calibration``) was refitted after that training (the tangent-space baseline on the user's
    unaligned trials), so its record describes the pretrained model only and is not compared.
    """
    value = config.get("alignment")
    if value not in ALIGNMENTS:
        raise BundleError(
            f"bundle: {cfg_path} has 'alignment': {json.dumps(value)}; expected \"euclidean\" "
            "(the model was trained on Euclidean-aligned windows: the user's alignment is "
            "fitted on their first windows) or null (no alignment). Fix: write one of these, as "
            "'training' > 'settings' > 'align' says the model was trained, or retrain it with "
            "`bci-app train`."
        )
    training = config.get("training")
    settings = training.get("settings") if isinstance(training, dict) else None
    if not isinstance(settings, dict) or "calibration" in training \
            or settings.get("model") != config.get("model") \
            or not isinstance(settings.get("align"), bool):
        return
    if settings["align"] != (value == "euclidean"):
        trained = "Euclidean-aligned" if settings["align"] else "unaligned"
        fed = "unaligned windows" if value is None else "windows aligned to the user"
        raise BundleError(
            f"bundle: {cfg_path} has 'alignment': {json.dumps(value)}, but 'training' > "
            f"'settings' > 'align' is {json.dumps(settings['align'])}: the model was trained on "
            f"{trained} windows and would decode {fed} (wrong predictions, no error). Fix: set "
            f"'alignment' to {json.dumps('euclidean' if settings['align'] else None)} (undo "
            "the edit), or retrain with `bci-app train` (--no-align for no alignment)."
        )


#: How to get a sound bundle back (the fix of a damaged one's error).
_RESTORE = ("Fix: restore the folder from a backup, or write the bundle again (`bci-app train "
            "--out`; a text bundle: `bci-app evaluate-text --bundle-out`).")


def read_config(cfg_path: Path, fix: str = _RESTORE) -> dict:
    """A bundle's ``config.json`` as a dict; BundleError naming the file and ``fix`` when it is
    not UTF-8 JSON or not an object (motor-imagery and text bundles alike)."""
    try:
        config = json.loads(Path(cfg_path).read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"bundle: {cfg_path} is not valid UTF-8 JSON ({err}). {fix}") from None
    if not isinstance(config, dict):
        raise BundleError(f"bundle: {cfg_path} must hold a JSON object, got "
                          f"{type(config).__name__}. {fix}")
    return config


def _load_bundle(path: Path) -> Bundle:
    from safetensors.numpy import load_file

    cfg_path, w_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    if not cfg_path.is_file() or not w_path.is_file():
        raise BundleError(
            f"bundle: expected a folder with {CONFIG_NAME} and {WEIGHTS_NAME}, got {path} "
            f"(exists: {path.exists()}). Fix: pass the folder written by save_bundle / "
            "`bci-app train --out`."
        )
    config = read_config(cfg_path)
    if config.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"bundle: format_version {config.get('format_version')} in {cfg_path}, this code "
            f"reads {FORMAT_VERSION}"
        )
    _check_alignment_config(config, cfg_path)
    try:
        entry = get_entry(config["model"])
    except Exception as err:  # noqa: BLE001 - re-raised as a bundle problem
        raise BundleError(f"bundle: {err}") from None
    code_version = int(getattr(entry.obj, "model_version", 0) if entry.kind == "torch"
                       else getattr(entry.obj, "_model_version", 0))
    if int(config.get("model_version", -1)) != code_version:
        raise BundleError(
            f"bundle: model {config['model']!r} version {config.get('model_version')} in "
            f"{cfg_path}, but this code builds version {code_version}. Fix: retrain with "
            "`bci-app train` (or use the bci_app release that wrote the bundle)."
        )
    try:
        arrays = load_file(str(w_path))
    except Exception as err:  # noqa: BLE001
        raise BundleError(f"bundle: cannot read {w_path} ({err}). {_RESTORE}") from None
    bad = [k for k, v in arrays.items() if v.dtype.kind == "f" and not np.all(np.isfinite(v))]
    if bad:
        raise BundleError(f"bundle: weights {bad[:5]} in {w_path} hold NaN or inf values. "
                          f"{_RESTORE}")
    kind, state = config["kind"], config["decoder"]  # a missing key: the config's fault
    if isinstance(state, dict):
        state["params"]  # noqa: B018 - likewise (not "the weights do not fit")
    try:
        decoder = decoder_from_state(kind, state, arrays)
    except (KeyError, RuntimeError, ValueError) as err:
        raise BundleError(f"bundle: weights in {w_path} do not fit the model config ({err})") \
            from None
    return Bundle(decoder=decoder, config=config, path=path)
