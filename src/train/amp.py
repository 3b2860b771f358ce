"""Mixed precision on GPU / Ascend: the backbone in float16 (O2 style: BatchNorm kept in float32), the head and
the loss in float32, and a dynamic loss scale. CPU training is float32 only."""

import logging
import os

import mindspore as ms
from mindspore._c_expression import MSContext

from src.model_utils.config import ConfigError

LOG = logging.getLogger("facerec.train")
AMP_DEVICES = ("GPU", "Ascend")


def check_amp(cfg):
    """A config asking for mixed precision on a device without it stops here, naming the keys."""
    if cfg.amp_level != "O0" and cfg.device_target not in AMP_DEVICES:
        raise ConfigError(
            f"config key 'amp_level': {cfg.amp_level} (mixed precision) needs device_target GPU or "
            f"Ascend, not {cfg.device_target}; on CPU training runs in float32: set amp_level: O0"
        )


def cast_o2(backbone, dtype=ms.float16):
    """O2 in place: every cell computes in ``dtype`` except those of ``mindspore.amp.get_black_list()``
    (BatchNorm, LayerNorm), which stay float32; Parameters stay float32 (master weights). Unlike
    ``mindspore.amp.auto_mixed_precision(net, "O2")``, which wraps cells and so renames every parameter
    (``_backbone.``), this keeps the names: checkpoints of mixed-precision runs load into float32 networks."""
    backbone.to_float(dtype)
    keep = tuple(ms.amp.get_black_list())
    for _, cell in backbone.cells_and_names():
        if isinstance(cell, keep):
            cell.to_float(ms.float32)
    return backbone


def reads_float_status():
    """True where ``mindspore.amp.all_finite`` reads the NPU's float status register (MindSpore 2.10's
    ``amp._all_finite``): on a 910A, and on a 910B with ``MS_ASCEND_CHECK_OVERFLOW_MODE=SATURATION_MODE``."""
    if ms.get_context("device_target") != "Ascend":
        return False
    saturation = os.environ.get("MS_ASCEND_CHECK_OVERFLOW_MODE") == "SATURATION_MODE"
    return saturation or MSContext.get_instance().get_ascend_soc_version() == "ascend910"


def ascend_precision_mode():
    """The ``precision_mode`` Ascend's operators run with: the one set (``mindspore.device_context.ascend.
    op_precision.precision_mode`` or ``ascend_config``), else MindSpore 2.10's default for the chip
    (its ``precision_mode`` documentation): allow_fp32_to_fp16 on a 910A (Atlas training series: float32
    convolutions and MatMuls run in float16), must_keep_origin_dtype on later chips."""
    from mindspore._c_expression import AscendOpPrecisionConf  # in Ascend builds only

    conf = AscendOpPrecisionConf.get_instance()
    if conf.is_precision_mode_configured():
        return conf.precision_mode()
    mode = ms.get_context("ascend_config").get("precision_mode")
    if mode:
        return mode
    if MSContext.get_instance().get_ascend_soc_version() == "ascend910":
        return "allow_fp32_to_fp16 (default on a 910A: convolutions and MatMuls in float16; amp_level O2 recommended)"
    return "must_keep_origin_dtype (default)"


def apply_amp(backbone, cfg):
    """The backbone cast for ``cfg.amp_level`` (unchanged for O0; the device was checked by ``check_amp`` before
    anything started). ``FaceTrainNetwork`` casts the embedding back to float32, so the margin head and the loss
    stay in float32."""
    device = cfg.device_target
    if device == "Ascend":
        device = f"Ascend, precision_mode {ascend_precision_mode()}"
    if cfg.amp_level == "O0":
        LOG.info("precision: float32 graph on %s", device)
        return backbone
    LOG.info(
        "precision: backbone %s float16 (BatchNorm float32), head and loss float32, dynamic loss scale from %g, on %s",
        cfg.amp_level,
        cfg.loss_scale,
        device,
    )
    return cast_o2(backbone)


def build_loss_scaler(cfg):
    """``mindspore.amp.DynamicLossScaler`` for mixed precision, None for float32.

    S is multiplied by ``loss_scale_factor`` after ``loss_scale_window`` finite steps in a row and divided by it
    (not below 1) on a step with non-finite gradients, which is then skipped.
    """
    if cfg.amp_level == "O0":
        return None
    return ms.amp.DynamicLossScaler(cfg.loss_scale, cfg.loss_scale_factor, cfg.loss_scale_window)
