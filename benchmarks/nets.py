"""The benchmarked networks and inputs, shared by the MindSpore and PyTorch workers (no framework imported)."""

import numpy as np

# backbone -> (embedding size, input height x width), as the project's defaults and the papers use them.
NETWORKS = {"sphere20a": (512, (112, 96)), "mobilefacenet": (128, (112, 96)), "iresnet50": (512, (112, 112))}
HEADS = ("linear", "normface", "asoftmax", "cosface", "arcface", "adaface")


def make_batch(batch_size, image_size, num_classes, seed=0):
    """A fixed batch: images uniform in [-1, 1) (the range of (x - 127.5) / 128), NCHW float32; int32 labels."""
    rng = np.random.RandomState(seed)
    images = rng.uniform(-1.0, 1.0, (batch_size, 3) + tuple(image_size)).astype(np.float32)
    labels = rng.randint(0, num_classes, batch_size).astype(np.int32)
    return images, labels


def parse_variant(text):
    """A MindSpore variant 'name:key=value,...' -> (name, settings, root).

    Values are int, true/false or strings. ``root=PATH`` runs the variant from another copy of the project (e.g.
    an export of an older commit, to measure before/after side by side). Settings are None, meaning the
    project's own ``init_device`` with the schema defaults, when the name is 'project' or ``project=true`` is
    given; otherwise the keys of ``benchmarks.ms_side.SETTING_KEYS`` (an empty set: MindSpore's defaults)."""
    name, settings = parse_settings(text)
    root = settings.pop("root", None)
    project = settings.pop("project", False) or name == "project"
    return name, (None if project else settings), root


def parse_settings(text):
    """'name:key=value,key=value' -> (name, {key: value}); values are int, true/false, or strings."""
    name, _, body = text.partition(":")
    settings = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        if value.lower() in ("true", "false"):
            settings[key] = value.lower() == "true"
        else:
            settings[key] = int(value) if value.isdigit() else value
    return name, settings
