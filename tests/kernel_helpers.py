"""What the CPU kernel tests share: a layer's output and gradients, to compare a kernel with MindSpore's own."""

import mindspore as ms
from mindspore import nn


class SquareSum(nn.Cell):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def construct(self, x):
        y = self.cell(x)
        return (y * y).sum()


def value_and_grads(cell, x):
    """(output, d/dx, d/dw) of sum(cell(x)^2), for a cell with one trainable parameter."""
    grad = ms.value_and_grad(SquareSum(cell), 0, cell.trainable_params())
    _, (dx, (dw,)) = grad(x)
    return cell(x).asnumpy(), dx.asnumpy(), dw.asnumpy()
