"""Interoperability: trained encoders out of openjepa (safetensors now; Hugging Face and ONNX in issue 12)."""

from openjepa.interop.export import export_encoder

__all__ = ["export_encoder"]
