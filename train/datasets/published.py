"""Training and test hands of the published settings (RHD, STB, RHD+STB) for the 2D -> 3D path: RHD's
training / evaluation splits, STB's B2-B6 / B1 (Counting and Random each), loaded once per process."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from train.config import DataConfig
from train.datasets.real import HandSet, load_rhd, load_stb

STB_TRAIN = tuple(f"B{i}{kind}" for i in range(2, 7) for kind in ("Counting", "Random"))
STB_TEST = ("B1Counting", "B1Random")
_CACHE: dict[tuple, HandSet] = {}


def concat_hands(sets: list[HandSet], name: str) -> HandSet:
    return HandSet(np.concatenate([s.joints_cam for s in sets]), np.concatenate([s.joints_2d for s in sets]),
                   np.concatenate([s.left for s in sets]), name, np.concatenate([s.k for s in sets]))  # fmt: skip


def split_parts(cfg: DataConfig, split: str, rhd: Callable, stb: Callable) -> list:
    """The parts of ``cfg.kind``'s ``split`` ("train" or "test"), each read by ``rhd(root, "training" |
    "evaluation")`` or ``stb(root, sequences)``."""
    parts = []
    if "rhd" in cfg.kind:
        parts.append(rhd(cfg.rhd_root, "training" if split == "train" else "evaluation"))
    if "stb" in cfg.kind:
        parts.append(stb(cfg.stb_root, STB_TRAIN if split == "train" else STB_TEST))
    return parts


def published_hands(cfg: DataConfig, split: str) -> HandSet:
    """``split`` "train" or "test" of ``cfg.kind``; FileNotFoundError names the file that was expected."""
    key = (cfg.kind, cfg.rhd_root, cfg.stb_root, split)
    if key not in _CACHE:
        _CACHE[key] = concat_hands(split_parts(cfg, split, load_rhd, load_stb), cfg.kind)
    return _CACHE[key]


#: what each published dataset's folder must hold for training (its train and test splits' labels)
_NEEDED = {
    "rhd": ("rhd_root", "RHD v2", [f"{s}/anno_{s}.pickle" for s in ("training", "evaluation")]),
    "stb": ("stb_root", "STB", [f"labels/{seq}_SK.mat" for seq in (*STB_TRAIN, *STB_TEST)]),
}


def missing_data(cfg: DataConfig) -> str | None:
    """What of ``cfg.kind``'s published datasets is missing (the first file expected, by its path), naming the
    recipe's key that points at it (``data.rhd_root``, ``data.stb_root``); None where every split's labels are there
    (or the data is synthetic)."""
    from pathlib import Path

    for part in ("rhd", "stb"):
        if part not in cfg.kind:
            continue
        key, name, files = _NEEDED[part]
        root = Path(getattr(cfg, key))
        lacking = [root / f for f in files if not (root / f).is_file()]
        if lacking:
            more = f" (and {len(lacking) - 1} more of its files)" if len(lacking) > 1 else ""
            return f"data.{key}: {lacking[0]} not found{more}; set data.{key} to your copy of {name}"
    return None
