"""Data-parallel gradients when some Parameters are sharded (Partial FC's class centres and their optimizer
state): the replicated ones are averaged over the workers, the sharded ones stay local (each worker holds other
rows), and the global quantities over all gradients (the finiteness check, the norm for clipping) sum the
sharded part over the workers, so every worker takes the same decision."""

from mindspore import nn, ops


class GradReducer(nn.Cell):
    """``construct(grads)``: the mean over workers of the gradients of the replicated ``weights`` (indices not
    in ``sharded``, a set of Parameter names), the others unchanged. ``total(values)`` sums per-gradient values
    (one scalar per gradient) into one global value."""

    def __init__(self, weights, workers, sharded=()):
        super().__init__()
        self.local = tuple(i for i, w in enumerate(weights) if w.name in sharded)
        self.replicated = tuple(i for i, w in enumerate(weights) if w.name not in sharded)
        self.workers = workers
        self.reducer = nn.DistributedGradReducer([weights[i] for i in self.replicated], mean=True, degree=workers)
        # position of gradient i in (replicated results..., local gradients...)
        order = {index: k for k, index in enumerate(self.replicated + self.local)}
        self.order = tuple(order[i] for i in range(len(weights)))
        self.allreduce = ops.AllReduce() if self.local else None

    def construct(self, grads):
        reduced = self.reducer(tuple(grads[i] for i in self.replicated))
        combined = reduced + tuple(grads[i] for i in self.local)
        return tuple(combined[k] for k in self.order)

    def total(self, values):
        """sum_i values[i] over every gradient, the sharded ones' summed over the workers too."""
        total = ops.addn([values[i] for i in self.replicated])
        if self.local:
            total = total + self.allreduce(ops.addn([values[i] for i in self.local]))
        return total


def clip_by_global_norm(grads, max_norm, reducer):
    """``ops.clip_by_global_norm`` with the norm over every worker's shard."""
    norm = ops.sqrt(reducer.total([(g * g).sum() for g in grads]))
    factor = max_norm / ops.maximum(norm, max_norm)
    return tuple(g * factor for g in grads)
