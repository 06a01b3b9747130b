"""Planning in latent space: environments, world-model rollouts, CEM and MPPI."""
