"""Choose a source: synthetic board, an OpenBCI board on a serial port, an LSL stream, a file.

The dialog only builds a spec string for :func:`bci_app.sources.make_source`; it connects
nothing. Looking for LSL streams takes up to a second, so it runs on a background thread and the
list fills in when the answer arrives (the window keeps painting meanwhile).
"""

from __future__ import annotations

import logging

from PySide6 import QtCore, QtWidgets

from .qt_bridge import BackgroundCall

logger = logging.getLogger(__name__)

OPENBCI_BOARDS = (("Cyton (8 ch)", "cyton"), ("Cyton + Daisy (16 ch)", "cyton-daisy"),
                  ("Ganglion (4 ch)", "ganglion"))
#: EEG channels of each OpenBCI board (what the channel names must count).
OPENBCI_CHANNELS = (("cyton", 8), ("cyton-daisy", 16), ("ganglion", 4))
#: EEG channels of BrainFlow's synthetic board.
SYNTHETIC_CHANNELS = 16
FILE_FILTER = ("Recordings (*.xdf *.fif *.fif.gz *.edf *.bdf *.vhdr *.txt *.csv);;All files (*)")


def spec_for(kind: str, *, board: str = "", port: str = "", stream: str = "", path: str = "",
             channels: str = "") -> str:
    """The ``make_source`` spec of a choice; raises ValueError naming what is missing.

    ``channels``: the electrode of each EEG channel, comma-separated in board (stream, file)
    order ("" keeps the source's own names)."""
    if kind == "synthetic":
        names = _channel_names(channels)
        if names and len(names) != SYNTHETIC_CHANNELS:
            raise ValueError(f"Channel names: the synthetic board has {SYNTHETIC_CHANNELS} EEG "
                             f"channels; {len(names)} names were given. Name each channel in "
                             "board order, or leave the field empty.")
        return "synthetic" + _channel_option(names)
    if kind == "openbci":
        if not board:
            raise ValueError("Choose an OpenBCI board (Cyton, Cyton + Daisy or Ganglion).")
        if not port.strip():
            raise ValueError("Choose or type the serial port of the OpenBCI dongle (e.g. /dev/ttyUSB0, COM3).")
        names = _channel_names(channels)
        n = dict(OPENBCI_CHANNELS).get(board)
        if names and n is not None and len(names) != n:
            raise ValueError(f"Channel names: the {board} board has {n} EEG channels; "
                             f"{len(names)} names were given. Name each channel in board "
                             "order, or leave the field empty.")
        return f"brainflow:{board}:{port.strip()}" + _channel_option(names)
    if kind == "lsl":
        if not stream.strip():
            raise ValueError("Select an LSL stream (press Refresh to look again) or type its name.")
        return f"lsl:{stream.strip()}" + _channel_option(_channel_names(channels))
    if kind == "file":
        if not path.strip():
            raise ValueError("Choose a recording to replay.")
        return f"file:{path.strip()}" + _channel_option(_channel_names(channels))
    raise ValueError(f"Unknown source kind {kind!r}; use synthetic, openbci, lsl or file.")


def check_file_spec(spec: str) -> None:
    """A ``file:`` spec must name an existing file: ValueError naming the path and the fix
    (other specs pass: a device or a stream is only known by connecting to it)."""
    import os
    from pathlib import Path

    from bci_app.sources import source_kind, split_channel_option

    if source_kind(spec) != "file":
        return
    rest = split_channel_option(spec.strip())[0].partition(":")[2].strip()
    if not rest:
        raise ValueError("Choose a recording to replay.")
    path = Path(rest).expanduser()
    if not path.exists():
        raise ValueError(f"There is no file {str(path)!r} (a relative path is taken from "
                         f"{os.getcwd()!r}). Check the name, or choose the file with Browse….")
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is a folder: choose a recording file inside it "
                         "(Browse…).")


def _channel_names(text: str) -> tuple[str, ...]:
    """The Channel names field as names (empty: none); ValueError with the source's message."""
    from acquisition.stream_info import check_channel_names

    if not text.strip():
        return ()
    try:
        return check_channel_names(text.replace(";", ","))
    except ValueError as err:  # (ConfigError)
        raise ValueError(f"Channel names: {str(err).removeprefix('channels: ')}") from None


def _channel_option(names: tuple[str, ...]) -> str:
    return "?channels=" + ",".join(names) if names else ""


class SourceDialog(QtWidgets.QDialog):
    """Modal chooser; :attr:`spec` holds the result after ``accept()``.

    With ``check_files`` (the main window), OK on a file replay whose file does not exist (or
    is a folder) keeps the dialog open with the error (:func:`check_file_spec`): the source
    running meanwhile is not stopped for a spec that cannot open.
    """

    def __init__(self, current: str = "synthetic", parent: QtWidgets.QWidget | None = None,
                 *, auto_refresh: bool = True, check_files: bool = False) -> None:
        super().__init__(parent)
        self.check_files = bool(check_files)
        self.setWindowTitle("Choose the EEG source")
        self.spec: str | None = None
        self._lookup: BackgroundCall | None = None
        self.streams: list[dict] = []

        lay = QtWidgets.QVBoxLayout(self)
        self.tabs = QtWidgets.QTabWidget()
        lay.addWidget(self.tabs)

        # synthetic
        w = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(w)
        v.addWidget(QtWidgets.QLabel(
            "BrainFlow's synthetic board: 16 EEG channels at 250 Hz, no hardware needed."))
        self.synthetic_channels_edit = QtWidgets.QLineEdit()
        self.synthetic_channels_edit.setPlaceholderText(
            "optional channel names, 16 in board order (e.g. to rehearse a montage)")
        self.synthetic_channels_edit.setToolTip(
            "The name of each of the board's 16 channels, comma-separated; replaces BrainFlow's "
            "names (Fp1, Fp2, …), so a model or the calibration finds its montage.")
        v.addWidget(QtWidgets.QLabel("Channel names (optional):"))
        v.addWidget(self.synthetic_channels_edit)
        v.addStretch(1)
        self.tabs.addTab(w, "Synthetic")

        # OpenBCI
        w = QtWidgets.QWidget()
        f = QtWidgets.QFormLayout(w)
        self.board_combo = QtWidgets.QComboBox()
        for label, key in OPENBCI_BOARDS:
            self.board_combo.addItem(label, key)
        self.port_combo = QtWidgets.QComboBox()
        self.port_combo.setEditable(True)
        self.port_refresh = QtWidgets.QPushButton("Refresh ports")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.port_combo, 1)
        row.addWidget(self.port_refresh)
        self.channels_edit = QtWidgets.QLineEdit()
        self.channels_edit.setPlaceholderText("optional: C3,Cz,C4,FC3,FC4,CP3,CP4,Pz")
        self.channels_edit.setToolTip(
            "The electrode on each EEG channel, in board order (N1P, N2P, …), comma-separated. "
            "BrainFlow names a Cyton's channels Fp1, Fp2, C3, … whatever the cap; models, "
            "recordings and the calibration find channels by these names.")
        f.addRow("Board", self.board_combo)
        f.addRow("Serial port", row)
        f.addRow("Channel names", self.channels_edit)
        self.tabs.addTab(w, "OpenBCI board")

        # LSL
        w = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(w)
        self.stream_list = QtWidgets.QListWidget()
        self.lsl_name = QtWidgets.QLineEdit()
        self.lsl_name.setPlaceholderText("stream name (or pick one above)")
        self.lsl_refresh = QtWidgets.QPushButton("Refresh")
        self.lsl_status = QtWidgets.QLabel("")
        self.lsl_channels_edit = QtWidgets.QLineEdit()
        self.lsl_channels_edit.setPlaceholderText(
            "optional channel names, in stream order: C3,Cz,C4,… (for a stream without labels)")
        self.lsl_channels_edit.setToolTip(
            "The electrode on each channel of the stream, comma-separated; replaces the "
            "stream's own labels (OpenBCI GUI's LSL stream has none).")
        v.addWidget(self.stream_list, 1)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.lsl_name, 1)
        row.addWidget(self.lsl_refresh)
        v.addLayout(row)
        v.addWidget(self.lsl_channels_edit)
        v.addWidget(self.lsl_status)
        self.tabs.addTab(w, "LSL stream")

        # file
        w = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(w)
        row = QtWidgets.QHBoxLayout()
        self.file_edit = QtWidgets.QLineEdit()
        self.file_edit.setPlaceholderText("recording to replay (XDF, FIF, EDF, BDF, BrainVision, OpenBCI, BrainFlow CSV)")
        self.file_browse = QtWidgets.QPushButton("Browse…")
        row.addWidget(self.file_edit, 1)
        row.addWidget(self.file_browse)
        v.addLayout(row)
        self.file_channels_edit = QtWidgets.QLineEdit()
        self.file_channels_edit.setPlaceholderText(
            "optional channel names, in file order (for a file without electrode labels)")
        self.file_channels_edit.setToolTip(
            "The electrode on each EEG channel of the file, comma-separated; replaces the "
            "file's own names (an OpenBCI GUI file calls them EXG Channel 0, 1, …).")
        v.addWidget(QtWidgets.QLabel("Channel names (optional):"))
        v.addWidget(self.file_channels_edit)
        v.addStretch(1)
        self.tabs.addTab(w, "File replay")

        self.error_label = QtWidgets.QLabel("")
        self.error_label.setStyleSheet("color: #d04040;")
        lay.addWidget(self.error_label)
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        lay.addWidget(self.buttons)

        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.port_refresh.clicked.connect(self.refresh_ports)
        self.lsl_refresh.clicked.connect(self.refresh_streams)
        self.file_browse.clicked.connect(self._browse)
        self.stream_list.currentItemChanged.connect(
            lambda cur, _prev: cur is not None and self.lsl_name.setText(cur.data(QtCore.Qt.ItemDataRole.UserRole)))
        self.stream_list.itemDoubleClicked.connect(lambda _i: self.accept())

        self.refresh_ports()
        self._select_current(current)
        self.tabs.currentChanged.connect(self._on_tab)
        for edit in (self.lsl_name, self.file_edit, *self._channel_edits().values()):  # an edit answers the error: clear it
            edit.textEdited.connect(lambda _t: self.error_label.setText(""))
        self.port_combo.editTextChanged.connect(lambda _t: self.error_label.setText(""))
        if auto_refresh and self.tabs.currentIndex() == 2:
            self.refresh_streams()

    # ------------------------------------------------------------------ helpers
    def _select_current(self, spec: str) -> None:
        from bci_app.sources import split_channel_option

        try:
            spec, names = split_channel_option(spec or "synthetic")
        except ValueError:  # (ConfigError) another option: shown as typed, refused on connect
            names = None
        kind, _, rest = spec.partition(":")
        if kind == "brainflow":
            board, _, port = rest.partition(":")
            i = self.board_combo.findData(board)
            if i >= 0:
                self.board_combo.setCurrentIndex(i)
            self.port_combo.setEditText(port)
            self.channels_edit.setText(names or "")
            self.tabs.setCurrentIndex(1)
        elif kind == "lsl":
            self.lsl_channels_edit.setText(names or "")
            self.lsl_name.setText(rest)
            self.tabs.setCurrentIndex(2)
        elif kind == "file":
            self.file_channels_edit.setText(names or "")
            self.file_edit.setText(rest)
            self.tabs.setCurrentIndex(3)
        else:
            if kind == "synthetic":
                self.synthetic_channels_edit.setText(names or "")
            self.tabs.setCurrentIndex(0)

    def _channel_edits(self) -> dict[str, QtWidgets.QLineEdit]:
        """Each tab's Channel names field, by source kind."""
        return {"synthetic": self.synthetic_channels_edit, "openbci": self.channels_edit,
                "lsl": self.lsl_channels_edit, "file": self.file_channels_edit}

    def _on_tab(self, index: int) -> None:
        self.error_label.setText("")  # it was about the other tab's fields
        if index == 2 and not self.streams and self._lookup is None:
            self.refresh_streams()

    def refresh_ports(self) -> None:
        from acquisition.brainflow_source import list_serial_ports

        current = self.port_combo.currentText()
        self.port_combo.clear()
        ports = list_serial_ports()
        self.port_combo.addItems(ports)
        self.port_combo.setEditText(current or (ports[0] if ports else ""))

    def refresh_streams(self, timeout: float = 1.0) -> None:
        """Look for LSL streams on a background thread; the list fills when it answers."""
        if self._lookup is not None and self._lookup.is_running():
            return
        from acquisition.lsl_source import list_lsl_streams

        self.lsl_status.setText("Looking for LSL streams…")
        self.lsl_refresh.setEnabled(False)
        self._lookup = BackgroundCall(lambda: list_lsl_streams(timeout), "lsl-lookup", self)
        self._lookup.finished.connect(self._on_streams)
        self._lookup.start()

    def _on_streams(self, streams, error: str) -> None:
        self.lsl_refresh.setEnabled(True)
        if error:
            self.lsl_status.setText(f"LSL lookup failed: {error}")
            return
        self.streams = [s for s in (streams or []) if s.get("sfreq", 0) > 0]
        self.stream_list.clear()
        for s in self.streams:
            item = QtWidgets.QListWidgetItem(
                f"{s['name']}  —  {s['type']}, {s['channels']} ch @ {s['sfreq']:g} Hz  ({s['hostname']})")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, s["name"])
            self.stream_list.addItem(item)
        self.lsl_status.setText(f"{len(self.streams)} signal stream(s) visible"
                                + ("" if self.streams else " — start the device software, then Refresh"))

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Recording to replay", self.file_edit.text(),
                                                        FILE_FILTER)
        if path:
            self.file_edit.setText(path)

    def current_spec(self) -> str:
        """The spec of what the dialog shows now (ValueError if incomplete)."""
        kind = ("synthetic", "openbci", "lsl", "file")[self.tabs.currentIndex()]
        return spec_for(kind, board=self.board_combo.currentData() or "",
                        port=self.port_combo.currentText(), stream=self.lsl_name.text(),
                        path=self.file_edit.text(), channels=self._channel_edits()[kind].text())

    def accept(self) -> None:
        try:
            spec = self.current_spec()
            if self.check_files:
                check_file_spec(spec)
            self.spec = spec
        except ValueError as err:
            self.error_label.setText(str(err))
            return
        super().accept()
