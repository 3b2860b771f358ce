"""The values besides Parameters that a checkpoint holds to continue a run exactly."""

from dataclasses import asdict, dataclass, fields

import mindspore as ms

PREFIX = "run."


@dataclass
class RunState:
    """``step`` is the number of optimisation steps done. It is also the sampler's position: the data order and
    the flips are a pure function of (seed, step), so with ``seed`` and ``global_batch`` it fixes what the next
    step reads on any number of ranks. ``lr_factor`` is the product of the NaN-rollback reductions of the
    learning rate. ``best_*`` and ``evals_since_best`` carry the best-checkpoint and early-stop bookkeeping.
    ``backbone``, ``head`` and ``num_classes`` name the model, for error messages; ``num_images`` is the length
    of the training list (the data order depends on it too)."""

    step: int = 0
    epoch: int = 0
    seed: int = 0
    global_batch: int = 0
    num_shards: int = 1
    lr_factor: float = 1.0
    rollbacks: int = 0
    best_accuracy: float = -1.0
    best_step: int = 0
    evals_since_best: int = 0
    backbone: str = ""
    head: str = ""
    num_classes: int = 0
    num_images: int = 0

    @classmethod
    def keys(cls):
        """The checkpoint entry names of the fields (``run.<field>``)."""
        return {PREFIX + f.name for f in fields(cls)}

    def to_entries(self):
        """Values for ``mindspore.save_checkpoint(append_dict=...)``; numbers as 64-bit tensors, so they come back
        exactly."""
        entries = {}
        for name, value in asdict(self).items():
            if isinstance(value, str):
                entries[PREFIX + name] = value
            else:
                entries[PREFIX + name] = ms.Tensor(value, ms.float64 if isinstance(value, float) else ms.int64)
        return entries

    @classmethod
    def from_entries(cls, entries):
        """The state stored in checkpoint ``entries`` (fields a checkpoint lacks keep their defaults)."""
        values = {}
        for f in fields(cls):
            if PREFIX + f.name in entries:
                value = entries[PREFIX + f.name]
                values[f.name] = value if isinstance(value, str) else f.type(value.asnumpy().item())
        return cls(**values)

    def describe_model(self):
        return f"{self.backbone} + {self.head} with {self.num_classes} classes"
