"""Training methods. Importing this package registers them."""

from openjepa.methods.base import (METHODS, DataPipeline, JEPAMethod, MethodSpec, SingleEncoderMethod, StepOutput,
                                   build_method, check_config, method_names, register_method)
from openjepa.methods.ijepa import IJEPA, build_encoder
from openjepa.methods.lejepa import LeJEPA
from openjepa.methods.acjepa import ACJEPA
from openjepa.methods.finetune import Finetune

__all__ = ["ACJEPA", "IJEPA", "METHODS", "DataPipeline", "Finetune", "JEPAMethod", "LeJEPA", "MethodSpec",
           "SingleEncoderMethod", "StepOutput", "build_encoder", "build_method", "check_config", "method_names",
           "register_method"]
