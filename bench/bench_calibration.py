"""Calibration benchmark: accuracy after calibration vs. trials per class, on simulated subjects.

For each target subject (EEGMMIDB, not among the pretraining subjects) and each K trials per
class, the whole closed loop runs as in ``bci-app calibrate``: a SimulatedSubjectSource at max
speed answers a Graz protocol of K trials per class, the trials are cut from the streamed buffer
(causal preprocessing, as online), and each method is trained on those 2K trials only:

* ``pretrained+adapt``: the pretrained cross-subject EEGNet + the user's Euclidean alignment +
  fine-tuning (``decoders.calibration.calibrate``);
* ``pretrained+align``: the same without fine-tuning (alignment only, labels unused);
* ``csp_lda+adapt``: a pretrained cross-subject CSP+LDA + alignment + LDA refit;
* ``scratch_eegnet``: EEGNet trained on the 2K trials alone;
* ``ts_lr``: tangent space + logistic regression on the 2K trials alone (the baseline).

Every method is scored on the subject's trials the simulated subject never played (filtered
causally from the start of each run, cut at the bundle's window). EEGMMIDB has about 22 trials per
class per subject, so K must stay below that: larger K are reported as not possible.

Also measured: the training step alone as the CLI runs it (calibrate with 5-fold CV of the adapted
model and of the baseline) at K=20, and, with ``--realtime-run``, the wall time of a whole
``bci-app calibrate`` at real time.

Usage::

    nice -n 10 .venv/bin/python bench/bench_calibration.py --threads 2
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ("pretrained+adapt", "pretrained+align", "csp_lda+adapt", "scratch_eegnet", "ts_lr")


def _ranges(ids):
    """[1, 2, 3, 7, 8] -> [(1, 3), (7, 8)] (names cache folders by the exact subject set)."""
    out = []
    for i in ids:
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def pretrain(model: str, subjects, out: Path, epochs: int, patience: int, augment: str = ""):
    import dataclasses

    from decoders.bundle import load_bundle
    from decoders.training import (DEFAULT_PREPROCESSING, DEFAULT_TMAX, DEFAULT_TMIN, MOTOR21,
                                   TrainSettings, load_data, train_cross_subject)

    if (out / "config.json").is_file():
        b = load_bundle(out)
        if b.config["training"]["subjects"] == list(subjects) and (
                model == "csp_lda" or b.decoder.get_params().get("augment", "") == augment):
            print(f"using cached {out}", flush=True)
            return b, None
    pre = dataclasses.replace(DEFAULT_PREPROCESSING, channels=list(MOTOR21))
    data = load_data(list(subjects), None, pre, DEFAULT_TMIN, DEFAULT_TMAX)
    params = (dict(max_epochs=epochs, patience=patience, augment=augment)
              if model != "csp_lda" else {})
    t0 = time.perf_counter()
    train_cross_subject(data, TrainSettings(model=model, decoder_params=params), out)
    secs = time.perf_counter() - t0
    print(f"pretrained {model} on {list(subjects)} in {secs:.0f} s", flush=True)
    return load_bundle(out), secs


def as_bundle(dec, like, alignment=None):
    from decoders.bundle import Bundle

    cfg = copy.deepcopy(like.config)
    cfg.update(kind=dec.kind, model=dec.name, alignment=None)
    return Bundle(decoder=dec, config=cfg, alignment=alignment)


def heldout(src, bundle):
    """(X, y) of the trials the simulated subject never played, cut once per source (the same
    computation as ``bci_app.commands.calibrate.score_unplayed``, shared by every method)."""
    from bci_app.commands.calibrate import window_of
    from decoders.calibration import epochs_from_stream

    tmin, tmax = window_of(bundle)
    todo = src.unplayed_trials()
    Xs, ys = [], []
    for i, rec in enumerate(src.recordings):
        cues = [(float(rec.times[0]) + t.onset_s, t.cls) for t in todo if t.recording == i]
        if cues:
            ep = epochs_from_stream(rec.data, rec.times, src.info.ch_names, rec.sfreq, cues,
                                    bundle.classes, bundle.preprocessor, tmin=tmin, tmax=tmax,
                                    ref_window=None)
            Xs.append(ep.X)
            ys.append(ep.y)
    return np.concatenate(Xs), np.concatenate(ys)


def score(bundle, X, y):
    from decoders.calibration import CVScore

    return CVScore("held-out", y, np.argmax(bundle.predict_proba(X), axis=1), 2, 0)


def closed_loop(subject: int, k: int, seed: int):
    from acquisition.simulated import SimulatedSubjectSource
    from bci_app.protocol import GrazProtocol, ProtocolRunner, completed_trials

    src = SimulatedSubjectSource.from_eegmmidb(subject, speed="max", seed=seed,
                                               buffer_seconds=2 * k * 10 + 120)
    src.connect(acquisition=False)
    proto = GrazProtocol(("left", "right"), k, seed=seed, marker_log=src.markers)
    t0 = time.perf_counter()
    ProtocolRunner(proto, src).run()
    secs = time.perf_counter() - t0
    src.disconnect()
    return src, completed_trials(src.markers.all()), secs


def run_target(t, k, eegnet, csp, a, tmin, tmax):
    from decoders.calibration import calibrate, epochs_from_stream, scratch_decoder

    src, cues, proto_s = closed_loop(t, k, seed=1000 * t + k)
    n_min = min(sum(tr.cls == c for tr in src.trials) for c in ("left", "right"))
    if k >= n_min:
        print(f"S{t:03d} K={k}: not possible ({n_min} trials in the smaller class)", flush=True)
        return {"subject": t, "k": k, "possible": False, "n_min": n_min}
    data = src.buffer.since(0)
    ep = epochs_from_stream(data.data, data.timestamps, src.info.ch_names, src.info.sfreq, cues,
                            eegnet.classes, eegnet.preprocessor, tmin=tmin, tmax=tmax)
    res, secs = {}, {}
    t0 = time.perf_counter()
    Xh, yh = heldout(src, eegnet)
    r = calibrate(ep.X, ep.y, eegnet, X_ref=ep.X_ref, finetune_epochs=a.finetune_epochs,
                  finetune_lr=a.finetune_lr, cross_validation=False, fit_baseline=True, seed=k)
    secs["pretrained+adapt"] = r.seconds["adapted"]
    secs["ts_lr"] = r.seconds["baseline"]
    res["pretrained+adapt"] = score(r.adapted, Xh, yh)
    res["ts_lr"] = score(r.baseline, Xh, yh)
    r0 = calibrate(ep.X, ep.y, eegnet, finetune_epochs=0, cross_validation=False,
                   fit_baseline=False)
    res["pretrained+align"] = score(r0.adapted, Xh, yh)
    t1 = time.perf_counter()
    rc = calibrate(ep.X, ep.y, csp, finetune_epochs=1, cross_validation=False, fit_baseline=False)
    secs["csp_lda+adapt"] = time.perf_counter() - t1
    res["csp_lda+adapt"] = score(rc.adapted, Xh, yh)
    t1 = time.perf_counter()
    sd = scratch_decoder(ep.X, ep.y, 2, eegnet.sfreq, eegnet.window_s, epochs=a.scratch_epochs,
                         seed=k)
    secs["scratch_eegnet"] = time.perf_counter() - t1
    res["scratch_eegnet"] = score(as_bundle(sd, eegnet), Xh, yh)
    row = {"subject": t, "k": k, "possible": True, "n_calib": int(len(ep)),
           "protocol_s": round(proto_s, 2), "n_test": res["ts_lr"].n,
           "correct": {m: res[m].correct for m in METHODS},
           "accuracy": {m: round(res[m].accuracy, 4) for m in METHODS},
           "train_s": {m: round(v, 2) for m, v in secs.items()}}
    print(f"S{t:03d} K={k:>2} test {row['n_test']:>2}: " + "  ".join(
        f"{m} {res[m].accuracy:5.1%}" for m in METHODS)
        + f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
    return row


def time_training(target, eegnet, a, tmin, tmax) -> dict:
    """The training step alone as the CLI runs it (5-fold CV of both models), K=20."""
    from decoders.calibration import calibrate, epochs_from_stream

    src, cues, _ = closed_loop(target, 20, seed=7)
    data = src.buffer.since(0)
    ep = epochs_from_stream(data.data, data.timestamps, src.info.ch_names, src.info.sfreq, cues,
                            eegnet.classes, eegnet.preprocessor, tmin=tmin, tmax=tmax)
    timing = {}
    t0 = time.perf_counter()
    r = calibrate(ep.X, ep.y, eegnet, X_ref=ep.X_ref, finetune_epochs=a.finetune_epochs,
                  finetune_lr=a.finetune_lr)
    timing["training_step_with_cv_s"] = round(time.perf_counter() - t0, 2)
    timing["training_step_parts_s"] = {k: round(v, 2) for k, v in r.seconds.items()}
    t0 = time.perf_counter()
    calibrate(ep.X, ep.y, eegnet, X_ref=ep.X_ref, finetune_epochs=a.finetune_epochs,
              finetune_lr=a.finetune_lr, cross_validation=False)
    timing["training_step_no_cv_s"] = round(time.perf_counter() - t0, 2)
    print(f"training step (K=20, 40 trials): {timing}", flush=True)
    return timing


def realtime_run(target, eegnet, a, out: Path) -> dict:
    cmd = [sys.executable, "-m", "bci_app.cli", "calibrate", "--source", f"simulated:{target}",
           "--trials", "20", "--speed", "1", "--headless", "--pretrained", str(eegnet.path),
           "--user", "bench_realtime", "--profiles-dir", str(out / "profiles"), "--record",
           str(out / "rec") + "/", "--quiet", "--json", "--threads", str(a.threads)]
    timing = {}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    timing["realtime_calibration_wall_s"] = round(time.perf_counter() - t0, 1)
    try:
        timing["realtime_calibration"] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        timing["realtime_calibration_error"] = proc.stdout[-2000:] + proc.stderr[-2000:]
    print(f"real-time calibration: {timing['realtime_calibration_wall_s']} s", flush=True)
    return timing


def summarize(rows, ks) -> dict:
    summary = {}
    for k in ks:
        ok = [r for r in rows if r["k"] == k and r["possible"]]
        if not ok:
            summary[k] = None
            continue
        s = {"subjects": len(ok), "test_trials": int(sum(r["n_test"] for r in ok))}
        for m in METHODS:
            accs = np.array([r["accuracy"][m] for r in ok])
            s[m] = {"mean": round(float(accs.mean()), 4),
                    "sd": round(float(accs.std(ddof=1)) if len(accs) > 1 else 0.0, 4),
                    "pooled": round(sum(r["correct"][m] for r in ok) / s["test_trials"], 4),
                    "train_s_median": float(np.median([r["train_s"].get(m, np.nan)
                                                       for r in ok]))}
        d = np.array([r["accuracy"]["pretrained+adapt"] - r["accuracy"]["ts_lr"] for r in ok])
        s["adapt_minus_ts_lr"] = {"mean": round(float(d.mean()), 4),
                                  "sd": round(float(d.std(ddof=1)) if len(d) > 1 else 0.0, 4)}
        summary[k] = s
    return summary


def print_table(summary, ks) -> None:
    print("\n| K per class | subjects | held-out trials | " + " | ".join(METHODS) +
          " | adapt − ts_lr |")
    print("|---|---|---|" + "---|" * (len(METHODS) + 1))
    for k in ks:
        s = summary[k]
        if s is None:
            print(f"| {k} | – | – | " + " | ".join("not possible" for _ in METHODS) + " | – |")
            continue
        cells = [f"{s[m]['mean']:.1%} ± {s[m]['sd']:.1%} ({s[m]['pooled']:.1%})" for m in METHODS]
        d = s["adapt_minus_ts_lr"]
        print(f"| {k} | {s['subjects']} | {s['test_trials']} | " + " | ".join(cells) +
              f" | {d['mean'] * 100:+.1f} ± {d['sd'] * 100:.1f} pts |")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--pretrain-subjects", default="1-10")
    p.add_argument("--targets", default="11-20")
    p.add_argument("--ks", default="5,10,20,40")
    p.add_argument("--epochs", type=int, default=60, help="EEGNet pretraining max epochs")
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--augment", default="",
                   help="EEGNet pretraining (and fine-tuning) augmentations, e.g. flip,reverse,sr")
    p.add_argument("--finetune-epochs", type=int, default=30)
    p.add_argument("--finetune-lr", type=float, default=None,
                   help="fine-tuning learning rate (default: the bundle's, 3e-4)")
    p.add_argument("--scratch-epochs", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "calibration"))
    p.add_argument("--no-timing", action="store_true", help="skip the training-step timing")
    p.add_argument("--time-bundle", default=None, metavar="PATH",
                   help="only time the training step starting from this saved bundle (e.g. the "
                   "shipped decoders/pretrained/mi_left_right_eegnet_ea) on the first target")
    p.add_argument("--realtime-run", action="store_true",
                   help="also time a whole `bci-app calibrate` at real time (20 per class)")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="only merge the rows of earlier runs (targets split over processes)")
    a = p.parse_args()

    import torch

    from bci_app.commands.calibrate import window_of
    from decoders.data import parse_subjects

    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%H%M%S")
    if a.merge:
        runs = [json.loads(Path(f).read_text()) for f in a.merge]
        rows = [r for run in runs for r in run["rows"]]
        ks = sorted({r["k"] for r in rows})
        summary = summarize(rows, ks)
        print_table(summary, ks)
        merged = {"merged": a.merge, "rows": rows, "summary": summary,
                  "timing": {k: v for run in runs for k, v in run.get("timing", {}).items()},
                  "runs": [{k: run[k] for k in ("date", "machine", "command", "loop_seconds")
                            if k in run} for run in runs]}
        path = out / f"bench_calibration_merged_{stamp}.json"
        path.write_text(json.dumps(merged, indent=1, default=str))
        print(f"wrote {path}")
        return 0
    pre_s, targets = parse_subjects(a.pretrain_subjects), parse_subjects(a.targets)
    if a.time_bundle:
        from decoders.bundle import load_bundle

        b = load_bundle(a.time_bundle)
        time_training(targets[0], b, a, *window_of(b))
        return 0
    assert not set(pre_s) & set(targets)
    ks = [int(k) for k in a.ks.split(",")]
    tag = "s" + "_".join(f"{a}-{b}" for a, b in _ranges(pre_s))
    aug_tag = "_" + a.augment.replace(",", "") if a.augment else ""
    eegnet, eegnet_s = pretrain("eegnet", pre_s, out / f"pretrained_eegnet_{tag}{aug_tag}",
                                a.epochs, a.patience, a.augment)
    csp, _ = pretrain("csp_lda", pre_s, out / f"pretrained_csp_lda_{tag}", 0, 0)
    tmin, tmax = window_of(eegnet)
    t_start = time.perf_counter()
    rows = [run_target(t, k, eegnet, csp, a, tmin, tmax) for t in targets for k in ks]
    loop_s = time.perf_counter() - t_start
    timing = {} if a.no_timing else time_training(targets[0], eegnet, a, tmin, tmax)
    if a.realtime_run:
        timing.update(realtime_run(targets[0], eegnet, a, out))
    summary = summarize(rows, ks)
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}, "
                   f"threads {a.threads}",
        "command": "bench/bench_calibration.py " + " ".join(sys.argv[1:]),
        "pretrain_subjects": pre_s, "targets": targets,
        "pretrained": {"eegnet": str(eegnet.path), "eegnet_pretrain_s": eegnet_s,
                       "eegnet_validation": eegnet.config.get("validation"),
                       "csp_lda": str(csp.path)},
        "settings": vars(a), "rows": rows, "summary": summary, "timing": timing,
        "loop_seconds": round(loop_s, 1),
    }
    # the targets in the name: folds started in the same second must not overwrite each other
    path = out / f"bench_calibration_{stamp}_t{a.targets.replace(',', '_')}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {path}")
    print_table(summary, ks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
