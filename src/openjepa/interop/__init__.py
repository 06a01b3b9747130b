"""Interoperability: released JEPAs in (converters, loadable source formats), trained encoders out
(safetensors, ONNX, Hugging Face). Importing this package registers every source format."""

from openjepa.interop import released  # noqa: F401  (registers the Hugging Face and official formats)
from openjepa.interop.export import export_encoder, export_to, save_encoder
from openjepa.interop.sources import SOURCE_FORMATS, Source, load_source

__all__ = ["SOURCE_FORMATS", "Source", "export_encoder", "export_to", "load_source", "save_encoder"]
