"""Per-user profiles: the calibrated decoder plus what is needed to trust and reuse it.

A profile is a folder::

    <profiles dir>/<user>/                 (default profiles dir: $BCI_APP_PROFILES_DIR or
        profile.json                         <repo>/profiles)
        bundle/          config.json + weights.safetensors   the adapted decoder
        alignment.safetensors                                 the user's Euclidean alignment
        baseline/        config.json + weights.safetensors   tangent-space baseline (optional)

``profile.json`` holds: format version, user id, creation date (UTC), classes, the chosen decoder
(``"adapted"`` or ``"baseline"``), cross-validated accuracy with its 95 % CI, chance level and
significance threshold for each decoder, confusion matrices, ERD/ERS band-power maps, the source
spec and stream (name, channels, rate), montage, protocol settings, the calibration recording's
path, the pretrained bundle it started from, and training times.

Loading executes no pickled code: JSON plus safetensors only (``decoders.bundle.load_bundle``).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import user_root
from .errors import BundleError, ConfigError

logger = logging.getLogger(__name__)

PROFILE_FORMAT = 1
PROFILE_JSON = "profile.json"
ALIGNMENT_NAME = "alignment.safetensors"
PROFILES_DIR_ENV = "BCI_APP_PROFILES_DIR"
#: Suffix of the folder that keeps a user's replaced profile (``<user>.previous``).
PREVIOUS_SUFFIX = ".previous"

__all__ = ["Profile", "check_profile_target", "list_profiles", "load_profile", "profiles_dir",
           "save_profile"]


def profiles_dir() -> Path:
    """``$BCI_APP_PROFILES_DIR``, else ``profiles/`` in the checkout or in
    :func:`bci_app.config.user_root` (``~/bci_app/profiles`` for an installed package)."""
    env = os.environ.get(PROFILES_DIR_ENV)
    return Path(env).expanduser().resolve() if env else user_root() / "profiles"


def _check_user(user: str, option: str = "user") -> str:
    if not isinstance(user, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", user):
        raise ConfigError(
            f"{option}: expected 1-64 letters, digits, '_', '.' or '-' (starting with a letter or "
            f"digit), got {user!r}. It names the profile folder."
        )
    if user.lower().endswith(PREVIOUS_SUFFIX):
        # <user>.previous is where saving <user> again keeps the replaced profile
        raise ConfigError(
            f"{option}: {user!r} ends with {PREVIOUS_SUFFIX!r}, the name of the folder that keeps "
            f"a replaced profile (saving {user[:-len(PREVIOUS_SUFFIX)]!r} would overwrite it). "
            "Fix: pick another user id."
        )
    return user


def check_profile_target(user: str, root: str | os.PathLike | None = None, *,
                         user_option: str = "--user", dir_option: str = "--profiles-dir") -> Path:
    """Check, before a calibration session, that ``user``'s profile can be saved under ``root``
    (default :func:`profiles_dir`): a valid user id and a folder this process can write.

    Returns the profiles folder; ConfigError naming ``user_option`` or ``dir_option`` otherwise.
    """
    from .recording import check_output_dir

    _check_user(user, user_option)
    return check_output_dir(Path(root) if root is not None else profiles_dir(), dir_option)


@dataclass
class Profile:
    """A loaded profile. ``bundle`` is ready for the DecoderWorker (alignment set)."""

    path: Path
    meta: dict[str, Any]
    bundle: Any  # decoders.bundle.Bundle (the chosen decoder)
    adapted: Any
    baseline: Any | None

    @property
    def user(self) -> str:
        return str(self.meta["user"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def accuracy(self) -> float | None:
        s = self.meta.get("scores", {}).get(self.meta.get("chosen", "adapted"))
        return None if not s else float(s["accuracy"])


def _bundle_meta(bundle) -> dict[str, Any]:
    cfg = bundle.config
    training = dict(cfg.get("training", {}))
    if "calibration" in cfg:
        training["calibration"] = cfg["calibration"]
    return {"channels": cfg["channels"], "classes": cfg["classes"],
            "preprocessing": cfg["preprocessing"], "alignment": cfg.get("alignment"),
            "training": training, "validation": cfg.get("validation", {})}


def _save_alignment(ea, path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({"mean_cov": np.ascontiguousarray(ea.mean_cov_, dtype=np.float64),
               "matrix": np.ascontiguousarray(ea.matrix_, dtype=np.float64),
               "n_seen": np.array([ea.n_seen_], dtype=np.int64)}, str(path))


def _load_alignment(path: Path, n_chans: int):
    """The user's alignment, or BundleError naming the file (unreadable, keys or shapes off)."""
    from safetensors.numpy import load_file

    from decoders.preprocessing import EuclideanAlignment

    try:
        arrays = load_file(str(path))
        ea = EuclideanAlignment()
        ea.mean_cov_ = np.asarray(arrays["mean_cov"], dtype=np.float64)
        ea.matrix_ = np.asarray(arrays["matrix"], dtype=np.float64)
        ea.n_seen_ = int(arrays["n_seen"][0])
    except Exception as err:  # safetensors' own errors, a missing key, an empty array
        raise BundleError(
            f"profile: {path} is damaged ({type(err).__name__}: {err}). Fix: calibrate again, or "
            "restore the previous profile (the <user>.previous folder beside it)."
        ) from None
    problem = ea.problem(n_chans)  # shape, finiteness, what EuclideanAlignment.fit writes
    if problem:  # the decoder would re-mix the user's channels into windows it never saw
        raise BundleError(
            f"profile: {path} is damaged: {problem}. The decoder would run on wrongly aligned "
            "windows. Fix: calibrate again, or restore the previous profile (the "
            "<user>.previous folder beside it)."
        )
    return ea


def _finish_interrupted_save(root: Path, user: str) -> bool:
    """Complete a save of ``user``'s profile that stopped between its two renames.

    :func:`save_profile` writes the new profile into ``.<user>.tmp`` (``profile.json`` last),
    renames ``<user>`` to ``<user>.previous``, then ``.<user>.tmp`` to ``<user>``. A crash or power
    cut between the renames leaves no ``<user>`` but a complete ``.<user>.tmp``: it is renamed into
    place here (True). An incomplete one (no readable ``profile.json``) is left alone (False).
    """
    folder, tmp = root / user, root / f".{user}.tmp"
    if folder.exists() or not (tmp / PROFILE_JSON).is_file():
        return False
    try:
        meta = json.loads((tmp / PROFILE_JSON).read_text())
    except (OSError, ValueError):  # cut while writing profile.json: the save never finished
        return False
    if not isinstance(meta, dict) or meta.get("user") != user:
        return False
    try:
        tmp.rename(folder)
    except OSError as err:
        logger.warning("profile %s: could not finish the interrupted save (%s)", folder, err)
        return False
    logger.warning("profile %s: finished a save that was interrupted between its renames "
                   "(the profile before it is %s%s)", folder, user, PREVIOUS_SUFFIX)
    return True


def save_profile(
    result,
    user: str,
    *,
    root: str | os.PathLike | None = None,
    chosen: str = "adapted",
    source: str = "",
    stream: dict[str, Any] | None = None,
    montage: str = "",
    protocol: dict[str, Any] | None = None,
    recording: str | os.PathLike | None = None,
    extra: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``result`` (a :class:`decoders.calibration.CalibrationResult`) as ``user``'s profile.

    ``chosen``: which decoder the profile uses online (``"adapted"`` or ``"baseline"``).
    Returns the profile folder. An existing profile of the same user is replaced (the previous
    one is kept as ``<user>.previous``) unless ``overwrite=False`` (then ConfigError).
    """
    from decoders.bundle import save_bundle

    _check_user(user)
    if chosen not in ("adapted", "baseline"):
        raise ConfigError(f"chosen: expected 'adapted' or 'baseline', got {chosen!r}.")
    if chosen == "baseline" and result.baseline is None:
        raise ConfigError("chosen='baseline' but the calibration fitted no baseline.")
    root = Path(root) if root is not None else profiles_dir()
    folder = root / user
    tmp = root / f".{user}.tmp"
    try:
        # an earlier save cut between its renames left the new profile in tmp: put it in place
        # first, so this save keeps it as <user>.previous instead of deleting it with tmp
        _finish_interrupted_save(root, user)
        if folder.exists() and not overwrite:
            raise ConfigError(f"profile {folder} exists; pass overwrite=True or another user id.")
        return _write_profile(result, user, root, folder, tmp, chosen, save_bundle, source,
                              stream, montage, protocol, recording, extra)
    except OSError as err:
        raise ConfigError(
            f"profiles dir: cannot write the profile {folder} ({err.strerror or err}); fix: "
            f"pass a writable folder (--profiles-dir, or ${PROFILES_DIR_ENV})."
        ) from None


def _write_profile(result, user, root, folder, tmp, chosen, save_bundle, source, stream,
                   montage, protocol, recording, extra) -> Path:
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_bundle(result.adapted.decoder, tmp / "bundle", _bundle_meta(result.adapted))
    if result.adapted.alignment is not None:
        _save_alignment(result.adapted.alignment, tmp / ALIGNMENT_NAME)
    if result.baseline is not None:
        save_bundle(result.baseline.decoder, tmp / "baseline", _bundle_meta(result.baseline))
    summary = result.summary()
    meta = {
        "format_version": PROFILE_FORMAT,
        "user": user,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "classes": list(result.classes),
        "chosen": chosen,
        "bundle": "bundle" if chosen == "adapted" else "baseline",
        "scores": summary["scores"],
        "accuracy": summary["scores"].get(chosen, {}).get("accuracy"),
        "ci95": summary["scores"].get(chosen, {}).get("ci95"),
        "chance": 1.0 / len(result.classes),
        "n_trials": result.n_trials,
        "trials": summary.get("trials"),  # every cued trial: kept, or dropped with the reason
        "band_power": summary["band_power"],
        "training_seconds": summary["seconds"],
        "calibration_settings": summary["settings"],
        "pretrained": result.adapted.config.get("calibration", {}).get("pretrained"),
        "pretrained_model": result.adapted.config.get("model"),
        "source": source,
        "stream": stream or {},
        "montage": montage,
        "protocol": protocol or {},
        "recording": str(recording) if recording else None,
        **(extra or {}),
    }
    (tmp / PROFILE_JSON).write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
    if folder.exists():
        prev = root / f"{user}{PREVIOUS_SUFFIX}"
        if prev.exists():
            shutil.rmtree(prev)
        folder.rename(prev)
    tmp.rename(folder)
    logger.info("Saved profile %s (%s, accuracy %s)", folder, chosen, meta["accuracy"])
    return folder


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o)}")


def load_profile(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Profile:
    """Load a profile folder, or a user id looked up in ``root`` (default :func:`profiles_dir`).

    Raises BundleError for a missing or corrupt profile. No pickle is ever read.
    """
    from decoders.bundle import load_bundle

    p = Path(path)
    if not (p / PROFILE_JSON).is_file():
        cand = (Path(root) if root is not None else profiles_dir()) / str(path)
        for folder in (p, cand):  # a save cut between its two renames: finish it first
            if folder.name and not folder.name.startswith(".") and folder.parent.is_dir():
                _finish_interrupted_save(folder.parent, folder.name)
        if (p / PROFILE_JSON).is_file():
            pass
        elif (cand / PROFILE_JSON).is_file():
            p = cand
        else:
            prev = next((f.with_name(f.name + PREVIOUS_SUFFIX) for f in (p, cand) if f.name
                         and (f.with_name(f.name + PREVIOUS_SUFFIX) / PROFILE_JSON).is_file()),
                        None)
            raise BundleError(
                f"profile: no {PROFILE_JSON} in {p} (nor a user {str(path)!r} in "
                f"{cand.parent}). Fix: pass the folder written by `bci-app calibrate` or the "
                "calibration wizard"
                + (f"; the user's previous profile is {prev} (load it, or rename it to "
                   f"{prev.name.removesuffix(PREVIOUS_SUFFIX)} to use it again)." if prev
                   else ".")
            )
    fix = ("Fix: calibrate again, or restore the previous profile (the <user>.previous folder "
           "beside it).")
    try:
        meta = json.loads((p / PROFILE_JSON).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"profile: {p / PROFILE_JSON} is not valid JSON ({err}). {fix}") \
            from None
    except OSError as err:
        raise BundleError(f"profile: cannot read {p / PROFILE_JSON} ({err.strerror or err}). "
                          "Fix: check the file's permissions.") from None
    if not isinstance(meta, dict):
        raise BundleError(f"profile: {p / PROFILE_JSON} holds a JSON {type(meta).__name__}, "
                          f"expected an object. {fix}")
    if meta.get("format_version") != PROFILE_FORMAT:
        raise BundleError(f"profile: format_version {meta.get('format_version')} in {p}, this "
                          f"code reads {PROFILE_FORMAT}.")
    chosen_name = meta.get("chosen", "adapted")
    if chosen_name not in ("adapted", "baseline"):
        raise BundleError(f"profile: 'chosen' in {p / PROFILE_JSON} is {chosen_name!r}, "
                          f"expected 'adapted' or 'baseline'. {fix}")
    adapted = load_bundle(p / "bundle")
    if (p / ALIGNMENT_NAME).is_file() and not adapted.needs_alignment:
        # saved only for a decoder that aligns: its config lost "euclidean" (an edit), and the
        # decoder would silently run without the alignment it was fitted and scored with
        raise BundleError(
            f"profile: {p / ALIGNMENT_NAME} holds the user's Euclidean alignment, but "
            f"{p / 'bundle' / 'config.json'} has 'alignment': "
            f"{json.dumps(adapted.config.get('alignment'))}, so the decoder would run without "
            f"it. Fix: set 'alignment' to \"euclidean\" there (as calibration wrote it), "
            "calibrate again, or restore the previous profile (the <user>.previous folder "
            "beside it).")
    if (p / ALIGNMENT_NAME).is_file():
        adapted.alignment = _load_alignment(p / ALIGNMENT_NAME, len(adapted.channels))
    elif adapted.needs_alignment:
        # saved with every profile whose bundle aligns: without it the decoder would silently
        # run unaligned (or re-estimate an alignment online), not the one that was scored
        raise BundleError(f"profile: {p / ALIGNMENT_NAME} is missing (the user's Euclidean "
                          f"alignment, which this profile's decoder needs). {fix}")
    baseline = None
    if (p / "baseline").exists() or chosen_name == "baseline":
        baseline = load_bundle(p / "baseline")  # a BundleError naming it when missing/damaged
    chosen = baseline if chosen_name == "baseline" else adapted
    return Profile(path=p, meta=meta, bundle=chosen, adapted=adapted, baseline=baseline)


def list_profiles(root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """``profile.json`` contents of every profile under ``root`` (newest first)."""
    root = Path(root) if root is not None else profiles_dir()
    out = []
    if root.is_dir():
        for d in list(root.iterdir()):  # a save cut between its renames: finish it
            m = re.fullmatch(r"\.(.+)\.tmp", d.name)
            if m and d.is_dir():
                _finish_interrupted_save(root, m.group(1))
        for d in sorted(root.iterdir()):
            f = d / PROFILE_JSON
            if d.name.startswith(".") or d.name.endswith(PREVIOUS_SUFFIX) or not f.is_file():
                continue
            try:
                meta = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:  # unreadable, not UTF-8, not JSON
                logger.warning("profile %s: unreadable profile.json (%s), skipped", d, err)
                continue
            if not isinstance(meta, dict):
                logger.warning("profile %s: profile.json holds no JSON object, skipped", d)
                continue
            meta["path"] = str(d)
            out.append(meta)
    return sorted(out, key=lambda m: str(m.get("created", "")), reverse=True)


def load_model(path: str | os.PathLike):
    """A decoder ready to run from either a model bundle folder or a user profile folder.

    A profile gives its chosen bundle with the user's alignment already set (so no unsupervised
    alignment warm-up is needed); a bundle folder is loaded as it is. Text bundles work too.
    """
    from decoders.bundle import load_bundle

    if (Path(path) / PROFILE_JSON).is_file():
        return load_profile(path).bundle
    return load_bundle(path)


def measured_accuracy(path: str | os.PathLike | None, bundle) -> tuple[float | None, str]:
    """The cross-validated accuracy known for a loaded model, and where it comes from.

    A user profile folder: its chosen decoder's accuracy (``profile.json``, as
    :attr:`Profile.accuracy` reads it). Else a calibrated bundle's own cross-validation
    (``validation.calibration_cv``, written by the calibration). Else ``(None, "")`` (a
    pretrained bundle's validation is another population's, not this user's). The speller
    assumes it (``bci-app spell``, the GUI), capped: :func:`bci_app.speller.engine.
    assumed_accuracy`."""
    import math

    if path is not None and (Path(path) / PROFILE_JSON).is_file():
        try:
            meta = json.loads((Path(path) / PROFILE_JSON).read_text(encoding="utf-8"))
            acc = Profile(path=Path(path), meta=meta, bundle=bundle, adapted=bundle,
                          baseline=None).accuracy
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            acc = None
        if acc is not None:
            return float(acc), "the profile's cross-validated accuracy"
    cfg = getattr(bundle, "config", None) or {}
    cv = (cfg.get("validation") or {}).get("calibration_cv") if isinstance(cfg, dict) else None
    try:
        acc = None if not isinstance(cv, dict) else float(cv["accuracy"])
    except (KeyError, TypeError, ValueError):
        acc = None
    if acc is not None and math.isfinite(acc):
        return acc, "the calibration's cross-validated accuracy"
    return None, ""
