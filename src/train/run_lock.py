"""One training run per output folder: ``<output_dir>/run.lock`` holds the holder's pid, host and start time.

A second run into the same folder stops with a message naming the holder. A lock left by a process that no
longer exists on this host (killed with -9, a crashed machine restarted) is taken over with a warning; a lock of
another host cannot be checked from here and is refused with the command to remove it when that run is over.
"""

import json
import logging
import os
import socket
import time

LOG = logging.getLogger("facerec.train")
LOCK_NAME = "run.lock"


class RunLockError(RuntimeError):
    """Another run holds the output folder; the message names it."""


def _process_start(pid):
    """The start time of process ``pid`` in clock ticks since boot (tells a reused pid apart), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(holder):
    """True when the process that wrote ``holder`` still runs on this host (same pid and start time)."""
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    started = holder.get("process_start")
    return started is None or _process_start(pid) in (None, started)


def _describe(holder):
    return f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started', '?')}"


class RunLock:
    """``acquire()`` the folder's lock (or raise ``RunLockError``); ``release()`` removes it."""

    def __init__(self, output_dir):
        self.path = os.path.join(output_dir, LOCK_NAME)
        self.held = False

    def _create(self):
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process_start": _process_start(os.getpid()),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)

    def _holder(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}  # being written or damaged: judged as its pid-less contents

    def acquire(self):
        """Take the lock; returns a warning text when a stale lock was taken over, else None."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        warning = None
        try:
            self._create()
        except FileExistsError:
            holder = self._holder()
            if holder.get("host") != socket.gethostname() and holder.get("host"):
                raise RunLockError(
                    f"{self.path}: the folder is in use by a run on another machine "
                    f"({_describe(holder)}); choose another output_dir, or delete the lock file once "
                    f"that run is over"
                ) from None
            if _alive(holder):
                raise RunLockError(
                    f"{self.path}: another training run is writing to this output_dir "
                    f"({_describe(holder)}); wait for it to end or choose another output_dir"
                ) from None
            warning = (
                f"{self.path}: taking over the lock of a run that ended without releasing it "
                f"({_describe(holder)}, no longer running)"
            )
            os.remove(self.path)
            try:
                self._create()
            except FileExistsError:
                raise RunLockError(
                    f"{self.path}: another run took this output_dir at the same moment ({_describe(self._holder())})"
                ) from None
        self.held = True
        return warning

    def release(self):
        if self.held:
            self.held = False
            if os.path.exists(self.path):
                os.remove(self.path)
