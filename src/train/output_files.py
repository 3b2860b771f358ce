"""Writing a run's small output files (config.json, metrics.csv) so that a full disk or a lost mount names the
file, leaves no temporary behind, and never truncates the copy already there."""

import errno
import os

RESUME_HINT = "the checkpoints written before are intact: free space, then continue with --resume"


class OutputWriteError(RuntimeError):
    """A run's output file cannot be written; the message names it (and, for a full disk, what to do)."""


def write_error(path, err):
    """The ``OutputWriteError`` for the ``OSError`` ``err`` met writing ``path``."""
    hint = f" (the disk is full; {RESUME_HINT})" if err.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return OutputWriteError(f"cannot write {path}: {err.strerror or err}{hint}")


def remove_quietly(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` through ``path.tmp`` renamed into place; on failure the temporary is removed
    and ``OutputWriteError`` names the file."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as err:
        remove_quietly(tmp)
        raise write_error(path, err) from err
