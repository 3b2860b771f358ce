"""Face detection and 5-point landmarks (MTCNN) for raw photos: ``load_detector().detect(image_rgb)``."""

from src.detect.detector import (
    Face,
    FaceDetector,
    ImageTooSmallError,
    NoFaceError,
    load_detector,
)
from src.detect.weights import WeightsError

__all__ = ["Face", "FaceDetector", "ImageTooSmallError", "NoFaceError", "WeightsError", "load_detector"]
