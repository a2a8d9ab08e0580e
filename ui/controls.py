"""Session controls: source, model bundle, decoding, recording, user markers, replay.

The widget only emits requests (signals); the main window carries them out on the session.
Buttons whose back-end is not available (no decoder worker, no recorder, not a replay) are
disabled with a tooltip that says why.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from .status import fmt_elapsed, human_bytes

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)

#: Longest source spec shown as is in the Source box (longer paths are shortened, the full spec
#: is in the tooltip).
MAX_SPEC_CHARS = 40


def short_spec(spec: str, max_chars: int = MAX_SPEC_CHARS) -> str:
    """``spec`` for display: a long path keeps its kind and file name (``file:…/S001R04.edf``)."""
    if len(spec) <= max_chars:
        return spec
    kind, sep, rest = spec.partition(":")
    head, slash, name = rest.replace("\\", "/").rpartition("/")
    if sep and slash:
        return f"{kind}:…/{name}"
    return spec[: max_chars // 2 - 1] + "…" + spec[-(max_chars // 2):]


def scrollable(widget: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
    """``widget`` in a vertical scroll area: a short dock scrolls instead of squeezing (and
    clipping) its word-wrapped labels."""
    area = QtWidgets.QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(widget)
    return area


class VerticalScroll(QtWidgets.QScrollArea):
    """Scrolls ``widget`` up and down only, for a dock: never narrower than the widget needs
    (nothing is cut at the right), however its content changes (another model, more command
    boxes), and showing at least ``min_visible`` px of its height (all of a smaller widget).

    Parameters
    ----------
    widget : QWidget
    min_visible : int
        Height (px) of the widget the area always shows: squeezed further, the docks under the
        plots took the plots' height (0: no minimum beyond the scroll area's own).
    """

    def __init__(self, widget: QtWidgets.QWidget, min_visible: int = 0,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.min_visible = int(min_visible)
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 (Qt name)
        if obj is self.widget() and ev.type() == QtCore.QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the content's minimum changed: tell the dock
        return super().eventFilter(obj, ev)

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        hint = super().minimumSizeHint()
        inner = self.widget().minimumSizeHint()
        bar = self.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        return QtCore.QSize(max(hint.width(), inner.width() + bar),
                            max(hint.height(), min(inner.height(), self.min_visible)))


class _JumpToClickStyle(QtWidgets.QProxyStyle):
    """A left click on the seek slider's groove puts the handle there (and the release seeks),
    as in media players; the default moved it one page step (1 %) towards the click."""

    def styleHint(self, hint, option=None, widget=None, returnData=None):  # noqa: N802
        if hint == QtWidgets.QStyle.StyleHint.SH_Slider_AbsoluteSetButtons:
            return int(QtCore.Qt.MouseButton.LeftButton.value)
        return super().styleHint(hint, option, widget, returnData)


#: Slider actions of the keyboard (arrows, Page Up/Down, Home/End) and of clicks on the groove
#: that are not a drag: each is a seek (a drag seeks on release).
_SEEK_ACTIONS = (
    QtWidgets.QAbstractSlider.SliderAction.SliderSingleStepAdd,
    QtWidgets.QAbstractSlider.SliderAction.SliderSingleStepSub,
    QtWidgets.QAbstractSlider.SliderAction.SliderPageStepAdd,
    QtWidgets.QAbstractSlider.SliderAction.SliderPageStepSub,
    QtWidgets.QAbstractSlider.SliderAction.SliderToMinimum,
    QtWidgets.QAbstractSlider.SliderAction.SliderToMaximum,
)


class SessionControls(QtWidgets.QWidget):
    """Signals
    -------
    chooseSourceRequested()
    loadModelRequested()
    decodeToggled(bool)
    recordToggled(bool, str)            (on, file path)
    markerRequested(str)                (label)
    playPauseToggled(bool)              (True = play)
    seekRequested(float)                (seconds)
    speedChanged(float)
    """

    chooseSourceRequested = QtCore.Signal()
    loadModelRequested = QtCore.Signal()
    decodeToggled = QtCore.Signal(bool)
    recordToggled = QtCore.Signal(bool, str)
    markerRequested = QtCore.Signal(str)
    playPauseToggled = QtCore.Signal(bool)
    seekRequested = QtCore.Signal(float)
    speedChanged = QtCore.Signal(float)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)

        # source
        box = QtWidgets.QGroupBox("Source")
        v = QtWidgets.QVBoxLayout(box)
        self.source_label = QtWidgets.QLabel("—")
        self.source_label.setWordWrap(True)
        self.source_btn = QtWidgets.QPushButton("Choose source…")
        v.addWidget(self.source_label)
        v.addWidget(self.source_btn)
        lay.addWidget(box)

        # model + decoding
        box = QtWidgets.QGroupBox("Decoder")
        v = QtWidgets.QVBoxLayout(box)
        self.model_label = QtWidgets.QLabel("no model loaded")
        self.model_label.setWordWrap(True)
        self.load_btn = QtWidgets.QPushButton("Load model bundle…")
        self.decode_btn = QtWidgets.QPushButton("Start decoding")
        self.decode_btn.setCheckable(True)
        self.decode_btn.setEnabled(False)
        self.decode_btn.setToolTip("Load a model bundle first")
        v.addWidget(self.model_label)
        v.addWidget(self.load_btn)
        v.addWidget(self.decode_btn)
        lay.addWidget(box)

        # recording
        box = QtWidgets.QGroupBox("Recording")
        g = QtWidgets.QGridLayout(box)
        self.file_edit = QtWidgets.QLineEdit()
        self.file_edit.setPlaceholderText("recordings/session.xdf")
        self.browse_btn = QtWidgets.QPushButton("…")
        self.browse_btn.setMaximumWidth(30)
        self.record_btn = QtWidgets.QPushButton("● Record")
        self.record_btn.setCheckable(True)
        self.record_info = QtWidgets.QLabel("not recording")
        #: Where the last recording went (stays until the next one is saved).
        self.last_saved = QtWidgets.QLabel("")
        self.last_saved.setWordWrap(True)
        self.last_saved.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.last_saved.setVisible(False)
        g.addWidget(self.file_edit, 0, 0)
        g.addWidget(self.browse_btn, 0, 1)
        g.addWidget(self.record_btn, 1, 0, 1, 2)
        g.addWidget(self.record_info, 2, 0, 1, 2)
        g.addWidget(self.last_saved, 3, 0, 1, 2)
        lay.addWidget(box)

        # markers
        box = QtWidgets.QGroupBox("Markers")
        g = QtWidgets.QGridLayout(box)
        self.marker_edit = QtWidgets.QLineEdit("mark")
        self.marker_btn = QtWidgets.QPushButton("Add marker (M)")
        self.marker_btn.setToolTip("Adds a marker now. Keys: M = this label, 1–9 = markers '1'…'9'")
        g.addWidget(self.marker_edit, 0, 0)
        g.addWidget(self.marker_btn, 0, 1)
        lay.addWidget(box)

        # replay
        self.replay_box = QtWidgets.QGroupBox("Replay")
        g = QtWidgets.QGridLayout(self.replay_box)
        self.play_btn = QtWidgets.QPushButton("Pause")
        self.play_btn.setCheckable(True)
        self.play_btn.setChecked(True)
        self.speed_combo = QtWidgets.QComboBox()
        for s in SPEEDS:
            self.speed_combo.addItem(f"{s:g}×", s)
        self.speed_combo.setCurrentIndex(SPEEDS.index(1.0))
        self.seek_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.seek_slider.setRange(0, 1000)
        # (no base style passed: QProxyStyle would take ownership of the application's style)
        self._seek_style = _JumpToClickStyle()
        self._seek_style.setParent(self.seek_slider)  # deleted with it
        self.seek_slider.setStyle(self._seek_style)
        self.position_label = QtWidgets.QLabel("0:00:00 / 0:00:00")
        g.addWidget(self.play_btn, 0, 0)
        g.addWidget(self.speed_combo, 0, 1)
        g.addWidget(self.seek_slider, 1, 0, 1, 2)
        g.addWidget(self.position_label, 2, 0, 1, 2)
        lay.addWidget(self.replay_box)
        self._duration = 0.0
        self.set_replay_available(False)
        lay.addStretch(1)

        self.source_btn.clicked.connect(self.chooseSourceRequested)
        self.load_btn.clicked.connect(self.loadModelRequested)
        self.decode_btn.toggled.connect(self._on_decode)
        self.record_btn.toggled.connect(self._on_record)
        self.browse_btn.clicked.connect(self._browse)
        self.marker_btn.clicked.connect(self.request_marker)
        self.marker_edit.returnPressed.connect(self.request_marker)
        self.play_btn.toggled.connect(self._on_play)
        self.seek_slider.sliderReleased.connect(self._on_seek)
        # the keyboard and page clicks moved the handle without seeking: the 4 Hz read-out put
        # it back a moment later, as if the replay refused to jump
        self.seek_slider.actionTriggered.connect(self._on_slider_action)
        self.speed_combo.currentIndexChanged.connect(
            lambda i: self.speedChanged.emit(float(self.speed_combo.itemData(i))))

    # ------------------------------------------------------------------ requests
    def request_marker(self, label: str | None = None) -> None:
        label = label if isinstance(label, str) and label else (self.marker_edit.text().strip() or "mark")
        self.markerRequested.emit(label)

    def _on_decode(self, on: bool) -> None:
        self.decode_btn.setText("Stop decoding" if on else "Start decoding")
        self.decodeToggled.emit(on)

    def _on_record(self, on: bool) -> None:
        self.record_btn.setText("■ Stop recording" if on else "● Record")
        self.file_edit.setEnabled(not on)
        self.browse_btn.setEnabled(not on)
        self.recordToggled.emit(on, self.file_edit.text().strip())

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Record to", self.file_edit.text() or "recordings/session.xdf", "XDF (*.xdf);;All files (*)")
        if path:
            self.file_edit.setText(path)

    def _on_play(self, playing: bool) -> None:
        self.play_btn.setText("Pause" if playing else "Play")
        self.playPauseToggled.emit(playing)

    def _on_seek(self) -> None:
        if self._duration > 0:
            self.seekRequested.emit(self.seek_slider.value() / 1000.0 * self._duration)

    def _on_slider_action(self, action: int) -> None:
        """A step of the seek slider that is not a drag (keys, a click on the groove): seek to
        where it puts the handle (``sliderPosition``: the value is set after this signal)."""
        if self.seek_slider.isSliderDown() or self._duration <= 0:
            return
        if action not in [int(getattr(a, "value", a)) for a in _SEEK_ACTIONS]:
            return
        self.seekRequested.emit(self.seek_slider.sliderPosition() / 1000.0 * self._duration)

    # ------------------------------------------------------------------ state from the window
    def set_source_text(self, text: str, tooltip: str = "") -> None:
        """``text`` in the Source box; ``tooltip`` the full details (e.g. the whole path)."""
        self.source_label.setText(text)
        self.source_label.setToolTip(tooltip)

    def set_model(self, text: str | None, decodable: bool, reason: str = "") -> None:
        self.model_label.setText(text or "no model loaded")
        self.decode_btn.setEnabled(decodable)
        self.decode_btn.setToolTip(reason if not decodable else "Start / stop the online decoder")

    def set_decoding(self, on: bool, *, paused: str = "") -> None:
        """Show decoding on or off; ``paused`` (with ``on``): decoding stays on but no decoder
        runs for now, and why (e.g. the replay ended): the button says so, a click stops
        decoding."""
        self.decode_btn.blockSignals(True)
        self.decode_btn.setChecked(on)
        self.decode_btn.setText(("Decoding paused" if paused else "Stop decoding") if on
                                else "Start decoding")
        if on and paused:
            self.decode_btn.setToolTip(f"{paused} Click to stop decoding.")
        self.decode_btn.blockSignals(False)

    def set_recording_available(self, available: bool, reason: str = "") -> None:
        self.record_btn.setEnabled(available)
        self.record_btn.setToolTip(reason if not available else "Record EEG, markers and predictions")

    def set_recording(self, on: bool, elapsed: float | None = None, size: int | None = None) -> None:
        if self.record_btn.isChecked() != on:
            self.record_btn.blockSignals(True)
            self.record_btn.setChecked(on)
            self.record_btn.setText("■ Stop recording" if on else "● Record")
            self.file_edit.setEnabled(not on)
            self.browse_btn.setEnabled(not on)
            self.record_btn.blockSignals(False)
        self.record_info.setText(f"recording {fmt_elapsed(elapsed)}, {human_bytes(size)}" if on else "not recording")

    def set_record_path(self, path: str) -> None:
        """Show the (absolute) file the next recording goes to; the whole path on hover."""
        self.file_edit.setText(path)
        self.file_edit.setCursorPosition(len(path))  # the file name, not the folder, in view
        self.file_edit.setToolTip(path)

    def set_last_saved(self, path: str) -> None:
        self.last_saved.setText(f"Last saved: {path}")
        self.last_saved.setToolTip(path)
        self.last_saved.setVisible(True)

    def set_replay_available(self, available: bool) -> None:
        self.replay_box.setEnabled(available)
        self.replay_box.setToolTip("" if available else "Replay controls work when the source is a file")

    def set_replay_position(self, position: float, duration: float, playing: bool, *,
                            finished: bool = False) -> None:
        """Show the replay's position; a ``finished`` replay offers Play (again) from the start."""
        self._duration = max(0.0, float(duration))
        if not self.seek_slider.isSliderDown() and self._duration > 0:
            self.seek_slider.blockSignals(True)
            self.seek_slider.setValue(int(round(1000 * min(1.0, position / self._duration))))
            self.seek_slider.blockSignals(False)
        self.position_label.setText(f"{fmt_elapsed(position)} / {fmt_elapsed(duration)}")
        if self.play_btn.isChecked() != playing:
            self.play_btn.blockSignals(True)
            self.play_btn.setChecked(playing)
            self.play_btn.setText("Pause" if playing else "Play")
            self.play_btn.blockSignals(False)
        self.play_btn.setToolTip("The replay reached the end: Play replays the file from the start"
                                 if finished else "Pause / continue the replay")
