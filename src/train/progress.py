"""The training progress line: epoch, step, loss, accuracy, lr, images/s and ETA."""

import logging
import time

from src.data.sampler import epoch_of_step
from src.model_utils.progress import format_duration

LOG = logging.getLogger("facerec.train")


class Progress:
    """Averages loss and accuracy over the steps since the last line and logs one line every ``interval``."""

    def __init__(self, total_steps, steps_per_epoch, global_batch, interval, start_step=0):
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.global_batch, self.interval = global_batch, interval
        self.reset(start_step)

    def reset(self, step):
        self.last_step, self.last_time = step, time.time()
        self.loss_sum = self.acc_sum = 0.0
        self.count = 0

    def update(self, step, loss, accuracy, lr):
        """Record the step just finished (1-based count ``step``); returns the logged values or None."""
        self.loss_sum += loss
        self.acc_sum += accuracy
        self.count += 1
        if step % self.interval and step != self.total_steps:
            return None
        elapsed = time.time() - self.last_time
        values = {
            "step": step,
            "epoch": epoch_of_step(step, self.steps_per_epoch),
            "loss": self.loss_sum / self.count,
            "accuracy": self.acc_sum / self.count,
            "lr": lr,
        }
        speed = eta = "-"
        if step > self.last_step:  # not right after a reset (the first step of a process includes compilation)
            values["images_per_sec"] = (step - self.last_step) * self.global_batch / max(elapsed, 1e-9)
            speed = f"{values['images_per_sec']:.1f}"
            eta = format_duration((self.total_steps - step) * self.global_batch / max(values["images_per_sec"], 1e-9))
        LOG.info(
            "epoch %d step %d/%d loss %.4f acc %.4f lr %.6f %s img/s ETA %s",
            values["epoch"],
            step,
            self.total_steps,
            values["loss"],
            values["accuracy"],
            lr,
            speed,
            eta,
        )
        self.reset(step)
        return values
