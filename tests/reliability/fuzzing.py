"""Mutation fuzzing of file readers and bundle loaders (shared by the tests and bench/fuzz.py).

Each case starts from a real file (or a real bundle), applies one mutation — truncation at a
random offset, random byte flips, a zeroed or duplicated region, a line-level edit for text
formats — and calls the loader in a worker thread with a time limit. The contract: the loader
returns a valid object or raises one of bci_app's own errors (``BciAppError``), never anything
else, and never hangs.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bci_app.config import data_dir


def _eegmmidb(name: str) -> Path:
    return data_dir() / "eegmmidb/MNE-eegbci-data/files/eegmmidb/1.0.0" / name[:4] / name


def seed_files(tmp: Path) -> dict[str, list[Path]]:
    """Real files per format; small ones as they are, big text files cut to their first lines."""
    d = data_dir()
    out = {
        "edf": [_eegmmidb("S001R04.edf")],
        "bdf": [d / "mne-io-test-files/bdf/test_bdf_stim_channel.bdf"],
        "vhdr": [d / "mne-io-test-files/brainvision/test.vhdr"],
        "xdf": [d / "xdf-example-files/minimal.xdf", d / "xdf-example-files/empty_streams.xdf",
                d / "bci4als-openbci-mi-xdf/Sub2011001_EEG.xdf"],
    }
    txt = []
    for src in (d / "openbci-gui-sample/OpenBCI_GUI-v6-blinks-jawClench-alpha.txt",
                d / "openbci-gui-sample/OpenBCI-sampleData-1-blinks-jawClench-alpha.txt"):
        lines = src.read_text(errors="replace").splitlines(keepends=True)[:600]
        dst = tmp / f"seed-{src.name}"
        dst.write_text("".join(lines))
        txt.append(dst)
    out["txt"] = txt
    out["csv"] = [_brainflow_csv(tmp / "seed-brainflow.csv")]
    return out


def _brainflow_csv(path: Path) -> Path:
    """A real BrainFlow CSV: one second of the synthetic board written by DataFilter."""
    import time

    from brainflow.data_filter import DataFilter

    from acquisition.brainflow_source import _brainflow

    bs = _brainflow()
    board = bs.BoardShim(-1, bs.BrainFlowInputParams())
    board.prepare_session()
    board.start_stream()
    time.sleep(1.0)
    board.stop_stream()
    data = board.get_board_data()
    board.release_session()
    DataFilter.write_file(data, str(path), "w")
    return path


@dataclass
class Outcome:
    kind: str  # "ok", "app_error", "crash", "hang"
    detail: str = ""


def mutate(data: bytes, rng: np.random.Generator, text: bool) -> bytes:
    n = len(data)
    if n == 0:
        return data
    op = int(rng.integers(0, 6 if text else 5))
    if op == 0:  # truncation
        return data[: int(rng.integers(0, n))]
    if op == 1:  # byte flips
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 32))):
            i = int(rng.integers(0, n))
            b[i] = int(rng.integers(0, 256))
        return bytes(b)
    if op == 2:  # zeroed region
        i = int(rng.integers(0, n))
        j = min(n, i + int(rng.integers(1, 4096)))
        return data[:i] + bytes(j - i) + data[j:]
    if op == 3:  # duplicated region
        i = int(rng.integers(0, n))
        j = min(n, i + int(rng.integers(1, 2048)))
        return data[:j] + data[i:j] + data[j:]
    if op == 4:  # header bytes (first 512) flipped: sizes, counts, rates
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 8))):
            i = int(rng.integers(0, min(n, 512)))
            b[i] = int(rng.integers(0, 256))
        return bytes(b)
    # text: delete / duplicate / garble a random line
    lines = data.split(b"\n")
    k = int(rng.integers(0, len(lines)))
    choice = int(rng.integers(0, 3))
    if choice == 0:
        del lines[k]
    elif choice == 1:
        lines.insert(k, lines[k])
    else:
        lines[k] = bytes(rng.integers(32, 127, size=int(rng.integers(0, 80))).astype(np.uint8))
    return b"\n".join(lines)


def run_with_limit(fn: Callable[[], object], seconds: float) -> Outcome:
    """Call ``fn`` in a daemon thread; classify what happened."""
    from bci_app.errors import BciAppError

    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BciAppError as err:
            box["app"] = err
        except BaseException as err:  # noqa: BLE001 - that is what we are looking for
            box["crash"] = err

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(seconds)
    if th.is_alive():
        return Outcome("hang", f"no answer within {seconds} s")
    if "crash" in box:
        err = box["crash"]
        return Outcome("crash", f"{type(err).__name__}: {err}"[:300])
    if "app" in box:
        return Outcome("app_error", str(box["app"])[:200])
    return Outcome("ok")


def mutated_copy(seed: Path, dst_dir: Path, rng: np.random.Generator) -> Path:
    """Copy ``seed`` (with BrainVision companions) into ``dst_dir`` and mutate one file."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    text = seed.suffix in (".txt", ".csv", ".vhdr")
    if seed.suffix == ".vhdr":
        for ext in (".vhdr", ".vmrk", ".eeg"):
            shutil.copy(seed.with_suffix(ext), dst_dir / (seed.stem + ext))
        victim = dst_dir / (seed.stem + [".vhdr", ".vmrk", ".eeg"][int(rng.integers(0, 3))])
        target = dst_dir / seed.name
    else:
        victim = target = dst_dir / seed.name
        shutil.copy(seed, target)
    victim.chmod(0o644)
    victim.write_bytes(mutate(victim.read_bytes(), rng, text and victim.suffix != ".eeg"))
    return target
