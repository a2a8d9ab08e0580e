"""Status bar and the lost-device banner.

The main window polls a :class:`StatusSnapshot` four times a second (reading counters only, never
waiting) and reacts at once to state changes that arrive as queued signals from the acquisition
thread (:class:`ui.qt_bridge.SourceStateBridge`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6 import QtCore, QtWidgets

STATE_COLOURS = {
    "streaming": ("#1f7a3a", "white"),
    "connecting": ("#1f4f7a", "white"),
    "stalled": ("#b07a00", "black"),
    "lost": ("#b00020", "white"),
    "reconnecting": ("#b00020", "white"),
    "stopped": ("#555555", "white"),
    "finished": ("#555555", "white"),
    "paused": ("#555555", "white"),
    "error": ("#b00020", "white"),
    "none": ("#444444", "white"),
}


@dataclass
class StatusSnapshot:
    """What the status bar shows. Everything optional except the source state."""

    state: str = "none"
    source_name: str = ""
    rate: float = 0.0
    nominal_rate: float = 0.0
    samples_missing: int = 0
    gaps: int = 0
    message: str = ""
    decoder_p50_ms: float | None = None
    decoder_p99_ms: float | None = None
    skipped_windows: int | None = None
    decoding: bool = False
    #: Why no decoder runs although decoding is on, e.g. "paused (replay ended)" ("": none).
    decoder_note: str = ""
    recording_path: str | None = None
    recording_bytes: int | None = None
    recording_elapsed: float | None = None


def stat_value(stats: Any, *names: str) -> Any:
    """First of ``names`` found on ``stats`` (a dict or an object), else None."""
    if stats is None:
        return None
    for name in names:
        if isinstance(stats, dict) and name in stats:
            return stats[name]
        if hasattr(stats, name):
            return getattr(stats, name)
    return None


def human_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def fmt_elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    return f"{s // 3600:d}:{(s // 60) % 60:02d}:{s % 60:02d}"


#: Longest recording file name shown in the status bar (the full path is in the tooltip): a long
#: name must not widen the window past a laptop screen.
MAX_NAME_CHARS = 28
RECORD_TIP = "Recording state, elapsed time and file size"


def elide_middle(text: str, max_chars: int) -> str:
    """``text`` shortened in the middle with "…" to at most ``max_chars`` characters (the
    start and the end, e.g. the date and the extension of a file name, stay)."""
    if len(text) <= max_chars:
        return text
    keep = max_chars - 1
    return text[: (keep + 1) // 2] + "…" + text[len(text) - keep // 2:]


class StatusPanel(QtCore.QObject):
    """The permanent widgets of the main window's status bar."""

    def __init__(self, bar: QtWidgets.QStatusBar) -> None:
        super().__init__(bar)
        self.bar = bar
        self.state_label = QtWidgets.QLabel()
        self.state_label.setObjectName("sourceState")
        self.state_label.setMinimumWidth(110)
        self.state_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.rate_label = QtWidgets.QLabel()
        self.lost_label = QtWidgets.QLabel()
        self.decoder_label = QtWidgets.QLabel()
        self.record_label = QtWidgets.QLabel()
        for w, tip in (
            (self.state_label, "Source state"),
            (self.rate_label, "Effective sampling rate (samples received per second) / nominal"),
            (self.lost_label, "Samples lost in gaps (dropped packets, stalls, reconnections)"),
            (self.decoder_label, "Decoder latency (median / 99th percentile) and skipped windows"),
            (self.record_label, RECORD_TIP),
        ):
            w.setToolTip(tip)
            bar.addPermanentWidget(w)
        self.snapshot = StatusSnapshot()
        self.update(self.snapshot)

    def update(self, s: StatusSnapshot) -> None:
        self.snapshot = s
        bg, fg = STATE_COLOURS.get(s.state, STATE_COLOURS["none"])
        self.state_label.setText(f" {s.state} " if s.state != "none" else " no source ")
        self.state_label.setStyleSheet(
            f"QLabel#sourceState {{ background: {bg}; color: {fg}; border-radius: 3px; padding: 1px 6px; }}"
        )
        self.rate_label.setText(f"{s.rate:6.1f} / {s.nominal_rate:g} Hz")
        self.lost_label.setText(f"lost {s.samples_missing} samples ({s.gaps} gaps)")
        if s.decoder_p50_ms is None and not s.decoding:
            self.decoder_label.setText(f"decoder: {s.decoder_note or 'off'}")
        else:
            p50 = "—" if s.decoder_p50_ms is None else f"{s.decoder_p50_ms:.1f}"
            p99 = "—" if s.decoder_p99_ms is None else f"{s.decoder_p99_ms:.1f}"
            skipped = "—" if s.skipped_windows is None else str(s.skipped_windows)
            self.decoder_label.setText(f"decoder p50 {p50} / p99 {p99} ms, skipped {skipped}")
        if s.recording_path:
            name = s.recording_path.replace("\\", "/").rsplit("/", 1)[-1]
            self.record_label.setText(
                f"● REC {elide_middle(name, MAX_NAME_CHARS)} {fmt_elapsed(s.recording_elapsed)} "
                f"{human_bytes(s.recording_bytes)}"
            )
            self.record_label.setStyleSheet("color: #ff5050; font-weight: bold;")
            self.record_label.setToolTip(f"Recording to {s.recording_path}")
        else:
            self.record_label.setText("not recording")
            self.record_label.setStyleSheet("")
            self.record_label.setToolTip(RECORD_TIP)


class Banner(QtWidgets.QFrame):
    """A coloured strip over the scope for states the user must not miss (lost, stalled, errors).

    Signals
    -------
    actionRequested()
        The banner's button ("Choose source…") was clicked.
    replayRequested()
        "Replay again" was clicked (shown when a replay finished).
    """

    actionRequested = QtCore.Signal()
    replayRequested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        self.label = QtWidgets.QLabel()
        self.label.setWordWrap(True)
        self.button = QtWidgets.QPushButton("Choose source…")
        self.button.clicked.connect(self.actionRequested)
        self.replay_button = QtWidgets.QPushButton("Replay again")
        self.replay_button.setToolTip("Play the file again from the start")
        self.replay_button.clicked.connect(self.replayRequested)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.replay_button)
        lay.addWidget(self.button)
        self.kind = ""
        self.hide()

    def show_message(self, kind: str, text: str) -> None:
        """``kind`` picks the colour: lost / reconnecting / error (red), stalled (amber), info."""
        bg, fg = STATE_COLOURS.get(kind, ("#1f4f7a", "white"))
        self.kind = kind
        self.setStyleSheet(f"QFrame#banner {{ background: {bg}; }} QFrame#banner QLabel {{ color: {fg}; "
                           "font-weight: bold; }")
        self.label.setText(text)
        self.button.setVisible(kind in ("lost", "reconnecting", "error", "finished"))
        self.replay_button.setVisible(kind == "finished")
        self.show()

    def clear(self) -> None:
        self.kind = ""
        self.label.setText("")
        self.hide()

    @property
    def text(self) -> str:
        return self.label.text()
