"""Typed configuration: dataclass schema + OmegaConf merge of YAML deltas and overrides."""

from openjepa.config.load import ConfigError, available_configs, from_dict, load_config, to_dict, to_yaml
from openjepa.config.schema import (Config, DataConfig, EvalConfig, MaskConfig, ModelConfig, OptimConfig,
                                    TrainConfig)

__all__ = ["Config", "ConfigError", "DataConfig", "EvalConfig", "MaskConfig", "ModelConfig", "OptimConfig",
           "TrainConfig", "available_configs", "from_dict", "load_config", "to_dict", "to_yaml"]
