"""The Python inference API: face images -> embeddings, the cosine similarity of two faces, and 1:N search.

    from src.infer.predictor import Predictor
    predictor = Predictor("configs/mobilefacenet_lfw_eval.yaml", "mobilefacenet.ckpt", detect=True)
    predictor = Predictor.from_export("mobilefacenet.mindir", detect=True)  # its sidecar alone, no config
    predictor.similarity("a.jpg", "b.jpg")                         # raw photos: detected, aligned, embedded
    gallery = predictor.enroll("people/")                          # people/<name>/*.jpg, cached beside people/
    for result in predictor.search(["q.jpg"], gallery, top_k=3):
        print(result.image, result.matches[0].identity, result.matches[0].cosine)

Images are file paths or HxWx3 uint8 RGB arrays (HxW grey and HxWx4 RGBA arrays are converted). A face is
aligned exactly as in training and evaluation from its 5 landmarks (5x2: left eye, right eye, nose, left and right
mouth corner, in the image's pixels): given ones, or with ``detect=True`` the ones the face detector
(``src.detect``, MTCNN) finds. Where it finds several faces, they come most central first (box centre nearest the
image centre, ties by the larger box); ``prepare``, ``embed`` and ``similarity`` use that first face,
``faces`` and ``embed_faces`` return every face. Without landmarks and without ``detect`` the image is taken as
an already aligned face and fitted to the input size (``eval_fit``). The embedding of a face is its embedding
fused with that of its mirror image (``fusion``), L2-normalised, as eval.py scores pairs.
``threshold`` is the cosine threshold stored in an exported model's sidecar (``export.py --threshold_from``), or
None; ``threshold_source`` says which rule and file it comes from.
The device is the caller's: run ``src.model_utils.device.init_device(cfg)`` (or ``ms.set_device``) first.
"""

from __future__ import annotations

import os
from typing import Callable, Union

import numpy as np

from src.data.alignment import align_face, fit_aligned
from src.deploy.sidecar_threshold import sidecar_threshold
from src.detect import Face, FaceDetector, ImageTooSmallError, NoFaceError, load_detector
from src.eval.embed import embed_images, fuse
from src.eval.models import load_network
from src.infer import identify
from src.infer.export_config import export_config
from src.infer.image_input import as_rgb, image_name, is_path
from src.model_utils.config import Config, ConfigError, load_config

# A path to an image file, or an HxWx3 (HxW grey, HxWx4 RGBA) uint8 array.
ImageInput = Union[str, os.PathLike, np.ndarray]


def as_config(config: Config | str | os.PathLike) -> Config:
    """A ``Config``, or the ``Config`` of a YAML file path (schema defaults for the keys it does not set)."""
    if isinstance(config, Config):
        return config
    return load_config(["--config_path", str(config)])


class Predictor:
    """Embeds faces with a checkpoint or an exported MINDIR (default: the config's ``ckpt_file``).

    ``detect``: images given without landmarks are raw photos whose faces ``detector`` (default: MTCNN from
    ``src.detect.load_detector``, loaded on first use) finds; otherwise they are taken as aligned faces. Passing
    a ``detector`` implies ``detect``.
    """

    def __init__(
        self,
        config: Config | str | os.PathLike,
        model_path: str | os.PathLike | None = None,
        detect: bool = False,
        detector: FaceDetector | None = None,
    ) -> None:
        self.cfg = as_config(config)
        path = model_path or self.cfg.ckpt_file
        if path is None:
            raise ConfigError("no model given: pass a checkpoint or MINDIR path, or set config key 'ckpt_file'")
        self.model_path = path = os.fspath(path)
        self.network, self.batch_size = load_network(self.cfg, path)
        self.image_size = tuple(self.cfg.image_size)
        # The cosine threshold export.py stored in the model's sidecar (--threshold_from), and where it came from.
        self.threshold, self.threshold_source = sidecar_threshold(path, self.cfg.fusion)
        self.detect = detect or detector is not None
        self._detector = detector

    @classmethod
    def from_export(
        cls,
        model_path: str | os.PathLike,
        detect: bool = False,
        detector: FaceDetector | None = None,
        settings: tuple[str, ...] | list[str] = (),
    ) -> Predictor:
        """A predictor of an exported MINDIR from the file and its sidecar ``<model>.json`` alone (no config):
        input size, embedding size, fusion and threshold come from the sidecar (src/infer/export_config.py);
        ``settings``, config keys as ``--key=value``, beat it (e.g. ``--fusion=sum``, ``--eval_fit=resize``)."""
        return cls(export_config(model_path, settings), model_path, detect, detector)

    @property
    def detector(self):
        if self._detector is None:
            self._detector = load_detector()
        return self._detector

    def faces(self, image: ImageInput) -> tuple[list[Face], np.ndarray]:
        """Every face the detector finds in ``image``, most central first -> (list of ``Face``, the aligned faces
        N x image_size x 3 uint8 RGB); ``NoFaceError`` naming the image when there is none."""
        rgb = as_rgb(image)
        try:
            found = self.detector.detect(rgb)
        except NoFaceError as err:  # e.g. an image smaller than the smallest face: name the file
            raise type(err)(f"{image_name(image)}: {err}") from err
        return self._aligned(image, rgb, found)

    def faces_of(self, images: list[ImageInput]) -> list[tuple[list[Face], np.ndarray]]:
        """``faces`` of each image, detected together (``FaceDetector.detect_batch``: P-Net runs once per pyramid
        scale for the images of one size, R-Net and O-Net once for all crops)."""
        rgbs = [as_rgb(image) for image in images]
        try:
            found = self.detector.detect_batch(rgbs)
        except ImageTooSmallError:  # one by one, for the error that names the image
            return [self.faces(image) for image in images]
        return [self._aligned(image, rgb, faces) for image, rgb, faces in zip(images, rgbs, found)]

    def _aligned(self, image: ImageInput, rgb: np.ndarray, found: list[Face]) -> tuple[list[Face], np.ndarray]:
        """(found, their aligned faces); ``NoFaceError`` naming the image when there is none."""
        if not found:
            raise NoFaceError(f"no face found in {image_name(image)}")
        return found, np.stack([align_face(rgb, face.landmarks, self.image_size) for face in found])

    def prepare(self, image: ImageInput, landmarks: np.ndarray | None = None) -> np.ndarray:
        """A path or RGB array -> the face to embed, image_size, uint8 RGB: aligned with ``landmarks``, else the
        detector's first (most central) face with ``detect``, else the image fitted as an aligned face."""
        if landmarks is not None:
            return align_face(as_rgb(image), landmarks, self.image_size)
        if self.detect:
            return self.faces(image)[1][0]
        return fit_aligned(as_rgb(image), self.image_size, self.cfg.eval_fit)

    def embed_prepared(self, faces: np.ndarray) -> np.ndarray:
        """Aligned faces (N x image_size x 3 uint8 RGB) -> N x D L2-normalised fused embeddings."""
        orig, flip = embed_images(self.network, np.asarray(faces), self.batch_size, log_every=0)
        features = fuse(orig, flip, self.cfg.fusion)
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)

    def embed(self, images: ImageInput | list[ImageInput], landmarks: np.ndarray | list | None = None) -> np.ndarray:
        """One image or a list of images (paths or RGB arrays), with optional landmarks for each -> N x D
        L2-normalised embeddings (1 x D for one image), one face per image."""
        single = is_path(images) or (isinstance(images, np.ndarray) and images.ndim in (2, 3))
        images = [images] if single else list(images)
        if landmarks is None:
            landmarks = [None] * len(images)
        elif single:
            landmarks = [landmarks]
        if len(landmarks) != len(images):
            raise ValueError(f"{len(images)} images but {len(landmarks)} landmark sets")
        return self.embed_prepared(np.stack([self.prepare(image, points) for image, points in zip(images, landmarks)]))

    def embed_faces(self, image: ImageInput) -> tuple[list[Face], np.ndarray]:
        """Every detected face of one image -> (list of ``Face``, most central first; N x D embeddings)."""
        found, aligned = self.faces(image)
        return found, self.embed_prepared(aligned)

    def similarity(
        self, a: ImageInput, b: ImageInput, landmarks_a: np.ndarray | None = None, landmarks_b: np.ndarray | None = None
    ) -> float:
        """The cosine similarity of the faces in images ``a`` and ``b`` (in [-1, 1])."""
        features = self.embed([a, b], [landmarks_a, landmarks_b])
        return float(np.dot(features[0], features[1]))

    def enroll(
        self,
        gallery: str | os.PathLike | dict,
        cache: bool | str = True,
        landmarks: Callable[[str], np.ndarray] | None = None,
    ) -> identify.Gallery:
        """A ``Gallery`` from a folder with one sub-folder of photos per person, or a mapping {identity: [images]}.

        Each identity is the mean of its photos' embeddings (one face per photo: the most central), L2-normalised.
        A folder's gallery is cached (``cache``: True = ``<folder>.gallery.npz`` beside it, a path, or False) with
        the fingerprint of the model, the settings and the gallery's files, and re-enrolled when any changes.
        Unreadable photos, photos without a face and folders without a usable photo are skipped and listed in
        ``Gallery.skipped``. ``landmarks``: a function path -> 5x2 points for the gallery's photos.
        """
        return identify.enroll(self, gallery, cache, landmarks)

    def search(
        self,
        images: ImageInput | list[ImageInput],
        gallery: identify.Gallery,
        top_k: int = 1,
        landmarks: Callable[[str], np.ndarray] | None = None,
        min_face: float = identify.SEARCH_MIN_FACE,
        min_score: float = identify.SEARCH_MIN_SCORE,
    ) -> list[identify.QueryResult]:
        """The ``top_k`` nearest identities of ``gallery`` for every face of each query image -> a list of
        ``identify.QueryResult`` (one per face found, most central first; one with ``error`` set for an image
        that gives no face). ``landmarks``: a function path -> 5x2 points for the queries. Detected faces whose
        box is smaller than ``min_face`` px or whose score is below ``min_score`` are not searched."""
        return identify.search(self, images, gallery, top_k, landmarks, min_face, min_score)
