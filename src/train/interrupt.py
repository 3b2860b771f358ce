"""Ctrl-C, SIGTERM (a cluster scheduler's stop, ``kill``) and SIGHUP (the terminal or ssh session went away)
during training: the step under way finishes, a checkpoint is written, the run says how to continue and exits
with 128 + the signal number (130, 143, 129). A second signal of the same kind stops at once."""

import logging
import signal

LOG = logging.getLogger("facerec.train")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class TrainingInterrupted(Exception):
    """The run stopped on a signal after saving; ``exit_status`` is 128 + the signal number."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_status = 128 + signum


class StopSignals:
    """While entered, the first SIGINT / SIGTERM / SIGHUP only sets ``received`` (the signal number); the
    previous handlers come back on exit."""

    def __init__(self):
        self.received = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.received == signum:  # asked twice: stop now
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            signal.raise_signal(signum)
            return
        self.received = signum
        LOG.warning(
            "%s received: finishing the current step and saving a checkpoint (send it again to stop at once)",
            signal.Signals(signum).name,
        )

    def __enter__(self):
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def reinstall(self):
        """Take the signals back: MindSpore's dataset pipeline installs a C++ SIGINT handler when it starts that
        ends the process with SIGTERM (Ctrl-C then exits with status -15 and saves nothing)."""
        for signum in SIGNALS:
            signal.signal(signum, self._handle)

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        return False

    def interrupted(self, step):
        """The exception to raise once the checkpoint of ``step`` is written."""
        name = signal.Signals(self.received).name
        return TrainingInterrupted(f"interrupted at step {step}, resume with --resume ({name})", self.received)
