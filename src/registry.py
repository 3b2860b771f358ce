"""A name -> constructor registry, the mechanism behind ``build_backbone`` and ``build_head``."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

T = TypeVar("T")


class Registry:
    """Maps names to classes or factory functions.

    >>> BACKBONES = Registry("backbone")
    >>> @BACKBONES.register("sphere20a")
    ... def sphere20a(**kw): ...
    >>> BACKBONES.build("sphere20a", embedding_size=512)
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj):
            if name in self._items:
                raise KeyError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj
        return decorator

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._items:
            raise KeyError(f"unknown {self.kind} '{name}'; available: {', '.join(self.names())}")
        return self._items[name]

    def build(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name):
        return name in self._items
