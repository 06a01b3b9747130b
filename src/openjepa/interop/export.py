"""Export a trained method's evaluated encoder as safetensors, with the settings that rebuild it.

The file loads back with :func:`openjepa.load_pretrained` (and :func:`openjepa.engine.runs.load_encoder`):
the metadata holds the format tag and the run's resolved config as YAML.
"""

from __future__ import annotations

from pathlib import Path

from openjepa.config.load import to_yaml
from openjepa.config.schema import Config
from openjepa.engine.checkpoint import save_safetensors
from openjepa.engine.runs import ENCODER_FORMAT
from openjepa.methods import JEPAMethod


def export_encoder(method: JEPAMethod, cfg: Config, path: str | Path) -> Path:
    """The target encoder's weights (``method.eval_encoder("target")``) as safetensors at ``path``."""
    enc = method.eval_encoder("target")
    tensors = {k: v.detach().contiguous().cpu() for k, v in enc.state_dict().items()}
    return save_safetensors(tensors, path, metadata={"format": ENCODER_FORMAT, "config": to_yaml(cfg)})
