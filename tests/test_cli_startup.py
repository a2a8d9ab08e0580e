"""``bci-app --help`` and argument errors answer without loading the signal/deep-learning stack.

Building the parser registers every sub-command; before ``decoders.defaults`` that pulled in
``decoders.training`` and with it scipy.signal (1.4 of the 1.6 s a ``--help`` took).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

HEAVY = ("scipy", "scipy.signal", "torch", "mne", "sklearn", "pyriemann", "PySide6", "pylsl",
         "brainflow")


def test_building_the_parser_imports_no_heavy_library():
    code = (
        "import json, sys\n"
        "from bci_app.cli import build_parser\n"
        "p = build_parser()\n"
        "p.parse_args(['train', '--model', 'eegnet', '--out', 'x'])\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_parser_defaults_are_the_training_defaults():
    """The CLI's default preprocessing, window and channel sets are the ones training uses."""
    from bci_app.cli import build_parser
    from decoders import training
    from decoders.cli_args import preprocessor_from_args

    args = build_parser().parse_args(["train", "--model", "eegnet", "--out", "x"])
    assert (args.tmin, args.tmax) == (training.DEFAULT_TMIN, training.DEFAULT_TMAX)
    pre = preprocessor_from_args(args)
    assert pre == dataclasses.replace(training.DEFAULT_PREPROCESSING, channels=None)
    args = build_parser().parse_args(["train", "--model", "eegnet", "--out", "x",
                                      "--channels", "motor21"])
    assert preprocessor_from_args(args).channels == training.MOTOR21
