"""Plain default settings of the offline motor-imagery pipeline (no numpy, no scipy, no torch).

The command line builds its parser from these, so ``bci-app --help`` and argument errors do not
import the signal-processing stack; :mod:`decoders.training` builds ``DEFAULT_PREPROCESSING``
from the same values.
"""

from __future__ import annotations

#: The 21 sensorimotor channels of EEGMMIDB (FC, C, CP rows; standardized 10-05 names).
MOTOR21 = ["FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2", "C4",
           "C6", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6"]
#: Named channel sets accepted by ``--channels``.
CHANNEL_SETS = {"all": None, "motor21": MOTOR21}

#: Band-pass edges (Hz), Butterworth order, model rate (Hz) and common average reference of the
#: CLI, the benchmarks and the pretrained bundles.
L_FREQ, H_FREQ, FILTER_ORDER, SFREQ, CAR = 8.0, 30.0, 4, 80.0, True
#: The decoding window after the cue (s).
DEFAULT_TMIN, DEFAULT_TMAX = 0.5, 2.5
