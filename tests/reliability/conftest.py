"""Fixtures for reliability tests."""

from __future__ import annotations

import pytest

from tests.online.conftest import _train


@pytest.fixture(scope="session")
def ts_bundle_any(tmp_path_factory):
    """A TS+LR bundle on the 16 synthetic-board channels that resamples any rate to 160 Hz."""
    return _train(tmp_path_factory, "rel-ts", 160.0)
