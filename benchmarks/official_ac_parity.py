"""Side-by-side check of openjepa's ACPredictor against the official V-JEPA 2-AC predictor (not run in CI).

Builds the official ``VisionTransformerPredictorAC`` from a checkout of ``facebookresearch/vjepa2`` that you
point to (``--repo DIR``; its modules need ``timm``), gives it random weights, converts its state dict with
:func:`openjepa.interop.vjepa2_ac.from_official_vjepa2_ac` into an :class:`~openjepa.models.ACPredictor`, and
prints the max absolute difference of the two outputs on the same random input, per clip length, in float32.

    python benchmarks/official_ac_parity.py --repo /path/to/vjepa2              # small shapes, seconds on CPU
    python benchmarks/official_ac_parity.py --repo /path/to/vjepa2 --released   # the released widths (ViT-g grid)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from openjepa.engine.checkpoint import load_state_strict
from openjepa.interop.convert import split_predictor
from openjepa.interop.vjepa2_ac import from_official_vjepa2_ac, official_ac_predictor_kwargs
from openjepa.models import ACPredictor, VisionTransformer

SMALL = dict(embed_dim=64, predictor_embed_dim=256, depth=3, num_heads=4, grid=(3, 4), frames=(1, 2, 5, 8))
RELEASED = dict(embed_dim=1408, predictor_embed_dim=1024, depth=24, num_heads=16, grid=(16, 16), frames=(1, 2, 4))


def official_predictor(repo: Path, shape: dict, extrinsics: bool) -> torch.nn.Module:
    """The official AC predictor of ``shape``, every parameter set to random values (seeded)."""
    sys.path.insert(0, str(repo))
    from src.models.ac_predictor import vit_ac_predictor  # the user's checkout of facebookresearch/vjepa2

    H, W = shape["grid"]
    model = vit_ac_predictor(img_size=(16 * H, 16 * W), patch_size=16, num_frames=2 * max(shape["frames"]),
                             tubelet_size=2, embed_dim=shape["embed_dim"],
                             predictor_embed_dim=shape["predictor_embed_dim"], depth=shape["depth"],
                             num_heads=shape["num_heads"], action_embed_dim=7, use_extrinsics=extrinsics,
                             use_rope=True, is_frame_causal=True).eval()
    torch.manual_seed(0)
    with torch.no_grad():  # matrices ~ N(0, 1 / fan_in); norm weights 1 + noise; biases small noise
        for name, p in model.named_parameters():
            if p.ndim > 1:
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)
            else:
                p.copy_(0.1 * torch.randn_like(p) + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    return model


def ours_from(official: torch.nn.Module, shape: dict, extrinsics: bool) -> ACPredictor:
    """Converted through the file layout: ``predictor`` keys with the released ``module.backbone.`` prefix."""
    enc = VisionTransformer(img_size=16, patch_size=16, num_frames=2, tubelet_size=2, embed_dim=shape["embed_dim"],
                            depth=1, num_heads=1, pos="rope")
    obj = {"encoder": {f"module.backbone.{k}": v for k, v in enc.state_dict().items()},
           "predictor": {f"module.backbone.{k}": v for k, v in official.state_dict().items()}}
    conv = from_official_vjepa2_ac(obj, use_extrinsics=extrinsics)
    H, W = shape["grid"]
    kwargs = official_ac_predictor_kwargs(obj, use_extrinsics=extrinsics)
    kwargs["num_heads"] = shape["num_heads"]
    pred = ACPredictor(shape["embed_dim"], tokens_per_frame=H * W, grid=(H, W), max_frames=max(shape["frames"]),
                       cond="token", pos="rope", **kwargs)
    load_state_strict(pred, split_predictor(conv.state_dict)[1], "converted official AC predictor")
    print(f"conversion: {conv.summary()}")
    return pred.eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, required=True, help="a checkout of facebookresearch/vjepa2")
    ap.add_argument("--released", action="store_true", help="the released widths instead of small ones")
    ap.add_argument("--extrinsics", action="store_true", help="use_extrinsics=True (a third conditioning token)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, nargs="+", help="clip lengths to compare (default: per shape)")
    args = ap.parse_args(argv)
    if not (args.repo / "src" / "models" / "ac_predictor.py").is_file():
        print(f"--repo {args.repo}: no src/models/ac_predictor.py (a facebookresearch/vjepa2 checkout is needed)",
              file=sys.stderr)
        return 2
    shape = dict(RELEASED if args.released else SMALL)
    if args.frames:
        shape["frames"] = tuple(args.frames)
    official = official_predictor(args.repo, shape, args.extrinsics)
    ours = ours_from(official, shape, args.extrinsics)
    H, W = shape["grid"]
    worst = 0.0
    for T in shape["frames"]:
        g = torch.Generator().manual_seed(T)
        B, D = args.batch, shape["embed_dim"]
        z = torch.randn(B, T, H * W, D, generator=g)
        a, s = torch.randn(B, T, 7, generator=g), torch.randn(B, T, 7, generator=g)
        e = torch.randn(B, T, 6, generator=g) if args.extrinsics else None
        with torch.no_grad():
            ref = official(z.flatten(1, 2), a, s, e)  # (B, T*H*W, D)
            out = ours(z, a, s, e).flatten(1, 2)
        diff = (out - ref).abs().max().item()
        worst = max(worst, diff)
        print(f"T={T} frames, grid {H}x{W}: max |ours - official| = {diff:.3e} (output scale {ref.abs().max():.2f})")
    print(f"worst max abs diff: {worst:.3e} (float32)")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
