"""Default folders: a checkout keeps the user's files beside the code; an installed package
(``pip install .``, packages in ``site-packages``) must not write recordings or profiles there."""

from __future__ import annotations

from pathlib import Path

import pytest

from bci_app import config
from bci_app.profiles import profiles_dir


@pytest.fixture
def no_env(monkeypatch):
    for name in (config.DATA_DIR_ENV, config.RECORDINGS_DIR_ENV, config.HOME_ENV,
                 "BCI_APP_PROFILES_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_checkout_defaults_stay_in_the_checkout(no_env):
    assert config.in_checkout()  # the test suite runs from the checkout
    assert config.recordings_dir() == config.REPO_ROOT / "recordings"
    assert profiles_dir() == config.REPO_ROOT / "profiles"
    assert config.data_dir() == (config.REPO_ROOT.parent / "shared" / "data").resolve()


def test_installed_package_writes_under_the_home_folder(no_env, monkeypatch, tmp_path):
    site = tmp_path / "site-packages"  # what REPO_ROOT is for a regular install: no pyproject.toml
    site.mkdir()
    monkeypatch.setattr(config, "REPO_ROOT", site)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert not config.in_checkout()
    home = tmp_path / "home" / "bci_app"
    assert config.recordings_dir() == home / "recordings"
    assert profiles_dir() == home / "profiles"
    assert config.data_dir() == home / "data"
    for folder in (config.recordings_dir(), profiles_dir(), config.data_dir()):
        assert site not in folder.parents

    monkeypatch.setenv(config.HOME_ENV, str(tmp_path / "lab"))
    assert config.recordings_dir() == (tmp_path / "lab" / "recordings").resolve()
    monkeypatch.setenv(config.RECORDINGS_DIR_ENV, str(tmp_path / "rec"))  # the specific one wins
    assert config.recordings_dir() == (tmp_path / "rec").resolve()
