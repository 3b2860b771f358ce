"""PReLU with one slope per channel, written as relu(x) - w relu(-x)."""
import mindspore as ms
from mindspore import nn, ops, Parameter
from mindspore.common.initializer import Constant, initializer


class PReLU(nn.Cell):
    """PReLU(x) = max(0, x) + w_c min(0, x) = relu(x) - w_c relu(-x), w_c the slope of channel c (axis 1).

    Same parameter (``w``, shape (channels,)) as ``nn.PReLU``, so checkpoints are interchangeable. On the CPU
    backend nn.PReLU's fused kernel is about 2x slower than these elementwise ops in forward + backward
    (benchmarks/bench_ops.py: 542 vs 242 ms for 32 x 64 x 56 x 48 on 2 threads), the largest non-convolution
    cost of a sphere20a training step.
    """

    def __init__(self, channels, w=0.25):
        super().__init__()
        self.w = Parameter(initializer(Constant(w), (channels,), ms.float32), name="w")

    def construct(self, x):
        w = self.w.reshape((1, -1) + (1,) * (x.ndim - 2))
        return ops.relu(x) - w * ops.relu(-x)
