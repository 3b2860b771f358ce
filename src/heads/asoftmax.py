"""A-Softmax, the SphereFace head (Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition",
CVPR 2017)."""
import math

import mindspore as ms
from mindspore import ops, Parameter, Tensor

from src.heads import HEADS
from src.heads.cosine import CosineHead, feature_norm

# cos(m theta) as a polynomial of c = cos(theta) (Chebyshev polynomials T_m), coefficients from c^m down to c^0.
CHEBYSHEV = {
    1: (1.0, 0.0),
    2: (2.0, 0.0, -1.0),
    3: (4.0, 0.0, -3.0, 0.0),
    4: (8.0, 0.0, -8.0, 0.0, 1.0),
}


@HEADS.register("asoftmax")
class ASoftmaxHead(CosineHead):
    """Angular softmax with multiplicative margin m.

    With W_j normalised and x not: logit_j = ||x|| cos(theta_j) for j != y and, for the true class,

        logit_y = ||x|| (lambda cos(theta_y) + psi(theta_y)) / (1 + lambda),
        psi(theta) = (-1)^k cos(m theta) - 2k,  theta in [k pi / m, (k + 1) pi / m],  k in 0..m-1,

    which is continuous and decreasing on [0, pi]. The blend lambda anneals with the training iteration:

        lambda = max(lambda_min, base (1 + gamma it)^(-power))

    (defaults base 1000, gamma 0.12, power 1, lambda_min 5, as in the released Caffe prototxt). ``iteration``
    is a Parameter, so it is saved in and restored from checkpoints; it advances once per training forward.
    cos(theta) is clamped to [-1, 1]; k is found by comparing cos(theta) with cos(j pi / m), so no acos is
    needed and the gradient is finite everywhere.
    """

    def __init__(self, embedding_size, num_classes, m=4, base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0):
        super().__init__(embedding_size, num_classes)
        if int(m) != m or int(m) not in CHEBYSHEV:
            raise ValueError(f"A-Softmax margin m must be an integer in 1..4, got {m}")
        self.m = int(m)
        self.base, self.gamma, self.power, self.lambda_min = base, gamma, power, lambda_min
        self.chebyshev = CHEBYSHEV[self.m]
        self.boundaries = [math.cos(j * math.pi / self.m) for j in range(1, self.m)]
        self.iteration = Parameter(Tensor(0, ms.int32), name="iteration", requires_grad=False)

    def lambda_value(self):
        """lambda at the current iteration (the closed form above)."""
        it = self.iteration.astype(ms.float32)
        lam = self.base * ops.pow(1.0 + self.gamma * it, -self.power)
        return ops.clamp(lam, min=self.lambda_min)

    def cos_m_theta(self, cos):
        """cos(m theta) = T_m(cos(theta)), evaluated by Horner's rule."""
        value = ops.zeros_like(cos)
        for coefficient in self.chebyshev:
            value = value * cos + coefficient
        return value

    def psi(self, cos):
        """psi(theta) of the docstring, from c = cos(theta) in [-1, 1]."""
        c = ops.stop_gradient(cos)
        k = ops.zeros_like(cos)
        for boundary in self.boundaries:
            k = k + (c <= boundary).astype(cos.dtype)
        sign = 1.0 - 2.0 * (k - 2.0 * ops.floor(k / 2.0))
        return sign * self.cos_m_theta(cos) - 2.0 * k

    def construct(self, x, label):
        cos = self.cosine(x)
        lam = self.lambda_value()
        if self.training:
            ops.assign_add(self.iteration, ops.ones((), ms.int32))
        target = (lam * cos + self.psi(cos)) / (1.0 + lam)
        one_hot = self.one_hot(label)
        logits = feature_norm(x) * (one_hot * target + (1.0 - one_hot) * cos)
        return logits, cos
