"""One registry mechanism for everything chosen by name: models, methods, datasets, evaluations.

timm's ``@register_model`` idea, generalised: a :class:`Registry` maps names to objects (factories,
builders, specs); an unknown name raises :class:`~openjepa.errors.ConfigError` naming the config
key, a close match and every registered name. The registries are filled by the modules that
define the entries (importing ``openjepa.models`` registers the encoders, ``openjepa.methods`` the
methods, ``openjepa.data`` the datasets), so this module imports none of them.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, Iterator, TypeVar

from openjepa.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> entries of one kind; ``key`` is the config key that picks an entry (for error messages)."""

    def __init__(self, kind: str, key: str):
        self.kind, self.key = kind, key
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a second registration of a name is an error."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` (default: its ``__name__``)."""
        def deco(obj: T) -> T:
            return self.add(name or obj.__name__, obj)  # type: ignore[attr-defined]
        return deco

    def get(self, name: str) -> T:
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self._entries, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{self.key}={name!r} is not a registered {self.kind}{hint}; "
                              f"choose one of: {', '.join(self.names())}")
        return self._entries[name]

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def in_order(self) -> list[str]:
        """Registered names in registration order (where the order means something, e.g. format detection)."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


MODELS: Registry[Callable] = Registry("model", "model.encoder")


def register_model(fn: Callable) -> Callable:
    """Register an encoder factory under its function name (``@register_model def vit_small(...)``)."""
    return MODELS.register()(fn)
