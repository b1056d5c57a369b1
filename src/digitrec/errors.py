"""Errors that digitrec raises for bad input: each one says what is wrong and how to fix it.

The CLI prints their message as a single line and exits non-zero; anything else that escapes
is a bug in digitrec, not in the user's input.
"""

import errno

# OS errors that say something about the user's files or disk, not about digitrec: worded by
# `os_error_message`, and reported as one line wherever they escape (the CLI's group).
USER_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENOTDIR, errno.EEXIST,
               errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP}


class DigitrecError(Exception):
    """Base class for every error caused by the user's input or environment."""


class DataError(DigitrecError):
    """A dataset file is missing, corrupt, or could not be downloaded."""


class CheckpointError(DigitrecError):
    """A checkpoint file is unreadable, unsafe, or not a digitrec/tutorial model."""


class ConfigError(DigitrecError):
    """A training or evaluation setting is invalid (unknown model, bad device, ...)."""


class OutputError(DigitrecError):
    """A file or folder could not be written: no permission, a read-only or full disk, a file in the way."""


def os_error_message(e: OSError, path=None) -> str:
    """One line for an OSError on `path` (default: the file the OS named) that says what to fix."""
    name = path if path is not None else e.filename
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: {name}"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{name}: the disk is full (no space left to write it)"
    if e.errno == errno.EROFS:
        return f"{name}: the file system is read-only"
    if e.errno == errno.ENOTDIR:
        return f"{name}: part of this path is a file, not a folder"
    if e.errno == errno.EEXIST:
        return f"{name}: exists and is not a folder"
    return f"{name}: {e.strerror or e}"


def require(module: str, extra: str):
    """Import an optional dependency, or say in one line which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DigitrecError(f"this needs {module.split('.')[0]}, which is not installed: pip install -e '.[{extra}]' "
                            f"in a clone of digitrec (pip install 'digitrec[{extra}]' for an installed package)") from None
