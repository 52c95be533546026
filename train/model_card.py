"""Package a trained checkpoint as a shipped model: weights without optimizer state, plus a JSON model
card (config, seed, data, metrics, code version)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import torch

from streamhand.checkpoint import load_checkpoint, save_checkpoint

CARD_KEYS = ("model_id", "format_version", "model_config", "skeleton", "train_config", "code_version", "created")


def git_commit() -> str:
    """The checkout's short commit (``unknown`` outside one)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


#: the published recipes (``python -m train fit --config configs/train/<file>``)
RECIPES = Path(__file__).resolve().parents[1] / "configs" / "train"


#: what ``fit`` overrides from the command line
_FLAGS = {"steps": "--steps", "seed": "--seed", "out_dir": "--out-dir"}


def _differs(mine: object, published: object) -> bool:
    """Whether ``mine`` (a card's recipe, or part of it) says something ``published`` does not: maps compared on
    ``mine``'s own keys (a card may record a part of its recipe), everything else by value."""
    if isinstance(mine, dict) and isinstance(published, dict):
        return any(k not in published or _differs(v, published[k]) for k, v in mine.items())
    return mine != published


def recipe_file(train_config: dict) -> tuple[str, list[str]] | None:
    """The published recipe a card's ``train_config`` was trained with, as the path ``fit`` is given from the
    repository, and the flags that turn it into that run (``--steps``, ``--seed``, ``--out-dir``); None where none
    is (a recipe of one's own, or a published one changed: the card's ``train_config`` is the recipe)."""
    import yaml

    from train.config import MACHINE_FIELDS, TrainConfig

    name = train_config.get("name")
    for p in sorted(RECIPES.glob("*.yaml")):
        try:
            published = TrainConfig.model_validate(yaml.safe_load(p.read_text()) or {}).model_dump(mode="json")
        except (yaml.YAMLError, OSError, ValueError):
            continue
        if published.get("name") != name:
            continue
        moved = [k for k, v in train_config.items() if k not in MACHINE_FIELDS and _differs(v, published.get(k))]
        if set(moved) <= set(_FLAGS):
            return f"configs/train/{p.name}", [f"{_FLAGS[k]} {train_config[k]}" for k in moved]
        return None
    return None


#: where ``calibrate-std`` and ``fit-error-model`` record the options they ran with, beside what they store
OPTIONS_KEYS = {"std_calibration": "std_calibration_options", "error_model": "error_model_options"}

#: the commands that fit what a checkpoint stores after training, in the order the card lists them
_AFTER_TRAINING = (("std_calibration", "calibrate-std"), ("error_model", "fit-error-model"))


def _command_after(command: str, checkpoint: str, options: dict | None) -> str:
    """``python -m train COMMAND --checkpoint CHECKPOINT`` with the options it ran with (``options``, as the command
    recorded them: ``--flag value``, a switch by its name where on); None: not recorded (a checkpoint from before
    the record), said beside the command, whose defaults may not be what was run."""
    line = f"python -m train {command} --checkpoint {checkpoint}"
    if options is None:
        return line + "  # options not recorded (the defaults shown may not be what was run)"
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            line += f" {flag}" if value else ""
        else:
            line += f" {flag} {value}"
    return line


def reproduce(train_config: dict | None, ensemble: dict | None = None, meta: dict | None = None) -> list[str]:
    """The commands that remake a model from its recipe (for an ensemble: one run per member's seed, pooled): its
    labelled renders as the recipe makes them, its published recipe by name (or ``RECIPE.yaml``, the card's own
    ``train_config`` written out), the checkpoint where the recipe's ``out_dir`` keeps it, and the fits stored in
    the checkpoint after training (``meta``: the checkpoint's entries; ``calibrate-std``, ``fit-error-model``, each
    with the options it recorded) — only those the checkpoint holds."""
    from train.datasets.mediapipe_pairs import shards_of

    tc = train_config or {}
    name, data = tc.get("name", "default"), tc.get("data") or {}
    found = recipe_file(tc)
    steps = [] if found else ["# RECIPE.yaml: this card's train_config, written out as YAML"]
    recipe, flags = found if found else ("RECIPE.yaml", [])
    if data.get("mediapipe_pairs") and data.get("dataset", "renders") != "frames":
        cache = data.get("mediapipe_cache", "runs/cache")
        shards = shards_of(int(data["mediapipe_pairs"]), int(data.get("mediapipe_seed", 4242)),
                           int(data.get("mediapipe_shards", 1)))  # fmt: skip
        steps += [f"python -m train mediapipe-pairs --n {k} --seed {seed}"
                  + ("" if cache == "runs/cache" else f" --cache {cache}")
                  + ("  # the shards in parallel" if len(shards) > 1 else "") for k, seed in shards]  # fmt: skip
    if not ensemble:
        steps.append(" ".join(["python -m train fit --config", recipe, *flags]))
        last = f"{tc.get('out_dir', 'runs')}/{name}/last.pt"
    else:
        seeds = [m.get("seed") for m in ensemble.get("members", [])]
        kept = [f for f in flags if f.startswith("--steps")]  # each member's seed and folder are its own
        steps += [" ".join(["python -m train fit --config", recipe, *kept, f"--seed {s} --out-dir runs/{name}_s{s}"])
                  for s in seeds]  # fmt: skip
        last = f"runs/{name}/ensemble.pt"
        steps.append(f"python -m train ensemble {' '.join(f'runs/{name}_s{s}/{name}/last.pt' for s in seeds)} "
                     f"--out {last}")  # fmt: skip
    meta = meta or {}
    steps += [_command_after(command, last, meta.get(OPTIONS_KEYS[key]))
              for key, command in _AFTER_TRAINING if meta.get(key)]  # fmt: skip
    return steps


def package(
    checkpoint: str | Path, out: str | Path, metrics: dict, summary: str, half: bool = False
) -> tuple[Path, Path]:
    """Write ``out`` (.pt, weights only; in float16 with ``half``, loaded back as float32) and ``out`` with
    .json (the model card)."""
    ck = load_checkpoint(checkpoint)
    raw = torch.load(ck.path or checkpoint, map_location="cpu", weights_only=True)  # a shipped model's name: its file
    kept = ("train_config", "data", "history", "step", "std_calibration", "error_model", "ensemble",
            *OPTIONS_KEYS.values())  # fmt: skip
    keep = {k: raw[k] for k in kept if k in raw}
    model = ck.model.half() if half else ck.model
    pt = save_checkpoint(out, model, metrics=metrics, source_commit=git_commit(), weights="float16" if half
                         else "float32", **keep)  # fmt: skip
    final = load_checkpoint(pt)
    card = {k: final.meta.get(k) for k in CARD_KEYS}
    card.update({
        "summary": summary, "seed": (keep.get("train_config") or {}).get("seed"), "data": keep.get("data"),
        "steps": keep.get("step"), "metrics": metrics, "source_commit": final.meta.get("source_commit"),
        "size_bytes": Path(pt).stat().st_size,
        "weights": final.meta.get("weights", "float32"),
        "reproduce": reproduce(keep.get("train_config"), keep.get("ensemble"), keep),
    })  # fmt: skip
    if keep.get("ensemble"):
        card["ensemble"] = keep["ensemble"]
    jp = Path(out).with_suffix(".json")
    jp.write_text(json.dumps(card, indent=1, default=str))
    return Path(pt), jp
