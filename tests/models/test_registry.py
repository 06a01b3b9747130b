"""Every registered model is built and run; the official sizes are checked on the meta device."""

import pytest
import torch

from openjepa import create_model, list_models

SIZES = {  # name: (dim, depth, heads, mlp hidden) — the I-JEPA / V-JEPA papers' table
    "vit_tiny": (192, 12, 3, 768), "vit_small": (384, 12, 6, 1536), "vit_base": (768, 12, 12, 3072),
    "vit_large": (1024, 24, 16, 4096), "vit_huge": (1280, 32, 16, 5120), "vit_giant": (1408, 40, 16, 6144),
}
REAL = {"vit_pico", "vit_nano", "vit_micro", "vit_tiny", "vit_small"}  # cheap enough for a real CPU forward


def param_count(dim, depth, hidden, chans=3, patch=16):
    """Independent count: patch conv + blocks (qkv, proj, fc1, fc2, 2 norms) + final norm."""
    block = (dim * 3 * dim + 3 * dim) + (dim * dim + dim) + (dim * hidden + hidden) + (hidden * dim + dim) + 4 * dim
    return chans * patch * patch * dim + dim + depth * block + 2 * dim


@pytest.mark.parametrize("name", list_models())
def test_forward_shapes(name):
    device = "cpu" if name in REAL else "meta"
    with torch.device(device):
        m = create_model(name, img_size=32, patch_size=8)
        x = torch.randn(2, 3, 32, 32)
        out = m(x)
    assert out.shape == (2, 16, m.embed_dim)
    if device == "cpu":
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(SIZES))
def test_official_sizes(name):
    dim, depth, heads, hidden = SIZES[name]
    with torch.device("meta"):
        m = create_model(name, img_size=224, patch_size=16)
    assert (m.embed_dim, len(m.blocks), m.num_heads) == (dim, depth, heads)
    assert m.blocks[0].mlp.fc1.out_features == hidden
    trainable = sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert trainable == param_count(dim, depth, hidden)


def test_unknown_model_suggests():
    with pytest.raises(ValueError, match="vit_small"):
        create_model("vit_smal")
