"""Why a path the user named cannot serve as a file to read or a folder to use, in words: "does not exist" only
when nothing is there, and otherwise what is (a folder, a pipe, a link that points to itself, no permission)."""

from __future__ import annotations

import errno
import os
import stat


def _stat_problem(path: str | os.PathLike) -> tuple[str | None, os.stat_result | None]:
    try:
        return None, os.stat(path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return "does not exist", None
        if e.errno == errno.ELOOP:
            return "is a symbolic link loop", None
        if e.errno == errno.ENAMETOOLONG:
            return "is a name too long for the file system", None
        return f"cannot be reached ({e.strerror})", None


def file_problem(path: str | os.PathLike) -> str | None:
    """What keeps `path` from being read as a file, or None."""
    problem, st = _stat_problem(path)
    if problem:
        return problem
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a pipe, socket or device)"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def folder_problem(path: str | os.PathLike) -> str | None:
    """What keeps `path` from being used as an existing folder, or None."""
    problem, st = _stat_problem(path)
    if problem:
        return problem
    if not stat.S_ISDIR(st.st_mode):
        return "is a file, not a folder"
    if not os.access(path, os.R_OK | os.X_OK):
        return "cannot be read (permission denied)"
    return None
