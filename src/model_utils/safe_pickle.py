"""The error of the project's restricted unpicklers (``src/eval/binset.py`` for insightface ``.bin`` sets,
``src/detect/torch_legacy.py`` for PyTorch weight files): files from users are read without running their code."""


class UnsafePickleError(ValueError):
    """A pickle asks for a global outside the allowed ones (it may be crafted to execute code)."""
