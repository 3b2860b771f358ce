"""The one way every entry point reports a failure: a user error (a bad key, file, line or setting; a full disk;
Ctrl-C) as its message alone on stderr, a bug with its traceback.

    if __name__ == "__main__":
        sys.exit(run_main(main))

Exit status 2 for usage errors (``ConfigError``), 1 for data and environment errors, 128 + the signal for an
interruption (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP). The traceback of a user error is still written to the run's
log file (when logging to one was set up) and, with ``--debug`` anywhere on the command line, to stderr.
"""

import errno
import logging
import os
import re
import sys
import traceback

from src.model_utils.config import ConfigError

LOG = logging.getLogger("facerec")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEBUG_FLAG = "--debug"
MS_OUT_OF_MEMORY = re.compile(r"Memory isn't enough and alloc failed, kernel name: (\S+), alloc size: (\d+)B")
# Errors of the environment, not of the code, wherever they are raised.
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EIO,
    errno.ESTALE,
    errno.ENOTCONN,
}


def _raised_by_project(err):
    """True when the innermost frame of ``err``'s traceback is a file of this project (not a library)."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return False
    filename = os.path.abspath(frames[-1].filename)
    return filename.startswith(ROOT + os.sep) and os.sep + "site-packages" + os.sep not in filename


def _project_class(err):
    module = type(err).__module__
    return module.startswith(("src.", "tools.")) or module in ("__main__", "train", "eval", "export", "infer")


def out_of_memory(err):
    """MindSpore's allocation failure ("Memory isn't enough and alloc failed, kernel name: K, alloc size: NB"),
    as (kernel, bytes), or None."""
    found = MS_OUT_OF_MEMORY.search(str(err)) if isinstance(err, RuntimeError) else None
    return None if found is None else (found.group(1), int(found.group(2)))


def exit_status(err):
    """The exit status of a user error, or None for a bug (shown with its traceback)."""
    if isinstance(err, ConfigError):
        return 2
    if out_of_memory(err) is not None:
        return 1
    if isinstance(err, KeyboardInterrupt):
        return 130
    status = getattr(err, "exit_status", None)
    if isinstance(status, int):
        return status
    if isinstance(err, MemoryError):
        return 1
    if isinstance(err, OSError) and err.errno in ENVIRONMENT_ERRNOS:
        return 1
    if isinstance(err, (ValueError, OSError, RuntimeError)) and (_project_class(err) or _raised_by_project(err)):
        return 1
    return None


def message(err):
    """The one line (or few) shown for a user error."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(err, MemoryError) or out_of_memory(err) is not None:
        kernel, size = out_of_memory(err) or ("", 0)
        where = f" (MindSpore kernel {kernel.rsplit('/', 1)[-1]} asked for {size / 2**30:.1f} GiB)" if kernel else ""
        return (
            f"out of memory{where}: lower batch_size or eval_batch_size (or set global_batch_size and train on "
            f"more workers), then run again; checkpoints written before are intact"
        )
    text = str(err) or type(err).__name__
    if isinstance(err, OSError) and err.errno == errno.ENOSPC and "disk" not in text:
        text += " (the disk is full: free space, then run again or --resume)"
    return text


def log_to_files(err):
    """Write the error with its traceback to the log files of the root logger (not to the console)."""
    record = LOG.makeRecord(
        LOG.name, logging.ERROR, __file__, 0, "%s", (message(err),), (type(err), err, err.__traceback__)
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def run_main(main):
    """Call ``main()`` with ``--debug`` taken out of ``sys.argv``; returns its exit status (what it returns when
    that is an int, else 0), or reports a user error and returns the error's status."""
    debug = DEBUG_FLAG in sys.argv[1:]
    sys.argv[1:] = [arg for arg in sys.argv[1:] if arg != DEBUG_FLAG]
    try:
        status = main()
        return status if isinstance(status, int) else 0
    except (Exception, KeyboardInterrupt) as err:  # sorted into user errors and bugs below
        status = exit_status(err)
        if status is None or debug:
            raise
        log_to_files(err)
        sys.stdout.flush()
        print(f"{'error: ' if status < 128 else ''}{message(err)}", file=sys.stderr, flush=True)
        return status
