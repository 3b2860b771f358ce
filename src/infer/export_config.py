"""The configuration that runs an exported model from its sidecar alone (no config file): the schema's defaults,
the keys given as ``--key=value``, and for the keys not given the sidecar's (src/eval/sidecar.py)."""

from src.eval.embed import FUSIONS
from src.eval.sidecar import SidecarError, read_sidecar, sidecar_path
from src.model_utils.config import Config, load_config

# Config keys the sidecar sets (sidecar field = config key).
SIDECAR_KEYS = ("backbone", "image_size", "embedding_size", "fusion")


def given_keys(settings):
    """The config keys named in ``--key=value`` / ``--key value`` / ``--block.sub=value`` arguments."""
    return {token[2:].split("=", 1)[0].split(".", 1)[0] for token in settings if token.startswith("--")}


def with_sidecar(cfg: Config, model_path, given=()) -> Config:
    """``cfg`` (a config without a file: schema defaults and the command line) set up to run the exported
    ``model_path``: the sidecar's backbone, image_size, embedding_size and fusion for the keys not in ``given``
    (the keys the command line set). ``SidecarError`` names the sidecar and the field it lacks."""
    record = read_sidecar(model_path)
    if record["fusion"] not in FUSIONS:
        raise SidecarError(
            f"{sidecar_path(model_path)}: field 'fusion' is {record['fusion']!r}, not one of {', '.join(FUSIONS)}"
        )
    for key in SIDECAR_KEYS:
        if key not in given:
            setattr(cfg, key, record[key])
    cfg.ckpt_file = str(model_path)
    return cfg


def export_config(model_path, settings=()) -> Config:
    """The ``Config`` to run the exported ``model_path``: ``settings`` (``--key=value`` arguments, no
    ``--config_path``) over the sidecar's settings over the schema's defaults."""
    return with_sidecar(load_config(list(settings)), model_path, given_keys(settings))
