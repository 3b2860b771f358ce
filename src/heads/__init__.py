"""Classification heads: ``build_head(name, embedding_size=, num_classes=, ...)``.

Each head is a Cell ``(embedding, label) -> (logits, cosine)``: ``logits`` go to the cross entropy (the margin
is applied to the true class only, from the hard label), ``cosine`` is cos(theta) of every class, from which
training accuracy is measured (for the linear baseline it is its logits).
"""
from src.registry import Registry

HEADS = Registry("head")


def build_head(name, **kwargs):
    """Build a registered head; ``None`` values fall back to the head's own defaults."""
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    return HEADS.build(name, **kwargs)


from src.heads import linear, normface, asoftmax, cosface, arcface, adaface  # noqa: E402,F401
