"""V-JEPA 2.1: the official checkpoint layout -> ours, against an independent reference forward.

transformers has no V-JEPA 2.1 model, so the reference is written here from the official rules
(``facebookresearch/vjepa2``, ``app/vjepa_2_1``), with other operations than the library's: Conv3d via
``F.conv3d`` on official-layout tensors, attention with an explicit softmax, and the rotary embedding as a
complex multiplication of channel pairs. ``benchmarks/official_parity.py`` runs the same comparison against the
official code itself (RESULTS.md).
"""

import math

import pytest
import torch
import torch.nn.functional as F

import openjepa
from openjepa.errors import CheckpointError
from openjepa.interop.vjepa2_1 import from_official_vjepa2_1, official_vjepa2_1_arch
from openjepa.masks.base import MaskBatch
from openjepa.models.vjepa2_1 import LEVELS, build, vjepa2_1_predictor

TOL = dict(atol=1e-5, rtol=0)
DIM, HEADS, DEPTH = 192, 3, 12  # heads of 64 channels, as the released models


@pytest.fixture(scope="module")
def official():
    """A random model in the official V-JEPA 2.1 layout (keys as the released files: module.backbone.)."""
    torch.manual_seed(0)
    enc = build("vjepa2_1_vit_base_384", embed_dim=DIM, num_heads=HEADS, img_size=64, num_frames=8)
    pred = vjepa2_1_predictor(enc, "vjepa2_1_vit_giant_384", predictor_embed_dim=96, depth=2, num_heads=3,
                              out_dim=4 * DIM)
    with torch.no_grad():  # move the parameters the init leaves at 0 / 1 / 1e-6
        for name, p in [*enc.named_parameters(), *pred.named_parameters()]:
            if "norm" in name or "mod_embed" in name or "mask_token" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    e = {}
    for k, v in enc.state_dict().items():  # ours -> official: level norms are norms_block.0..3
        k = k.replace("level_norms.", "norms_block.")
        e[k.replace("norm.", "norms_block.3.") if k.startswith("norm.") else k] = v
    p = {k: v for k, v in pred.state_dict().items() if k != "mask_token"}
    p.update({f"mask_tokens.{i}": t[None] for i, t in enumerate(pred.mask_token)})
    return {"target_encoder": {f"module.backbone.{k}": v for k, v in e.items()},
            "encoder": {f"module.backbone.{k}": v.clone() for k, v in e.items()},
            "predictor": {f"module.backbone.{k}": v for k, v in p.items()}}


def strip(sd):
    return {k.removeprefix("module.backbone."): v for k, v in sd.items()}


def rotate(x, pos):
    """Official 2.1 RoPE: per axis a block of d = 2*((hd//3)//2) channels, pairs (2i, 2i+1) turned as the complex
    number x[2i] + i x[2i+1] by the angle pos * 10000^(-i / (d/2)); channels past 3d unchanged."""
    hd = x.shape[-1]
    d = 2 * ((hd // 3) // 2)
    omega = 10000.0 ** (-torch.arange(d // 2, dtype=torch.float64) / (d // 2))
    out = []
    for a in range(3):
        blk = x[..., a * d:(a + 1) * d].double().reshape(*x.shape[:-1], d // 2, 2)
        z = torch.view_as_complex(blk.contiguous())
        z = z * torch.polar(torch.ones_like(pos[:, a:a + 1]), pos[:, a:a + 1] * omega)  # (N, d/2)
        out.append(torch.view_as_real(z).flatten(-2).to(x.dtype))
    return torch.cat(out + [x[..., 3 * d:]], dim=-1)


def positions(T, H, W, ref=None):
    t, h, w = torch.meshgrid(torch.arange(T), torch.arange(H), torch.arange(W), indexing="ij")
    pos = torch.stack([t.flatten(), h.flatten(), w.flatten()], 1).double()
    if ref is not None:
        pos[:, 1] *= (ref - 1) / (H - 1)
        pos[:, 2] *= (ref - 1) / (W - 1)
    return pos


def block(sd, pre, z, pos, heads):
    B, N, D = z.shape
    ln = lambda v, n: F.layer_norm(v, (D,), sd[f"{pre}.{n}.weight"], sd[f"{pre}.{n}.bias"], 1e-6)  # noqa: E731
    qkv = F.linear(ln(z, "norm1"), sd[f"{pre}.attn.qkv.weight"], sd[f"{pre}.attn.qkv.bias"])
    q, k, v = qkv.view(B, N, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
    q, k = rotate(q, pos), rotate(k, pos)
    a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // heads), -1) @ v
    z = z + F.linear(a.transpose(1, 2).reshape(B, N, D), sd[f"{pre}.attn.proj.weight"], sd[f"{pre}.attn.proj.bias"])
    h = F.gelu(F.linear(ln(z, "norm2"), sd[f"{pre}.mlp.fc1.weight"], sd[f"{pre}.mlp.fc1.bias"]))
    return z + F.linear(h, sd[f"{pre}.mlp.fc2.weight"], sd[f"{pre}.mlp.fc2.bias"])


def ref_encoder(sd, x, keep=None):
    """The 2.1 encoder: image path for one frame, modality embedding, RoPE on a 16-point h/w grid, 4 levels."""
    image = x.shape[2] == 1
    pe = "patch_embed_img" if image else "patch_embed"
    w = sd[f"{pe}.proj.weight"]
    z = F.conv3d(x, w, sd[f"{pe}.proj.bias"], stride=w.shape[2:])  # (B, D, T, H, W)
    _, D, T, H, W = z.shape
    z = z.flatten(2).transpose(1, 2) + sd["img_mod_embed" if image else "video_mod_embed"]
    pos = positions(T, H, W, ref=16)
    if keep is not None:
        z, pos = z[:, keep], pos[keep]
    levels, out = LEVELS[DEPTH], []
    for n in range(DEPTH):
        z = block(sd, f"blocks.{n}", z, pos, HEADS)
        if n in levels:
            i = levels.index(n)
            out.append(F.layer_norm(z, (D,), sd[f"norms_block.{i}.weight"], sd[f"norms_block.{i}.bias"], 1e-6))
    return out


@pytest.fixture(scope="module")
def loaded(official, tmp_path_factory):
    path = tmp_path_factory.mktemp("v21") / "vjepa2_1_tiny.pt"
    torch.save(official, path)
    return openjepa.load_pretrained(path, predictor=True)


@pytest.mark.parametrize("frames,size", [(8, 64), (4, 96), (1, 64), (1, 80)])
def test_encoder_equals_reference(official, loaded, frames, size):
    """Clips at the native size and another length and resolution; images (the tubelet-1 path) at two sizes."""
    torch.manual_seed(1)
    x = torch.randn(2, 3, frames, size, size)
    with torch.no_grad():
        ours = loaded.encoder(x)
        levels = loaded.encoder.forward_levels(x)
    ref = ref_encoder(strip(official["target_encoder"]), x)
    torch.testing.assert_close(ours, ref[-1], **TOL)
    for a, b in zip(levels, ref):
        torch.testing.assert_close(a, b, **TOL)
    if frames == 1:  # a 4-D image takes the same path
        torch.testing.assert_close(loaded.encoder(x[:, :, 0]), ours, atol=0, rtol=0)


def test_predictor_equals_reference(official, loaded):
    """Four concatenated levels of the kept tokens in; predictions at the targets and the context head out."""
    torch.manual_seed(2)
    x = torch.randn(2, 3, 8, 64, 64)
    T, H, W = 4, 4, 4
    keep = torch.randperm(T * H * W)[:40].sort().values
    tgt = torch.tensor(sorted(set(range(T * H * W)) - set(keep.tolist())))
    ctx = torch.cat(ref_encoder(strip(official["target_encoder"]), x, keep), -1)  # (B, 40, 4D)
    with torch.no_grad():
        mine = torch.cat(loaded.encoder.forward_levels(x, MaskBatch(keep.expand(2, -1))), -1)
        pred, cpred = loaded.predictor(mine, MaskBatch(keep.expand(2, -1)), MaskBatch(tgt.expand(2, -1)),
                                       grid=(T, H, W), mask_index=1, return_context=True)
    torch.testing.assert_close(mine, ctx, **TOL)
    sd = strip(official["predictor"])
    z = F.linear(F.gelu(F.linear(ctx, sd["predictor_embed.0.weight"], sd["predictor_embed.0.bias"])),
                 sd["predictor_embed.2.weight"], sd["predictor_embed.2.bias"])
    q = sd["mask_tokens.1"].expand(2, len(tgt), -1)  # mask_index 1 of 8
    z = torch.cat([z, q], 1) + sd["video_mod_embed"]
    pos = positions(T, H, W)[torch.cat([keep, tgt])]  # the predictor's positions are not rescaled
    for n in range(2):
        z = block(sd, f"predictor_blocks.{n}", z, pos, 3)
    z = F.layer_norm(z, (96,), sd["predictor_norm.weight"], sd["predictor_norm.bias"], 1e-6)
    torch.testing.assert_close(pred, F.linear(z[:, 40:], sd["predictor_proj.weight"], sd["predictor_proj.bias"]),
                               **TOL)
    torch.testing.assert_close(cpred, F.linear(z[:, :40], sd["predictor_proj_context.weight"],
                                               sd["predictor_proj_context.bias"]), **TOL)


def test_every_key_accounted_and_arch_from_shapes(official, loaded):
    conv = from_official_vjepa2_1(official, predictor=True)
    n_src = len(official["target_encoder"]) + len(official["predictor"])
    assert len(conv.mapped) + len(conv.dropped) == n_src
    assert conv.mapped["norms_block.3.weight"] == "norm.weight"
    assert conv.mapped["norms_block.0.weight"] == "level_norms.0.weight"
    assert loaded.format == "official-vjepa2_1" and loaded.predictor.mask_token.shape[0] == 8
    fake = lambda d, n: {"target_encoder": {"patch_embed.proj.weight": torch.zeros(d, 3, 2, 16, 16),  # noqa: E731
                                            "blocks.0.mlp.fc1.weight": torch.zeros(4 * d, d),
                                            **{f"blocks.{i}.norm1.weight": torch.zeros(d) for i in range(n)}}}
    assert official_vjepa2_1_arch(fake(1024, 24))[0] == "vjepa2_1_vit_large_384"
    assert official_vjepa2_1_arch(fake(1664, 48))[1]["level_layers"] == [11, 23, 37, 47]
    assert official_vjepa2_1_arch(fake(1664, 48))[1]["num_heads"] == 26
    with pytest.raises(CheckpointError, match="levels for depths"):
        official_vjepa2_1_arch(fake(192, 7))


def test_bad_keys_name_the_problem(official):
    bad = {k: dict(v) for k, v in official.items()}
    bad["target_encoder"]["module.backbone.cls_token"] = torch.zeros(1, 1, DIM)
    with pytest.raises(CheckpointError, match=r"cls_token \(1, 1, 192\)"):
        from_official_vjepa2_1(bad)
    missing = {k: dict(v) for k, v in official.items()}
    del missing["target_encoder"]["module.backbone.img_mod_embed"]
    from openjepa.engine.checkpoint import load_state_strict
    enc = build("vjepa2_1_vit_base_384", embed_dim=DIM, num_heads=HEADS)
    with pytest.raises(CheckpointError, match="img_mod_embed"):
        load_state_strict(enc, from_official_vjepa2_1(missing).state_dict, "encoder")


def test_hf_export_refused_onnx_and_convert_work(loaded, tmp_path):
    from openjepa.interop.hf import save_hf
    with pytest.raises(CheckpointError, match="V-JEPA 2.1"):
        save_hf(loaded.encoder, tmp_path / "hf")
    from openjepa.interop.export import export_to
    export_to(loaded.encoder, loaded.config, "safetensors", tmp_path / "conv")
    again = openjepa.load_pretrained(tmp_path / "conv" / "encoder.safetensors")
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again.encoder(x), loaded.encoder(x), atol=0, rtol=0)
    small = build("vjepa2_1_vit_base_384", embed_dim=DIM, num_heads=HEADS, img_size=64, num_frames=4)
    small.load_state_dict(loaded.encoder.state_dict())  # the ONNX graph is traced at the model's own clip size
    lines = export_to(small, loaded.config, "onnx", tmp_path / "onnx")
    assert float(lines[-1].split("difference ")[1].rstrip(")")) <= 1e-4
