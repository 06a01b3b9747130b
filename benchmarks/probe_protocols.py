"""Does the probe protocol, rather than the features, decide the linear-probe accuracy?

Probes one run's encoder and a random-init encoder of the same architecture under three linear
protocols: the last layer's average-pooled tokens (openjepa's and I-JEPA's protocol), the pooled
tokens of the last four layers concatenated (DINO's and I-JEPA's ViT-L protocol; for a ResNet, its
stages), and the last layer pooled onto a 2x2 grid (spatial pooling, as in Goyal et al. 2019);
raw pixels for scale.
Same linear probe as ``openjepa eval`` (lr x wd grid, held-out selection).

    python benchmarks/probe_protocols.py runs/lejepa_fashion_mnist --train 20000 --test 5000 --epochs 30
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from openjepa.data.registry import build_dataset
from openjepa.engine.runs import load_run
from openjepa.eval.linear import linear_probe
from openjepa.methods import build_encoder


@torch.no_grad()
def protocol_features(encoder: nn.Module, loader: DataLoader, n: int) -> tuple[dict[str, Tensor], Tensor]:
    """{protocol: (n, D_protocol)} features and (n,) labels of the first ``n`` items."""
    out: dict[str, list[Tensor]] = {"last layer, pooled": [], "last 4 layers, pooled": [], "last layer, 2x2 grid": [],
                                    "raw pixels": []}
    ys, seen = [], 0
    for x, y in loader:
        layers = encoder.forward_intermediates(x, [-4, -3, -2, -1])  # 4 x (B, N, D)
        last = layers[-1]
        b, n_tok, d = last.shape
        side = int(n_tok ** 0.5)
        out["last layer, pooled"].append(last.mean(1))
        out["last 4 layers, pooled"].append(torch.cat([h.mean(1) for h in layers], 1))
        grid = last.transpose(1, 2).reshape(b, d, side, side)  # (B, N, D) -> (B, D, h, w)
        out["last layer, 2x2 grid"].append(F.adaptive_avg_pool2d(grid, 2).flatten(1))  # (B, 4D)
        out["raw pixels"].append(x.flatten(1))
        ys.append(torch.as_tensor(y))
        seen += b
        if seen >= n:
            break
    return {k: torch.cat(v)[:n] for k, v in out.items()}, torch.cat(ys)[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run directory or checkpoint")
    ap.add_argument("--train", type=int, default=20000, help="training images for the probe")
    ap.add_argument("--test", type=int, default=5000, help="test images")
    ap.add_argument("--epochs", type=int, default=30, help="linear-probe epochs")
    args = ap.parse_args()
    cfg, method, _, step = load_run(args.run)
    method.eval()
    torch.manual_seed(cfg.seed + 1)
    encoders = {f"{cfg.train.method} step {step}": method.encoder, "random-init": build_encoder(cfg).eval()}
    loaders = {s: DataLoader(build_dataset(cfg.data, s, cfg.model.img_size, seed=cfg.seed, train=False), batch_size=500)
               for s in ("train", "test")}
    print(f"{'encoder':<22} {'protocol':<22} {'dim':>5} {'linear':>7} {'seconds':>7}")
    for name, enc in encoders.items():
        tr, ytr = protocol_features(enc, loaders["train"], args.train)
        te, yte = protocol_features(enc, loaders["test"], args.test)
        for proto in tr:
            if proto == "raw pixels" and name == "random-init":
                continue
            t = time.time()
            r = linear_probe(tr[proto], ytr, te[proto], yte, epochs=args.epochs, num_classes=int(ytr.max()) + 1)
            print(f"{name:<22} {proto:<22} {tr[proto].shape[1]:>5} {100 * r.accuracy:>6.1f}% {time.time() - t:>7.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
