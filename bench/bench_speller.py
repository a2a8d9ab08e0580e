"""Speller benchmarks (issue 10).

1. Simulated user, symmetric 2-class confusion matrix at command accuracies 60-100 %, one command
   every 4 s: chars/min (correct characters of the final text per minute), character error rate
   of the final text, commands per character, and the Wolpaw ITR of the command channel, for
   three layouts (Huffman tree, posterior/noisy-channel bisection, Hex-o-Spell-like scan), each
   with the language model (wordfreq + char 5-gram + completions) and with a uniform layout.
   A sentence not finished within ``--max-cpc`` commands per character counts with the text it
   reached (its chars/min is then the correct characters written, usually ~0).
2. ``--closed-loop``: real EEG through the real DecoderWorker (see :func:`closed_loop_bench`).

Run: .venv/bin/python bench/bench_speller.py [--seeds 2] [--closed-loop]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import ROOT, machine

from bci_app.speller.engine import SpellerEngine
from bci_app.speller.lm import LanguageModel
from bci_app.speller.simulation import SimulatedUser, confusion_from_accuracy, simulate

PHRASES = [
    "i would like a cup of tea.",
    "please call my wife.",
    "thank you for coming today.",
    "can you open the window?",
]
ACCURACIES = [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]


def make_engine(scheme: str, lm, acc: float) -> SpellerEngine:
    if scheme == "posterior":
        # the user's measured accuracy, kept away from 1 so one command can never be final
        return SpellerEngine(lm, scheme="posterior", accuracy=float(np.clip(acc, 0.55, 0.97)),
                             confidence=0.9)
    return SpellerEngine(lm, scheme=scheme)


def sweep(lm, seeds: int, max_cpc: float, spc: float) -> list[dict]:
    rows = []
    for scheme in ["huffman", "posterior", "scan"]:
        for use_lm in [True, False]:
            for acc in ACCURACIES:
                t0 = time.perf_counter()
                res = []
                for seed in range(seeds):
                    for i, phrase in enumerate(PHRASES):
                        eng = make_engine(scheme, lm if use_lm else None, acc)
                        res.append(simulate(
                            eng, SimulatedUser(phrase), confusion=confusion_from_accuracy(acc),
                            seconds_per_command=spc, max_commands=int(max_cpc * len(phrase)),
                            rng=1000 * seed + i))
                chars = sum(len(r.target) for r in res)
                correct = sum(max(0, len(r.target) - r.errors) for r in res)
                seconds = sum(r.seconds for r in res)
                cmds = sum(r.commands for r in res)
                hits = sum(r.command_accuracy * r.commands for r in res)
                from decoders.pseudo_online import wolpaw_itr

                row = {
                    "scheme": scheme, "lm": use_lm, "accuracy": acc,
                    "finished": f"{sum(r.finished for r in res)}/{len(res)}",
                    "chars_per_min": correct / (seconds / 60),
                    "error_rate": sum(r.errors for r in res) / chars,
                    "commands_per_char": cmds / chars,
                    "measured_accuracy": hits / cmds,
                    "itr_bits_per_min": wolpaw_itr(min(1.0, hits / cmds), 2, spc),
                    "wall_s": time.perf_counter() - t0,
                }
                rows.append(row)
                print(f"{scheme:9s} lm={use_lm!s:5s} acc={acc:.2f}: {row['finished']:>5s} "
                      f"finished, {row['chars_per_min']:5.2f} chars/min, CER "
                      f"{row['error_rate']:.3f}, {row['commands_per_char']:5.2f} cmd/char, "
                      f"ITR {row['itr_bits_per_min']:5.2f} bits/min ({row['wall_s']:.1f} s)",
                      flush=True)
    return rows


def table(rows: list[dict]) -> str:
    accs = sorted({r["accuracy"] for r in rows})
    head = "| layout | LM | " + " | ".join(f"{a:.0%}" for a in accs) + " |"
    sep = "|---|---|" + "---|" * len(accs)
    lines = [head, sep]
    for scheme in ["huffman", "posterior", "scan"]:
        for use_lm in [True, False]:
            sel = {r["accuracy"]: r for r in rows if r["scheme"] == scheme and r["lm"] == use_lm}
            if not sel:
                continue
            cells = []
            for a in accs:
                r = sel[a]
                cells.append(f"{r['chars_per_min']:.2f} ({r['error_rate']:.0%})")
            lines.append(f"| {scheme} | {'yes' if use_lm else 'no'} | " + " | ".join(cells) + " |")
    itr = [r for r in rows if r["scheme"] == "huffman" and r["lm"]]
    lines.append("| *Wolpaw ITR, bits/min* | | "
                 + " | ".join(f"{r['itr_bits_per_min']:.1f}" for r in itr) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--max-cpc", type=float, default=40.0,
                    help="give up after this many commands per target character")
    ap.add_argument("--seconds-per-command", type=float, default=4.0)
    ap.add_argument("--closed-loop", action="store_true", help="also run the real-EEG loop")
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "speller.json"))
    args = ap.parse_args()
    print(machine())
    t0 = time.perf_counter()
    lm = LanguageModel("en")
    print(f"language model built in {time.perf_counter() - t0:.1f} s "
          f"({lm.vocabulary_size} words); cross-entropy of the phrases: "
          f"{np.mean([lm.cross_entropy(p) for p in PHRASES]):.2f} bits/char")
    out: dict = {"machine": machine(), "phrases": PHRASES}
    if not args.skip_sweep:
        rows = sweep(lm, args.seeds, args.max_cpc, args.seconds_per_command)
        out["sweep"] = rows
        print()
        print(table(rows))
    if args.closed_loop:
        from bench_speller_closed_loop import closed_loop_bench  # noqa: F401  (see below)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
