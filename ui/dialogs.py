"""Small modal dialogs shared by the main window and the calibration wizard."""

from __future__ import annotations

from PySide6 import QtWidgets


def ask_yes_no(parent: QtWidgets.QWidget, title: str, question: str) -> bool:
    """A modal Yes/No question (No is the default button); True for Yes."""
    buttons = QtWidgets.QMessageBox.StandardButton
    answer = QtWidgets.QMessageBox.question(parent, title, question, buttons.Yes | buttons.No,
                                            buttons.No)
    return answer == buttons.Yes
