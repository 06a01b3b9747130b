"""Training throughput (images/s), peak memory and, on a GPU, model FLOP utilisation (MFU).

Runs full I-JEPA training steps (target forward, masked context forward, predictor, backward,
AdamW, EMA) on random images with real multi-block masks, for each named model size.

    python benchmarks/throughput.py --models vit_pico vit_tiny --img-size 64 --patch-size 8 --batch-size 32
    python benchmarks/throughput.py --models vit_base vit_large vit_huge --img-size 224 --patch-size 14 \
        --batch-size 64 --precision bf16 --compile
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from openjepa.config.schema import Config
from openjepa.engine.compile import compile_blocks
from openjepa.engine.optim import build_optimizer
from openjepa.engine.precision import autocast, resolve_device, resolve_precision
from openjepa.masks import build_mask_sampler
from openjepa.methods import build_method

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}  # dense bf16


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def bench(name: str, args: argparse.Namespace, device: torch.device, precision: str) -> dict:
    cfg = Config()
    cfg.model.encoder, cfg.model.img_size, cfg.model.patch_size = name, args.img_size, args.patch_size
    cfg.model.predictor_embed_dim, cfg.model.predictor_depth = args.pred_dim, args.pred_depth
    cfg.model.predictor_heads = args.pred_heads
    torch.manual_seed(0)
    method = build_method(cfg, total_steps=1000).to(device)
    opt = build_optimizer(method, cfg.optim)
    sampler = build_mask_sampler(cfg.mask, method.encoder.grid, seed=0)
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device=device)
    batches = [{"x": x, "masks": _to(sampler(args.batch_size, s), device)} for s in range(4)]
    if args.compile:
        compile_blocks(method)

    def one(i: int) -> None:
        with autocast(precision, device):
            loss = method.training_step(batches[i % 4], i).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        method.after_optimizer_step(i)

    for i in range(args.warmup):
        one(i)
    flops = None
    if device.type == "cuda":
        with FlopCounterMode(display=False) as fc:
            one(0)
        flops = fc.get_total_flops()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(args.steps):
        one(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / args.steps
    row = {"model": name, "params_M": sum(p.numel() for p in method.encoder.parameters()) / 1e6,
           "img_s": args.batch_size / dt, "ms_step": dt * 1e3, "peak_mem_GiB": None, "MFU_%": None}
    if device.type == "cuda":
        row["peak_mem_GiB"] = torch.cuda.max_memory_allocated() / 2**30
        peak = peak_tflops(device)
        if peak and flops:
            row["MFU_%"] = 100 * flops / dt / (peak * 1e12)
    return row


def _to(masks, device):
    return type(masks)(*(m.to(device) for m in masks))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["vit_pico", "vit_nano", "vit_tiny"])
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument("--patch-size", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--pred-dim", type=int, default=64)
    p.add_argument("--pred-depth", type=int, default=2)
    p.add_argument("--pred-heads", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precision", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true")
    args = p.parse_args()
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    print(f"# device: {where}; torch {torch.__version__}; precision {precision}; compile {args.compile}; "
          f"img {args.img_size}px patch {args.patch_size} batch {args.batch_size}")
    print(f"{'model':<12} {'params(M)':>9} {'img/s':>9} {'ms/step':>9} {'peak GiB':>9} {'MFU %':>7}")
    for name in args.models:
        r = bench(name, args, device, precision)
        mem = f"{r['peak_mem_GiB']:.2f}" if r["peak_mem_GiB"] is not None else "-"
        mfu = f"{r['MFU_%']:.1f}" if r["MFU_%"] is not None else "-"
        print(f"{r['model']:<12} {r['params_M']:>9.1f} {r['img_s']:>9.1f} {r['ms_step']:>9.1f} {mem:>9} {mfu:>7}")


if __name__ == "__main__":
    main()
