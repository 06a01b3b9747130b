"""torch.hub entry points: every encoder openjepa registers, with weights from a path or a cache directory.

    torch.hub.load("/path/to/openjepa", "vjepa2_vit_large", source="local", weights="vjepa2_vitl.pt")
    torch.hub.load("/path/to/openjepa", "vit_small", source="local", pretrained=False, img_size=224)

``weights`` is any source :func:`openjepa.load_pretrained` reads (an openjepa run or encoder.safetensors, a
Hugging Face folder, an official checkpoint). Without it, the newest file or folder named after the entry
point in ``$OPENJEPA_HUB`` (default ``~/.cache/openjepa/hub``) is used. Nothing is ever downloaded: there is
no URL in this file. ``pretrained=False`` returns the architecture at random init.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

dependencies = ["torch", "safetensors"]

try:  # a local clone that is not pip-installed: use its sources
    import openjepa  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))


def _hub_dir() -> Path:
    return Path(os.environ.get("OPENJEPA_HUB", Path.home() / ".cache" / "openjepa" / "hub")).expanduser()


def _cached(name: str) -> Path | None:
    found = sorted(_hub_dir().glob(f"{name}*"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _entry(name: str):
    def load(weights: str | os.PathLike | None = None, pretrained: bool = True, **kwargs):
        from openjepa import load_pretrained
        from openjepa.engine.checkpoint import load_state_strict
        from openjepa.models import create_model

        if not pretrained:
            return create_model(name, **kwargs)
        source = Path(weights) if weights is not None else _cached(name)
        if source is None:
            raise FileNotFoundError(f"{name}: no weights given and none in {_hub_dir()} (pass weights=PATH, put "
                                    f"them at {_hub_dir() / name}, or pretrained=False for random init)")
        loaded = load_pretrained(source)
        if loaded.config.model.encoder != name and not kwargs:
            return loaded.encoder  # e.g. a converted checkpoint whose architecture has its own name
        model = create_model(name, **{"img_size": loaded.config.model.img_size,
                                      "patch_size": loaded.config.model.patch_size, **kwargs})
        load_state_strict(model, loaded.encoder.state_dict(), f"{source} into {name}")
        return model.eval()

    load.__name__ = name
    load.__doc__ = f"The {name} encoder (see the module docstring for weights)."
    return load


def _register_all() -> None:
    from openjepa.models import list_models

    for model_name in list_models():
        globals()[model_name] = _entry(model_name)


_register_all()
