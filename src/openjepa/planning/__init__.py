"""Planning in latent space with action-conditioned world models.

``envs`` holds the pure-torch batched environments; ``collect`` records trajectories from them
for :class:`openjepa.data.trajectories.TrajectoryDataset`; ``cem`` and ``mppi`` search action
sequences; ``mpc`` runs receding-horizon control with a world model (``world``) or the true
simulator; ``evaluate`` is ``openjepa plan``.
"""

from .cem import CEM
from openjepa.envs import Env, EnvBatch, env_names, make_env
from .mppi import MPPI

__all__ = ["CEM", "Env", "EnvBatch", "MPPI", "env_names", "make_env"]
