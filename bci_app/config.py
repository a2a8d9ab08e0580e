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


def data_dir() -> Path:
    """Folder with the shared real EEG data.

    ``$BCI_APP_DATA_DIR`` if set, else ``../shared/data`` next to the repository.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def eegmmidb_dir() -> Path:
    """Folder in MNE's eegbci cache layout (pass as ``path=`` to ``mne.datasets.eegbci``)."""
    return data_dir() / "eegmmidb"


def recordings_dir() -> Path:
    """Default folder for session recordings: ``$BCI_APP_RECORDINGS_DIR`` or ``recordings/``."""
    env = os.environ.get(RECORDINGS_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return REPO_ROOT / "recordings"
