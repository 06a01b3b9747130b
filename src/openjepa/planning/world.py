"""A trained action-conditioned JEPA as a planning model: encode observations, imagine rollouts, score them.

The planners (:mod:`~openjepa.planning.cem`, :mod:`~openjepa.planning.mppi`) search over action
sequences; this adapter turns each candidate into imagined latents with the world model's
predictor and scores them by their distance to the goal observation's latent: the energy of
V-JEPA 2-AC (Assran et al. 2025, Sec. 4.2) and DINO-WM (Zhou et al. 2024), planned in
representation space, never in pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from openjepa.methods.acjepa import ACJEPA


class LatentWorldModel:
    """The :class:`~openjepa.planning.mpc.PlanningModel` of a trained :class:`ACJEPA`.

    ``chunk`` bounds how many candidate sequences are imagined at once (memory on big batches).
    """

    def __init__(self, method: ACJEPA, frameskip: int, device: torch.device | str = "cpu", chunk: int = 16384):
        self.method, self.frameskip, self.device, self.chunk = method.eval(), int(frameskip), torch.device(device), chunk

    @torch.inference_mode()
    def encode(self, obs: Tensor, state: Tensor | None = None) -> Tensor:
        """obs uint8 (N, 3, H, W) -> latents (N, n, L); the state is not used (a world model sees pixels)."""
        x = obs.to(self.device).float() / 127.5 - 1.0  # the trajectory dataset's scaling, [-1, 1]
        return self.method.embed(x)

    @torch.inference_mode()
    def rollout(self, z: Tensor, actions: Tensor) -> Tensor:
        """z (N, n, L), actions (N, S, H, A) -> imagined latents (N, S, H, n, L)."""
        N, S, H, A = actions.shape
        flat = actions.to(self.device).reshape(N * S, H, A)  # (N*S, H, A)
        start = z[:, None].expand(N, S, *z.shape[1:]).reshape(N * S, 1, *z.shape[1:])  # (N*S, 1, n, L)
        out = [self.method.predictor.rollout(start[i:i + self.chunk], flat[i:i + self.chunk])
               for i in range(0, N * S, self.chunk)]  # each (chunk, H, n, L)
        return torch.cat(out).view(N, S, H, *z.shape[1:])

    @staticmethod
    def distance(pred: Tensor, goal: Tensor) -> Tensor:
        """pred (N, S, H, n, L), goal (N, n, L) -> mean squared latent distance (N, S, H)."""
        return (pred - goal[:, None, None]).square().mean(dim=(-2, -1))


__all__ = ["LatentWorldModel"]
