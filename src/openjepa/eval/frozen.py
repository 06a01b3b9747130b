"""Frozen-feature evaluation of a trained method beside honest baselines.

Rows: the trained encoder's pooled tokens, the same architecture at random init, and raw pixels,
each probed with the same linear probe and kNN, with RankMe. Saved as ``eval.json`` in the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import DataLoader

from openjepa.config.load import from_dict, load_config_overrides
from openjepa.config.schema import Config
from openjepa.data import build_dataset, dataset_info, raw_pixels
from openjepa.engine import checkpoint as ckpt
from openjepa.engine.precision import resolve_device
from openjepa.eval.features import extract_features
from openjepa.eval.table import evaluate_features, format_table
from openjepa.methods import JEPAMethod, build_encoder, build_method


def _loader(ds, batch_size: int) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)


def evaluate_method(method: JEPAMethod, cfg: Config, device: torch.device, run_dir: str | Path | None = None,
                    label: str | None = None, out_name: str = "eval.json") -> list[dict]:
    """Probe ``method``'s frozen features (and the baselines); print the table; save ``run_dir/out_name``."""
    info = dataset_info(cfg.data)
    if info.num_classes == 0:
        print("dataset has no labels: skipping the probes (use a labelled dataset to evaluate)")
        return []
    ev = cfg.eval
    train_ds = build_dataset(cfg.data, "train", cfg.model.img_size, seed=cfg.seed, train=False)
    test_ds = build_dataset(cfg.data, "test", cfg.model.img_size, seed=cfg.seed, train=False)
    bs = 256
    was_training = method.training
    method.eval()

    def feats(encode) -> tuple:
        tr = extract_features(encode, _loader(train_ds, bs), device, ev.max_train_samples, cfg.train.progress)
        te = extract_features(encode, _loader(test_ds, bs), device, ev.max_test_samples, cfg.train.progress)
        return (*tr, *te)

    name = label or f"{cfg.train.method} ({ev.encoder} encoder)"
    sets = {name: feats(lambda x: method.encode(x, ev.encoder))}
    if ev.baselines:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + 1)
            rand = build_encoder(cfg).to(device).eval()
        sets["random-init encoder"] = feats(rand)
        tr = raw_pixels(train_ds, ev.max_train_samples)
        te = raw_pixels(test_ds, ev.max_test_samples)
        sets["raw pixels"] = (*tr, *te)
    rows = evaluate_features(sets, ev, cfg.seed, device=device)
    method.train(was_training)
    print(format_table(rows))
    if run_dir is not None:
        out = Path(run_dir) / out_name
        out.write_text(json.dumps({"dataset": cfg.data.name, "rows": rows}, indent=2))
        print(f"saved {out}")
    return rows


def load_run(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[Config, JEPAMethod, Path, int]:
    """A run directory or checkpoint file -> (config, method with weights loaded, run_dir, step)."""
    path = Path(path)
    if path.is_dir():
        found = ckpt.load_latest(path / "checkpoints", map_location)
        if found is None:
            raise FileNotFoundError(f"no readable checkpoint in {path / 'checkpoints'}")
        file, state = found
        run_dir = path
    elif path.is_file():
        file, state = path, ckpt.load_file(path, map_location)
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    else:
        raise FileNotFoundError(f"no run directory or checkpoint at {path}")
    if "config" not in state or "method" not in state:
        raise RuntimeError(f"{file} is not an openjepa checkpoint (keys: {', '.join(sorted(state))})")
    cfg = from_dict(state["config"])
    method = build_method(cfg, total_steps=1)
    ckpt.load_state_strict(method, state["method"], f"method built from {file}'s config")
    return cfg, method, run_dir, int(state.get("step", 0))


def evaluate_checkpoint(path: str | Path, overrides: Sequence[str] = (), device: str | None = None) -> list[dict]:
    """``openjepa eval``: load a run or checkpoint, apply eval overrides, print and save the table."""
    cfg, method, run_dir, step = load_run(path)
    cfg = load_config_overrides(cfg, overrides)
    dev = resolve_device(device or cfg.device)
    print(f"evaluating {path} (step {step}) on {cfg.data.name}")
    # A name of its own, so re-evaluating never overwrites the table written at the end of training.
    out_name = f"eval_step{step:08d}_{cfg.eval.encoder}.json"
    return evaluate_method(method.to(dev), cfg, dev, run_dir, out_name=out_name)
