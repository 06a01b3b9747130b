"""Pictures of planned episodes: the path each agent took over the rendered room, start to goal.

Drawn on a ``matplotlib.figure.Figure`` with its own Agg canvas, not through pyplot: headless,
and the caller's pyplot backend, rcParams and open figures are left alone (nothing is set on import).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from torch import Tensor

from openjepa.envs import Env


def plot_trajectories(env: Env, positions: Tensor, starts: Tensor, goals: Tensor, success: Tensor, steps: Tensor,
                      title: str = "", max_episodes: int = 16) -> bytes:
    """PNG of up to ``max_episodes`` episodes, one panel each: the rendered start frame underneath,
    the path (positions (E, T+1, 2), green = reached the goal, red = not), start ○, goal ★ and its radius."""
    n = min(max_episodes, positions.shape[0])
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2.4 * cols, 2.4 * rows + (0.4 if title else 0)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    frames = env.render(starts[:n]).permute(0, 2, 3, 1).cpu().numpy()  # (n, H, W, 3)
    s, g = env.position(starts[:n]).cpu().numpy(), env.position(goals[:n]).cpu().numpy()
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(frames[i], extent=(0, env.size, env.size, 0), alpha=0.6)
        path = positions[i, : int(steps[i]) + 1].cpu().numpy()
        ok = bool(success[i])
        ax.plot(path[:, 0], path[:, 1], "-", color="#2ca02c" if ok else "#d62728", lw=1.5)
        ax.plot(*s[i], "o", color="white", mec="black", ms=6)
        ax.plot(*g[i], "*", color="#ffd700", mec="black", ms=11)
        ax.add_patch(Circle(tuple(g[i]), env.goal_radius, fill=False, color="#ffd700", lw=1))
        ax.set_xlim(0, env.size)
        ax.set_ylim(env.size, 0)
        ax.set_title(f"{'reached' if ok else 'missed'} in {int(steps[i])} steps", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def save_png(png: bytes, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


__all__ = ["plot_trajectories", "save_png"]
