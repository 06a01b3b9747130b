"""On-disk cache of extracted features, so a second evaluation never re-runs the encoder.

One safetensors file per feature set and split, ``run_dir/features/{name}_{split}.safetensors``
(``name`` is ``step{N:08d}_{encoder}`` for a checkpoint, ``baseline-random`` / ``baseline-pixels``
for the baselines), holding ``features`` (N, D) float32, ``labels`` (N,) int64 and, only when
the attentive probe asked for them, ``tokens`` (N, T, D) float16. The file's metadata holds the
*key*: everything the features depend on (checkpoint step, a fingerprint of the weights, encoder,
split, sample cap, image and patch size, the data settings, the seed, the precision). A file whose
key differs from the wanted one is stale: it is re-extracted and overwritten, never used. Files
are written to a temporary name and renamed, so an interrupted write leaves no half file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from openjepa.engine.checkpoint import save_safetensors
from openjepa.eval.features import Features

FORMAT = "openjepa-features-v1"


@torch.no_grad()
def fingerprint(module: nn.Module) -> str:
    """A short hash of ``module``'s state (names, shapes, dtypes, float64 sums and absolute sums).

    Cheap for any model size (two reductions per tensor, no copy to the CPU) and different for
    any two checkpoints in practice: a run directory trained twice never reuses stale features.
    """
    names, stats = [], []
    for name, t in module.state_dict().items():
        names.append(f"{name}:{tuple(t.shape)}:{t.dtype}")
        t = t.detach().double() if t.is_floating_point() else t.detach().to(torch.float64)
        stats.append(torch.stack([t.sum(), t.abs().sum()]))
    h = hashlib.sha256("\n".join(names).encode())
    if stats:
        h.update(" ".join(f"{v:.9e}" for v in torch.stack(stats).flatten().cpu().tolist()).encode())
    return h.hexdigest()[:16]


def cache_path(cache_dir: str | Path, name: str, split: str) -> Path:
    """``cache_dir/{name}_{split}.safetensors``."""
    return Path(cache_dir) / f"{name}_{split}.safetensors"


def _read_key(path: Path) -> dict | None:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT or "key" not in meta:
        return None
    return json.loads(meta["key"])


def load_features(path: str | Path, key: dict[str, Any], need_tokens: bool = False) -> Features | None:
    """The cached features at ``path`` if its key equals ``key`` (and it has tokens when needed), else None.

    A stale, token-less (when tokens are needed) or unreadable file is reported and treated as a
    miss. Tokens are read only when needed.
    """
    path = Path(path)
    if not path.is_file():
        return None
    key = json.loads(json.dumps(key, sort_keys=True))  # as it reads back (tuples become lists)
    try:
        stored = _read_key(path)
        if stored != key:
            diff = sorted(k for k in set(key) | set(stored or {}) if (stored or {}).get(k) != key.get(k))
            print(f"features: {path.name} is stale (differs in {', '.join(diff)}); re-extracting")
            return None
        with safe_open(str(path), framework="pt") as f:
            if need_tokens and "tokens" not in f.keys():
                print(f"features: {path.name} has no patch tokens (the attentive probe needs them); re-extracting")
                return None
            tokens = f.get_tensor("tokens") if need_tokens else None
            feats = Features(f.get_tensor("features"), f.get_tensor("labels"), tokens)
    except (SafetensorError, OSError, json.JSONDecodeError) as e:
        print(f"features: cannot read {path} ({e}); re-extracting")
        return None
    print(f"features: loaded {path}")
    return feats


def save_features(path: str | Path, feats: Features, key: dict[str, Any]) -> Path:
    """Write ``feats`` with ``key`` to ``path`` atomically (temporary file + fsync + rename), mode 0o666 & ~umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"features": feats.x.contiguous(), "labels": feats.y.contiguous()}
    if feats.tokens is not None:
        tensors["tokens"] = feats.tokens.to(torch.float16).contiguous()
    return save_safetensors(tensors, path, metadata={"format": FORMAT, "key": json.dumps(key, sort_keys=True)})
