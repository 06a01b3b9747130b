"""openjepa: Joint-Embedding Predictive Architectures in PyTorch."""

from openjepa.registry import create_model, list_models


def load_pretrained(path, map_location="cpu"):
    """The trained target encoder of a run (dir, ``encoder.safetensors`` or checkpoint ``.pt``)."""
    from openjepa.pretrained import load_pretrained as _load

    return _load(path, map_location)


__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models", "load_pretrained"]
