"""Named model factories (timm's ``@register_model`` idea): ``create_model("vit_small", patch_size=16)``."""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` under its function name; a second registration of a name is an error."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is already registered")
    _MODELS[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    _ensure_loaded()
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name``; ``kwargs`` go to its factory."""
    _ensure_loaded()
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"unknown model {name!r}{hint}; registered: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**kwargs)


def _ensure_loaded() -> None:
    # Importing the model modules runs their @register_model decorators.
    import openjepa.models  # noqa: F401
