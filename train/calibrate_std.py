"""Fit the joint_std calibration of a trained checkpoint (:mod:`streamhand.uncertainty`) on held-out renders
labelled by the real MediaPipe, for each set of experts the run time may fuse, and store it in the checkpoint.

The 2D input is MediaPipe's own landmarks on the renders. The world input is, by default, simulated from the
truth at the level of MediaPipe's world landmarks on real photographs (:class:`train.config.WorldNoiseConfig`'s
defaults): MediaPipe's world landmarks on renders are about twice as wrong as on real hands, and a calibration
fitted on them says so for every real hand too."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from streamhand.checkpoint import load_checkpoint
from streamhand.infer.lifter import Lifter
from streamhand.infer.torch_backend import TorchBackend
from streamhand.skeleton import reference_length
from streamhand.synth.sampler import IntrinsicsBatch
from streamhand.uncertainty import fit_calibration, modality_key
from train.config import WorldNoiseConfig
from train.datasets.pairs import simulated_world

log = logging.getLogger(__name__)


def expert_sets(modalities: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The run-time fusions of a model's experts (every set ``--modalities`` can ask for): the 2D and world experts
    each alone and both; each image expert alone and with each of those."""
    have = [m for m in ("2d", "world") if m in modalities]
    keypoints = [(m,) for m in have] + ([tuple(have)] if len(have) > 1 else [])
    sets = list(keypoints)
    for m in ("rgb", "depth"):
        if m in modalities:
            sets += [(m,)] + [(*s, m) for s in keypoints]
    return sets


def spread_and_error(
    lifter: Lifter, pairs: dict[str, np.ndarray], mods: tuple[str, ...], batch: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 21) posterior spread, expert disagreement and actual joint error, in units of the hand's reference
    bone."""
    spread, error, dis = [], [], []
    for a in range(0, len(pairs["left"]), batch):
        s = slice(a, a + batch)
        truth = pairs["joints_cam"][s]
        ref = reference_length(truth)
        k = IntrinsicsBatch(0, 0, *(pairs[q][s] for q in ("fx", "fy", "cx", "cy")))
        images = {m: v[s] for m, v in pairs.get("images", {}).items()}
        z = pairs["landmarks_z"][s] if "landmarks_z" in pairs else None
        out = lifter(pairs["landmarks"][s], pairs["left"][s], k, scale=ref, images=images, world=pairs["world"][s],
                     modalities=mods, landmarks_z=z)  # fmt: skip
        err = np.linalg.norm(out.joints_rel - (truth - truth[:, :1]), axis=-1)
        spread.append(out.joint_std / ref[:, None])
        error.append(err / ref[:, None])
        dis.append(out.disagreement / ref[:, None])
    return np.concatenate(spread), np.concatenate(dis), np.concatenate(error)


def with_simulated_world(pairs: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """``pairs`` whose world landmarks are simulated from the truth at the level of MediaPipe's on real
    photographs (the default :class:`WorldNoiseConfig`), seeded. MediaPipe's own image landmarks' depth
    (``landmarks_z``) is left out: mixed into a simulated world, its level on renders would undo the simulation's."""
    rng = np.random.default_rng(seed)
    out = {k: v for k, v in pairs.items() if k != "landmarks_z"}
    return {**out, "world": simulated_world(rng, pairs["joints_cam"], WorldNoiseConfig()).astype(np.float32)}


def with_scaled_world(pairs: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """``pairs`` whose world landmarks are MediaPipe's own on each render with their error from the truth scaled down,
    one factor for the whole set, to the level of the simulation (MediaPipe's level on real photographs; the factor is
    the simulation's mean joint error over MediaPipe's own on these renders, about 0.5).

    The simulated landmarks err as much on every hand; MediaPipe's own err more on the hands it reads badly (blurred,
    covered, unlike a hand to its landmark network), which is what the error model has to learn. Scaled, each render
    keeps how hard MediaPipe found it, at the level MediaPipe reaches on photographs. Wrist-relative, as simulated.
    MediaPipe's image landmarks' relative depth (``landmarks_z``, where the renders have it) is scaled toward the
    truth's by the same factor, so that its two readings of depth stay at one level."""
    truth = pairs["joints_cam"] - pairs["joints_cam"][:, :1]
    own = pairs["world"] - pairs["world"][:, :1]
    simulated = with_simulated_world(pairs, seed)["world"]
    simulated = simulated - simulated[:, :1]  # as the lifter reads world landmarks: from the wrist
    level = float(np.linalg.norm(simulated - truth, axis=-1)[:, 1:].mean())
    factor = level / max(float(np.linalg.norm(own - truth, axis=-1)[:, 1:].mean()), 1e-9)
    log.info("world landmarks: MediaPipe's own, their error x %.2f (%.1f mm, the simulated level)", factor, 1e3 * level)
    out = {**pairs, "world": (truth + factor * (own - truth)).astype(np.float32)}
    if "landmarks_z" in pairs:  # pixels at the wrist's distance, in the scale of the image's width
        true_z = truth[..., 2] * (pairs["fx"][:, None] / pairs["joints_cam"][:, :1, 2])
        z = pairs["landmarks_z"] - pairs["landmarks_z"][:, :1]
        out["landmarks_z"] = (true_z + factor * (z - true_z)).astype(np.float32)
    return out


#: the world input a calibration or an error model is fitted with (``--world``)
WORLDS = {"simulated": with_simulated_world, "scaled": with_scaled_world, "mediapipe": lambda pairs, seed: pairs}


def pair_crops(pairs: dict[str, np.ndarray], modalities: list[str], size: int, seed: int = 0,
               view: str = "box") -> dict[str, np.ndarray]:  # fmt: skip
    """Crops of the labelled hands for the image experts, rendered as the runtime crops them around MediaPipe's
    landmarks (the pairs are 640 x 480 renders)."""
    from streamhand.synth.crops import render_crops

    k = IntrinsicsBatch(640, 480, *(pairs[q] for q in ("fx", "fy", "cx", "cy")))
    crops = render_crops(np.random.default_rng(seed), pairs["joints_cam"], pairs["landmarks"], pairs["left"], k,
                         640, 480, modalities, size, view=view)  # fmt: skip
    return {m: crops[m] for m in modalities}


def calibrate(checkpoint: str | Path, pairs: dict[str, np.ndarray], n_samples: int = 16) -> dict:
    """The calibration for every expert set of ``checkpoint``'s model (the checkpoint is not changed)."""
    ck = load_checkpoint(checkpoint)
    ck.meta.pop("std_calibration", None)  # fit on the raw spread
    backend = TorchBackend(ck, n_samples=n_samples, max_batch=256)
    backend.std_calibration = None
    lifter = Lifter(backend)
    image_mods = [m for m in ("rgb", "depth") if m in backend.modalities]
    if image_mods and "images" not in pairs:
        pairs = {**pairs, "images": pair_crops(pairs, image_mods, backend.image_size, view=backend.crop_view)}
    out = {}
    for mods in expert_sets(backend.modalities):
        spread, dis, error = spread_and_error(lifter, pairs, mods)
        out[modality_key(mods)] = fit_calibration(spread, error, dis if len(mods) > 1 else None)
        log.info("calibrated %s on %d hands", modality_key(mods), len(spread))
    return out


def write_meta(checkpoint: str | Path, **entries: object) -> Path:
    """Store ``entries`` in ``checkpoint``'s metadata (atomically), keeping everything else as it is: the weights
    (and their precision), the model's configuration and id."""
    load_checkpoint(checkpoint)  # a file that is not a checkpoint is not rewritten
    p = Path(checkpoint)
    raw = torch.load(p, map_location="cpu", weights_only=True)
    raw.update(entries)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(raw, tmp)
    os.replace(tmp, p)
    return p


def write_calibration(checkpoint: str | Path, calibration: dict, options: dict | None = None) -> Path:
    """Store ``calibration`` in ``checkpoint`` (atomically), keeping everything else; with ``options`` (those
    ``calibrate-std`` ran with) recorded beside it, for the model card's commands (an older record is dropped)."""
    return write_meta(checkpoint, std_calibration=calibration, std_calibration_options=options)
