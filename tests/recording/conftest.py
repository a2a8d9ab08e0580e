"""Fixtures for recording tests: a connected FakeSource, bounded waiting."""

from __future__ import annotations

import time

import pytest

from .fakes import FakeSource


def wait_for(cond, timeout: float, what: str, interval: float = 0.02):
    """Poll ``cond()`` until true or fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def fake_source():
    src = FakeSource(buffer_seconds=30.0)
    src.connect(timeout=2.0)
    yield src
    src.disconnect()
