"""Synthetic-data report: sampler and renderer speed, MediaPipe's detection rate on rendered hands, and
the closed loop (render -> real MediaPipe -> lift its 2D with a checkpoint -> compare with the renderer's 3D)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from streamhand.detect.crops import CROP_MARGIN, hand_crops
from streamhand.metrics import evaluate_poses
from streamhand.skeleton import reference_length
from streamhand.synth.render import render
from streamhand.synth.sampler import SamplerConfig, detection_test_config, sample_hands
from train.datasets.mediapipe_pairs import detect_rendered


@dataclass
class SynthReport:
    pose_samples_per_s: float = 0.0
    render_256_per_s: float = 0.0
    detection_n: int = 0
    detection_rate: float = 0.0
    detection_rate_palm: float = 0.0
    detection_rate_back: float = 0.0
    handedness_accuracy: float = 0.0
    landmark_error_px_median: float = 0.0
    closed_loop: dict = field(default_factory=dict)


def bench_sampler(n: int = 20000, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    sample_hands(rng, 256)  # warm-up
    t = time.perf_counter()
    sample_hands(rng, n)
    return n / (time.perf_counter() - t)


def bench_render(n: int = 100, size: int = 256, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    hs = sample_hands(rng, n, SamplerConfig(width=size, height=size))
    t = time.perf_counter()
    for i in range(n):
        render(rng, [hs.joints_cam[i]], hs.intrinsics[i], [hs.scale[i]], left=[bool(hs.left[i])])
    return n / (time.perf_counter() - t)


def detection_and_closed_loop(n: int = 200, seed: int = 2024, checkpoint: str | None = None, progress: bool = True):
    """Render ``n`` 640x480 frames of hands facing the camera, run MediaPipe, lift what it finds (with the
    model's image experts fed crops of the rendered frame, boxed around MediaPipe's landmarks as at run time)."""
    rng = np.random.default_rng(seed)
    hs = sample_hands(rng, n, detection_test_config())
    found = np.zeros(n, bool)
    hand_ok, lm_err, dets = 0, [], []
    lifter = None
    if checkpoint is not None:
        from streamhand.infer import Lifter, TorchBackend

        lifter = Lifter(TorchBackend(checkpoint))
    image_mods = tuple(m for m in ("rgb", "depth") if lifter is not None and m in lifter.backend.modalities)
    crops: dict[str, list[np.ndarray]] = {m: [] for m in image_mods}
    for i, d, r in detect_rendered(rng, hs, progress):
        if d is not None:
            found[i] = True
            hand_ok += d.handedness == ("left" if hs.left[i] else "right")
            lm_err.append(np.median(np.linalg.norm(d.landmarks_px - hs.joints_2d[i], axis=1)))
            dets.append((i, d))
            if image_mods:
                size = lifter.backend.image_size
                k = hs.intrinsics[i]
                cam = (k.fx, k.fy, k.cx, k.cy)
                got = hand_crops(r.rgb, r.depth / 1000.0, [d.landmarks_px], image_mods, size, CROP_MARGIN, cam,
                                 view=lifter.backend.crop_view)  # fmt: skip
                for m, v in got.items():
                    crops[m].append(v[0])
    palm = hs.rotation[:, 2, 2] < 0  # palm normal toward the camera
    rep = dict(
        detection_n=n,
        detection_rate=float(found.mean()),
        detection_rate_palm=float(found[palm].mean()) if palm.any() else float("nan"),
        detection_rate_back=float(found[~palm].mean()) if (~palm).any() else float("nan"),
        handedness_accuracy=hand_ok / max(len(dets), 1),
        landmark_error_px_median=float(np.median(lm_err)) if lm_err else float("nan"),
    )
    closed = {}
    if lifter is not None and dets:
        images = {m: np.stack(v) for m, v in crops.items()}
        idx = np.array([i for i, _ in dets])
        lm = np.stack([d.landmarks_px for _, d in dets])
        world = np.stack([d.world for _, d in dets])
        gt = hs.joints_cam[idx] - hs.joints_cam[idx, :1]
        gt_scale = reference_length(hs.joints_cam[idx])
        kb = hs.intrinsics.take(idx)
        mp_left = np.array([d.handedness == "left" for _, d in dets])
        for name, left in (("mediapipe_handedness", mp_left), ("true_handedness", hs.left[idx])):
            res = lifter(lm, left, kb, scale=gt_scale, images=images, world=world)
            m = evaluate_poses(res.joints_rel, gt, "root")
            closed[name] = {"epe_mean_mm": m.epe_mean_mm, "epe_median_mm": m.epe_median_mm,
                            "auc_20_50": m.auc_20_50, "n": m.n}  # fmt: skip
        from train.calibrate_std import expert_sets

        closed["experts"] = {}  # ablation: each expert alone and fused, MediaPipe's handedness
        for mods in expert_sets(lifter.backend.modalities):
            res = lifter(lm, mp_left, kb, scale=gt_scale, images=images, world=world, modalities=mods)
            m = evaluate_poses(res.joints_rel, gt, "root")
            closed["experts"]["+".join(mods)] = {"epe_mean_mm": m.epe_mean_mm, "epe_median_mm": m.epe_median_mm}
        res = lifter(hs.joints_2d[idx], hs.left[idx], kb, scale=gt_scale)
        m = evaluate_poses(res.joints_rel, gt, "root")
        closed["renderer_2d_reference"] = {"epe_mean_mm": m.epe_mean_mm, "epe_median_mm": m.epe_median_mm, "n": m.n}
    return rep, closed


def synth_report(n: int = 200, checkpoint: str | None = None, progress: bool = True) -> SynthReport:
    rep = SynthReport(pose_samples_per_s=bench_sampler(), render_256_per_s=bench_render())
    det, closed = detection_and_closed_loop(n, checkpoint=checkpoint, progress=progress)
    for k, v in det.items():
        setattr(rep, k, v)
    rep.closed_loop = closed
    return rep


def as_dict(rep: SynthReport) -> dict:
    return asdict(rep)
