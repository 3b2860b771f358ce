"""Classification heads: ``build_head(name, embedding_size=, num_classes=, ...)``.

Each head is a Cell ``(embedding, label) -> (logits, cosine)``: ``logits`` go to the cross entropy (the margin
is applied to the true class only, from the hard label), ``cosine`` is cos(theta) of every class, from which
training accuracy is measured (for the linear baseline it is its logits).
"""
import inspect

from src.registry import Registry

HEADS = Registry("head")


def build_head(name, **kwargs):
    """Build a registered head, e.g. ``build_head("arcface", embedding_size=512, num_classes=10572, m=0.5)``."""
    return HEADS.build(name, **kwargs)


from src.heads import linear, normface, asoftmax, cosface, arcface, adaface  # noqa: E402,F401

# Config key -> head constructor argument. A key set (not null) for a head that has no such argument is an error.
CONFIG_KEYS = {
    "margin_s": "s", "margin_m": "m", "easy_margin": "easy_margin", "adaface_h": "h",
    "adaface_t_alpha": "t_alpha", "asoftmax_base": "base", "asoftmax_gamma": "gamma",
    "asoftmax_power": "power", "asoftmax_lambda_min": "lambda_min",
}


def build_head_from_config(cfg, num_classes):
    """The head named by ``cfg.head`` with the margin keys the config sets."""
    head_class = HEADS.get(cfg.head)
    accepted = inspect.signature(head_class).parameters
    kwargs = {}
    for key, argument in CONFIG_KEYS.items():
        value = getattr(cfg, key)
        if value is None:
            continue
        if argument not in accepted:
            raise ValueError(f"config key '{key}' does not apply to head '{cfg.head}'")
        kwargs[argument] = value
    return head_class(embedding_size=cfg.embedding_size, num_classes=num_classes, **kwargs)
