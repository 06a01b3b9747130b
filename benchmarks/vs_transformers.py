"""Feature extraction: openjepa's ViT against transformers' IJepaModel on the same weights, input and CPU.

Both models hold the same random weights (ours converted with ``to_hf_ijepa``; the features are
checked to agree first). Each round times one forward pass of each, in alternating order, in this
one process, so drift in the machine's load hits both alike; the table gives the median time per
batch and the median of the per-round ratios (transformers / ours: above 1 means ours is faster).
Then the time to convert a ViT-H/14 state dict (random, uninitialised weights) from the Hugging
Face layout to ours, and back.

    python benchmarks/vs_transformers.py --rounds 10 --threads 4
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from openjepa.interop.ijepa import from_hf_ijepa, to_hf_ijepa
from openjepa.models import create_model


def _hf_model(encoder, transformers):
    state, config = to_hf_ijepa(encoder)
    hf = transformers.IJepaModel(transformers.IJepaConfig(**{k: v for k, v in config.items()
                                                              if k not in ("architectures", "model_type", "dtype")}))
    hf.load_state_dict(state, strict=True)
    return hf.eval()


@torch.inference_mode()
def compare(name: str, img: int, patch: int, batch: int, rounds: int, transformers) -> dict:
    torch.manual_seed(0)
    ours = create_model(name, img_size=img, patch_size=patch).eval()
    hf = _hf_model(ours, transformers)
    x = torch.randn(batch, 3, img, img)
    diff = (ours(x) - hf(pixel_values=x).last_hidden_state).abs().max().item()
    for _ in range(2):  # warm-up
        ours(x), hf(pixel_values=x)
    t_ours, t_hf, ratios = [], [], []
    for r in range(rounds):
        order = [("ours", ours), ("hf", hf)] if r % 2 == 0 else [("hf", hf), ("ours", ours)]
        times = {}
        for label, model in order:
            t0 = time.perf_counter()
            model(x) if label == "ours" else model(pixel_values=x)
            times[label] = time.perf_counter() - t0
        t_ours.append(times["ours"])
        t_hf.append(times["hf"])
        ratios.append(times["hf"] / times["ours"])
    return {"model": f"{name} {img}px/{patch} x{batch}", "ours_ms": 1e3 * statistics.median(t_ours),
            "hf_ms": 1e3 * statistics.median(t_hf), "ratio": statistics.median(ratios), "max_diff": diff}


def convert_time(repeats: int) -> tuple[float, float, float]:
    """Seconds to convert a ViT-H/14 (630M parameters) HF state dict to ours, and ours to HF; and its size in GB."""
    with torch.device("meta"):
        shape_model = create_model("ijepa_vit_huge14")
    # Real (uninitialised) tensors: the q, k, v concatenation copies memory, as with a real checkpoint.
    ours_state = {k: torch.empty(v.shape) for k, v in shape_model.state_dict().items()}
    hf_state, config = _meta_to_hf(ours_state)
    t_in, t_out = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        from_hf_ijepa(hf_state, config)
        t_in.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _meta_to_hf(ours_state)
        t_out.append(time.perf_counter() - t0)
    gb = sum(v.numel() * v.element_size() for v in ours_state.values()) / 1e9
    return min(t_in), min(t_out), gb


def _meta_to_hf(state: dict) -> tuple[dict, dict]:
    """to_hf_ijepa on a ViT-H/14 whose parameters are ``state`` (swapped in without copying)."""
    with torch.device("meta"):
        model = create_model("ijepa_vit_huge14")
    model.load_state_dict(state, assign=True)
    return to_hf_ijepa(model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (both models)")
    ap.add_argument("--batch", type=int, default=8, help="batch of the ViT-B run (the small one uses 32)")
    ap.add_argument("--convert-repeats", type=int, default=2)
    args = ap.parse_args()
    import transformers

    torch.set_num_threads(args.threads)
    rows = [compare("vit_pico", 32, 4, 32, args.rounds, transformers),
            compare("vit_base", 224, 16, args.batch, args.rounds, transformers)]
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {args.threads} threads, "
          f"{args.rounds} interleaved rounds")
    print(f"{'model':<26} {'ours ms':>9} {'hf ms':>9} {'hf/ours':>8} {'max |diff|':>11}")
    for r in rows:
        print(f"{r['model']:<26} {r['ours_ms']:9.1f} {r['hf_ms']:9.1f} {r['ratio']:8.2f} {r['max_diff']:11.2e}")
    t_in, t_out, gb = convert_time(args.convert_repeats)
    print(f"convert ViT-H/14 ({gb:.2f} GB float32): HF -> ours {t_in:.2f} s, ours -> HF {t_out:.2f} s "
          f"(best of {args.convert_repeats})")


if __name__ == "__main__":
    main()
