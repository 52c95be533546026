"""Checkpoint format: a ``.pt`` dict of plain types and tensors, read with ``weights_only=True``.

Keys: ``format_version``, ``model_config``, ``state_dict``, ``skeleton`` (layout, root, 3D, 2D and
world-landmark normalisation), ``train_config``, ``metrics``, ``code_version``, ``created``, optional ``optimizer``
and ``step`` for resuming.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from streamhand.codec import WORLD_NORM
from streamhand.model_files import (
    DEFAULT_WEIGHTS,
    FORMAT_VERSION,
    SKELETON_INFO,
    WEIGHTS_DIR,
    CheckpointError,
    resolve_model,
    shipped_models,
)
from streamhand.models import HandPoseModel, ModelConfig, build_model
from streamhand.version import __version__

__all__ = ["DEFAULT_WEIGHTS", "FORMAT_VERSION", "SKELETON_INFO", "WEIGHTS_DIR", "Checkpoint", "CheckpointError",
           "load_checkpoint", "resolve_model", "save_checkpoint", "shipped_models"]


@dataclass
class Checkpoint:
    model: HandPoseModel
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def model_id(self) -> str:
        return str(self.meta.get("model_id", "unknown"))


def save_checkpoint(path: str | Path, model: HandPoseModel, **meta: Any) -> Path:
    """Write atomically (temporary file, then rename) so an interrupted save never corrupts ``path``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "model_config": model.cfg.model_dump(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "skeleton": {**SKELETON_INFO, "world": WORLD_NORM},
        "code_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **meta,
    }
    buf = io.BytesIO()
    torch.save(payload["state_dict"], buf)
    payload.setdefault("model_id", "sh-" + hashlib.sha256(buf.getvalue()).hexdigest()[:12])
    tmp = p.with_name(p.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, p)
    return p


def _written_by(data: dict) -> str:
    """`` (written by streamhand X)`` where the checkpoint says which version wrote it."""
    v = data.get("code_version")
    return f" (written by streamhand {v})" if isinstance(v, str) and v else ""


def load_checkpoint(path: str | Path | None = None, map_location: str = "cpu") -> Checkpoint:
    """Load a checkpoint — a path, or a shipped model's name (default: ``default``) — and rebuild its
    :class:`HandPoseModel` in eval mode."""
    p = resolve_model(path)
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"{p}: cannot read it ({e.strerror or type(e).__name__})") from None
    if head[:2] != b"PK":  # torch.save writes a zip archive
        raise CheckpointError(f"{p}: not a checkpoint (a checkpoint is the zip archive torch.save writes; this file "
                              f"starts with {head!r})")  # fmt: skip
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for bad files
        raise CheckpointError(f"{p}: not a readable streamhand checkpoint ({type(e).__name__})") from None
    if not isinstance(data, dict) or "state_dict" not in data or "model_config" not in data:
        raise CheckpointError(f"{p}: not a streamhand checkpoint (missing state_dict/model_config)")
    by = _written_by(data)
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{p}: checkpoint format {data.get('format_version')!r}{by}, and this streamhand "
                              f"({__version__}) reads format {FORMAT_VERSION}: use the streamhand that wrote it, or "
                              "retrain with this one")  # fmt: skip
    skel = data.get("skeleton", {})
    if any(skel.get(k) != v for k, v in SKELETON_INFO.items()):
        raise CheckpointError(f"{p}: skeleton conventions {skel} differ from this streamhand's")
    try:
        mcfg = ModelConfig.model_validate(data["model_config"])
    except ValidationError as e:  # settings another version has (or lacks): named, not pydantic's dump
        what = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'model_config'}: {err['msg']}" for err in e.errors()[:3])
        raise CheckpointError(f"{p}: model settings this streamhand ({__version__}) does not read{by}: {what}") from (
            None)  # fmt: skip
    if "world" in mcfg.encoders and skel.get("world") != WORLD_NORM:
        raise CheckpointError(f"{p}: world-landmark normalisation {skel.get('world')!r} differs from {WORLD_NORM!r}")
    model = build_model(mcfg)
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as e:  # weights of another network: missing, unexpected or differently shaped tensors
        lines = str(e).splitlines()
        first = (lines[1] if len(lines) > 1 else str(e)).strip()[:200]
        raise CheckpointError(f"{p}: its weights do not fit the network its settings describe{by} ({first})") from None
    model.eval()
    meta = {k: v for k, v in data.items() if k not in ("state_dict", "optimizer")}
    return Checkpoint(model, meta, p)
