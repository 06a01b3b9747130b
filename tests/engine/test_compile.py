"""Regional torch.compile: same loss and gradients as eager, one compile for changing mask sizes."""

import torch
from torch._dynamo.utils import counters

from openjepa.config.schema import Config
from openjepa.engine.compile import compile_blocks
from openjepa.masks import build_mask_sampler
from openjepa.methods import build_method


def test_compiled_blocks_equal_eager_and_do_not_recompile_per_mask_size():
    cfg = Config()
    cfg.model.img_size, cfg.model.predictor_embed_dim, cfg.model.predictor_depth = 16, 32, 1
    cfg.mask.min_keep = 2
    torch.manual_seed(0)
    method = build_method(cfg, total_steps=10)
    sampler = build_mask_sampler(cfg.mask, method.encoder.grid, seed=0)
    x = torch.randn(4, 3, 16, 16)
    batches = [{"x": x, "masks": sampler(4, s)} for s in range(4)]
    assert len({b["masks"].context.idx.shape[1] for b in batches}) > 1  # the sizes do change

    def run(batches=batches):
        out = []
        for s, b in enumerate(batches):
            method.zero_grad(set_to_none=True)
            loss = method.training_step(b, s).loss
            loss.backward()
            out.append((loss.detach(), method.encoder.blocks[0].attn.qkv.weight.grad.clone()))
        return out

    eager = run()
    n = compile_blocks(method)
    assert n == len(method.encoder.blocks) * 2 + len(method.predictor.predictor_blocks)  # encoder, EMA copy, predictor
    torch._dynamo.reset()
    counters.clear()
    compiled = run()
    graphs = counters["stats"]["unique_graphs"]
    assert graphs <= 4, dict(counters["stats"])  # (encoder, predictor) x (with, without padding mask)
    seen = {b["masks"].context.idx.shape for b in batches}
    more = [b for b in ({"x": x, "masks": sampler(4, s)} for s in range(4, 64))
            if b["masks"].context.idx.shape not in seen][:4]  # steps whose context sizes the graphs never saw
    assert more
    run(more)
    assert counters["stats"]["unique_graphs"] == graphs  # new mask sizes reuse the dynamic graphs
    for (le, ge), (lc, gc) in zip(eager, compiled):
        assert torch.allclose(le, lc, rtol=1e-5, atol=1e-6)
        assert torch.allclose(ge, gc, rtol=1e-4, atol=1e-6)
    assert set(method.state_dict()) == set(build_method(cfg, 10).state_dict())  # checkpoints unaffected


def test_compiled_resnet_blocks_equal_eager_for_two_view_sizes():
    """LeJEPA with a ResNet: its basic blocks compile (global and local views differ in size) and the
    loss, the gradients and the batch-norm running statistics match eager execution."""
    from openjepa.config import load_config

    cfg = load_config(None, ["train.method=lejepa", "sigreg.weight=0.05", "model.encoder=resnet_pico",
                             "model.img_size=16", "model.proj_dim=16", "model.proj_hidden=32", "sigreg.slices=32"])
    torch.manual_seed(0)
    views = [torch.randn(4, 3, 16, 16)] * 2 + [torch.randn(4, 3, 8, 8)] * 2

    def run(method):
        out = []
        for s in range(2):
            method.zero_grad(set_to_none=True)
            loss = method.training_step({"views": views}, s).loss
            loss.backward()
            out.append((loss.detach(), method.encoder.conv1.weight.grad.clone()))
        return out, method.encoder.layer2[0].bn1.running_mean.clone()

    eager_method = build_method(cfg, 10)
    compiled_method = build_method(cfg, 10)
    compiled_method.load_state_dict(eager_method.state_dict())
    eager, eager_stats = run(eager_method)
    assert compile_blocks(compiled_method) == 2  # resnet_pico: one block per stage
    torch._dynamo.reset()
    compiled, compiled_stats = run(compiled_method)
    for (le, ge), (lc, gc) in zip(eager, compiled):
        assert torch.allclose(le, lc, rtol=1e-5, atol=1e-6)
        assert torch.allclose(ge, gc, rtol=1e-4, atol=1e-5)
    assert torch.allclose(eager_stats, compiled_stats, rtol=1e-5, atol=1e-6)
