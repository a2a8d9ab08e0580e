"""How wrong the band-passed signal is after a gap in the stream, and for how long.

A gap (samples never sent: a Bluetooth drop-out, a device that stalls) puts a jump into the
signal the causal band-pass sees: the amplifier's DC drift over the hole and the signal's phase.
On a real OpenBCI Cyton recording (the OpenBCI GUI sample in ``$BCI_APP_DATA_DIR``, 8 EEG
channels at 250 Hz, raw with its DC offsets), a hole of 0.04, 0.5 or 5 s is cut at 8 places;
the signal after it is filtered (CAR, 8-30 Hz order-4 Butterworth, as the pretrained bundles)
either straight across the hole ("continue": what the online worker did before) or with the
band-pass restarted on the first sample after it ("restart": ``StreamingFilter.restart``, what
the worker and calibration do now). Reference: the same samples filtered with the hole's samples
present. Printed: the relative error energy ``sum((w - ref)^2) / sum(ref^2)`` of the 2 s window
starting 0, 0.1, 0.25, 0.36 (the settling time: the first window now reliable), 0.5 and 1 s
after the hole (median and max over the 8 places), and the
filter's settling time ``StreamingFilter.settle_samples`` within which windows are now marked
unreliable.

Run: .venv/bin/python bench/bench_gap_transient.py
"""

from __future__ import annotations

import time

from _common import machine

import numpy as np

from acquisition.files import read_file
from bci_app.config import data_dir
from decoders.preprocessing import Preprocessor

OFFSETS = (0.0, 0.1, 0.25, 0.36, 0.5, 1.0)  # 0.36 s: the settling time, first reliable window


def main() -> None:
    path = data_dir() / "openbci-gui-sample" / "OpenBCI_GUI-v6-blinks-jawClench-alpha.txt"
    rec = read_file(path)
    sf = rec.info.sfreq
    eeg = [i for i, t in enumerate(rec.info.ch_types) if t == "eeg"]
    X = rec.data[:, eeg]
    names = [rec.info.ch_names[i] for i in eeg]
    pre = Preprocessor(car=True, l_freq=8.0, h_freq=30.0)
    settle = pre.streaming(sf, names).settle_samples
    print(f"# {time.strftime('%Y-%m-%d')} {machine()}")
    print(f"# {path.name}: {X.shape[1]} EEG ch @ {sf:g} Hz, {len(X) / sf:.0f} s, median |DC| "
          f"{np.median(np.abs(X.mean(0))) * 1e6:.0f} uV; settling time {settle / sf:.3f} s")
    truth = pre.streaming(sf, names).process(X)
    win = int(2 * sf)
    starts = range(int(20 * sf), int(min(len(X) - 15 * sf, 200 * sf)), int(7 * sf))
    print("hole_s  mode      " + "  ".join(f"{o:>5g}s med/max" for o in OFFSETS))
    for hole in (0.04, 0.5, 5.0):
        for mode in ("continue", "restart"):
            errs = []
            for g0 in starts:
                g1 = g0 + int(round(hole * sf))
                f = pre.streaming(sf, names)
                f.process(X[:g0])
                if mode == "restart":
                    f.restart()
                after = f.process(X[g1:])
                row = []
                for o in OFFSETS:
                    s = int(o * sf)
                    w, ref = after[s:s + win], truth[g1 + s:g1 + s + win]
                    row.append(np.sum((w - ref) ** 2) / np.sum(ref ** 2))
                errs.append(row)
            med, mx = np.median(errs, axis=0), np.max(errs, axis=0)
            print(f"{hole:<7g} {mode:<9s} " + "  ".join(
                f"{100 * m:6.2f}/{100 * x:6.2f}%" for m, x in zip(med, mx)))
    print(f"# places of the hole: {len(starts)}")


if __name__ == "__main__":
    main()
