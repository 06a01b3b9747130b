"""Side by side with the official V-JEPA 2.1 code: our converted model against the original, same weights.

    python benchmarks/official_parity.py --repo DIR

``DIR`` is a checkout of ``facebookresearch/vjepa2`` at a commit with ``app/vjepa_2_1`` (it needs ``timm`` and
``einops`` importable). The script builds small random official models (width 192, 12 blocks, heads of 64
channels, a 4-block predictor reading four levels), perturbs the parameters the official init leaves at
zero or one, saves them in the official checkpoint layout, loads that file with ``openjepa.load_pretrained``
and prints the max absolute difference of the features (images and clips, at the native and another
resolution and clip length) and of the predictor's outputs. Nothing of the official code is part of openjepa;
it is imported from ``DIR`` only here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import torch

import openjepa
from openjepa.masks.base import MaskBatch


def official_models(repo: Path, size: int, frames: int):
    sys.path.insert(0, str(repo))
    warnings.filterwarnings("ignore")
    from app.vjepa_2_1.models import predictor as vp  # noqa: E402 (the user's checkout)
    from app.vjepa_2_1.models import vision_transformer as vt  # noqa: E402

    torch.manual_seed(0)
    enc = vt.VisionTransformer(img_size=(size, size), patch_size=16, num_frames=frames, tubelet_size=2,
                               embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0, qkv_bias=True,
                               norm_layer=torch.nn.LayerNorm, use_rope=True, img_temporal_dim_size=1,
                               interpolate_rope=True, n_output_distillation=4)
    for m in enc.modules():  # the official LayerNorm eps is 1e-6 in every released builder
        if isinstance(m, torch.nn.LayerNorm):
            m.eps = 1e-6
    pred = vp.vit_predictor(img_size=(size, size), patch_size=16, num_frames=frames, tubelet_size=2, embed_dim=192,
                            predictor_embed_dim=96, depth=4, num_heads=3, use_mask_tokens=True, num_mask_tokens=8,
                            use_rope=True, n_output_distillation=4, return_all_tokens=True,
                            img_temporal_dim_size=1)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in [*enc.named_parameters(), *pred.named_parameters()]:
            if "norm" in name or "mod_embed" in name or "mask_tokens" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return enc.eval(), pred.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", type=Path, required=True, help="a vjepa2 checkout with app/vjepa_2_1")
    args = ap.parse_args()
    size, frames = 64, 8
    enc, pred = official_models(args.repo, size, frames)
    obj = {"target_encoder": {f"module.backbone.{k}": v for k, v in enc.state_dict().items()},
           "predictor": {f"module.backbone.{k}": v for k, v in pred.state_dict().items()}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vjepa2_1_tiny.pt"
        torch.save(obj, path)
        ours = openjepa.load_pretrained(path, predictor=True)
    print(f"format {ours.format}; {ours.extra.get('arch')}")
    rows = []
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for kind, t, s in [("clip", frames, size), ("clip", 4, 96), ("image", 1, size), ("image", 1, 80)]:
            x = torch.randn(2, 3, t, s, s, generator=g)
            rows.append((f"encoder {kind} {t}x{s}px", (enc(x) - ours.encoder(x)).abs().max().item()))
        # predictor: context = the first 60% of the tokens (4-level features), targets the rest
        x = torch.randn(2, 3, frames, size, size, generator=g)
        n = (frames // 2) * (size // 16) ** 2
        perm = torch.stack([torch.randperm(n, generator=g) for _ in range(2)])
        ctx, tgt = perm[:, : int(0.6 * n)].sort(1).values, perm[:, int(0.6 * n):].sort(1).values
        enc.return_hierarchical = True
        h_off = enc(x, masks=[ctx])
        h_ours = torch.cat(ours.encoder.forward_levels(x, MaskBatch(ctx)), dim=-1)
        rows.append(("encoder 4 levels, masked", (h_off - h_ours).abs().max().item()))
        p_off, c_off = pred(h_off, [ctx], [tgt], mod="video", mask_index=1)
        p_ours, c_ours = ours.predictor(h_ours, MaskBatch(ctx), MaskBatch(tgt), grid=(frames // 2, size // 16,
                                        size // 16), mask_index=1, return_context=True)
        rows.append(("predictor targets", (p_off - p_ours).abs().max().item()))
        rows.append(("predictor context head", (c_off - c_ours).abs().max().item()))
    print(f"{'output':32} | max abs diff (float32)")
    print("-" * 33 + "+" + "-" * 23)
    for name, d in rows:
        print(f"{name:32} | {d:.2e}")


if __name__ == "__main__":
    main()
