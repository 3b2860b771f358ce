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
    business (it lowers the scale) and does not count, as long as the scale can still go down. An overflow that
    leaves the scale at 1 (its floor) is no longer the scale's: the values themselves exceed float16. After
    ``patience`` of those in a row ``update`` raises ``NonFiniteLossError`` under any policy, since skipping them
    would go on forever. ``streak_start`` is the first step of the current run of
    non-finite steps (the rollback goes to a checkpoint from before it), ``skipping`` is true while one goes on.
    """

    def __init__(self, policy="rollback", patience=10, lr_factor=0.5, max_rollbacks=3):
        if policy not in POLICIES:
            raise ValueError(f"unknown nan_policy '{policy}'; choose one of {POLICIES}")
        self.policy, self.patience = policy, patience
        self.lr_factor, self.max_rollbacks = lr_factor, max_rollbacks
        self.in_a_row = 0
        self.overflows_at_one = 0
        self.skipped = 0
        self.streak_start = None

    @property
    def skipping(self):
        """True while a run of non-finite steps goes on: no checkpoint is saved then."""
        return self.in_a_row > 0

    def update(self, step, finite, loss, loss_scale=None, rollbacks=0):
        """``loss_scale``: the dynamic loss scale after this step's adjustment, None without loss scaling."""
        if finite:
            self.in_a_row = 0
            self.overflows_at_one = 0
            self.streak_start = None
            return None
        self.skipped += 1
        if loss_scale is not None and math.isfinite(loss):
            return self.overflow(step, loss_scale)
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

    def overflow(self, step, loss_scale):
        """A skipped step with a finite loss under loss scaling: the scaler's business above scale 1 (see the
        class docstring)."""
        if loss_scale > 1:
            self.overflows_at_one = 0
            LOG.info(
                "step %d: gradient overflow under loss scaling; update skipped, scale lowered to %g", step, loss_scale
            )
            return None
        self.overflows_at_one += 1
        LOG.warning(
            "step %d: gradient overflow at loss scale 1; update skipped (%d in a row)", step, self.overflows_at_one
        )
        if self.overflows_at_one < self.patience:
            return None
        raise NonFiniteLossError(
            f"step {step}: {self.overflows_at_one} gradient overflows in a row at loss scale 1 (nan_patience="
            f"{self.patience}): float16 cannot hold these values whatever the scale; lower lr, or train with "
            f"amp_level O0 (on a 910A also precision_mode must_keep_origin_dtype), then resume"
        )
