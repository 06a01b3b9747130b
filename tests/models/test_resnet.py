"""ResNet encoders: torchvision parity, the token grid, stride validation, refusal of masks."""

import pytest
import torch
import torchvision

from openjepa.config import ConfigError, load_config
from openjepa.methods import build_method
from openjepa.models import ResNet
from openjepa.models import create_model, list_models


def test_resnet18_is_torchvisions_network_as_tokens():
    """With patch_size=32 (the ImageNet stem), torchvision's ResNet-18 weights load under the same
    names and the tokens are its last feature map in raster order."""
    torch.manual_seed(0)
    ours = create_model("resnet18", img_size=64, patch_size=32).eval()
    ref = torchvision.models.resnet18().eval()
    ours.load_state_dict({k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fmap = torch.nn.Sequential(*list(ref.children())[:-2])(x)  # (2, 512, 2, 2)
        tokens = ours(x)
    assert tokens.shape == (2, 4, 512) and ours.grid == (1, 2, 2) and ours.embed_dim == 512
    torch.testing.assert_close(tokens, fmap.flatten(2).transpose(1, 2))
    torch.testing.assert_close(tokens.mean(1), ref.avgpool(fmap).flatten(1))  # pooled tokens = torchvision's pool


@pytest.mark.parametrize("name,patch,dim", [("resnet_pico", 4, 128), ("resnet_nano", 4, 256), ("resnet18", 8, 512)])
def test_token_grid_at_any_multiple_of_the_stride(name, patch, dim):
    m = create_model(name, img_size=32, patch_size=patch, in_chans=1).eval()
    for side in (32, 16, 3 * patch):
        out = m(torch.randn(3, 1, side, side))
        assert out.shape == (3, (side // patch) ** 2, dim), (side, out.shape)
    inter = m.forward_intermediates(torch.randn(2, 1, 32, 32), [-2, -1])
    assert [t.shape[-1] for t in inter][-1] == dim and len(inter) == 2
    torch.manual_seed(1)
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(m.forward_intermediates(x, [-1])[0], m(x))


def test_stride_and_input_validation():
    assert {"resnet_pico", "resnet_nano", "resnet18"} <= set(list_models("resnet*"))
    with pytest.raises(ValueError, match="one of 4, 8, 16"):
        create_model("resnet_pico", img_size=24, patch_size=2)
    with pytest.raises(ValueError, match="one of 4, 8, 16"):
        create_model("resnet_pico", img_size=24, patch_size=12)
    with pytest.raises(ValueError, match="not a multiple"):
        create_model("resnet_pico", img_size=30, patch_size=4)
    with pytest.raises(ValueError, match="num_frames"):
        create_model("resnet_pico", img_size=32, patch_size=4, num_frames=4)
    m = create_model("resnet_pico", img_size=32, patch_size=4)
    from openjepa.masks.base import MaskBatch

    with pytest.raises(ValueError, match="ViT"):
        m(torch.randn(1, 3, 32, 32), MaskBatch(torch.zeros(1, 3, dtype=torch.long)))


def test_masked_ijepa_refuses_a_resnet_by_key():
    cfg = load_config(None, ["model.encoder=resnet_pico", "model.img_size=32"])
    with pytest.raises(ConfigError, match="model.encoder=resnet_pico.*ViT"):
        build_method(cfg, total_steps=1)
    cfg = load_config(None, ["model.encoder=resnet_pico", "model.img_size=32", "train.method=lejepa",
                             "sigreg.weight=0.05"])
    assert isinstance(build_method(cfg, total_steps=1).encoder, ResNet)
