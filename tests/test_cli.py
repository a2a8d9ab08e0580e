"""The bci-app command line, run as a user would (a real subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.helpers.processes import ROOT


def bci_app(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = os.environ.copy()
    return subprocess.run([sys.executable, "-m", "bci_app.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_live_headless_prints_status_lines_and_summary():
    r = bci_app("live", "--source", "synthetic", "--headless", "--duration", "3")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("[")]
    assert len(lines) == 3
    for ln in lines:
        assert "streaming" in ln
        rate = float(re.search(r"rate\s+([\d.]+)/250 Hz", ln).group(1))
        assert 240 <= rate <= 260
    summary = r.stdout.splitlines()[-1]
    assert summary.startswith("summary:") and "gaps 0, samples lost 0" in summary
    n = int(re.search(r"summary: (\d+) samples", summary).group(1))
    assert 700 <= n <= 800


def test_devices_lists_boards_and_lsl_scope():
    r = bci_app("devices", "--timeout", "0.3")
    assert r.returncode == 0, r.stderr
    assert "SYNTHETIC_BOARD" in r.stdout and "CYTON_DAISY_BOARD" in r.stdout
    assert "LSL streams (scope: machine" in r.stdout
    assert "?channels=" in r.stdout  # how to name a device's electrodes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["live", "--headless", "--source", "bogus:thing"], "Unknown source 'bogus:thing'"),
        (["live", "--headless", "--source", "brainflow:12345"], "Unknown BrainFlow board id 12345"),
        (["live", "--headless", "--source", "brainflow:cyton"], "needs a serial port"),
        (["live", "--headless", "--source", "lsl:absent-stream", "--timeout", "0.5"],
         "No LSL stream matching name='absent-stream'"),
    ],
)
def test_bad_sources_exit_2_with_a_clear_message(args, message):
    r = bci_app(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_lan_scope_is_opt_in_and_announced():
    code = (
        "import os, logging; logging.basicConfig(level=logging.WARNING);"
        "from acquisition.lsl_env import configure_lsl, lsl_scope, LAN_CFG;"
        "os.environ.pop('LSLAPICFG', None); p = configure_lsl(); print(lsl_scope());"
        "configure_lsl('lan'); print(lsl_scope(), os.environ['LSLAPICFG'] == str(LAN_CFG))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LSLAPICFG", "BCI_APP_LSL_SCOPE")}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["machine", "lan", "True"]
    assert "visible to every computer on the LAN" in r.stderr


def test_core_layers_do_not_import_qt():
    """acquisition/, decoders/ and bci_app/ run without Qt (headless sessions, CI)."""
    code = (
        "import sys, importlib, pkgutil;"
        "import acquisition, decoders, bci_app;"
        "mods = [m.name for p in (acquisition, decoders, bci_app) "
        "for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')];"
        "[importlib.import_module(m) for m in mods];"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'ui')];"
        "print(len(mods), bad)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    n, bad = r.stdout.strip().split(" ", 1)
    assert int(n) > 5
    assert bad == "[]"


def test_live_headless_on_the_simulated_subject():
    r = bci_app("live", "--source", "simulated:3", "--headless", "--duration", "2")
    assert r.returncode == 0, r.stderr
    assert "160 Hz" in r.stdout and "gaps 0, samples lost 0" in r.stdout


def test_live_channel_map_is_applied_and_a_wrong_one_is_named(eegmmidb_path):
    """--map MODEL_CH=SOURCE_CH reaches the decoder: mapping a model channel to a channel the
    source lacks fails at start with the mapping spelled out; without the map (or with a
    correct one) the same session starts."""
    edf = eegmmidb_path / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"
    common = ["live", "--source", f"file:{edf}", "--headless", "--duration", "1",
              "--model", "decoders/pretrained/mi_left_right_csp_lda_ea"]
    bad = bci_app(*common, "--map", "FC5=NOPE")
    assert bad.returncode == 2
    assert "FC5 (mapped to 'NOPE')" in bad.stderr and "--map MODEL_CH=SOURCE_CH" in bad.stderr
    good = bci_app(*common, "--map", "FC5=Fc5.")
    assert good.returncode == 0, good.stderr
    assert "samples lost 0" in good.stdout
