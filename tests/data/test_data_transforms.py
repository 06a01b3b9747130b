"""Config-built torchvision v2 pipelines."""

import pytest
import torch
from omegaconf import OmegaConf

from openjepa.data.transforms import EnsureSize, available_transforms, build_pipeline, build_transform


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError) as e:
        build_transform({"name": "RandomResizeCrop", "size": 32})
    msg = str(e.value)
    assert "'RandomResizeCrop'" in msg and "RandomResizedCrop" in msg
    with pytest.raises(ValueError, match="RandomHorizontalFlip"):
        build_transform("randomhorizontalflip")


def test_bad_arguments_name_the_transform():
    with pytest.raises(ValueError, match="RandomResizedCrop"):
        build_transform({"name": "RandomResizedCrop", "sise": 32})
    with pytest.raises(ValueError, match="'name'"):
        build_transform({"size": 32})
    with pytest.raises(ValueError, match="interpolation"):
        build_transform({"name": "Resize", "size": 8, "interpolation": "cubicspline"})


def test_random_resized_crop_pipeline_output():
    specs = OmegaConf.create([{"name": "RandomResizedCrop", "size": 24, "scale": [0.3, 1.0], "interpolation": "bicubic"},
                              {"name": "RandomHorizontalFlip", "p": 0.5}])
    pipe = build_pipeline(specs, 24, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    x = pipe(torch.rand(3, 40, 40))
    assert type(x) is torch.Tensor and x.shape == (3, 24, 24) and x.dtype == torch.float32
    crop = build_transform({"name": "RandomResizedCrop", "size": 24, "scale": [0.3, 1.0]})
    assert crop.scale == (0.3, 1.0) or list(crop.scale) == [0.3, 1.0]
    # A crop smaller than img_size is resized up to img_size.
    small = build_pipeline([{"name": "RandomResizedCrop", "size": 16}], 24, [0.5], [0.5])
    assert small(torch.rand(1, 40, 40)).shape == (1, 24, 24)


def test_normalisation_and_dtype_scaling():
    pipe = build_pipeline([], 8, [0.5], [0.25])
    out = pipe(torch.full((1, 8, 8), 255, dtype=torch.uint8))  # uint8 is scaled to [0, 1] first
    assert torch.allclose(out, torch.full((1, 8, 8), 2.0))
    out = pipe(torch.full((1, 8, 8), 0.5))  # float input is taken as [0, 1]
    assert torch.allclose(out, torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="same length"):
        build_pipeline([], 8, [0.5, 0.5], [0.25])


def test_nested_containers():
    t = build_transform({"name": "RandomApply", "p": 1.0, "transforms": [{"name": "RandomVerticalFlip", "p": 1.0}]})
    x = torch.arange(16.0).view(1, 4, 4)
    assert torch.equal(t(x), x.flip(1))


def test_ensure_size():
    assert EnsureSize(8)(torch.rand(3, 8, 8)).shape == (3, 8, 8)
    assert EnsureSize(8)(torch.rand(3, 16, 16)).shape == (3, 8, 8)
    assert EnsureSize(8)(torch.rand(3, 10, 30)).shape == (3, 8, 8)


def test_available_transforms():
    names = available_transforms()
    assert {"RandomResizedCrop", "ColorJitter", "Normalize"} <= set(names)
    assert "Transform" not in names and "InterpolationMode" not in names
