"""What to do about non-finite losses: each one skips its update (``TrainStep``) and is logged here; a run of
``patience`` in a row rolls back to the last good checkpoint with a lowered learning rate, or stops."""

import logging
import math

LOG = logging.getLogger("facerec.train")
POLICIES = ("skip", "rollback", "stop")


class NonFiniteLossError(RuntimeError):
    """Training cannot continue: too many non-finite steps in a row (and no rollback left)."""


class NonFiniteGuard:
    """Counts non-finite steps in a row.

    ``update`` returns "rollback" when ``policy`` is "rollback" and ``patience`` bad steps came in a row (the
    caller restores the newest checkpoint and multiplies the learning rate by ``lr_factor``), raises
    ``NonFiniteLossError`` under "stop" or once ``max_rollbacks`` rollbacks are spent, and returns None otherwise.
    Under mixed precision a step whose loss is finite but whose scaled gradients overflowed is the loss scaler's
    business (it lowers the scale) and does not count. ``streak_start`` is the first step of the current run of
    non-finite steps (the rollback goes to a checkpoint from before it), ``skipping`` is true while one goes on.
    """

    def __init__(self, policy="rollback", patience=10, lr_factor=0.5, max_rollbacks=3):
        if policy not in POLICIES:
            raise ValueError(f"unknown nan_policy '{policy}'; choose one of {POLICIES}")
        self.policy, self.patience = policy, patience
        self.lr_factor, self.max_rollbacks = lr_factor, max_rollbacks
        self.in_a_row = 0
        self.skipped = 0
        self.streak_start = None

    @property
    def skipping(self):
        """True while a run of non-finite steps goes on: no checkpoint is saved then."""
        return self.in_a_row > 0

    def update(self, step, finite, loss, loss_scaled=False, rollbacks=0):
        if finite:
            self.in_a_row = 0
            self.streak_start = None
            return None
        self.skipped += 1
        if loss_scaled and math.isfinite(loss):
            LOG.info("step %d: gradient overflow under loss scaling; update skipped, scale lowered", step)
            return None
        self.in_a_row += 1
        if self.in_a_row == 1:
            self.streak_start = step
        what = "loss" if not math.isfinite(loss) else "gradient (the loss is finite)"
        LOG.warning("step %d: non-finite %s, loss=%s; update skipped (%d in a row)", step, what, loss, self.in_a_row)
        if self.policy == "skip" or self.in_a_row < self.patience:
            return None
        if self.policy == "stop":
            raise NonFiniteLossError(
                f"step {step}: {self.in_a_row} non-finite steps in a row (nan_patience="
                f"{self.patience}, nan_policy=stop); lower lr or check the data, then resume"
            )
        if rollbacks >= self.max_rollbacks:
            raise NonFiniteLossError(
                f"step {step}: {self.in_a_row} non-finite steps in a row after {rollbacks} "
                f"rollbacks (nan_max_rollbacks={self.max_rollbacks}); stopping"
            )
        self.in_a_row = 0
        return "rollback"
