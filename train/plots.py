"""Figures written by the training tools: matplotlib without a display, saved atomically enough for PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported here: training tools only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish_pck(ax: Any, xlim: tuple[float, float], title: str) -> None:
    """The axes, grid and legend every 3D PCK figure shares."""
    ax.set(xlabel="threshold (mm)", ylabel="share of joints within threshold", ylim=(0, 1), xlim=xlim, title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
