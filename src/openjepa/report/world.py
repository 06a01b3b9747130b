"""The report's world-model section: planned trajectories, the planning table, the position probe."""

from __future__ import annotations

from pathlib import Path

from openjepa.report.html import Section, esc, image, note, table
from openjepa.report.runfiles import RunFileError, read_json

PLAN_COLUMNS = (("planner", "planner"), ("model", "model"), ("success", "success"), ("mean_steps", "mean steps"),
                ("s_per_step", "s / planning step"), ("s_per_episode", "s / episode"), ("episodes", "episodes"))
PROBE_COLUMNS = (("features", "features"), ("r2", "R²"), ("rmse", "RMSE (env units)"), ("n_train", "train frames"),
                 ("n_test", "test frames"))


def world_section(run_dir: Path) -> Section:
    """``plan/trajectories.png`` and ``plan/results.json`` (``openjepa plan`` or the end of training), and the
    position probe of ``world_eval.json``; each part missing says so."""
    title, parts = "World model: planning and position probe", []
    png = run_dir / "plan" / "trajectories.png"
    try:
        results = read_json(run_dir / "plan" / "results.json")
        probe = read_json(run_dir / "world_eval.json")
    except RunFileError as e:
        return Section("world", title, note(str(e)))
    if results:
        parts.append(f"<p>Model-predictive control in <code>{esc(results.get('env', '?'))}</code>: the same planner "
                     "with the world model, with random actions, and with the true simulator (the oracle).</p>")
        parts.append(table(PLAN_COLUMNS, results.get("rows", []), percent=("success",)))
    else:
        parts.append(note("No plan/results.json: run `openjepa plan RUN` (or set plan.episodes_at_end > 0)."))
    if png.is_file():
        parts.append(image(png.read_bytes(), "planned trajectories over the rendered environment"))
    if probe and probe.get("position_probe"):
        parts.append("<p>Linear (ridge) probe from frame embeddings to the agent's position, fitted on training "
                     "episodes and scored on held-out ones:</p>")
        parts.append(table(PROBE_COLUMNS, probe["position_probe"]))
    else:
        parts.append(note("No position probe (world_eval.json): it is written when a world-model run ends."))
    return Section("world", title, "\n".join(parts))


__all__ = ["world_section"]
