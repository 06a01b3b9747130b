"""I-JEPA converters against the real thing: transformers' IJepaModel (small random configs) and the official
file layout, built from the Hugging Face model through the renames transformers' own conversion script
(convert_ijepa_to_hf.py) publishes, written out independently here."""

from __future__ import annotations

import json
import re

import pytest
import torch

from openjepa.errors import CheckpointError, ConfigError
from openjepa.interop.convert import Conversion, convert_keys, fuse_parts
from openjepa.interop.ijepa import (build_official_ijepa, from_hf_ijepa, from_official_ijepa, hf_ijepa_kwargs,
                                    load_hf_ijepa, official_ijepa_arch, official_predictor_kwargs, read_hf_config,
                                    read_hf_weights, save_hf_ijepa, split_predictor, to_hf_ijepa)
from openjepa.models import Predictor, VisionTransformer, create_model
from openjepa.models.released import RELEASED_IJEPA

transformers = pytest.importorskip("transformers")

TOL = 1e-5
# Tiny IJepaModel: 8x8 tokens of 4x4 px; width 32, 4 heads, 2 blocks, MLP 80 (ratio 2.5).
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=80, image_size=32,
             patch_size=4, num_channels=3)

# transformers' convert_ijepa_to_hf.py renames official keys to 4.x ones (and splits qkv into query, key,
# value, rows in that order); inverted here: 4.x -> official.
V4_TO_OFFICIAL = [(r"embeddings\.position_embeddings", "pos_embed"),
                  (r"embeddings\.patch_embeddings\.projection\.(\w+)", r"patch_embed.proj.\1"),
                  (r"encoder\.layer\.(\d+)\.layernorm_before\.(\w+)", r"blocks.\1.norm1.\2"),
                  (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(\w+)", r"blocks.\1.attn.proj.\2"),
                  (r"encoder\.layer\.(\d+)\.layernorm_after\.(\w+)", r"blocks.\1.norm2.\2"),
                  (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(\w+)", r"blocks.\1.mlp.fc1.\2"),
                  (r"encoder\.layer\.(\d+)\.output\.dense\.(\w+)", r"blocks.\1.mlp.fc2.\2"),
                  (r"layernorm\.(\w+)", r"norm.\1")]
# transformers' checkpoint conversion mapping for IJepaModel (its ViTModel rules) renames 4.x -> 5.x by
# substrings: encoder.layer. -> layers., attention.query -> q_proj (so attention.attention.query ->
# attention.q_proj), key, value likewise, attention.output.dense -> attention.o_proj,
# intermediate.dense -> mlp.fc1, output.dense -> mlp.fc2. Inverted here: 5.x -> 4.x.
V5_TO_V4 = [("attention.q_proj", "attention.attention.query"), ("attention.k_proj", "attention.attention.key"),
            ("attention.v_proj", "attention.attention.value"), ("attention.o_proj", "attention.output.dense"),
            ("mlp.fc1", "intermediate.dense"), ("mlp.fc2", "output.dense")]


def hf_model(seed: int = 0, **over) -> "transformers.IJepaModel":
    torch.manual_seed(seed)
    model = transformers.IJepaModel(transformers.IJepaConfig(**{**SMALL, **over})).eval()
    with torch.no_grad():  # LayerNorms and biases start at 1 / 0: make them random too, so a mix-up shows
        for name, p in model.named_parameters():
            if "layernorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.3)
    return model


def v5_to_v4(state: dict) -> dict:
    out = {}
    for k, v in state.items():
        k = re.sub(r"^layers\.", "encoder.layer.", k)
        for new, old in V5_TO_V4:
            k = k.replace(new, old)
        out[k] = v
    return out


def v4_to_official(state: dict) -> dict:
    out, qkv = {}, {}
    for k, v in state.items():
        m = re.fullmatch(r"encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(\w+)", k)
        if m:
            qkv.setdefault(f"blocks.{m.group(1)}.attn.qkv.{m.group(3)}", {})[m.group(2)] = v
            continue
        pat, rep = next((p, r) for p, r in V4_TO_OFFICIAL if re.fullmatch(p, k))
        out[re.sub(f"^{pat}$", rep, k)] = v
    for k, parts in qkv.items():
        out[k] = torch.cat([parts["query"], parts["key"], parts["value"]], 0)
    return out


def official_file(target: dict, context: dict, predictor: dict | None = None) -> dict:
    """The dict official I-JEPA's train.py saves: DDP-prefixed state dicts plus bookkeeping."""
    obj = {"encoder": {f"module.{k}": v for k, v in context.items()},
           "target_encoder": {f"module.{k}": v for k, v in target.items()},
           "opt": {"state": {}, "param_groups": []}, "scaler": None, "epoch": 3, "loss": 0.5, "batch_size": 8,
           "world_size": 1, "lr": 1e-3}
    if predictor is not None:
        obj["predictor"] = {f"module.{k}": v for k, v in predictor.items()}
    return obj


def hf_features(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(pixel_values=x, interpolate_pos_encoding=True).last_hidden_state


def ours(kwargs: dict, state: dict) -> VisionTransformer:
    enc = VisionTransformer(**kwargs).eval()
    enc.load_state_dict(state, strict=True)
    return enc


def max_diff(enc: VisionTransformer, hf, x: torch.Tensor) -> float:
    with torch.no_grad():
        return (enc(x) - hf_features(hf, x)).abs().max().item()


INPUTS = [(32, 32), (48, 48), (40, 56)]  # native 8x8 tokens, 12x12, and a non-square 10x14 grid


# ----------------------------------------------------------------------------- Hugging Face, both namings

@pytest.mark.parametrize("naming", ["v5", "v4"])
@pytest.mark.parametrize("eps", [1e-12, 0.1])
def test_hf_state_dict_gives_transformers_features(naming, eps):
    hf = hf_model(layer_norm_eps=eps)
    state = hf.state_dict()
    if naming == "v4":
        state = v5_to_v4(state)
        assert "encoder.layer.1.attention.attention.value.weight" in state
    conv = from_hf_ijepa(state, hf.config.to_dict())
    assert set(conv.mapped) == set(state) and not conv.dropped
    kwargs = hf_ijepa_kwargs(hf.config.to_dict())
    assert kwargs["norm_eps"] == eps and kwargs["mlp_ratio"] * 32 == 80
    enc = ours(kwargs, conv.state_dict)
    for h, w in INPUTS:
        x = torch.randn(2, 3, h, w)
        assert max_diff(enc, hf, x) <= TOL, (naming, eps, h, w)


def test_hf_qkv_rows_are_q_then_k_then_v():
    hf = hf_model()
    conv = from_hf_ijepa(hf.state_dict(), hf.config.to_dict())
    qkv = conv.state_dict["blocks.1.attn.qkv.weight"]
    att = hf.layers[1].attention
    assert torch.equal(qkv, torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]))
    assert conv.mapped["layers.1.attention.k_proj.bias"] == "blocks.1.attn.qkv.bias"


def test_the_eps_matters_so_the_eps_test_can_fail():
    hf = hf_model(layer_norm_eps=0.1)
    conv = from_hf_ijepa(hf.state_dict(), hf.config.to_dict())
    wrong = ours({**hf_ijepa_kwargs(hf.config.to_dict()), "norm_eps": 1e-6}, conv.state_dict)
    assert max_diff(wrong, hf, torch.randn(1, 3, 32, 32)) > 1e-3


def test_hf_pooler_and_mask_token_are_dropped_with_reasons():
    torch.manual_seed(0)
    hf = transformers.IJepaModel(transformers.IJepaConfig(**SMALL), add_pooling_layer=True, use_mask_token=True)
    conv = from_hf_ijepa(hf.state_dict(), hf.config.to_dict())
    assert set(conv.dropped) == {"embeddings.mask_token", "pooler.dense.weight", "pooler.dense.bias"}
    assert all(conv.dropped.values())
    assert len(conv.mapped) + len(conv.dropped) == len(hf.state_dict())


def test_hf_classification_model_loads_through_the_prefix():
    torch.manual_seed(0)
    clf = transformers.IJepaForImageClassification(transformers.IJepaConfig(**SMALL, num_labels=5)).eval()
    conv = from_hf_ijepa(clf.state_dict(), clf.config.to_dict())
    assert conv.dropped.keys() == {"classifier.weight", "classifier.bias"}
    enc = ours(hf_ijepa_kwargs(clf.config.to_dict()), conv.state_dict)
    assert max_diff(enc, clf.ijepa, torch.randn(1, 3, 32, 32)) <= TOL


def test_the_v4_names_are_what_transformers_itself_loads(tmp_path):
    """Our 4.x export, read back by transformers' own loader (its conversion mapping), gives the same model."""
    enc = create_model("vit_pico", img_size=32, patch_size=4).eval()
    save_hf_ijepa(enc, tmp_path, naming="v4")
    keys = read_hf_weights(tmp_path).keys()
    assert "encoder.layer.0.attention.attention.query.weight" in keys and not any(k.startswith("layers.") for k in keys)
    hf, info = transformers.IJepaModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info
    for h, w in INPUTS[:2]:
        assert max_diff(enc, hf.eval(), torch.randn(2, 3, h, w)) <= TOL


# ----------------------------------------------------------------------------- official layout

def official_from_hf(hf) -> dict:
    return v4_to_official(v5_to_v4(hf.state_dict()))


def test_official_names_invert_the_published_renames():
    hf = hf_model()
    official = official_from_hf(hf)
    want = set(VisionTransformer(img_size=32, patch_size=4, embed_dim=32, depth=2, num_heads=4,
                                 mlp_ratio=2.5).state_dict())
    assert set(official) == want


@pytest.mark.parametrize("which", ["target", "context"])
def test_official_file_gives_the_features_of_the_chosen_encoder(which):
    target, context = hf_model(seed=1), hf_model(seed=2)
    obj = official_file(official_from_hf(target), official_from_hf(context))
    conv = from_official_ijepa(obj, which=which, num_heads=4)
    source = target if which == "target" else context
    name, kwargs = official_ijepa_arch(conv.state_dict, num_heads=4)
    assert name == "VisionTransformer" and kwargs["img_size"] == 32 and kwargs["depth"] == 2
    enc = ours(kwargs, conv.state_dict)
    for h, w in INPUTS:
        assert max_diff(enc, source, torch.randn(2, 3, h, w)) <= TOL, (which, h, w)
    other = "encoder" if which == "target" else "target_encoder"
    assert conv.mapped[f"{'target_encoder' if which == 'target' else 'encoder'}.module.norm.bias"] == "norm.bias"
    assert all(k.startswith(other + ".") or k in ("opt", "scaler", "epoch", "loss", "batch_size", "world_size", "lr")
               for k in conv.dropped)
    assert len(conv.mapped) + len(conv.dropped) == sum(len(v) if isinstance(v, dict) and k != "opt" else 1
                                                       for k, v in obj.items())


def test_official_predictor_comes_along_exactly():
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=4, embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.5)
    pred = Predictor(enc.grid, 32, predictor_embed_dim=16, depth=3, num_heads=4)
    with torch.no_grad():
        for p in list(enc.parameters()) + list(pred.parameters()):
            p.normal_()
    obj = official_file(enc.state_dict(), enc.state_dict(), pred.state_dict())
    conv = from_official_ijepa(obj, predictor=True, num_heads=4)
    enc_state, pred_state = split_predictor(conv.state_dict)
    assert pred_state.keys() == pred.state_dict().keys()
    assert all(torch.equal(pred_state[k], v) for k, v in pred.state_dict().items())
    _, kwargs = official_ijepa_arch(enc_state, num_heads=4)
    assert official_predictor_kwargs(pred_state, kwargs) == dict(predictor_embed_dim=16, depth=3, num_heads=4,
                                                                  mlp_ratio=4.0, qkv_bias=True)
    e2, p2, _ = build_official_ijepa(obj, predictor=True, num_heads=4)
    assert all(torch.equal(e2.state_dict()[k], v) for k, v in enc.state_dict().items())
    assert p2 is not None and not p2.training
    without = from_official_ijepa(obj, num_heads=4)
    assert not any(k.startswith("predictor.") for k in without.state_dict)
    assert without.dropped["predictor.module.mask_token"] == "the predictor (predictor=False)"


def test_official_arch_names_the_released_models():
    for name, spec in RELEASED_IJEPA.items():
        with torch.device("meta"):
            state = {f"module.{k}": v for k, v in create_model(name).state_dict().items()}
        found, kwargs = official_ijepa_arch(state)
        assert found == name and kwargs == {**spec.encoder, "in_chans": 3}
    assert RELEASED_IJEPA["ijepa_vit_giant16"].predictor["depth"] == 16
    assert RELEASED_IJEPA["ijepa_vit_huge16_448"].preprocess.input_size == 448


def test_released_giant_has_the_official_mlp_width():
    with torch.device("meta"):
        g = create_model("ijepa_vit_giant16")
    assert g.blocks[0].mlp.fc1.out_features == 6144 and g.patch_size == 16 and g.grid == (1, 14, 14)
    assert g.norm.eps == 1e-6


# ----------------------------------------------------------------------------- round trip and export

@pytest.mark.parametrize("naming", ["v5", "v4"])
def test_round_trip_ours_hf_ours_is_bit_identical(tmp_path, naming):
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=4, embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.5,
                            norm_eps=1e-5, qkv_bias=False).eval()
    with torch.no_grad():
        for p in enc.parameters():
            p.normal_()
    save_hf_ijepa(enc, tmp_path / "hf", naming=naming)
    back, conv = load_hf_ijepa(tmp_path / "hf")
    assert back.norm.eps == 1e-5 and back.blocks[0].attn.qkv.bias is None
    assert back.state_dict().keys() == enc.state_dict().keys()
    assert all(torch.equal(back.state_dict()[k], v) for k, v in enc.state_dict().items())
    hf = transformers.IJepaModel.from_pretrained(tmp_path / "hf").eval()
    for h, w in INPUTS:
        assert max_diff(enc, hf, torch.randn(2, 3, h, w)) <= TOL
    proc = json.loads((tmp_path / "hf" / "preprocessor_config.json").read_text())
    assert proc["size"] == {"height": 32, "width": 32} and proc["image_mean"] == [0.485, 0.456, 0.406]


def test_export_refuses_an_existing_folder_and_video_encoders(tmp_path):
    enc = create_model("vit_pico", img_size=32, patch_size=4)
    save_hf_ijepa(enc, tmp_path)
    with pytest.raises(FileExistsError, match="config.json"):
        save_hf_ijepa(enc, tmp_path)
    video = create_model("vit_pico", img_size=32, patch_size=4, num_frames=4, tubelet_size=2)
    with pytest.raises(CheckpointError, match="only an image ViT"):
        to_hf_ijepa(video)
    with pytest.raises(ConfigError, match="naming='v3'.*v5, v4"):
        to_hf_ijepa(enc, naming="v3")


# ----------------------------------------------------------------------------- bad input

def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


def test_missing_and_extra_keys_are_named():
    hf = hf_model()
    cfg = hf.config.to_dict()
    state = dict(hf.state_dict())
    del state["layers.1.mlp.fc2.bias"]
    with pytest.raises(CheckpointError) as e:
        from_hf_ijepa(state, cfg)
    assert "missing keys (1): blocks.1.mlp.fc2.bias" in one_line(e)
    state = dict(hf.state_dict(), **{"layers.0.attention.rope.freqs": torch.zeros(4)})
    with pytest.raises(CheckpointError) as e:
        from_hf_ijepa(state, cfg)
    assert "layers.0.attention.rope.freqs (4,)" in one_line(e)
    state = dict(hf.state_dict())
    del state["layers.0.attention.v_proj.weight"]
    with pytest.raises(CheckpointError, match=r"blocks\.0\.attn\.qkv\.weight needs the pieces q, k, v; found k, q"):
        from_hf_ijepa(state, cfg)
    obj = official_file(official_from_hf(hf), official_from_hf(hf))
    del obj["target_encoder"]["module.blocks.0.norm2.weight"]
    with pytest.raises(CheckpointError) as e:
        from_official_ijepa(obj, num_heads=4)
    assert "missing keys (1): blocks.0.norm2.weight" in one_line(e)
    obj = official_file(official_from_hf(hf), official_from_hf(hf))
    obj["target_encoder"]["module.blocks.0.attn.q_norm.weight"] = torch.zeros(8)
    with pytest.raises(CheckpointError, match=r"target_encoder\.module\.blocks\.0\.attn\.q_norm\.weight \(8,\)"):
        from_official_ijepa(obj, num_heads=4)
    obj = official_file(official_from_hf(hf), official_from_hf(hf))
    obj["ema_momentum"] = 0.99
    with pytest.raises(CheckpointError, match="unknown top-level entries ema_momentum"):
        from_official_ijepa(obj, num_heads=4)


def test_a_file_of_another_architecture_is_refused():
    video = create_model("vit_pico", img_size=32, patch_size=4, num_frames=4, tubelet_size=2).state_dict()
    with pytest.raises(CheckpointError) as e:
        from_official_ijepa({"encoder": video, "target_encoder": video})
    assert "patch_embed.proj.weight has shape (96, 3, 2, 4, 4)" in one_line(e)
    vjepa = {"target_encoder": {f"module.backbone.{k}": v for k, v in video.items()}}
    with pytest.raises(CheckpointError, match=r"no rule maps .*module\.backbone\."):
        from_official_ijepa(vjepa)
    with pytest.raises(CheckpointError, match="no rule maps"):
        from_official_ijepa({"target_encoder": create_model("resnet_pico").state_dict()})
    with pytest.raises(CheckpointError, match="width 32 is not an official ViT width.*pass num_heads"):
        from_official_ijepa(official_file(official_from_hf(hf_model()), official_from_hf(hf_model())))
    with pytest.raises(ConfigError, match="which='ema'.*target, context"):
        from_official_ijepa({}, which="ema")


def test_hf_folder_of_another_model_type_is_refused(tmp_path):
    enc = create_model("vit_pico", img_size=32, patch_size=4)
    save_hf_ijepa(enc, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "model_type": "vjepa2"}))
    with pytest.raises(CheckpointError) as e:
        load_hf_ijepa(tmp_path)
    assert "model_type='vjepa2', not 'ijepa'" in one_line(e)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "hidden_act": "gelu_new"}))
    with pytest.raises(CheckpointError, match="hidden_act='gelu_new'"):
        load_hf_ijepa(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_hf_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read .*model.safetensors"):
        load_hf_ijepa(tmp_path)
    with pytest.raises(CheckpointError, match="no config.json"):
        load_hf_ijepa(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- the shared machinery

def test_fuse_parts_concatenates_in_the_order_given_and_names_strays():
    a, b = torch.ones(2, 3), torch.zeros(2, 3)
    conv = convert_keys({"x.k": b, "x.q": a}, [(r"x\.(q|k)", r"y#\1")])
    fuse_parts(conv, ("q", "k"))
    assert torch.equal(conv.state_dict["y"], torch.cat([a, b])) and conv.mapped == {"x.k": "y", "x.q": "y"}
    with pytest.raises(CheckpointError, match="differ in shape"):
        fuse_parts(Conversion({"y#q": a, "y#k": torch.ones(3)}), ("q", "k"))
