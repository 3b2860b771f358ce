"""BatchNorm folded into the layer before it, for inference.

In inference a BatchNorm is a fixed per-channel affine map, y = gamma (z - mu) / sqrt(var + eps) + beta. When z is
the output of a convolution or dense layer z = W x + b, the two are one layer with

    W' = W * a (a = gamma / sqrt(var + eps), one factor per output channel),   b' = beta + a (b - mu),

so the BatchNorm's pass over the activations disappears. A backbone lists where a BatchNorm directly follows such a
layer: a cell attribute ``FOLDABLE = (("conv", "bn"), ...)`` names (layer, BatchNorm) attribute pairs, and inside an
``nn.SequentialCell`` every (nn.Conv2d or Dense, nn.BatchNorm2d or BatchNorm1d) neighbour pair is folded. A BatchNorm
before a padded convolution (iResNet's pre-activation ``bn1``) is not foldable: the zero padding would be shifted,
so it stays.
"""

import numpy as np
from mindspore import Tensor, nn

BATCH_NORMS = (nn.BatchNorm2d, nn.BatchNorm1d)
LAYERS = (nn.Conv2d, nn.Dense)


def folded_weights(layer, bn):
    """(W', b') of ``layer`` followed by ``bn`` (its moving statistics), as float32 arrays."""
    weight = layer.weight.asnumpy().astype(np.float64)
    bias = layer.bias.asnumpy().astype(np.float64) if layer.bias is not None else np.zeros(weight.shape[0])
    scale = bn.gamma.asnumpy().astype(np.float64) / np.sqrt(bn.moving_variance.asnumpy().astype(np.float64) + bn.eps)
    shape = (-1,) + (1,) * (weight.ndim - 1)
    new_weight = weight * scale.reshape(shape)
    new_bias = bn.beta.asnumpy() + scale * (bias - bn.moving_mean.asnumpy())
    return new_weight.astype(np.float32), new_bias.astype(np.float32)


def folded_layer(layer, bn):
    """A new nn.Conv2d / Dense with bias equal to ``layer`` followed by ``bn`` in inference."""
    weight, bias = folded_weights(layer, bn)
    if isinstance(layer, nn.Dense):
        return nn.Dense(
            layer.in_channels, layer.out_channels, weight_init=Tensor(weight), bias_init=Tensor(bias), has_bias=True
        )
    return nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        pad_mode=layer.pad_mode,
        padding=layer.padding,
        dilation=layer.dilation,
        group=layer.group,
        has_bias=True,
        weight_init=Tensor(weight),
        bias_init=Tensor(bias),
        data_format=layer.data_format,
    )


def _name_parameters(layer, prefix):
    """Give a layer inserted below the top cell its full parameter names (``stage.0.weight``), as the layers it
    replaces had: MindSpore names a cell's parameters relative to the cell it is assigned to."""
    for param in layer.get_parameters():
        param.name = f"{prefix}.{param.name.rsplit('.', 1)[-1]}" if prefix else param.name.rsplit(".", 1)[-1]


def _fold_sequence(cell, name):
    count = 0
    for index in range(len(cell) - 1):
        if isinstance(cell[index], LAYERS) and isinstance(cell[index + 1], BATCH_NORMS):
            cell[index] = folded_layer(cell[index], cell[index + 1])
            cell[index + 1] = nn.Identity()
            _name_parameters(cell[index], f"{name}.{index}" if name else str(index))
            count += 1
    return count


def fold_batch_norms(network):
    """Fold every foldable BatchNorm of ``network`` (in place, for inference: call ``set_train(False)`` after);
    returns the number folded. The folded network computes the same function up to float rounding."""
    count = 0
    for name, cell in list(network.cells_and_names()):
        if isinstance(cell, nn.SequentialCell):
            count += _fold_sequence(cell, name)
        for layer_name, bn_name in getattr(cell, "FOLDABLE", ()):
            layer, bn = getattr(cell, layer_name), getattr(cell, bn_name)
            if not isinstance(bn, BATCH_NORMS):  # absent (None) or folded already
                continue
            setattr(cell, layer_name, folded_layer(layer, bn))
            setattr(cell, bn_name, nn.Identity())
            _name_parameters(getattr(cell, layer_name), f"{name}.{layer_name}" if name else layer_name)
            count += 1
    return count
