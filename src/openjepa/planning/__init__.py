"""Planning with action-conditioned world models: environments, data collection, planners.

``envs`` holds the pure-torch batched environments; ``collect`` records trajectories from them
for :class:`openjepa.data.trajectories.TrajectoryDataset`.
"""

from .envs import Env, EnvBatch, env_names, make_env

__all__ = ["Env", "EnvBatch", "env_names", "make_env"]
