"""V-JEPA 2 / V-JEPA converters against transformers' VJEPA2Model (small random configs, no download)."""

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import VJEPA2Config, VJEPA2Model  # noqa: E402

from openjepa.engine.checkpoint import load_state_strict  # noqa: E402
from openjepa.errors import CheckpointError  # noqa: E402
from openjepa.interop.vjepa import (build_from_hf_config, from_hf_vjepa2, from_official_vjepa,  # noqa: E402
                                    from_official_vjepa2, official_predictor_kwargs, official_vjepa2_arch,
                                    official_vjepa_arch,
                                    save_hf_vjepa2, split_predictor, to_hf_vjepa2)
from openjepa.masks.base import MaskBatch  # noqa: E402
from openjepa.masks.ops import apply_masks  # noqa: E402
from openjepa.models.vjepa import vjepa_predictor  # noqa: E402
from openjepa.models.vit import VisionTransformer  # noqa: E402

TOL = dict(atol=1e-5, rtol=0)
CFG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, crop_size=16, patch_size=4,
           frames_per_clip=4, tubelet_size=2, pred_hidden_size=24, pred_num_hidden_layers=2,
           pred_num_attention_heads=2, pred_num_mask_tokens=3, pred_zero_init_mask_tokens=False)


def hf_model(**over):
    torch.manual_seed(0)
    return VJEPA2Model(VJEPA2Config(**{**CFG, **over})).eval()


@pytest.fixture(scope="module")
def hf():
    return hf_model()


def ours_from(state, config):
    conv = from_hf_vjepa2(state, config, predictor=True)
    enc, pred = build_from_hf_config(config)
    e, p = split_predictor(conv.state_dict)
    load_state_strict(enc, e, "encoder")
    load_state_strict(pred, p, "predictor")
    return enc.eval(), pred.eval(), conv


@pytest.fixture(scope="module")
def ours(hf):
    return ours_from(hf.state_dict(), hf.config.to_dict())


def hf_features(model, clip):
    """clip (B, C, T, H, W) -> transformers' encoder output (it takes (B, T, C, H, W))."""
    with torch.no_grad():
        return model(clip.permute(0, 2, 1, 3, 4), skip_predictor=True).last_hidden_state


@pytest.mark.parametrize("frames,size", [(4, 16), (8, 16), (1, 16), (4, 24)])
def test_encoder_features_equal_transformers(hf, ours, frames, size):
    """Clips at the native size, a longer clip, an image (one frame, repeated to a tubelet by both), and
    another resolution (transformers decomposes token indices with config.crop_size, so its model is
    configured at that size; the weights are the same)."""
    enc = ours[0]
    ref_model = hf if size == CFG["crop_size"] else hf_model(crop_size=size)
    ref_model.load_state_dict(hf.state_dict())
    torch.manual_seed(1)
    clip = torch.randn(2, 3, frames, size, size)
    with torch.no_grad():
        got = enc(clip[:, :, 0] if frames == 1 else clip)  # an image goes in as (B, C, H, W)
    want = hf_features(ref_model, clip)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("frames", [4, 8])
def test_predictor_equals_transformers(hf, ours, frames):
    enc, pred, _ = ours
    torch.manual_seed(2)
    clip = torch.randn(2, 3, frames, 16, 16)
    N = frames // 2 * 16
    ctx = torch.stack([torch.randperm(N)[: N // 2] for _ in range(2)])  # (B, Kc)
    tgt = torch.stack([torch.randperm(N)[: N // 3] for _ in range(2)])  # (B, Kt)
    with torch.no_grad():
        out = hf(clip.permute(0, 2, 1, 3, 4), context_mask=[ctx], target_mask=[tgt])
        want = out.predictor_output.last_hidden_state
        z = enc(clip)
        got = pred(apply_masks(z, ctx), MaskBatch(ctx), MaskBatch(tgt), grid=(frames // 2, 4, 4), mask_index=1)
    torch.testing.assert_close(got, want, **TOL)


# ---------------------------------------------------------------- the official layout, by the published renames

def hf_to_official(state):
    """HF VJEPA2Model keys -> official V-JEPA 2 .pt keys (the published HF conversion, reversed)."""
    enc, pred = {}, {}
    for k, v in state.items():
        part, rest = k.split(".", 1)
        if part == "encoder":
            rest = (rest.replace("embeddings.patch_embeddings.", "patch_embed.").replace("layer.", "blocks.", 1)
                    .replace("attention.", "attn.").replace("layernorm.", "norm."))
            enc["module.backbone." + rest] = v
        elif rest == "embeddings.mask_tokens":
            for i, t in enumerate(v):
                pred[f"module.backbone.mask_tokens.{i}"] = t  # (1, 1, D) each
        else:
            rest = (rest.replace("embeddings.predictor_embeddings.", "predictor_embed.")
                    .replace("layer.", "predictor_blocks.", 1).replace("attention.", "attn.")
                    .replace("layernorm.", "predictor_norm.").replace("proj.", "predictor_proj.", 1)
                    if not rest.startswith("layer.") else
                    rest.replace("layer.", "predictor_blocks.", 1).replace("attention.", "attn."))
            pred["module.backbone." + rest] = v
    for d in (enc, pred):
        for k in [k for k in d if k.endswith(("query.weight", "query.bias"))]:
            q, kk, vv = d.pop(k), d.pop(k.replace("query", "key")), d.pop(k.replace("query", "value"))
            d[k.replace("query", "qkv")] = torch.cat([q, kk, vv], 0)
    enc["module.backbone.pos_embed"] = torch.zeros(1, 32, 32)  # in the files, never used
    pred["module.backbone.predictor_pos_embed"] = torch.zeros(1, 32, 24)
    return enc, pred


def official_to_hf(enc, pred):
    """The published direction (official -> HF), written independently of the converter under test."""
    out = {}
    for src, d in (("encoder", enc), ("predictor", pred)):
        for k, v in d.items():
            k = k.replace("module.backbone.", "")
            if k in ("pos_embed", "predictor_pos_embed") or k.startswith("mask_tokens."):
                continue
            k = (k.replace("predictor_blocks.", "layer.").replace("blocks.", "layer.").replace("attn.", "attention.")
                 .replace("patch_embed.", "embeddings.patch_embeddings.").replace("predictor_embed.",
                                                                                  "embeddings.predictor_embeddings.")
                 .replace("predictor_norm.", "layernorm.").replace("predictor_proj.", "proj."))
            k = "layernorm." + k[5:] if k.startswith("norm.") else k
            if ".qkv." in k:
                for name, t in zip(("query", "key", "value"), v.chunk(3)):
                    out[f"{src}.{k.replace('qkv', name)}"] = t
            else:
                out[f"{src}.{k}"] = v
    n = sum(1 for k in pred if ".mask_tokens." in k)
    out["predictor.embeddings.mask_tokens"] = torch.stack([pred[f"module.backbone.mask_tokens.{i}"] for i in range(n)])
    return out


def test_official_layout_both_directions(hf, ours):
    enc_sd, pred_sd = hf_to_official(hf.state_dict())
    back = official_to_hf(enc_sd, pred_sd)
    assert set(back) == set(hf.state_dict())
    assert all(torch.equal(back[k], v) for k, v in hf.state_dict().items())

    ckpt = {"encoder": {k: v + 1 for k, v in enc_sd.items()}, "target_encoder": enc_sd, "predictor": pred_sd}
    conv = from_official_vjepa2(ckpt, which="target", predictor=True)
    assert conv.dropped == {"pos_embed": conv.dropped["pos_embed"],
                            "predictor/predictor_pos_embed": conv.dropped["predictor/predictor_pos_embed"]}
    assert "RoPE" in conv.dropped["pos_embed"]
    e, p = split_predictor(conv.state_dict)
    ref_e, ref_p = split_predictor(ours[2].state_dict)
    assert set(e) == set(ref_e) and all(torch.equal(e[k], ref_e[k]) for k in e)
    assert set(p) == set(ref_p) and all(torch.equal(p[k], ref_p[k]) for k in p)
    kw = official_predictor_kwargs(ckpt)  # widths, depth and mask-token count from the shapes
    assert (kw["predictor_embed_dim"], kw["depth"], kw["num_mask_tokens"], kw["mlp_ratio"]) == (24, 2, 3, 4.0)
    ctx = split_predictor(from_official_vjepa2(ckpt, which="context").state_dict)[0]
    assert torch.equal(ctx["norm.weight"], ref_e["norm.weight"] + 1)  # "context" is the file's encoder


def test_official_arch_from_shapes():
    def fake(dim, depth, n_pos=None, t=2):
        with torch.device("meta"):
            sd = {"module.backbone.patch_embed.proj.weight": torch.empty(dim, 3, t, 16, 16)}
            sd.update({f"module.backbone.blocks.{i}.norm1.weight": torch.empty(dim) for i in range(depth)})
            if n_pos:
                sd["module.backbone.pos_embed"] = torch.empty(1, n_pos, dim)
        return {"target_encoder": sd}
    assert official_vjepa2_arch(fake(1024, 24)) == "vjepa2_vit_large"
    assert official_vjepa2_arch(fake(1280, 32)) == "vjepa2_vit_huge"
    assert official_vjepa2_arch(fake(1408, 40, 32 * 16 * 16)) == "vjepa2_vit_giant"
    assert official_vjepa2_arch(fake(1408, 40, 32 * 24 * 24)) == "vjepa2_vit_giant_384"
    assert official_vjepa_arch(fake(1024, 24, 8 * 14 * 14)) == "vjepa_vit_large16"
    assert official_vjepa_arch(fake(1280, 32, 8 * 24 * 24)) == "vjepa_vit_huge16_384"
    with pytest.raises(CheckpointError, match="512 wide and 6 deep"):
        official_vjepa2_arch(fake(512, 6))


def test_official_vjepa1_round_trip():
    """Ours (V-JEPA 1 layout: sin-cos 3-D, 2 mask tokens) -> official key layout -> ours: bit-identical."""
    torch.manual_seed(3)
    enc = VisionTransformer(img_size=16, patch_size=4, num_frames=4, tubelet_size=2, embed_dim=24, depth=2,
                            num_heads=2).eval()
    pred = vjepa_predictor(enc, predictor_embed_dim=12, depth=1, num_heads=2).eval()
    official_enc = {f"module.backbone.{k}": v for k, v in enc.state_dict().items()}
    official_pred = {f"module.backbone.{k}": v for k, v in pred.state_dict().items() if k != "mask_token"}
    official_pred.update({f"module.backbone.mask_tokens.{i}": t[None] for i, t in enumerate(pred.mask_token)})
    conv = from_official_vjepa({"target_encoder": official_enc, "predictor": official_pred}, predictor=True)
    assert not conv.dropped
    e, p = split_predictor(conv.state_dict)
    assert all(torch.equal(e[k], v) for k, v in enc.state_dict().items()) and set(e) == set(enc.state_dict())
    assert all(torch.equal(p[k], v) for k, v in pred.state_dict().items()) and set(p) == set(pred.state_dict())


# ---------------------------------------------------------------- ours -> Hugging Face

def test_round_trip_and_from_pretrained(hf, ours, tmp_path):
    enc, pred, conv = ours
    state, cfg = to_hf_vjepa2(enc, pred)
    assert set(state) == set(hf.state_dict())
    back = from_hf_vjepa2(state, cfg, predictor=True).state_dict
    assert set(back) == set(conv.state_dict)
    assert all(torch.equal(back[k], v) for k, v in conv.state_dict.items())  # bit-identical

    save_hf_vjepa2(enc, tmp_path, predictor=pred)
    loaded = VJEPA2Model.from_pretrained(tmp_path).eval()
    torch.manual_seed(4)
    clip = torch.randn(1, 3, 4, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(hf_features(loaded, clip), enc(clip), **TOL)


# ---------------------------------------------------------------- bad input

def test_bad_input_names_the_problem(hf):
    sd, cfg = dict(hf.state_dict()), hf.config.to_dict()
    with pytest.raises(CheckpointError, match=r"model_type='ijepa'"):
        from_hf_vjepa2(sd, {**cfg, "model_type": "ijepa"})
    extra = {**sd, "encoder.layer.0.attention.rotary.weight": torch.zeros(3, 5)}
    with pytest.raises(CheckpointError, match=r"encoder\.layer\.0\.attention\.rotary\.weight \(3, 5\)"):
        from_hf_vjepa2(extra, cfg)
    no_key = {k: v for k, v in sd.items() if k != "encoder.layer.1.attention.key.weight"}
    with pytest.raises(CheckpointError, match=r"blocks\.1\.attn\.qkv\.weight needs query, key and value; missing: key"):
        from_hf_vjepa2(no_key, cfg)
    no_norm = {k: v for k, v in sd.items() if k != "encoder.layernorm.weight"}
    enc, _ = build_from_hf_config(cfg)
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): norm\.weight"):
        load_state_strict(enc, from_hf_vjepa2(no_norm, cfg).state_dict, "encoder")
    ijepa = {"embeddings.patch_embeddings.projection.weight": torch.zeros(32, 3, 4, 4),
             "encoder.layer.0.attention.attention.query.weight": torch.zeros(32, 32)}
    with pytest.raises(CheckpointError, match=r"2 key\(s\) that no rule maps.*projection\.weight \(32, 3, 4, 4\)"):
        from_hf_vjepa2(ijepa, cfg)
    with pytest.raises(CheckpointError, match=r"no target_encoder or ema_encoder .* it holds: encoder, opt"):
        from_official_vjepa2({"encoder": {"x": 1}, "opt": {}}, which="target")
    sincos = VisionTransformer(img_size=16, patch_size=4, num_frames=4, tubelet_size=2, embed_dim=24, depth=1,
                               num_heads=2)
    with pytest.raises(CheckpointError, match="pos='sincos'"):
        to_hf_vjepa2(sincos)


def test_classification_checkpoint_drops_its_head(hf):
    sd = {f"vjepa2.{k}": v for k, v in hf.state_dict().items() if k.startswith("encoder.")}
    sd.update({"pooler.query_tokens": torch.zeros(1, 1, 32), "classifier.weight": torch.zeros(5, 32)})
    conv = from_hf_vjepa2(sd, hf.config.to_dict())
    assert set(conv.dropped) == {"pooler.query_tokens", "classifier.weight"}
    assert len(conv.mapped) == len(sd) - 2


def test_embed_video_files_with_a_hf_model_equals_transformers(tmp_path):
    """A VJEPA2Model folder embeds a real mp4 through openjepa's clip pipeline; on the same preprocessed clip
    (frames 13, 17, 21, 25: the centred clip of 4 frames every 4 of 40; /255, ImageNet mean / std)
    transformers' own encoder gives the same tokens."""
    import numpy as np

    from openjepa.cli import main
    from openjepa.data.video import read_frames, write_video

    model = hf_model()
    model.save_pretrained(tmp_path / "hf")
    write_video(tmp_path / "a.mp4", (torch.rand(40, 3, 16, 16) * 255).to(torch.uint8))
    out = tmp_path / "f.npy"
    assert main(["embed", str(tmp_path / "hf"), str(tmp_path / "a.mp4"), "--out", str(out), "--pool", "none",
                 "--no-progress"]) == 0
    ours = torch.from_numpy(np.load(out))
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    clip = (read_frames(tmp_path / "a.mp4", [13, 17, 21, 25]).float() / 255 - mean) / std  # (T, C, H, W)
    with torch.no_grad():
        want = model(clip[None], skip_predictor=True).last_hidden_state  # transformers takes (B, T, C, H, W)
    assert ours.shape == want.shape == (1, 32, 32)
    torch.testing.assert_close(ours, want, **TOL)
