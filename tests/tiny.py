"""Tiny settings that train in seconds on a CPU (shared by the end-to-end tests)."""

TINY = [
    "data.name=shapes", "data.train_size=192", "data.test_size=96", "data.batch_size=32",
    "model.encoder=vit_pico", "model.img_size=16", "model.patch_size=4",
    "model.predictor_embed_dim=32", "model.predictor_depth=1", "model.predictor_heads=2",
    "mask.min_keep=2", "optim.warmup_steps=2", "train.progress=false", "train.log_every=1",
    "eval.probe_epochs=5", "eval.baselines=false", "eval.report=false",
]


def tiny(run_dir, *extra):
    return [f"run_dir={run_dir}", *TINY, *extra]
