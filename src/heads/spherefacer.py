"""SphereFace-R (Liu et al., "SphereFace Revived: Unifying Hyperspherical Face Recognition", TPAMI 2022), with
normalised features and scale s (the variant the authors recommend), and characteristic gradient detachment."""
import math
from typing import ClassVar

from mindspore import ops

from src.heads.registry import MARGINS
from src.heads.margin import Margin, detached_offset


def spherefacer_logits(cos, one_hot, s, m, magn_type):
    """logit_j = s (cos(theta_j) + d_j), d_j = phi_j - cos(theta_j) detached (the value of phi, the gradient of
    cos), with the multiplicative margin on the target, m_theta_y = m theta_y, m_theta_j = theta_j:

        v0:  phi = (-1)^k cos(m_theta) - 2k,  k = floor(m_theta / pi)   (SphereFace's psi, monotone on [0, pi])
        v1:  phi = cos(clamp(m_theta, 1e-5, 3.14159))
        v2:  phi = cos(m_theta / m)   (the margin moves to the other classes: cos(theta_j / m))

    The loss is the softmax cross entropy times lw / s."""
    theta = ops.acos(ops.clamp(cos, -1.0 + 1e-5, 1.0 - 1e-5))
    m_theta = theta * (1.0 + (m - 1.0) * one_hot)
    if magn_type == "v0":
        k = ops.floor(m_theta / math.pi)
        phi = (1.0 - 2.0 * (k - 2.0 * ops.floor(k / 2.0))) * ops.cos(m_theta) - 2.0 * k
    elif magn_type == "v1":
        phi = ops.cos(ops.clamp(m_theta, 1e-5, 3.14159))
    else:
        phi = ops.cos(m_theta / m)
    return s * detached_offset(cos, phi)


@MARGINS.register("spherefacer")
class SphereFaceR(Margin):
    PARAMS: ClassVar[dict] = {"s": {"type": "float", "default": 30.0, "min": 0.0, "help": "logit scale s"},
              "m": {"type": "float", "default": 1.5, "min": 1.0, "help": "multiplicative angular margin m"},
              "magn_type": {"type": "str", "default": "v0", "choices": ["v0", "v1", "v2"],
                            "help": "margin form phi: v0 SphereFace's psi, v1 clamped cos(m theta), v2 cos(theta/m) on the other classes"},
              "lw": {"type": "float", "default": 50.0, "min": 0.0, "help": "loss weight (the loss is times lw / s)"}}

    @property
    def loss_weight(self):
        return self.lw / self.s

    def construct(self, cos, one_hot, norms):
        return spherefacer_logits(cos, one_hot, self.s, self.m, self.magn_type)
