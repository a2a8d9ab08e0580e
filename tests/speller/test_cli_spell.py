"""``bci-app spell`` as a user runs it (a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bci_app(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "bci_app.cli", *args], cwd=ROOT, env=env,
                          check=False, capture_output=True, text=True, timeout=timeout)


def test_spell_simulate_prints_layout_text_and_summary():
    r = bci_app("spell", "--simulate", "0.9", "--target", "Hi there", "--headless",
                "--seed", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert lines[0].startswith("simulated user writes 'hi there'")
    assert any('"hi there"' in line and "[0 " in line for line in lines)  # text + layout
    summary = lines[-1]
    assert summary.startswith('summary: "hi there" (finished)'), summary
    assert "chars/min" in summary and "Wolpaw ITR" in summary


def test_spell_errors_exit_2_with_a_message():
    r = bci_app("spell", "--simulate", "1.5", "--target", "x")
    assert r.returncode == 2 and "--simulate: expected an accuracy" in r.stderr
    r = bci_app("spell", "--source", "synthetic")
    assert r.returncode == 2 and "give --source and --model" in r.stderr


def test_parse_commands():
    import pytest

    from bci_app.commands.spell import parse_commands
    from bci_app.errors import ConfigError

    assert parse_commands(None, ["left", "right"]) == {"left": 0, "right": 1}
    assert parse_commands("left=0,right=1,feet=undo", ["left", "right", "feet"]) == {
        "left": 0, "right": 1, "feet": "undo"}
    with pytest.raises(ConfigError, match="must be an index or 'undo'"):
        parse_commands("left=up", ["left"])
    with pytest.raises(ConfigError, match="not classes of the model"):
        parse_commands("tongue=0", ["left", "right"])
