"""In-process sources for GUI tests and the GUI benchmark.

Both are real :class:`acquisition.base.Source` subclasses (same thread, buffer, states) so the
window is exercised exactly as with a device; only the transport is simulated.
"""

from __future__ import annotations

import time

import numpy as np

from acquisition.base import Source
from acquisition.lsl_env import import_pylsl
from acquisition.stream_info import StreamInfo


class SimulatedSource(Source):
    """``n_channels`` of EEG-like signal at ``sfreq``, delivered on the monotonic clock.

    Channel ``i`` is a sine at ``5 + i % 20`` Hz of ``amplitude_uv`` plus white noise, in volts.
    ``flat`` channels are constant 0, ``railed`` channels sit at +200 mV.
    """

    kind = "simulated"

    def __init__(self, n_channels: int = 8, sfreq: float = 250.0, *, amplitude_uv: float = 20.0,
                 flat: tuple[int, ...] = (), railed: tuple[int, ...] = (), name: str = "Simulated",
                 seed: int = 0, prefill_s: float = 0.0, cheap: bool = False, **kwargs) -> None:
        kwargs.setdefault("buffer_seconds", 40.0)
        super().__init__(**kwargs)
        self.n_channels = int(n_channels)
        self.sfreq = float(sfreq)
        self.amplitude_uv = float(amplitude_uv)
        self.flat, self.railed = tuple(flat), tuple(railed)
        self.name = name
        self._rng = np.random.default_rng(seed)
        self._freqs = 5.0 + (np.arange(self.n_channels) % 20)
        self._sent = 0
        self._t0 = 0.0
        self._lsl0 = 0.0
        self.paused = False
        #: Seconds of signal delivered at once by the first pull (a full scope window at start).
        self.prefill_s = float(prefill_s)
        #: Tile one precomputed second of signal instead of computing every sample (benchmarks:
        #: keeps the simulated device's own CPU cost out of the GUI's figures).
        self.cheap = bool(cheap)
        self._table: np.ndarray | None = None

    def _open(self, timeout: float) -> StreamInfo:
        pylsl = import_pylsl()
        self._t0 = time.monotonic() - self.prefill_s
        self._lsl0 = pylsl.local_clock() - self.prefill_s
        self._sent = 0
        if self.cheap:
            n = int(self.sfreq)
            self.cheap = False
            self._table = self.generate(0, n)[0]
            self.cheap = True
        return StreamInfo(
            name=self.name, source_kind=self.kind,
            ch_names=tuple(f"EEG{i + 1:03d}" for i in range(self.n_channels)),
            ch_types=("eeg",) * self.n_channels, units=("V",) * self.n_channels, sfreq=self.sfreq,
        )

    def generate(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx = start + np.arange(n)
        t = idx / self.sfreq
        if self.cheap and self._table is not None:
            return self._table[idx % len(self._table)], self._lsl0 + t
        data = np.sin(2 * np.pi * self._freqs[None, :] * t[:, None]) * self.amplitude_uv
        data += self._rng.standard_normal(data.shape) * 0.2 * self.amplitude_uv
        for c in self.flat:
            data[:, c] = 0.0
        for c in self.railed:
            data[:, c] = 200_000.0
        return data * 1e-6, self._lsl0 + t

    def _pull(self):
        if self.paused:
            self._t0 = time.monotonic() - self._sent / self.sfreq
            return None
        due = int((time.monotonic() - self._t0) * self.sfreq) - self._sent
        if due <= 0:
            return None
        data, ts = self.generate(self._sent, due)
        self._sent += due
        return data, ts

    def _close(self) -> None:
        pass


class ScriptedSource(Source):
    """A source fed by the test: :meth:`push` queues a chunk, ``acquire()`` delivers it."""

    kind = "scripted"

    def __init__(self, ch_names=("C3", "Cz", "C4"), sfreq: float = 100.0, units=None, **kwargs) -> None:
        kwargs.setdefault("buffer_seconds", 60.0)
        super().__init__(**kwargs)
        self.ch_names = tuple(ch_names)
        self.sfreq = float(sfreq)
        self.units = tuple(units or ("V",) * len(self.ch_names))
        self._queue: list[tuple[np.ndarray, np.ndarray]] = []

    def _open(self, timeout: float) -> StreamInfo:
        n = len(self.ch_names)
        return StreamInfo(name="Scripted", source_kind=self.kind, ch_names=self.ch_names,
                          ch_types=("eeg",) * n, units=self.units, sfreq=self.sfreq)

    def push(self, data: np.ndarray, timestamps: np.ndarray) -> None:
        self._queue.append((np.asarray(data, dtype=float), np.asarray(timestamps, dtype=float)))

    def _pull(self):
        return self._queue.pop(0) if self._queue else None

    def _close(self) -> None:
        pass


def wait_streaming(qtbot, win, timeout: int = 10_000) -> None:
    """Wait (bounded) until the window's source streams and the scope knows its channels."""
    qtbot.waitUntil(lambda: win.source is not None and win.source.state.value == "streaming"
                    and win.scope.n_channels > 0, timeout=timeout)


def assert_flags_shown(scope, flags: dict[int, str], *, every_row_named: bool = False) -> None:
    """Assert that ``scope`` (a ``ui.scope.ScopeWidget``) shows ``flags`` (``{channel: "flat" |
    "railed"}``, the channel flags it should have found); for ``qtbot.waitUntil(lambda:
    assert_flags_shown(...))``, whose timeout error then chains the last failed assertion.

    Checked: the flags found; each flagged channel's name label on its own row with the flag
    (``"EEG003 FLAT"``); every other label shown is the plain name of its row's channel; the
    flag text, in the flag's colour, at the end of each flagged row; the flagged traces drawn in
    the flag's colour group. Labels are read by row (tick position), not by their index in the
    tick list: a squeezed scope labels only every n-th row (flagged rows always).
    ``every_row_named``: also every visible channel has its label (the scope has room for all).
    """
    from ui.scope import STYLE_PENS

    names, vis = scope._info.ch_names, scope.visible_channels
    assert scope.flags == flags, f"flags found: {scope.flags}"
    labels = {vis[-int(round(pos))]: text
              for pos, text in scope.plot.getAxis("left")._tickLevels[0]}
    want = {ch: f"{names[ch]} {flag.upper()}" for ch, flag in flags.items()}
    assert {ch: labels.get(ch) for ch in want} == want, f"labels by channel: {labels}"
    plain = {ch: text for ch, text in labels.items() if ch not in want}
    assert plain == {ch: names[ch] for ch in plain}, f"labels by channel: {labels}"
    if every_row_named:
        assert sorted(labels) == sorted(vis), f"labels by channel: {labels}"
    texts = {vis[-int(round(item.pos().y()))]: (item.textItem.toPlainText(),
                                                item.color.getRgb()[:3])
             for item in scope._flag_items}
    assert texts == {ch: (f.upper(), STYLE_PENS[f]) for ch, f in flags.items()}, \
        f"flag texts by channel: {texts}"
    for f in set(flags.values()):
        assert scope.drawn.get(f) == sorted(ch for ch, g in flags.items() if g == f), \
            f"channels drawn per style: {scope.drawn}"


def wait_until(condition, timeout: float = 10.0, *, poll: float = 0.005) -> None:
    """Process Qt events until ``condition()`` is true (``AssertionError`` after ``timeout`` s).

    Unlike ``qtbot.waitUntil`` (``QTest.qWait``) this sleeps between event rounds with the GIL
    released, so Python worker threads (training, background connects) make progress."""
    import time

    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance()
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout:g} s")
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 10)
        time.sleep(poll)


def decoding_a_replay(win, bundle, *, record_to=None, n: int = 1) -> None:
    """``win`` connected to its replay, ``bundle`` loaded (recording to ``record_to``) and
    decoding, ``n`` decisions shown."""
    wait_until(lambda: win.source is not None and win.source.connected and not win._connecting, 20)
    assert win.load_model(str(bundle))
    if record_to is not None:
        assert win.start_recording(str(record_to))
    win.controls.decode_btn.click()
    wait_until(lambda: win.decoder is not None, 60)
    wait_until(lambda: win.prediction.n_predictions_since_start >= n, 30)


def process_events_for(seconds: float) -> None:
    """Keep the event loop (and worker threads) going for ``seconds`` (a bounded wait)."""
    import time

    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() >= end, timeout=seconds + 1.0)


def record_cued_trials(wizard, trials_per_class: int, timeout: float = 90.0) -> None:
    """Drive a CalibrationWizard as a user would: Connect (the device page's settings), signal
    check, instructions (``trials_per_class``, no XDF recording), then a cued run to its end."""
    wizard.device.connect_source()
    wait_until(lambda: wizard.device.isComplete() and wizard.device.connect_btn.isEnabled(), 60)
    wizard.next()  # signal check
    wizard.next()  # instructions
    wizard.instructions.trials.setValue(trials_per_class)
    wizard.instructions.record.setChecked(False)
    wizard.next()  # cued recording
    wizard.acquisition.start_btn.click()
    wait_until(wizard.acquisition.isComplete, timeout)
