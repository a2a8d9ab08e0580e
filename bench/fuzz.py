"""Longer fuzzing run (issue 11): thousands of mutated real files and bundles.

Same mutations and contract as tests/reliability/test_fuzz.py (a loader returns or raises
bci_app's own error; never another exception, never a hang), with a seeded numpy RNG per case so
every finding is reproducible: ``--seed S`` and the case number identify it.

Run: .venv/bin/python bench/fuzz.py --cases 500 [--seed 1] [--timeout 30]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=500, help="mutations per format")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=30.0)
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
    for fmt, files in seeds.items():
        # zlib.crc32, not hash(): str hashes change with every process (PYTHONHASHSEED)
        rng = np.random.default_rng([a.seed, zlib.crc32(fmt.encode())])
        for i in range(a.cases):
            case = tmp / f"{fmt}-{i}"
            path = mutated_copy(files[i % len(files)], case, rng)
            out = run_with_limit(lambda p=path: read_file(p), a.timeout)
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
            out = run_with_limit(lambda d=d: load_bundle(d), a.timeout)
            counts[(f"bundle:{src.name}", out.kind)] += 1
            if out.kind in ("crash", "hang"):
                findings.append((src.name, i, out.kind, out.detail))
            shutil.rmtree(d, ignore_errors=True)
    wall = time.monotonic() - t0
    print(f"# Fuzzing — {time.strftime('%Y-%m-%d %H:%M')} — {machine()}")
    print(f"{a.cases} mutations per target, seed {a.seed}, {wall:.0f} s")
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
