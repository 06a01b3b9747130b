"""The user-facing error types, in a leaf module every layer may import.

Each one means "the user's input cannot be used" and carries a one-line message naming the key,
file or setting and the valid choices; the command line reports it with exit code 2, never as a
traceback.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and the valid choices."""


class DataError(ValueError):
    """Data that cannot be used as configured: the message names the file or folder and what was expected.

    Raised before training starts for an unusable layout (an empty folder, no images of a known
    format, a class folder with no images) and, with ``data.on_error=raise``, for an unreadable file.
    """


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, not an openjepa checkpoint, or another architecture.

    The message names the file (or the mismatching keys) in one line.
    """


USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, DataError, CheckpointError, FileNotFoundError,
                                                FileExistsError)
"""What the command line reports in one line with exit code 2."""
