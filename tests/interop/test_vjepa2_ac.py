"""V-JEPA 2-AC: the official action-conditioned predictor's layout onto ACPredictor, and the 2-AC checkpoint.

The official-layout predictor state dict (``facebookresearch/vjepa2`` ``src/models/ac_predictor.py``; in the
released file each key carries ``module.backbone.``)::

    predictor_embed.{weight (dim, D), bias}
    action_encoder.{weight (dim, 7), bias}       state_encoder.{weight (dim, 7), bias}
    extrinsics_encoder.{weight (dim, 6), bias}   (always present; used only with use_extrinsics)
    predictor_blocks.N.norm1.{weight, bias}      predictor_blocks.N.attn.qkv.{weight (3 dim, dim), bias}
    predictor_blocks.N.attn.proj.{weight, bias}  predictor_blocks.N.norm2.{weight, bias}
    predictor_blocks.N.mlp.fc1.{weight (4 dim, dim), bias}   predictor_blocks.N.mlp.fc2.{weight, bias}
    predictor_norm.{weight, bias}                predictor_proj.{weight (D, dim), bias}

``reference_forward`` below is an independent forward pass on those official tensors, in plain torch ops,
following the official rule: per frame [action, state, (extrinsics), patch tokens]; the conditioning tokens
rotated on the temporal RoPE channels only (angle = frame index); patch tokens on (t, h, w * H / W) with the
V-JEPA 2 channel layout (blocks [t | h | w] of 2 * ((hd // 3) // 2) channels, interleaved pairs, the d / 2
frequencies tiled twice); a block-causal mask built frame pair by frame pair; explicit softmax attention.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from openjepa import load_pretrained
from openjepa.engine.checkpoint import load_state_strict
from openjepa.errors import CheckpointError
from openjepa.interop.convert import split_predictor
from openjepa.interop.vjepa2_ac import (EXTRINSICS_DROP, build_official_ac_predictor, from_official_vjepa2_ac,
                                        is_official_vjepa2_ac, official_ac_predictor_kwargs)
from openjepa.models import ACPredictor, VisionTransformer
from openjepa.models.vjepa import ARCHS, vjepa2_ac_predictor

A = 7  # official action_embed_dim: actions and states are 7-D, extrinsics 6-D
PREFIX = "module.backbone."


def official_predictor_state(D: int, dim: int, depth: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors in the official layout (module docstring), with the released file's prefix."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def linear(name: str, out: int, inp: int) -> None:
        sd[f"{name}.weight"] = torch.randn(out, inp, generator=g) / math.sqrt(inp)
        sd[f"{name}.bias"] = 0.1 * torch.randn(out, generator=g)

    def norm(name: str) -> None:
        sd[f"{name}.weight"] = 1 + 0.1 * torch.randn(dim, generator=g)
        sd[f"{name}.bias"] = 0.1 * torch.randn(dim, generator=g)

    linear("predictor_embed", dim, D)
    linear("action_encoder", dim, A)
    linear("state_encoder", dim, A)
    linear("extrinsics_encoder", dim, A - 1)
    for n in range(depth):
        b = f"predictor_blocks.{n}"
        norm(f"{b}.norm1")
        linear(f"{b}.attn.qkv", 3 * dim, dim)
        linear(f"{b}.attn.proj", dim, dim)
        norm(f"{b}.norm2")
        linear(f"{b}.mlp.fc1", 4 * dim, dim)
        linear(f"{b}.mlp.fc2", dim, 4 * dim)
    norm("predictor_norm")
    linear("predictor_proj", D, dim)
    return {PREFIX + k: v for k, v in sd.items()}


def official_encoder_state(enc: VisionTransformer) -> dict[str, torch.Tensor]:
    """Our V-JEPA 2 encoder in the official key layout, with the unused sin-cos table the files carry."""
    sd = {PREFIX + k: v for k, v in enc.state_dict().items()}
    sd[PREFIX + "pos_embed"] = torch.zeros(1, enc.num_tokens, enc.embed_dim)
    return sd


# ---------------------------------------------------------------- the independent reference


def ref_rotate(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The official rotation of x (B, h, L, d) by positions pos (L,): pairs (2i, 2i+1), and channel j of the
    block turned by pos * omega[j mod d/2] (frequencies tiled, the kept quirk)."""
    d = x.shape[-1]
    omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float32) / (d / 2))
    angle = (pos[:, None].float() * omega).repeat(1, 2)  # (L, d)
    even, odd = x[..., 0::2], x[..., 1::2]
    partner = torch.stack([-odd, even], dim=-1).flatten(-2)  # (-x[2i+1], x[2i])
    return x * angle.cos() + partner * angle.sin()


def ref_attention(x, p, T, grid, K, heads):
    B, L, C = x.shape
    H, W = grid
    hd = C // heads
    d = 2 * ((hd // 3) // 2)
    n = K + H * W
    q, k, v = F.linear(x, p["attn.qkv.weight"], p["attn.qkv.bias"]).view(B, L, 3, heads, hd).permute(2, 0, 3, 1, 4)
    slot = torch.arange(L) % n
    frame = (torch.arange(L) // n).float()
    patch = ~(slot < K)
    cell = slot[patch] - K
    rows, cols = (cell // W).float(), (cell % W).float() * (H / W)

    def rotate(y):
        out = y.clone()
        out[..., :d] = ref_rotate(y[..., :d], frame)  # every token: the temporal block
        out[:, :, patch, d:2 * d] = ref_rotate(y[:, :, patch, d:2 * d], rows)  # patch tokens only
        out[:, :, patch, 2 * d:3 * d] = ref_rotate(y[:, :, patch, 2 * d:3 * d], cols)
        return out

    q, k = rotate(q), rotate(k)
    mask = torch.zeros(L, L, dtype=torch.bool)
    for t1 in range(T):
        for t2 in range(t1 + 1):
            mask[t1 * n:(t1 + 1) * n, t2 * n:(t2 + 1) * n] = True
    att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    out = (att @ v).transpose(1, 2).reshape(B, L, C)
    return F.linear(out, p["attn.proj.weight"], p["attn.proj.bias"])


def reference_forward(sd, z, actions, states, extrinsics, grid, heads):
    """Official-rule forward on official-layout tensors ``sd`` (prefixed): z (B, T, N, D) -> (B, T, N, D)."""
    p = {k[len(PREFIX):]: v for k, v in sd.items()}
    B, T, N, _ = z.shape
    dim = p["predictor_embed.weight"].shape[0]
    depth = len({k.split(".")[1] for k in p if k.startswith("predictor_blocks.")})

    def lin(name, x):
        return F.linear(x, p[f"{name}.weight"], p[f"{name}.bias"])

    def ln(name, x):
        return F.layer_norm(x, (dim,), p[f"{name}.weight"], p[f"{name}.bias"], eps=1e-6)

    cond = [lin("action_encoder", actions), lin("state_encoder", states)]
    if extrinsics is not None:
        cond.append(lin("extrinsics_encoder", extrinsics))
    K = len(cond)
    x = torch.cat([c[:, :, None] for c in cond] + [lin("predictor_embed", z)], dim=2).flatten(1, 2)
    for i in range(depth):
        blk = {k[len(f"predictor_blocks.{i}."):]: v for k, v in p.items() if k.startswith(f"predictor_blocks.{i}.")}
        y = F.layer_norm(x, (dim,), blk["norm1.weight"], blk["norm1.bias"], eps=1e-6)
        x = x + ref_attention(y, blk, T, grid, K, heads)
        y = F.layer_norm(x, (dim,), blk["norm2.weight"], blk["norm2.bias"], eps=1e-6)
        y = F.linear(F.gelu(F.linear(y, blk["mlp.fc1.weight"], blk["mlp.fc1.bias"])),
                     blk["mlp.fc2.weight"], blk["mlp.fc2.bias"])
        x = x + y
    x = x.view(B, T, K + N, dim)[:, :, K:]
    return lin("predictor_proj", ln("predictor_norm", x))


def tiny_encoder(dim: int = 32, heads: int = 1) -> VisionTransformer:
    torch.manual_seed(1)
    return VisionTransformer(img_size=32, patch_size=16, num_frames=8, tubelet_size=2, embed_dim=dim, depth=1,
                             num_heads=heads, pos="rope").eval()


def inputs(B: int, T: int, N: int, D: int, extrinsics: bool, seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(B, T, A - 1, generator=g) if extrinsics else None
    return (torch.randn(B, T, N, D, generator=g), torch.randn(B, T, A, generator=g), torch.randn(B, T, A, generator=g),
            e)


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("extrinsics", [False, True])
@pytest.mark.parametrize("T", [2, 5])
def test_converted_predictor_equals_the_official_rule(T, extrinsics):
    """A non-square (2, 3) grid, heads of 64 channels (4 unrotated), both clip lengths: <= 1e-5 in float32."""
    D, dim, depth, heads, grid = 16, 128, 2, 2, (2, 3)
    sd = official_predictor_state(D, dim, depth)
    obj = {"encoder": official_encoder_state(tiny_encoder()), "predictor": sd}
    conv = from_official_vjepa2_ac(obj, use_extrinsics=extrinsics)
    pred = ACPredictor(D, A, tokens_per_frame=6, grid=grid, dim=dim, depth=depth, num_heads=heads, max_frames=8,
                       cond="token", pos="rope", state_dim=A, extrinsics_dim=(A - 1) if extrinsics else 0).eval()
    load_state_strict(pred, split_predictor(conv.state_dict)[1], "tiny 2-AC predictor")
    z, a, s, e = inputs(2, T, 6, D, extrinsics)
    with torch.no_grad():
        ours = pred(z, a, s, e)
        ref = reference_forward(sd, z, a, s, e, grid, heads)
    assert ours.shape == (2, T, 6, D)
    assert (ours - ref).abs().max() <= 1e-5
    assert ref.abs().max() > 0.1  # a real signal, not two zeros
    dropped = {k: r for k, r in conv.dropped.items() if k.startswith("predictor/")}
    assert dropped == ({} if extrinsics else {f"predictor/extrinsics_encoder.{p}": EXTRINSICS_DROP
                                               for p in ("weight", "bias")})
    assert conv.dropped["pos_embed"].startswith("V-JEPA 2 uses RoPE")  # the encoder's, as for V-JEPA 2


@pytest.mark.parametrize("cond", ["token", "adaln"])
def test_rope_rollout_equals_forward_on_fed_back_frames(cond):
    """The KV-cached rollout (RoPE at each block's own frame index) = forward over the growing clip, also once
    the 4-frame window slides."""
    torch.manual_seed(0)
    m = ACPredictor(8, A, tokens_per_frame=4, grid=(2, 2), dim=64, depth=2, num_heads=1, max_frames=4,
                    cond=cond, pos="rope", state_dim=A if cond == "token" else 0).eval()
    with torch.no_grad():
        for p in m.parameters():  # adaLN-Zero starts as identity blocks: wake every parameter
            p.add_(0.1 * torch.randn_like(p))
    z, a, s, _ = inputs(2, 5, 4, 8, False)
    s = s if cond == "token" else None
    with torch.no_grad():
        out = m.rollout(z[:, :2], a, s)  # (B, 4, N, D): frames 2..5
        frames, first = z[:, :2], 0
        for h in range(4):
            t = slice(first, first + frames.shape[1])
            nxt = m(frames, a[:, t], None if s is None else s[:, t])[:, -1]
            assert (out[:, h] - nxt).abs().max() <= 1e-5
            frames = torch.cat([frames, nxt[:, None]], dim=1)
            if frames.shape[1] > 4:
                frames, first = frames[:, 1:], first + 1
    assert m.no_weight_decay() == set() and m.tokens_per_block == (6 if cond == "token" else 4)


def test_state_and_rope_settings_are_checked():
    m = ACPredictor(8, A, tokens_per_frame=4, grid=(2, 2), dim=64, depth=1, num_heads=1, cond="token", pos="rope",
                    state_dim=A)
    z, a, s, _ = inputs(1, 3, 4, 8, False)
    with pytest.raises(ValueError, match="states must be given exactly when state_dim > 0"):
        m(z, a)
    with pytest.raises(ValueError, match=r"state_dim=7\) aligned"):
        m(z, a, s[:, :2])
    with pytest.raises(ValueError, match="extrinsics must be given exactly when extrinsics_dim > 0"):
        m(z, a, s, torch.randn(1, 3, 6))
    with pytest.raises(ValueError, match=r"grid=\(2, 3\) does not hold tokens_per_frame=4"):
        ACPredictor(8, A, tokens_per_frame=4, grid=(2, 3), pos="rope")
    with pytest.raises(ValueError, match="needs grid"):
        ACPredictor(8, A, tokens_per_frame=4, pos="rope")
    with pytest.raises(ValueError, match="need cond='token'"):
        ACPredictor(8, A, state_dim=A, cond="adaln")


def test_released_shape_builder():
    """vjepa2_ac_predictor on the released ViT-g grid: the hub's widths (meta tensors, nothing allocated)."""
    with torch.device("meta"):
        enc = VisionTransformer(img_size=256, patch_size=16, num_frames=64, tubelet_size=2, embed_dim=1408,
                                depth=1, num_heads=22, mlp_ratio=48 / 11, pos="rope")
        pred = vjepa2_ac_predictor(enc)
    sd = pred.state_dict()
    assert (pred.grid, pred.tokens_per_frame, pred.tokens_per_block, pred.max_frames) == ((16, 16), 256, 258, 32)
    assert tuple(sd["frame_embed.weight"].shape) == (1024, 1408) and tuple(sd["proj.weight"].shape) == (1408, 1024)
    assert tuple(sd["state_embed.weight"].shape) == (1024, 7) and "extrinsics_embed.weight" not in sd
    assert len(pred.blocks) == 24 and pred.blocks[0].attn.num_heads == 16
    assert tuple(sd["blocks.0.mlp.fc1.weight"].shape) == (4096, 1024)


def test_missing_and_extra_keys_name_the_keys():
    D, dim = 32, 128
    enc = tiny_encoder()
    obj = {"encoder": official_encoder_state(enc), "predictor": official_predictor_state(D, dim, 1)}
    assert is_official_vjepa2_ac(obj)
    assert not is_official_vjepa2_ac({"encoder": obj["encoder"], "predictor": {PREFIX + "predictor_embed.weight":
                                                                               torch.zeros(1)}})
    extra = {**obj, "predictor": {**obj["predictor"], PREFIX + "predictor_blocks.0.attn.bias_k": torch.zeros(3, 5)}}
    with pytest.raises(CheckpointError, match=r"predictor_blocks\.0\.attn\.bias_k \(3, 5\)"):
        from_official_vjepa2_ac(extra)
    short = {**obj, "predictor": {k: v for k, v in obj["predictor"].items() if not k.endswith("mlp.fc2.bias")}}
    conv = from_official_vjepa2_ac(short)
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): blocks\.0\.mlp\.fc2\.bias"):
        build_official_ac_predictor(short, enc, conv)
    no_state = {**obj, "predictor": {k: v for k, v in obj["predictor"].items() if "state_encoder.weight" not in k}}
    with pytest.raises(CheckpointError, match="lacks state_encoder.weight"):
        official_ac_predictor_kwargs(no_state)
    with pytest.raises(CheckpointError, match="no extrinsics_encoder.weight"):
        official_ac_predictor_kwargs({**obj, "predictor": {k: v for k, v in obj["predictor"].items()
                                                           if "extrinsics" not in k}}, use_extrinsics=True)


def test_load_pretrained_round_trip_of_a_saved_file(tmp_path, monkeypatch):
    """A torch.save'd tiny 2-AC file (standing in for vjepa2-ac-vitg.pt through a tiny ARCHS entry) loads through
    load_pretrained: the encoder's features, the predictor against the reference, the 2-AC preprocessing."""
    D, dim, heads = 64, 128, 2
    monkeypatch.setitem(ARCHS, "vjepa2_tiny_ac", (D, 1, 1, 4.0, 32, 64, "rope"))
    enc = tiny_encoder(D, heads=1)
    sd = official_predictor_state(D, dim, 2, seed=5)
    path = tmp_path / "vjepa2-ac-tiny.pt"
    torch.save({"encoder": official_encoder_state(enc), "predictor": sd, "epoch": 315}, path)
    model = load_pretrained(path, predictor=True)
    assert model.format == "official-vjepa2-ac" and isinstance(model.predictor, ACPredictor)
    assert model.extra["arch"] == "vjepa2_tiny_ac" and model.extra["fps"] == 4
    prep = model.preprocessing
    assert (prep.img_size, prep.num_frames, prep.frame_step) == (32, 8, 4)
    assert prep.mean == (0.485, 0.456, 0.406) and prep.std == (0.229, 0.224, 0.225)
    frame = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert (model(frame) - enc(frame)).abs().max() <= 1e-6
    z, a, s, _ = inputs(1, 3, 4, D, False, seed=7)
    with torch.no_grad():
        ref = reference_forward(sd, z, a, s, None, (2, 2), heads)
        assert (model.predictor(z, a, s) - ref).abs().max() <= 1e-5
    for which in ("target", "context"):  # the file's one encoder either way
        again = load_pretrained(path, which=which)
        assert again.predictor is None
        assert all(torch.equal(v, enc.state_dict()[k]) for k, v in again.encoder.state_dict().items())
