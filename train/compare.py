"""The seed models side by side (``python -m train compare``): the cross-modal VAE (Spurr et al.), Yang et al.'s
strategies S1-S4 and DCMLS (Gu et al.), each trained at the same small budget on the same synthetic renders, from
the RGB crop, then measured on one synthetic test set (RGB alone; RGB + the depth crop's point cloud where the
model takes it), on your real frames with 3D truth (``--frames``, the runtime's path: MediaPipe's 2D for the crop,
the model's 3D, placement) and, for users who have them, RHD / STB (``--rhd-root`` / ``--stb-root``), with the
papers' RHD and STB figures beside."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from train.config import DataConfig, TrainConfig

log = logging.getLogger(__name__)

_IMAGE_TARGETS = ["3d", "cloud", "heatmap"]
#: name -> (model options, loss options, the paper's RHD / STB RGB -> 3D mean EPE in mm)
SEED_MODELS: dict[str, tuple[dict, dict, dict[str, float]]] = {
    "cross-modal VAE": ({"encoders": ["rgb", "2d", "3d"], "decoders": ["3d", "2d"]}, {"objective": "cross"},
                        {"rhd": 19.73, "stb": 8.56}),
    "S1": ({"encoders": ["rgb"], "decoders": ["3d"]}, {"objective": "cross"}, {"rhd": 16.61}),
    "S2": ({"encoders": ["rgb"], "decoders": _IMAGE_TARGETS}, {"objective": "cross"}, {"rhd": 15.49}),
    "S3": ({"encoders": ["rgb", "rgb+cloud"], "decoders": _IMAGE_TARGETS}, {"objective": "align"}, {"rhd": 14.93}),
    "S4": ({"encoders": ["rgb", "cloud"], "decoders": _IMAGE_TARGETS}, {"objective": "poe", "fused_kl": False},
           {"rhd": 13.14, "stb": 7.05}),
    "DCMLS": ({"architecture": "dcmls", "encoders": ["rgb", "3d"], "decoders": ["3d"], "z_dim": 30},
              {"objective": "cross"}, {"rhd": 17.11, "stb": 7.27}),
}  # fmt: skip


@dataclass
class Row:
    name: str
    checkpoint: str
    synthetic_rgb: dict
    synthetic_fused: dict | None = None
    real_rel_mm: float | None = None
    published: dict = field(default_factory=dict)  # dataset -> our EPE there
    paper: dict = field(default_factory=dict)


def recipe(
    name: str, steps: int, out_dir: str, image_size: int = 32, batch_size: int = 32, seed: int = 0, workers: int = 0
) -> TrainConfig:
    """The small-budget recipe of one seed model (all share the data, sizes and schedule; ``workers`` render
    batches ahead of the training loop and change nothing but the speed)."""
    model, loss, _ = SEED_MODELS[name]
    return TrainConfig(
        name=name.replace(" ", "_").lower(), seed=seed, steps=steps, batch_size=batch_size, lr=1e-3, workers=workers,
        lr_schedule="cosine", eval_every=steps, eval_n=100, checkpoint_every=steps, out_dir=out_dir,
        model={"z_dim": 64, "hidden": 256, "image_size": image_size, "image_encoder": "compact", **model},
        data={"chunk": 256}, loss={"beta": 1e-3, "warmup_steps": max(1, steps // 4), "recon_3d": "euclidean", **loss},
    )  # fmt: skip


def _measure(metrics) -> dict:
    return {"epe_mean_mm": metrics.epe_mean_mm, "auc_20_50": metrics.auc_20_50}


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`compare`: ``rows`` of the models measured before ``at``, the one stopped."""

    def __init__(self, rows: list[Row], at: str):
        super().__init__(at)
        self.rows, self.at = rows, at


def compare(steps: int, out_dir: str | Path, names: list[str] | None = None, image_size: int = 32,
            batch_size: int = 32, n_test: int = 300, frames: str | Path | None = None,
            published_roots: dict[str, str] | None = None, progress: bool = True,
            workers: int = 0) -> list[Row]:  # fmt: skip
    """Train each of ``names`` (default: all the seed models) and measure it. Ctrl-C stops the model in training;
    :class:`Interrupted` then carries the rows of the models finished before it."""
    from streamhand.checkpoint import load_checkpoint
    from train.evaluate import evaluate_fused
    from train.fit import fit

    rows = []
    for name in names or list(SEED_MODELS):
        if name not in SEED_MODELS:
            raise ValueError(f"no seed model {name!r}; choose from {', '.join(SEED_MODELS)}")
        cfg = recipe(name, steps, str(out_dir), image_size, batch_size, workers=workers)
        log.info("training %s (%d steps)", name, steps)
        try:
            path = fit(cfg, progress=progress, overwrite=True)  # trained afresh: nothing of a kept one stays
        except KeyboardInterrupt:
            raise Interrupted(rows, name) from None
        model = load_checkpoint(path).model
        rgb = evaluate_fused(model, DataConfig(), n=n_test, seed=1234, modalities=("rgb",))
        row = Row(name, str(path), _measure(rgb), paper=SEED_MODELS[name][2])
        if "cloud" in model.modalities:
            row.synthetic_fused = _measure(evaluate_fused(model, DataConfig(), n=n_test, seed=1234,
                                                          modalities=("rgb", "cloud")))  # fmt: skip
        if frames is not None:
            row.real_rel_mm = _real(path, frames)
        for kind, root in (published_roots or {}).items():
            data = DataConfig(kind=kind, **{f"{kind}_root": root})
            row.published[kind] = evaluate_fused(model, data, n=n_test, seed=1234, modalities=("rgb",)).epe_mean_mm
        rows.append(row)
    return rows


def _real(path: str | Path, frames: str | Path) -> float | None:
    """Wrist-relative EPE (mm) on a folder of real frames with 3D truth, RGB crop around MediaPipe's 2D."""
    from streamhand.infer import Lifter, TorchBackend
    from train.datasets.frames import load_frames
    from train.evaluate import evaluate_frames

    res = evaluate_frames(load_frames(frames), Lifter(TorchBackend(path)), "mediapipe", ("rgb",))
    rel = res["systems"]["streamhand"]["rel"]
    return None if rel is None else float(rel["mean"])


def table_lines(rows: list[Row]) -> list[str]:
    """One table: EPE / AUC on the synthetic test set (RGB alone, and fused with the point cloud), the real
    frames, the published datasets you gave, and the papers' RHD / STB figures."""
    kinds = sorted({k for r in rows for k in r.published})
    head = ["model", "synth RGB EPE", "AUC 20-50", "synth RGB+cloud", "real rel", *[f"{k} (ours)" for k in kinds],
            "paper RHD", "paper STB"]  # fmt: skip

    def mm(v: float | None) -> str:
        return "-" if v is None or not np.isfinite(v) else f"{v:.2f}"

    body = [[r.name, mm(r.synthetic_rgb["epe_mean_mm"]), f"{r.synthetic_rgb['auc_20_50']:.3f}",
             mm(r.synthetic_fused["epe_mean_mm"]) if r.synthetic_fused else "-", mm(r.real_rel_mm),
             *[mm(r.published.get(k)) for k in kinds], mm(r.paper.get("rhd")), mm(r.paper.get("stb"))]
            for r in rows]  # fmt: skip
    w = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    return ["  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(x)) for x in [head, *body]]
