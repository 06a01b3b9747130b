"""V-JEPA mask groups: merged target sets, one context per group, determinism, and the method's loss."""

import pytest
import torch

from openjepa.config.schema import MaskConfig
from openjepa.errors import ConfigError
from openjepa.masks import GroupedMaskSampler, MaskGroups, MultiBlockMaskSampler, build_mask_sampler
from openjepa.masks.base import Masks

GRID = (4, 8, 8)
VJEPA = [{"num_targets": 8, "target_scale": [0.15, 0.15]}, {"num_targets": 2, "target_scale": [0.7, 0.7]}]


def vjepa_cfg(**kw):
    return MaskConfig(**{"groups": VJEPA, "merge_targets": True, "context_scale": [1.0, 1.0], "min_keep": 4, **kw})


def sets(mb, i):
    idx = mb.idx[i].reshape(-1)
    valid = torch.ones_like(idx, dtype=torch.bool) if mb.valid is None else mb.valid[i].reshape(-1)
    return set(idx[valid].tolist())


def test_groups_are_complements_spanning_all_frames():
    sampler = build_mask_sampler(vjepa_cfg(), GRID, seed=3)
    assert isinstance(sampler, GroupedMaskSampler)
    groups = sampler(6, step=5)
    assert isinstance(groups, MaskGroups) and len(groups) == 2
    T, H, W = GRID
    for m in groups:
        assert m.targets.idx.shape[1] == 1  # the union of the blocks is one target set
        for i in range(6):
            ctx, tgt = sets(m.context, i), sets(m.targets, i)
            assert not ctx & tgt and ctx | tgt == set(range(T * H * W))  # disjoint; context = the rest
            spatial = {j % (H * W) for j in tgt}  # blocks span every frame (temporal_scale = 1)
            assert tgt == {t * H * W + s for t in range(T) for s in spatial}
    # the long-range group masks more than the short-range one on average
    frac = [sum(len(sets(m.targets, i)) for i in range(6)) / (6 * T * H * W) for m in groups]
    assert frac[1] > frac[0]


def test_merged_targets_are_the_union_of_the_blocks():
    """Against the unmerged sampler with the same seed: the merged set is exactly the union of its blocks."""
    for g, group in enumerate(VJEPA):
        kw = dict(num_targets=group["num_targets"], target_scale=group["target_scale"], context_scale=(1.0, 1.0),
                  seed=11)
        merged = MultiBlockMaskSampler(GRID, merge_targets=True, **kw)(4, step=2)
        blocks = MultiBlockMaskSampler(GRID, **kw)(4, step=2)
        for i in range(4):
            union = set().union(*(sets(type(blocks.targets)(blocks.targets.idx[i, j][None], None if
                                  blocks.targets.valid is None else blocks.targets.valid[i, j][None]), 0)
                                  for j in range(group["num_targets"])))
            assert sets(merged.targets, i) == union
            assert sets(merged.context, i) == sets(blocks.context, i)


def test_pure_function_of_seed_step_and_sample():
    a = build_mask_sampler(vjepa_cfg(), GRID, seed=1)
    b = build_mask_sampler(vjepa_cfg(), GRID, seed=1)
    x, y = a(4, step=7, indices=[0, 1, 2, 3]), b(2, step=7, indices=[2, 0])
    for ga, gb in zip(x, y):
        assert sets(ga.targets, 2) == sets(gb.targets, 0) and sets(ga.context, 0) == sets(gb.context, 1)
    other = build_mask_sampler(vjepa_cfg(), GRID, seed=2)(4, step=7)
    assert any(sets(p.targets, i) != sets(q.targets, i) for p, q in zip(x, other) for i in range(4))
    g0, g1 = x  # the two groups draw independently (not the same corners)
    assert any(sets(g0.context, i) != sets(g1.context, i) for i in range(4))


def test_bad_group_names_the_key_and_choices():
    with pytest.raises(ConfigError, match=r"mask.groups\[1\]: unknown key\(s\) scale; choose from: .*target_scale"):
        build_mask_sampler(MaskConfig(groups=[{"num_targets": 2}, {"scale": 0.1}]), GRID, 0)
    with pytest.raises(ConfigError, match=r"mask.groups\[0\]: expected a mapping"):
        build_mask_sampler(MaskConfig(groups=[3]), GRID, 0)


def test_method_averages_one_pass_per_group_with_its_mask_token():
    """IJEPA.training_step with two groups = the mean of two single-group steps, group g using mask token g."""
    from openjepa.methods.ijepa import IJEPA
    from openjepa.models import Predictor
    from openjepa.models.vit import vit_pico

    torch.manual_seed(0)
    enc = vit_pico(img_size=16, patch_size=4, num_frames=4, tubelet_size=2)
    pred = Predictor(enc.grid, enc.embed_dim, predictor_embed_dim=32, depth=1, num_heads=2, video=True,
                     num_mask_tokens=2)
    with torch.no_grad():
        pred.mask_token[1].add_(1.0)  # distinct tokens, so using the wrong one shows
    method = IJEPA(enc, pred, loss="l1")
    x = torch.randn(2, 3, 4, 16, 16)
    groups = build_mask_sampler(vjepa_cfg(min_keep=2), enc.grid, seed=0)(2, step=0)
    out = method.training_step({"x": x, "masks": groups}, step=0)
    single = []
    for g, m in enumerate(groups):
        swapped = Predictor(enc.grid, enc.embed_dim, predictor_embed_dim=32, depth=1, num_heads=2, video=True)
        state = {k: v for k, v in pred.state_dict().items() if k != "mask_token"}
        swapped.load_state_dict({**state, "mask_token": pred.mask_token[g:g + 1]})
        one = IJEPA(enc, swapped, loss="l1")
        one.target.load_state_dict(method.target.state_dict())
        single.append(one.training_step({"x": x, "masks": Masks(*m)}, step=0).metrics["pred_loss"])
    torch.testing.assert_close(out.metrics["pred_loss"], torch.stack(single).mean())
