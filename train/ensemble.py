"""Pool several training runs' image experts into one model: ``python -m train ensemble``.

Runs of one recipe that differ only in their seed share the keypoint experts and the decoder they were trained
over (the recipe's ``init_from`` and ``frozen``) and differ in their image encoders, which land in different
places on real photographs (docs/figures.md). The ensemble keeps the shared parts once and every run's image
encoder, pooled into one expert per image modality (:class:`streamhand.models.encoders.EnsembleEncoder`).
Its calibration and error model are fitted afresh (``calibrate-std``, ``fit-error-model``): the members' own
do not describe the pooled expert.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from streamhand.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from streamhand.models import HandPoseModel, build_model

__all__ = ["IMAGE_ENCODERS", "build_ensemble", "write_ensemble"]

IMAGE_ENCODERS = ("rgb", "depth")
#: members may store their shared weights in float16 (a shipped model) or float32 (a run's checkpoint)
_SHARED_RTOL = 2e-3


def _pooled(ck: Checkpoint) -> list[str]:
    return [m for m in ck.model.cfg.encoders if m in IMAGE_ENCODERS]


def _check_members(cks: list[Checkpoint], names: list[str]) -> list[str]:
    """The image modalities to pool; ValueError where the members cannot be pooled."""
    if len(cks) < 2:
        raise ValueError(f"an ensemble needs at least two checkpoints, got {len(cks)}")
    first = cks[0].model.cfg
    want = first.model_dump()
    for ck, name in zip(cks, names):
        cfg = ck.model.cfg
        if cfg.architecture != "poe":
            raise ValueError(f"{name}: a {cfg.architecture} model; ensembles are built for poe models")
        if cfg.image_ensemble > 1:
            raise ValueError(f"{name}: already an ensemble of {cfg.image_ensemble}; pool the runs themselves")
        diff = sorted(k for k, v in cfg.model_dump().items() if want[k] != v)
        if diff:
            raise ValueError(f"{name}: its model differs from {names[0]}'s in {', '.join(diff)}")
    ids = [ck.model_id for ck in cks]
    for i, mid in enumerate(ids):
        if mid in ids[:i]:
            raise ValueError(f"{names[i]}: the same weights as {names[ids.index(mid)]} ({mid}); pool different runs")
    seeds = [_seed(ck) for ck in cks]  # a run and its packaged copy (`card`, perhaps --half) differ in id, not seed
    for i, seed in enumerate(seeds):
        if seed is not None and seed in seeds[:i]:
            raise ValueError(f"{names[i]}: trained with seed {seed}, as {names[seeds.index(seed)]} was (the same run, "
                             "or one recipe run twice alike); pool runs of other seeds")  # fmt: skip
    pooled = _pooled(cks[0])
    if not pooled:
        raise ValueError(f"{names[0]}: no image encoder to pool (it has {', '.join(first.encoders)})")
    return pooled


def _seed(ck: Checkpoint) -> int | None:
    return (ck.meta.get("train_config") or {}).get("seed")


def _shared(sd: dict[str, torch.Tensor], pooled: list[str]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in sd.items() if not any(k.startswith(f"encoders.{m}.") for m in pooled)}


def build_ensemble(paths: list[str | Path]) -> tuple[HandPoseModel, dict[str, Any]]:
    """The pooled model and its checkpoint metadata (the first member's recipe and data, the members' ids; no
    calibration, error model or metrics). ValueError if the members do not share everything but their image
    encoders; :class:`streamhand.checkpoint.CheckpointError` for a checkpoint that does not load."""
    names = [str(p) for p in paths]
    cks = [load_checkpoint(p) for p in paths]
    pooled = _check_members(cks, names)
    sds = [ck.model.state_dict() for ck in cks]
    shared = _shared(sds[0], pooled)
    for sd, name in zip(sds[1:], names[1:]):
        for k, v in _shared(sd, pooled).items():
            if not torch.allclose(v.float(), shared[k].float(), rtol=_SHARED_RTOL, atol=1e-6):
                raise ValueError(
                    f"{name}: {k} differs from {names[0]}'s; an ensemble pools runs trained over the same keypoint "
                    "experts (one recipe's init_from and frozen parts, another seed)"
                )
    cfg = cks[0].model.cfg.model_copy(update={"image_ensemble": len(cks)})
    model = build_model(cfg)
    state = dict(shared)
    for i, sd in enumerate(sds):
        for m in pooled:
            prefix = f"encoders.{m}."
            state.update({f"{prefix}members.{i}.{k[len(prefix):]}": v for k, v in sd.items() if k.startswith(prefix)})
    model.load_state_dict(state)
    model.eval()
    first = cks[0].meta
    meta: dict[str, Any] = {k: first[k] for k in ("train_config", "data") if k in first}
    meta["ensemble"] = {
        "pooled": pooled,
        "members": [
            {"model_id": ck.model_id, "seed": _seed(ck), "step": ck.meta.get("step")}
            for ck in cks
        ],
    }
    return model, meta


def write_ensemble(paths: list[str | Path], out: str | Path) -> tuple[Path, dict[str, Any]]:
    """Build the ensemble of ``paths`` and save it at ``out``; returns the path and its ``ensemble`` record."""
    model, meta = build_ensemble(paths)
    return save_checkpoint(out, model, **meta), meta["ensemble"]
