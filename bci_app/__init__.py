"""bci_app: a real-time EEG brain-computer interface application.

The application layer: sessions, configuration, the calibration protocol and the ``bci-app``
command line. Nothing here imports Qt; the GUI lives in the top-level ``ui`` package.
"""

from __future__ import annotations

__version__ = "0.1.0"
