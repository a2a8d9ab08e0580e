"""bench/compare.py: the paired comparison quoted in bench/RESULTS.md, including per-subject
means over several runs (``F1,F2:MODEL``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_file(path: Path, model: str, acc: dict[str, float]) -> str:
    path.write_text(json.dumps({"results": [{"model": model, "settings": {},
                                             "per_subject_accuracy": acc}]}))
    return str(path)


def _compare(a: str, b: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "compare.py"), a, b],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_runs_are_averaged_per_subject_before_the_paired_test(tmp_path):
    a0 = _run_file(tmp_path / "a0.json", "net", {"1": 0.5, "2": 0.7, "3": 0.6})
    a1 = _run_file(tmp_path / "a1.json", "net", {"1": 0.7, "2": 0.9, "3": 0.6})
    b = _run_file(tmp_path / "b.json", "ref", {"1": 0.6, "2": 0.6, "3": 0.6})
    # per-subject means of a0/a1: 0.6, 0.8, 0.6 -> differences 0, +20, 0 points
    out = _compare(f"{a0},{a1}:net", f"{b}:ref")
    assert "net 66.7 % vs ref 60.0 %" in out
    assert "difference +6.7 points" in out and "better on 1, worse on 0, tied 2" in out
    # a single file is compared as before
    assert "net 60.0 % vs ref 60.0 %" in _compare(f"{a0}:net", f"{b}:ref")
