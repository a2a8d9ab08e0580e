"""Calibration wizard: device → signal check → instructions → cued recording → training →
results → online feedback (with optional co-adaptive update).

``CalibrationWizard(parent=None, source_spec="simulated:1", pretrained=None)`` is the entry point
(the main window opens it from a menu). Everything it does is done by non-Qt code:
:mod:`bci_app.protocol`, :mod:`acquisition.simulated`, :mod:`decoders.calibration`,
:mod:`bci_app.profiles`.
"""

from __future__ import annotations

from .wizard import CalibrationWizard

__all__ = ["CalibrationWizard"]
