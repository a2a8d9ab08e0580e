"""Longer fuzzing run (issue 11): thousands of mutated real files and bundles.

Same mutations and contract as tests/reliability/test_fuzz.py (a loader returns or raises
bci_app's own error; never another exception, never a hang), with a seeded numpy RNG per case so
every finding is reproducible: ``--seed S`` and the case number identify it.

Run: .venv/bin/python bench/fuzz.py --cases 500 [--seed 1] [--timeout 30] [--isolate]

``--isolate`` loads every case in a worker process (replaced after a crash or hang), so a native
abort or segfault inside a library (BrainFlow's C++ reader once did this) is counted as a crash
of that case instead of ending the run. Slower: use it for long runs.
"""

from __future__ import annotations

import argparse
import collections
import logging
import shutil
import tempfile
import time
import warnings
import zlib
from pathlib import Path

from _common import machine

import numpy as np

from tests.reliability.fuzzing import mutate, mutated_copy, run_with_limit, seed_files


def _load(kind: str, path: Path, timeout: float):
    """Worker side of ``--isolate`` (module level, so a spawned process can import it)."""
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    if kind == "file":
        from acquisition.files import read_file as fn
    else:
        from decoders.bundle import load_bundle as fn
    return run_with_limit(lambda: fn(path), timeout)


class _Isolated:
    """Runs ``_load`` in one spawned worker process at a time; a dead worker is a crash."""

    def __init__(self, timeout: float) -> None:
        self.timeout, self.pool = timeout, None

    def __call__(self, kind: str, path: Path):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        from tests.reliability.fuzzing import Outcome

        if self.pool is None:
            self.pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"))
        try:
            out = self.pool.submit(_load, kind, path, self.timeout).result()
        except BrokenProcessPool:
            self.pool = None
            return Outcome("crash", "the loading process died (native abort or segfault)")
        if out.kind == "hang":  # its stuck thread stays in the worker: start a fresh one
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=500, help="mutations per format")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--isolate", action="store_true",
                    help="load each case in a worker process (native crashes become findings)")
    a = ap.parse_args()
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    from acquisition.files import read_file
    from decoders.bundle import load_bundle

    tmp = Path(tempfile.mkdtemp(prefix="bci-fuzz-"))
    seeds = seed_files(tmp)
    repo = Path(__file__).resolve().parents[1]
    seeds_bundles = sorted((repo / "decoders" / "pretrained").glob("*/config.json"))
    counts = collections.Counter()
    findings = []
    t0 = time.monotonic()
    isolated = _Isolated(a.timeout) if a.isolate else None

    def load(kind: str, path: Path):
        if isolated is not None:
            return isolated(kind, path)
        return run_with_limit(lambda: (read_file if kind == "file" else load_bundle)(path),
                              a.timeout)

    for fmt, files in seeds.items():
        # zlib.crc32, not hash(): str hashes change with every process (PYTHONHASHSEED)
        rng = np.random.default_rng([a.seed, zlib.crc32(fmt.encode())])
        for i in range(a.cases):
            case = tmp / f"{fmt}-{i}"
            path = mutated_copy(files[i % len(files)], case, rng)
            out = load("file", path)
            counts[(fmt, out.kind)] += 1
            if out.kind in ("crash", "hang"):
                findings.append((fmt, i, out.kind, out.detail))
            shutil.rmtree(case, ignore_errors=True)
    for cfg in seeds_bundles:
        src = cfg.parent
        rng = np.random.default_rng([a.seed, 7])
        for i in range(a.cases):
            d = tmp / f"bundle-{src.name}-{i}"
            shutil.copytree(src, d)
            victim = d / ("config.json" if rng.random() < 0.5 else "weights.safetensors")
            victim.write_bytes(mutate(victim.read_bytes(), rng, victim.suffix == ".json"))
            out = load("bundle", d)
            counts[(f"bundle:{src.name}", out.kind)] += 1
            if out.kind in ("crash", "hang"):
                findings.append((src.name, i, out.kind, out.detail))
            shutil.rmtree(d, ignore_errors=True)
    if isolated is not None:
        isolated.close()
    wall = time.monotonic() - t0
    print(f"# Fuzzing — {time.strftime('%Y-%m-%d %H:%M')} — {machine()}")
    print(f"{a.cases} mutations per target, seed {a.seed}, {wall:.0f} s"
          + (", each case in a worker process" if a.isolate else ""))
    print("| target | loaded | app error (clear message) | crash | hang |")
    print("|---|---|---|---|---|")
    for target in sorted({k[0] for k in counts}):
        print(f"| {target} | {counts[(target, 'ok')]} | {counts[(target, 'app_error')]} | "
              f"{counts[(target, 'crash')]} | {counts[(target, 'hang')]} |")
    print(f"findings: {len(findings)}")
    for f in findings[:50]:
        print("  ", f)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
