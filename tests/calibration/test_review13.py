"""Review 13: profile listing and loading with a damaged ``profile.json``."""

from __future__ import annotations

import json

import pytest

from bci_app.errors import BundleError
from bci_app.profiles import PROFILE_FORMAT, list_profiles, load_profile


def test_one_damaged_profile_does_not_hide_the_others(tmp_path, caplog):
    """``list_profiles`` raised UnicodeDecodeError on a profile.json that is not UTF-8 and
    TypeError on one holding a JSON list (or a non-text ``created``), so one damaged folder hid
    every profile. It now skips such a folder with a warning naming it."""
    good = {"format_version": PROFILE_FORMAT, "user": "ok", "created": "2026-11-24T10:00:00"}
    for name, raw in [("a", b"\xff\xfe{"), ("b", b"[1, 2]"), ("c", b'{"created": 5}'),
                      ("ok", json.dumps(good).encode())]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "profile.json").write_bytes(raw)
    with caplog.at_level("WARNING"):
        got = list_profiles(tmp_path)
    assert sorted(m["path"] for m in got) == [str(tmp_path / "c"), str(tmp_path / "ok")]
    warned = caplog.text
    assert str(tmp_path / "a") in warned and str(tmp_path / "b") in warned


def test_an_unreadable_profile_json_is_named(tmp_path):
    """A profile.json this process may not read was a bare PermissionError."""
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads files without read permission")
    (tmp_path / "u").mkdir()
    f = tmp_path / "u" / "profile.json"
    f.write_text("{}")
    f.chmod(0)
    with pytest.raises(BundleError, match="cannot read .*profile.json.*permissions"):
        load_profile(tmp_path / "u")
