"""openjepa: Joint-Embedding Predictive Architectures in PyTorch."""

from openjepa.registry import create_model, list_models

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models"]
