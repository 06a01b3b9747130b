"""Training methods. Importing this package registers them."""

from openjepa.methods.base import JEPAMethod, StepOutput, build_method, method_names, register_method
from openjepa.methods.ijepa import IJEPA, build_encoder
from openjepa.methods.lejepa import LeJEPA
from openjepa.methods.acjepa import ACJEPA

__all__ = ["ACJEPA", "IJEPA", "JEPAMethod", "LeJEPA", "StepOutput", "build_encoder", "build_method", "method_names", "register_method"]
