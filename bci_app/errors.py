"""The application's exception hierarchy.

Every error raised on purpose by bci_app derives from :class:`BciAppError`, so a caller (the CLI,
the GUI) can catch the app's own errors and show their message, while real bugs still surface as
tracebacks. Messages name what was wrong, what was expected, and how to fix it.
"""

from __future__ import annotations


class BciAppError(Exception):
    """Root of every error bci_app raises on purpose."""


class ConfigError(BciAppError, ValueError):
    """A setting, parameter or command-line argument is invalid."""


class DataFileError(BciAppError, ValueError):
    """A file cannot be read: missing, unsupported, truncated or without the needed content."""


class SourceError(BciAppError, RuntimeError):
    """A source could not connect, or failed while streaming."""


class StreamNotFoundError(SourceError):
    """No stream matched the request within the timeout."""


class StreamMismatchError(BciAppError, ValueError):
    """A stream's channels or rate do not match what a consumer needs."""


class BundleError(BciAppError, ValueError):
    """A model bundle is missing, corrupt or incompatible with this code."""


class RecordingError(BciAppError, RuntimeError):
    """A recording cannot be written (disk full, target gone, ...)."""


class OperationCancelled(BciAppError, RuntimeError):
    """A running operation stopped because the user closed what it was for (a dialog, a wizard)."""
