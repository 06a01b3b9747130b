import pytest
import torch

from openjepa.layers import interpolate_pos_embed, sincos_embed
from openjepa.masks.base import MaskBatch
from openjepa.models import Predictor, VisionTransformer


def tiny(**kw):
    return VisionTransformer(img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, **kw).eval()


def test_param_names_follow_convention():
    names = set(tiny().state_dict())
    for key in ["patch_embed.proj.weight", "pos_embed", "blocks.0.norm1.weight", "blocks.0.attn.qkv.weight",
                "blocks.0.attn.proj.weight", "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc2.bias", "norm.weight"]:
        assert key in names


def test_masked_forward_equals_gathered_full_attention_over_kept_tokens():
    """Forward on a subset = running the blocks on exactly those tokens (no leakage from dropped ones)."""
    m = tiny()
    x = torch.randn(2, 3, 16, 16)
    idx = torch.tensor([[0, 3, 5, 9], [1, 2, 14, 15]])
    out = m(x, MaskBatch(idx))
    tokens = m.embed(x)
    ref = torch.stack([tokens[b, idx[b]] for b in range(2)])
    for blk in m.blocks:
        ref = blk(ref)
    torch.testing.assert_close(out, m.norm(ref))


def test_padding_is_ignored():
    """A padded, invalid index changes nothing for the valid tokens."""
    m = tiny()
    x = torch.randn(1, 3, 16, 16)
    short = m(x, MaskBatch(torch.tensor([[2, 7, 11]])))
    padded = m(x, MaskBatch(torch.tensor([[2, 7, 11, 0]]), torch.tensor([[True, True, True, False]])))
    torch.testing.assert_close(padded[:, :3], short)


def test_other_resolution_interpolates_pos_embed():
    m = tiny()
    assert m(torch.randn(1, 3, 24, 24)).shape == (1, 36, 32)
    pos = m.pos_embed.detach()
    assert interpolate_pos_embed(pos, (1, 4, 4), (1, 4, 4)) is pos
    up = interpolate_pos_embed(pos, (1, 4, 4), (1, 8, 8))
    assert up.shape == (1, 64, 32)


def test_sincos_matches_formula():
    emb = sincos_embed(8, (1, 2, 3))  # I-JEPA: w half then h half, each [sin, cos]
    h, w = 1, 2  # token index 1*3 + 2 = 5
    omega = 1.0 / 10000 ** (torch.arange(2, dtype=torch.float64) / 2.0)
    expect = torch.cat([torch.sin(w * omega), torch.cos(w * omega), torch.sin(h * omega), torch.cos(h * omega)])
    torch.testing.assert_close(emb[5], expect.float())


def test_video_grid_uses_tubelets():
    m = VisionTransformer(img_size=16, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=32, depth=1,
                          num_heads=2)
    assert m.grid == (2, 2, 2)
    assert isinstance(m.patch_embed.proj, torch.nn.Conv3d)
    assert m(torch.randn(1, 3, 4, 16, 16)).shape == (1, 8, 32)


def test_intermediates():
    m = tiny()
    x = torch.randn(1, 3, 16, 16)
    outs = m.forward_intermediates(x, [0, -1])
    assert len(outs) == 2 and outs[-1].shape == (1, 16, 32)
    torch.testing.assert_close(outs[-1], m(x))


def test_predictor_returns_only_targets_and_ignores_padding():
    p = Predictor((1, 4, 4), embed_dim=32, predictor_embed_dim=16, depth=2, num_heads=2).eval()
    ctx = torch.randn(1, 3, 32)
    out = p(ctx, MaskBatch(torch.tensor([[0, 1, 2]])), MaskBatch(torch.tensor([[5, 6]])))
    assert out.shape == (1, 2, 32)
    ctx_pad = torch.cat([ctx, torch.randn(1, 1, 32)], 1)
    out2 = p(ctx_pad, MaskBatch(torch.tensor([[0, 1, 2, 0]]), torch.tensor([[True, True, True, False]])),
             MaskBatch(torch.tensor([[5, 6, 0]]), torch.tensor([[True, True, False]])))
    torch.testing.assert_close(out2[:, :2], out)


def test_defaults_are_vit_base_16_at_224():
    with torch.device("meta"):
        m = VisionTransformer()
    assert m.grid == (1, 14, 14) and m.patch_size == 16 and m.embed_dim == 768 and m.num_heads == 12
    assert len(m.blocks) == 12 and m.blocks[0].mlp.fc1.out_features == 3072 and m.blocks[0].attn.qkv.bias is not None
    assert isinstance(m.patch_embed.proj, torch.nn.Conv2d) and m.patch_embed.proj.in_channels == 3
    assert all(b.drop_path == 0.0 for b in m.blocks) and m.norm.eps == 1e-6 and m.num_tokens == 196
    assert m.no_weight_decay() == {"pos_embed"} and not m.pos_embed.requires_grad


def test_initialisation_and_drop_path_rates():
    import math

    torch.manual_seed(0)
    m = VisionTransformer(img_size=16, patch_size=4, embed_dim=64, depth=3, num_heads=2, drop_path=0.3)
    assert [b.drop_path for b in m.blocks] == [0.0, 0.15, 0.3]  # linear over depth
    two = VisionTransformer(img_size=8, patch_size=4, embed_dim=16, depth=2, num_heads=2, drop_path=0.3)
    assert [b.drop_path for b in two.blocks] == [0.0, 0.3]
    assert 0.019 < m.blocks[0].attn.qkv.weight.std().item() < 0.021 and not m.blocks[0].attn.qkv.bias.any()
    for i, b in enumerate(m.blocks, 1):  # residual projections of block i divided by sqrt(2 i)
        assert abs(b.mlp.fc2.weight.std().item() * math.sqrt(2 * i) / 0.02 - 1) < 0.05
    torch.testing.assert_close(m.pos_embed, sincos_embed(64, (1, 4, 4))[None])
    with pytest.raises(ValueError, match="multiple of patch_size"):
        VisionTransformer(img_size=18, patch_size=4)
    with pytest.raises(ValueError, match="multiple of tubelet_size"):
        VisionTransformer(img_size=16, patch_size=4, num_frames=3, tubelet_size=2)
