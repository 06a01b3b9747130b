import pytest
import torch

from openjepa.layers import Attention
from openjepa.models import ACPredictor

D, A = 8, 3
MODES = ["adaln", "token"]


def make(cond: str, N: int = 1, max_frames: int = 8, **kw) -> ACPredictor:
    torch.manual_seed(0)
    return ACPredictor(D, A, tokens_per_frame=N, dim=32, depth=2, num_heads=2, max_frames=max_frames, cond=cond,
                       **kw).eval()


def wake(m: ACPredictor) -> ACPredictor:
    """adaLN-Zero starts with zero gates (blocks = identity, no action dependence): perturb every parameter."""
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


def data(B: int = 2, T: int = 5, N: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(B, T, N, D), torch.randn(B, T, A)


@pytest.mark.parametrize("cond", MODES)
@pytest.mark.parametrize("N", [1, 4])
def test_shapes(cond, N):
    m = make(cond, N)
    z, a = data(3, 5, N)
    assert m(z, a).shape == (3, 5, N, D)
    assert m.rollout(z, torch.randn(3, 5 - 1 + 4, A)).shape == (3, 4, N, D)
    assert m.no_weight_decay() == ({"time_embed", "space_embed"} if N > 1 else {"time_embed"})


def test_validation_errors():
    m = make("adaln", N=2)
    z, a = data(2, 4, 2)
    with pytest.raises(ValueError, match=r"\(B, T, N=2, D=8\)"):
        m(torch.randn(2, 4, 3, D), a)
    with pytest.raises(ValueError, match="action_dim=3"):
        m(z, torch.randn(2, 4, A + 1))
    with pytest.raises(ValueError, match="T=4"):
        m(z, a[:, :3])
    with pytest.raises(ValueError, match="max_frames=8"):
        m(*data(2, 9, 2))
    with pytest.raises(ValueError, match="H >= 1"):
        m.rollout(z, a[:, :3])
    with pytest.raises(ValueError, match="cond must be one of"):
        ACPredictor(D, A, cond="film")


@pytest.mark.parametrize("cond", MODES)
@pytest.mark.parametrize("N", [1, 3])
def test_frame_block_causal(cond, N):
    """Future frames and actions never reach out[:, :t+1]; the action of frame t does reach out[:, t]."""
    m = wake(make(cond, N))
    T = 5
    z, a = data(2, T, N)
    out = m(z, a)
    for t in range(T):
        z2, a2 = z.clone(), a.clone()
        z2[:, t + 1:] += torch.randn_like(z2[:, t + 1:])
        a2[:, t + 1:] += torch.randn_like(a2[:, t + 1:])
        torch.testing.assert_close(m(z2, a2)[:, :t + 1], out[:, :t + 1], atol=1e-6, rtol=0)
        a3 = a.clone()
        a3[:, t] += 1.0
        assert (m(z, a3)[:, t] - out[:, t]).abs().max() > 1e-3, f"action {t} does not condition frame {t}"


def test_adaln_zero_init_ignores_actions():
    """adaLN-Zero: with zero modulation every block is the identity, so the actions cannot matter yet."""
    m = make("adaln", N=2)
    z, a = data(2, 4, 2)
    torch.testing.assert_close(m(z, a), m(z, torch.randn_like(a)), atol=0, rtol=0)
    x = m.frame_embed(z) + m.time_embed[:4, None] + m.space_embed
    torch.testing.assert_close(m(z, a), m.proj(m.norm(x)))


def test_block_causal_mask_is_cached():
    m = make("token", N=2)
    mask = m.block_causal_mask(3, torch.device("cpu"))
    assert mask.shape == (9, 9) and mask is m.block_causal_mask(3, torch.device("cpu"))
    assert mask[3:6, :6].all() and not mask[3:6, 6:].any()  # frame 1 sees frames 0 and 1 only
    assert m.block_causal_mask(1, torch.device("cpu")) is None


def test_attention_with_past_equals_causal_attention():
    """The rollout's key/value cache: new tokens attending to the cached past = full attention, causal mask."""
    torch.manual_seed(0)
    attn = Attention(16, 2).eval()
    x = torch.randn(2, 5, 16)
    full = attn(x, torch.ones(5, 5, dtype=torch.bool).tril())
    out1, past = attn.forward_with_past(x[:, :3], None)
    out2, (k, v) = attn.forward_with_past(x[:, 3:4], past)
    out3, _ = attn.forward_with_past(x[:, 4:], (k, v))
    torch.testing.assert_close(out2, full[:, 3:4])
    torch.testing.assert_close(out3, full[:, 4:])
    assert k.shape == v.shape == (2, 2, 4, 8)


@pytest.mark.parametrize("cond", MODES)
def test_rollout_matches_forward_loop(cond):
    m = wake(make(cond, N=2))
    T0, H = 3, 4
    z, _ = data(2, T0, 2)
    a = torch.randn(2, T0 - 1 + H, A)
    roll = m.rollout(z, a)
    torch.testing.assert_close(roll[:, 0], m(z, a[:, :T0])[:, -1])
    frames = z
    for h in range(H):
        nxt = m(frames, a[:, :T0 + h])[:, -1:]
        torch.testing.assert_close(roll[:, h:h + 1], nxt)
        frames = torch.cat([frames, nxt], dim=1)
    a.requires_grad_(True)  # gradient-based planners differentiate the imagined future w.r.t. the actions
    m.rollout(z, a)[:, -1].sum().backward()
    assert a.grad[:, T0 - 1:].abs().sum(-1).gt(0).all()


@pytest.mark.parametrize("cond", MODES)
def test_rollout_sliding_window(cond):
    """Past max_frames, each step sees only the last max_frames frames (re-indexed from 0)."""
    W = 4
    m = wake(make(cond, N=1, max_frames=W))
    T0, H = 3, 5  # T0 + H - 1 = 7 frames > W
    z, _ = data(2, T0)
    a = torch.randn(2, T0 - 1 + H, A)
    roll = m.rollout(z, a)
    frames = z
    for h in range(H):
        t = T0 + h
        nxt = m(frames[:, -W:], a[:, max(0, t - W):t])[:, -1:]
        torch.testing.assert_close(roll[:, h:h + 1], nxt)
        frames = torch.cat([frames, nxt], dim=1)
    # A context longer than the window is windowed too.
    long_z = torch.randn(2, 6, 1, D)
    long_a = torch.randn(2, 6 - 1 + 2, A)
    torch.testing.assert_close(m.rollout(long_z, long_a)[:, 0], m(long_z[:, -W:], long_a[:, 2:6])[:, -1])


@pytest.mark.parametrize("cond", MODES)
def test_gradient_reaches_every_parameter(cond):
    """adaLN-Zero gates block the gradient to attention/MLP weights at init, hence wake() first."""
    m = wake(make(cond, N=2)).train()
    z, a = data(2, 4, 2)
    m(z, a).square().mean().backward()
    for name, p in m.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert name == "time_embed"


@pytest.mark.parametrize("cond", MODES)
def test_learns_linear_latent_dynamics(cond):
    """z_{t+1} = z_t + W a_t: teacher-forced training beats the trivial z_{t+1} = z_t predictor by far."""
    torch.manual_seed(0)
    B, T = 64, 4
    Wd = torch.randn(A, D)
    m = ACPredictor(D, A, dim=32, depth=2, num_heads=2, max_frames=T, cond=cond)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=0.0)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.randn(B, T, A)
        z = torch.randn(B, 1, D) + torch.cat([torch.zeros(B, 1, D), (a @ Wd).cumsum(1)], dim=1)  # (B, T+1, D)
        return z[:, :, None], a

    for _ in range(250):
        z, a = batch()
        loss = (m(z[:, :-1], a) - z[:, 1:]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    z, a = batch()
    with torch.no_grad():
        loss = (m(z[:, :-1], a) - z[:, 1:]).square().mean()
    trivial = (z[:, :-1] - z[:, 1:]).square().mean()
    assert loss < 0.1 * trivial, (loss.item(), trivial.item())
