"""openjepa: Joint-Embedding Predictive Architectures in PyTorch."""



def create_model(name, **kwargs):
    """Build the registered encoder ``name`` (see :func:`openjepa.models.create_model`)."""
    from openjepa.models import create_model as _create

    return _create(name, **kwargs)


def list_models(pattern="*"):
    """Registered encoder names matching ``pattern`` (see :func:`openjepa.models.list_models`)."""
    from openjepa.models import list_models as _list

    return _list(pattern)


def load_pretrained(path, map_location="cpu"):
    """The trained target encoder of a run (dir, ``encoder.safetensors`` or checkpoint ``.pt``)."""
    from openjepa.pretrained import load_pretrained as _load

    return _load(path, map_location)


__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models", "load_pretrained"]
