"""HeldActions: the planner searches one action per model step; the world model gets it frameskip times."""

import torch

from openjepa.planning.cem import CEM
from openjepa.planning.held import HeldActions


def test_held_actions_tile_and_find_the_optimum():
    fs, H = 3, 4
    target = torch.tensor([[0.5, -0.25], [-0.4, 0.1]])  # (B, 2): the best held action per problem
    seen = []

    def energy(cands):  # (B, S, H, fs*2): every env action of every step should equal the target
        seen.append(cands)
        env_actions = cands.unflatten(-1, (fs, 2))  # (B, S, H, fs, 2)
        return (env_actions - target[:, None, None, None]).square().sum(dim=(-3, -2, -1))

    held = HeldActions(CEM(horizon=H, action_dim=2, bound=1.0, samples=200, iterations=6, seed=0), fs)
    out = held.plan(energy, batch=2)
    assert out.actions.shape == (2, H, fs * 2) and all(c.shape[-1] == fs * 2 for c in seen)
    blocks = out.actions.unflatten(-1, (fs, 2))  # (B, H, fs, 2)
    assert torch.equal(blocks, blocks[:, :, :1].expand_as(blocks))  # one action held for the whole step
    torch.testing.assert_close(blocks[:, 0, 0], target, atol=0.03, rtol=0)
    for c in seen:
        b = c.unflatten(-1, (fs, 2))
        assert torch.equal(b, b[..., :1, :].expand_as(b))


def test_held_actions_warm_start_uses_the_held_action():
    fs = 2
    init = torch.tensor([[[0.3, -0.2, 9.0, 9.0]]])  # (B=1, H=1, fs*2): only the first env action is the held one
    first = []

    def energy(cands):
        first.append(cands)
        return cands.square().sum(dim=(-2, -1))

    HeldActions(CEM(horizon=1, action_dim=2, bound=1.0, samples=10, iterations=1, seed=0), fs).plan(energy, 1, init)
    means = first[0].unflatten(-1, (fs, 2))[0, :, 0, 0]  # (S, 2): the candidates' held actions
    assert any(torch.allclose(m, torch.tensor([0.3, -0.2])) for m in means)  # the warm start is a candidate
