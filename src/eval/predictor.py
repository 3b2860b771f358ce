"""The Python inference API: face images -> embeddings and the cosine similarity of two faces.

    from src.eval.predictor import Predictor
    predictor = Predictor("configs/mobilefacenet_lfw_eval.yaml", "mobilefacenet.ckpt")
    predictor.similarity("a.jpg", "b.jpg", landmarks_a=points_a, landmarks_b=points_b)

Images are file paths or HxWx3 uint8 RGB arrays. With 5-point landmarks (5x2, left eye, right eye, nose, left and
right mouth corner, in the image's pixels) a face is aligned exactly as in training and evaluation; without them
the image is taken as already aligned and fitted to the input size (``eval_fit``). The embedding of an image is
its embedding fused with that of its mirror image (``fusion``), L2-normalised, as eval.py scores pairs.
``threshold`` is the cosine threshold stored in an exported model's sidecar (``export.py --threshold_from``), or
None; ``threshold_source`` says which rule and file it comes from.
The device is the caller's: run ``src.model_utils.device.init_device(cfg)`` (or ``ms.set_device``) first.
"""
import numpy as np

from src.data.alignment import align_face
from src.data.preprocess import load_rgb
from src.deploy.threshold import sidecar_threshold
from src.eval.embed import embed_images, fuse
from src.eval.images import fit_aligned
from src.eval.models import load_network
from src.model_utils.config import Config, load_config


def as_config(config):
    """A ``Config``, or the ``Config`` of a YAML file path (schema defaults for the keys it does not set)."""
    if isinstance(config, Config):
        return config
    return load_config(["--config_path", str(config)])


class Predictor:
    """Embeds faces with a checkpoint or an exported MINDIR (default: the config's ``ckpt_file``)."""

    def __init__(self, config, model_path=None):
        self.cfg = as_config(config)
        path = model_path or self.cfg.ckpt_file
        if path is None:
            raise ValueError("no model given: pass a checkpoint or MINDIR path, or set config key 'ckpt_file'")
        self.model_path = path
        self.network, self.batch_size = load_network(self.cfg, path)
        self.image_size = tuple(self.cfg.image_size)
        # The cosine threshold export.py stored in the model's sidecar (--threshold_from), and where it came from.
        self.threshold, self.threshold_source = sidecar_threshold(path, self.cfg.fusion)

    def prepare(self, image, landmarks=None):
        """A path or RGB array -> the aligned (landmarks) or fitted face, image_size, uint8 RGB."""
        if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
            image = load_rgb(image)
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got shape {image.shape} dtype {image.dtype}")
        if landmarks is not None:
            return align_face(image, landmarks, self.image_size)
        return fit_aligned(image, self.image_size, self.cfg.eval_fit)

    def embed_prepared(self, faces):
        """Aligned faces (N x image_size x 3 uint8 RGB) -> N x D L2-normalised fused embeddings."""
        orig, flip = embed_images(self.network, np.asarray(faces), self.batch_size, log_every=0)
        features = fuse(orig, flip, self.cfg.fusion)
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)

    def embed(self, images, landmarks=None):
        """One image or a list of images (paths or RGB arrays), with optional landmarks for each -> N x D
        L2-normalised embeddings (1 x D for one image)."""
        single = isinstance(images, (str, bytes)) or (isinstance(images, np.ndarray) and images.ndim == 3)
        images = [images] if single else list(images)
        if landmarks is None:
            landmarks = [None] * len(images)
        elif single:
            landmarks = [landmarks]
        if len(landmarks) != len(images):
            raise ValueError(f"{len(images)} images but {len(landmarks)} landmark sets")
        return self.embed_prepared(np.stack([self.prepare(i, l) for i, l in zip(images, landmarks)]))

    def similarity(self, a, b, landmarks_a=None, landmarks_b=None):
        """The cosine similarity of the faces in images ``a`` and ``b`` (in [-1, 1])."""
        features = self.embed([a, b], [landmarks_a, landmarks_b])
        return float(np.dot(features[0], features[1]))
