"""Errors that digitrec raises for bad input: each one says what is wrong and how to fix it.

The CLI prints their message as a single line and exits non-zero; anything else that escapes
is a bug in digitrec, not in the user's input.
"""


class DigitrecError(Exception):
    """Base class for every error caused by the user's input or environment."""


class DataError(DigitrecError):
    """A dataset file is missing, corrupt, or could not be downloaded."""


class CheckpointError(DigitrecError):
    """A checkpoint file is unreadable, unsafe, or not a digitrec/tutorial model."""


class ConfigError(DigitrecError):
    """A training or evaluation setting is invalid (unknown model, bad device, ...)."""


def require(module: str, extra: str):
    """Import an optional dependency, or say in one line which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DigitrecError(f"this needs {module.split('.')[0]}, which is not installed: "
                            f"pip install 'digitrec[{extra}]'") from None
