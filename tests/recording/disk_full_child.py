"""Child process for the disk-full test: record a FakeSource under RLIMIT_FSIZE.

Usage: python -m tests.recording.disk_full_child PATH LIMIT_BYTES
Prints ``RESULT {json}`` with the recorder's final state and whether the source kept streaming.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time


def main() -> int:
    path, limit = sys.argv[1], int(sys.argv[2])
    from acquisition.lsl_env import configure_lsl

    configure_lsl("machine")
    from acquisition.recorder import Recorder, RecorderState
    from tests.recording.fakes import FakeSource

    # The kernel sends SIGXFSZ (default: kill) when the limit is hit; ignored, write() gets EFBIG.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    src = FakeSource(buffer_seconds=30.0, rate=1000.0).connect(timeout=2.0)
    rec = Recorder(path, poll_interval=0.05)
    rec.add_source(src)
    rec.start()
    end = time.monotonic() + 15
    while rec.state == RecorderState.RECORDING and time.monotonic() < end:
        time.sleep(0.02)
    before = src.buffer.counter
    end = time.monotonic() + 5
    while src.buffer.counter < before + 200 and time.monotonic() < end:
        time.sleep(0.02)
    rec.stop()
    res = {
        "state": rec.state.value,
        "error": str(rec.error),
        "counter_before": before,
        "counter_after": src.buffer.counter,
        "source_state": src.state.value,
    }
    src.disconnect()
    print("RESULT " + json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
