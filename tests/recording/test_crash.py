"""Crash safety: SIGKILL of a recording process, and a full disk (RLIMIT_FSIZE) in a subprocess."""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pyxdf

from acquisition.lsl_env import import_pylsl
from acquisition.xdf_writer import repair_xdf, scan_xdf

from .procs import Proc


def test_sigkill_loses_at_most_a_second(tmp_path, stream_name):
    path = tmp_path / "killed.xdf"
    delay = random.uniform(3.0, 8.0)
    outlet = Proc(
        [
            "-m",
            "tests.helpers.lsl_outlet",
            "--name",
            stream_name,
            "--channels",
            "8",
            "--rate",
            "250",
            "--duration",
            "0",
        ]
    )
    rec = None
    try:
        rec = Proc(
            [
                "-m",
                "bci_app.cli",
                "record",
                "--source",
                f"lsl:{stream_name}",
                "--out",
                str(path),
                "--quiet",
                "--timeout",
                "15",
            ]
        )
        rec.wait_line("recording", timeout=30)
        time.sleep(delay)  # the random moment of the "power cut" (not a synchronisation)
        t_kill = import_pylsl().local_clock()
        rec.p.send_signal(9)
        rec.finish(timeout=5)
    finally:
        if rec is not None:
            rec.kill()
        outlet.kill()
    scan = scan_xdf(path)
    repair_xdf(path)
    streams, _ = pyxdf.load_xdf(str(path))
    eeg = next(s for s in streams if s["info"]["name"][0] == stream_name)
    counter = eeg["time_series"][:, 0]
    ts = eeg["time_stamps"]
    msg = f"killed after {delay:.2f} s; scan before repair: {scan}"
    assert counter.size > 2.5 * 250, msg
    assert np.all(np.diff(counter) == 1), msg + " (missing or repeated samples)"
    lost = t_kill - ts[-1]
    print(
        f"killed after {delay:.2f} s: {counter.size} samples, {lost:.3f} s lost, "
        f"torn {scan.torn_bytes} B"
    )
    assert lost < 1.0, f"{lost:.3f} s lost at the end; " + msg


def test_full_disk_file_size_limit(tmp_path):
    path = tmp_path / "full.xdf"
    child = Proc(["-m", "tests.recording.disk_full_child", str(path), "60000"])
    try:
        line = child.wait_line("RESULT ", timeout=30)
        assert child.finish(timeout=10) == 0, child.output()
    finally:
        child.kill()
    res = json.loads(line[len("RESULT ") :])
    assert res["state"] == "failed"
    assert "size limit" in res["error"] and str(path) in res["error"] and "readable" in res["error"]
    assert res["source_state"] == "streaming" and res["counter_after"] > res["counter_before"]
    assert path.stat().st_size <= 60000
    assert scan_xdf(path).torn_bytes == 0
    streams, _ = pyxdf.load_xdf(str(path))
    eeg = next(s for s in streams if s["info"]["name"][0] == "fake-eeg")
    counter = eeg["time_series"][:, 0]
    assert counter.size > 100 and np.all(np.diff(counter) == 1)
    assert counter[-1] < res["counter_before"]
