"""Settings shared by every layer: where real data lives, where recordings go.

Only plain functions reading the environment: no import-time side effects.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Repository root when running from a checkout (``bci_app/`` sits directly below it).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Environment variable naming the folder with shared real EEG (EEGMMIDB, XDF files, ...).
DATA_DIR_ENV = "BCI_APP_DATA_DIR"

#: Environment variable naming the folder where recordings are written by default.
RECORDINGS_DIR_ENV = "BCI_APP_RECORDINGS_DIR"

#: Environment variable naming the folder that holds ``recordings/``, ``profiles/`` and ``data/``
#: when the app runs from an installed package rather than a checkout.
HOME_ENV = "BCI_APP_HOME"


def in_checkout() -> bool:
    """True when running from a source checkout (``pyproject.toml`` beside the packages).

    ``pip install -e .`` (what ``make`` does) keeps the checkout; a regular ``pip install`` puts
    the packages in ``site-packages``, where the user's recordings must not go.
    """
    return (REPO_ROOT / "pyproject.toml").is_file()


def user_root() -> Path:
    """Where user files go by default: the checkout, or ``$BCI_APP_HOME`` (default ``~/bci_app``)
    for an installed package."""
    if in_checkout():
        return REPO_ROOT
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser().resolve() if env else Path.home() / "bci_app"


def data_dir() -> Path:
    """Folder with the shared real EEG data.

    ``$BCI_APP_DATA_DIR`` if set, else ``../shared/data`` next to the repository, or
    ``<user_root()>/data`` for an installed package.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    if not in_checkout():
        return user_root() / "data"
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def eegmmidb_dir() -> Path:
    """Folder in MNE's eegbci cache layout (pass as ``path=`` to ``mne.datasets.eegbci``)."""
    return data_dir() / "eegmmidb"


def recordings_dir() -> Path:
    """Default folder for session recordings: ``$BCI_APP_RECORDINGS_DIR``, else ``recordings/``
    in the checkout or in :func:`user_root` (``~/bci_app/recordings`` for an installed package)."""
    env = os.environ.get(RECORDINGS_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return user_root() / "recordings"
