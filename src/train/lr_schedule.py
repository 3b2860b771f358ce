"""Per-iteration learning rates: linear warmup, then multistep or cosine decay."""

import math

import numpy as np


def learning_rates(total_steps, base_lr, schedule="multistep", warmup_steps=0, milestones=(), gamma=0.1, min_lr=0.0):
    """The learning rate of every step 0..total_steps-1 as a float32 array.

    warmup (s < W):  lr = base_lr (s + 1) / W
    multistep:       lr = base_lr * gamma ^ #{milestones <= s}
    cosine:          lr = min_lr + (base_lr - min_lr) (1 + cos(pi (s - W) / (total_steps - W))) / 2
    """
    rates = np.empty(total_steps, np.float64)
    decay_steps = max(total_steps - warmup_steps, 1)
    for step in range(total_steps):
        if step < warmup_steps:
            rates[step] = base_lr * (step + 1) / warmup_steps
        elif schedule == "multistep":
            rates[step] = base_lr * gamma ** sum(step >= m for m in milestones)
        elif schedule == "cosine":
            progress = (step - warmup_steps) / decay_steps
            rates[step] = min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2
        else:
            raise ValueError(f"unknown lr_schedule '{schedule}'")
    return rates.astype(np.float32)
