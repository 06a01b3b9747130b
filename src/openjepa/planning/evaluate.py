"""Evaluate a world model: plan to goals with it (beside random-action and true-simulator planners)
and probe its latent for the agent's position. ``openjepa plan`` and the end of a world-model run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import torch

from openjepa.config.load import load_config_overrides
from openjepa.errors import ConfigError
from openjepa.config.schema import Config, PlanConfig
from openjepa.engine.precision import resolve_device
from openjepa.engine.runs import load_run
from openjepa.eval.registry import register_evaluation
from openjepa.methods.acjepa import ACJEPA, build_acjepa
from openjepa.planning.cem import CEM
from openjepa.envs import Env, make_env
from openjepa.planning.held import HeldActions
from openjepa.planning.mpc import MPCResult, OracleModel, RandomPlanner, run_mpc
from openjepa.planning.mppi import MPPI
from openjepa.planning.viz import plot_trajectories, save_png
from openjepa.planning.world import LatentWorldModel

def build_planner(p: PlanConfig, env: Env, frameskip: int, name: str | None = None) -> Any:
    """The planner ``name`` (default ``plan.planner``) over action blocks of ``frameskip`` env actions."""
    name = name or p.planner
    k = 1 if p.hold else frameskip  # env actions the planner searches per model step
    common = dict(horizon=p.horizon, action_dim=env.action_dim * k, bound=env.max_action, bound_kind="norm",
                  group=k, seed=p.seed)
    if name == "cem":
        planner: Any = CEM(samples=p.samples, iterations=p.iterations, elite_frac=p.elite_frac, **common)
    elif name == "mppi":
        planner = MPPI(samples=p.samples, iterations=p.iterations, temperature=p.temperature, **common)
    elif name == "random":
        planner = RandomPlanner(**common)
    else:
        raise ConfigError(f"unknown planner {name!r}; choose one of: cem, mppi, random")
    return HeldActions(planner, frameskip) if p.hold else planner


def world_env(cfg: Config, name: str | None = None) -> Env:
    """The run's environment (``world.env`` with the collected data's settings); ``name``, when given, must be it."""
    if name and name != cfg.world.env:
        raise ConfigError(f"--env {name}: this world model was trained on {cfg.world.env!r} trajectories and "
                          f"knows nothing of {name!r}; train one on `openjepa collect {name}` data")
    if not cfg.world.env:
        raise ConfigError("the run names no environment (world.env): it was not trained on `openjepa collect` data")
    return make_env(cfg.world.env, **dict(cfg.world.env_kwargs))


def plan_episodes(model: Any, env: Env, cfg: Config, episodes: int, planner: str | None = None,
                  progress: bool = True) -> MPCResult:
    p = cfg.plan
    return run_mpc(env, model, build_planner(p, env, model.frameskip, planner), episodes, max_steps=p.max_steps,
                   replan_every=p.replan_every, energy=p.energy, seed=p.seed, batch=p.batch or None,
                   progress=progress)


def result_row(name: str, model: str, result: MPCResult) -> dict[str, Any]:
    s = result.summary()
    steps = None if math.isnan(s["mean_steps"]) else s["mean_steps"]  # no episode reached its goal
    return {"planner": name, "model": model, "success": s["success_rate"], "mean_steps": steps,
            "s_per_step": s["seconds_per_step"], "s_per_episode": s["seconds_per_episode"], "episodes": result.episodes}


def plan_world_model(method: ACJEPA, cfg: Config, device: torch.device, out_dir: Path, episodes: int,
                     env_name: str | None = None, baselines: bool = True, progress: bool = True) -> list[dict[str, Any]]:
    """Plan ``episodes`` episodes with the world model (and the baselines); write results.json and the picture."""
    env = world_env(cfg, env_name)
    frameskip = cfg.data.frameskip
    model = LatentWorldModel(method.to(device), frameskip, device)
    runs: list[tuple[str, str, Any, str | None]] = [(cfg.plan.planner, "world model", model, None)]
    if baselines:
        runs += [("random", "none", OracleModel(env, frameskip), "random"),
                 (cfg.plan.planner, "true simulator (oracle)", OracleModel(env, frameskip), None)]
    rows, results = [], {}
    for name, label, m, planner in runs:
        result = plan_episodes(m, env, cfg, episodes, planner, progress)
        rows.append(result_row(name, label, result))
        results[label] = result
    out_dir.mkdir(parents=True, exist_ok=True)
    wm = results["world model"]
    png = plot_trajectories(env, wm.positions, wm.starts, wm.goals, wm.success, wm.steps,
                            title=f"{env.name}: {cfg.plan.planner.upper()} with the world model, "
                                  f"{100 * rows[0]['success']:.0f}% of {episodes} episodes reached the goal")
    save_png(png, out_dir / "trajectories.png")
    (out_dir / "results.json").write_text(json.dumps({"env": env.name, "rows": rows, "plan": dict(vars(cfg.plan))}, indent=2))
    return rows


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    head = f"{'planner':8} {'model':26} {'success':>8} {'steps':>7} {'s/step':>8} {'s/episode':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        steps = "-" if r["mean_steps"] is None else f"{r['mean_steps']:.1f}"
        lines.append(f"{r['planner']:8} {r['model']:26} {100 * r['success']:7.1f}% {steps:>7} "
                     f"{r['s_per_step']:8.4f} {r['s_per_episode']:10.3f}")
    return "\n".join(lines)


def probe_positions(method: ACJEPA, cfg: Config, device: torch.device) -> list[dict[str, Any]]:
    """The position probe on the run's trajectories: train episodes fit it, held-out episodes score it;
    rows for the world model's latent, its encoder's pooled tokens, and a random-init world model."""
    from openjepa.data.trajectories import trajectory_root
    from openjepa.data.trajectories import TrajectoryDataset
    from openjepa.eval.position import position_probe

    frames = {split: _frames(TrajectoryDataset(trajectory_root(cfg.data), 1, 1, split=split, val_fraction=cfg.data.val_fraction,
                                                seed=cfg.seed), cfg.world.probe_frames, cfg.seed)
              for split in ("train", "val")}
    env = world_env(cfg)
    data = {k: (obs, env.position(states)) for k, (obs, states) in frames.items()}
    fresh = build_acjepa(cfg, 1).to(device).eval()
    rows = []
    for name, fn in (("world-model latent", method.embed),
                     ("encoder tokens (mean)", lambda x: method.encoder(x).mean(dim=1)),
                     ("random-init latent", fresh.embed)):
        scores = position_probe(fn, data["train"], data["val"], device)  # embeds under no_grad
        rows.append({"features": name, **scores, "n_train": len(data["train"][0]), "n_test": len(data["val"][0])})
    return rows


def _frames(ds: Any, limit: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``limit`` single frames of ``ds`` (seeded choice): obs (M, C, H, W), states (M, S)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[:limit].tolist()
    items = [ds[i] for i in idx]
    return torch.stack([it["obs"][0] for it in items]), torch.stack([it["states"][0] for it in items])


@register_evaluation("world_model")
def evaluate_world_model(method: ACJEPA, cfg: Config, device: torch.device, run_dir: Any, step: int) -> dict[str, Any]:
    """End of a world-model run: the position probe and ``plan.episodes_at_end`` episodes; world_eval.json."""
    method.eval()
    out: dict[str, Any] = {"step": step, "position_probe": probe_positions(method, cfg, device)}
    for r in out["position_probe"]:
        print(f"position probe  {r['features']:24} R² {r['r2']:.3f}  RMSE {r['rmse']:.2f}")
    if cfg.plan.episodes_at_end > 0 and run_dir is not None:
        rows = plan_world_model(method, cfg, device, Path(run_dir) / "plan", cfg.plan.episodes_at_end,
                                progress=cfg.train.progress)
        print(format_rows(rows))
        out["planning"] = rows
    if run_dir is not None:
        (Path(run_dir) / "world_eval.json").write_text(json.dumps(out, indent=2))
    return out


def plan_checkpoint(path: str | Path, overrides: Sequence[str] = (), env: str | None = None,
                    episodes: int | None = None, device: str | None = None, baselines: bool = True,
                    out: str | Path | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """``openjepa plan``: load a world-model run or checkpoint, plan, print and save the table and picture."""
    cfg, method, run_dir, step = load_run(path)
    if not isinstance(method, ACJEPA):
        raise ConfigError(f"{path} holds a {cfg.train.method!r} run; planning needs a world model "
                          "(train.method=acjepa)")
    cfg = load_config_overrides(cfg, overrides)
    dev = resolve_device(device or cfg.device)
    n = episodes or cfg.plan.episodes
    out_dir = Path(out) if out is not None else Path(run_dir) / "plan"
    print(f"planning {n} episodes of {env or cfg.world.env} with {path} (step {step}), {cfg.plan.planner}, "
          f"horizon {cfg.plan.horizon} x {cfg.data.frameskip} env steps")
    rows = plan_world_model(method, cfg, dev, out_dir, n, env, baselines, progress)
    print(format_rows(rows))
    print(f"saved {out_dir / 'results.json'} and {out_dir / 'trajectories.png'}")
    return rows


__all__ = ["build_planner", "evaluate_world_model", "format_rows", "plan_checkpoint", "plan_world_model",
           "probe_positions"]
