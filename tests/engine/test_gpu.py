"""GPU paths: bf16 autocast, torch.compile and the fused SDPA kernels (skipped without CUDA)."""

import json

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from openjepa.config import load_config
from openjepa.config.schema import Config
from openjepa.engine.compile import compile_blocks
from openjepa.engine.precision import autocast
from openjepa.report.pipeline import train_and_evaluate as train
from openjepa.masks import build_mask_sampler
from openjepa.methods import build_method
from tests.tiny import tiny

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _setup(img=64, patch=8, batch=8):
    cfg = Config()
    cfg.model.img_size, cfg.model.patch_size = img, patch
    torch.manual_seed(0)
    method = build_method(cfg, total_steps=10).cuda()
    masks = build_mask_sampler(cfg.mask, method.encoder.grid, seed=0)(batch, 0)
    masks = masks.to("cuda")
    x = torch.randn(batch, 3, img, img, device="cuda")
    return method, {"x": x, "masks": masks}


def test_bf16_step_close_to_fp32_and_grads_finite():
    method, batch = _setup()
    ref = method.training_step(batch, 0).loss
    with autocast("bf16", torch.device("cuda")):
        out = method.training_step(batch, 0)
    assert out.loss.dtype == torch.float32, out.loss.dtype  # the loss is computed in fp32 even under autocast
    out.loss.backward()
    assert abs(out.loss.item() - ref.item()) < 0.05 * ref.item(), (out.loss.item(), ref.item())
    grads = {n: p.grad for n, p in method.named_parameters() if p.grad is not None}
    assert grads and all(torch.isfinite(g).all() for g in grads.values()), [n for n, g in grads.items()
                                                                             if not torch.isfinite(g).all()]
    assert not any(n.startswith("target.") for n in grads), [n for n in grads if n.startswith("target.")]


def test_compiled_blocks_match_eager_with_changing_mask_sizes():
    method, batch = _setup()
    sampler = build_mask_sampler(Config().mask, method.encoder.grid, seed=0)
    batches = [{"x": batch["x"], "masks": sampler(8, s).to("cuda")} for s in range(3)]
    eager = [method.training_step(b, s).loss for s, b in enumerate(batches)]
    compile_blocks(method)
    for s, b in enumerate(batches):
        with autocast("bf16", torch.device("cuda")):
            loss = method.training_step(b, s).loss
        loss.backward()
        assert abs(loss.item() - eager[s].item()) < 0.05 * eager[s].item(), (s, loss.item(), eager[s].item())


def test_flash_attention_on_full_grid_and_efficient_kernel_on_padded_context():
    method, batch = _setup()
    x, masks = batch["x"], batch["masks"]
    with autocast("bf16", torch.device("cuda")):
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):  # raises if flash cannot run these shapes
            full = method.encoder(x)
        with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]):  # the key-padding mask needs this kernel
            ctx = method.encoder(x, masks.context)
    assert full.shape[:2] == (x.shape[0], method.encoder.num_tokens)
    assert ctx.shape[:2] == masks.context.idx.shape and torch.isfinite(ctx).all()


def test_cli_train_on_cuda_with_bf16(tmp_path):
    cfg = load_config(None, tiny(tmp_path, "device=cuda", "train.precision=auto", "train.steps=4",
                                 "eval.at_end=true"))
    summary = train(cfg)
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert summary["device"].startswith("cuda") and summary["precision"] == "bf16"
    assert all(torch.isfinite(torch.tensor(m["loss"])) for m in lines if "loss" in m)
