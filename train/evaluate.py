"""Evaluation of the 2D -> 3D path on a held-out synthetic set (ground-truth scale, wrist root), on public
datasets' ground-truth 2D, and of the whole runtime path (detector, lifter, placement) on a folder of real
frames with 3D truth (:mod:`train.datasets.frames`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamhand.codec import decode_3d, encode_2d
from streamhand.detect.crops import CROP_MARGIN, hand_crops
from streamhand.error_model import FEATURES, error_model_for
from streamhand.infer import Lifter
from streamhand.metrics import (
    PCK_THRESHOLDS_MM,
    PoseMetrics,
    auc,
    camera_errors_mm,
    evaluate_poses,
    evaluate_uncertainty,
    joint_errors_mm,
    pck_curve,
    trapezoid,
)
from streamhand.models import HandPoseModel
from streamhand.place.placement import RAY_PULL, solve_root
from streamhand.run.place_step import answer_hands
from streamhand.skeleton import JOINT_NAMES, reference_length
from streamhand.uncertainty import apply_calibration
from train.config import DataConfig
from train.datasets.frames import FrameSet, nearest_detection
from train.datasets.synthetic import make_pairs
from train.error_model import reliability
from train.plots import finish_pck, pyplot, save_figure

log = logging.getLogger(__name__)


@torch.no_grad()
def lift_2d(model: HandPoseModel, x2d: torch.Tensor, batch: int = 4096) -> np.ndarray:
    """Normalised 2D (N, 21, 2) -> normalised 3D (N, 21, 3) from the posterior mean."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = [model({"2d": x2d[i : i + batch].to(dev)}).joints.cpu() for i in range(0, len(x2d), batch)]
    model.train(was_training)
    return torch.cat(out).numpy().astype(np.float64)


@torch.no_grad()
def lift_2d_std(
    model: HandPoseModel, x2d: torch.Tensor, n_samples: int = 16, seed: int = 0, batch: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`lift_2d` (the same posterior-mean joints), plus each joint's spread over ``n_samples``
    posterior samples (N, 21), normalised units; the samples are seeded, so the spread is repeatable."""
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device
    joints, std = [], []
    for i in range(0, len(x2d), batch):
        x = x2d[i : i + batch]
        noise = torch.randn(n_samples, len(x), model.cfg.z_dim, generator=g, dtype=x.dtype)
        out = model({"2d": x.to(dev)}, noise=noise.to(dev))
        joints.append(out.joints.cpu())
        std.append(out.joint_std.cpu())
    model.train(was_training)
    return torch.cat(joints).numpy().astype(np.float64), torch.cat(std).numpy().astype(np.float64)


def evaluate_synthetic(
    model: HandPoseModel,
    n: int = 2000,
    seed: int = 1234,
    noise_px: float = 2.0,
    data: DataConfig | None = None,
    align: str = "root",
    uncertainty_samples: int = 0,
    std_calibration: dict | None = None,
) -> PoseMetrics:
    """EPE of 2D->3D on ``n`` fresh synthetic hands with Gaussian 2D noise of ``noise_px`` pixels.

    With ``uncertainty_samples`` > 0 the metrics also say how well ``joint_std`` (that many posterior samples,
    times the hand's scale, through the checkpoint's ``std_calibration`` for the 2d expert where given, as the
    runtime publishes it) ranks and bounds the per-joint errors (``PoseMetrics.uncertainty``)."""
    d = data or DataConfig()
    pairs = make_pairs(np.random.default_rng(seed), n, d, noise_px=noise_px)
    if uncertainty_samples > 0:
        joints, spread = lift_2d_std(model, pairs.x2d, uncertainty_samples, seed)
    else:
        joints, spread = lift_2d(model, pairs.x2d), None
    pred = decode_3d(joints, pairs.left, pairs.scale, pairs.rot)
    gt = pairs.joints_cam - pairs.joints_cam[:, :1]
    m = evaluate_poses(pred, gt, align=align)
    if spread is not None:
        std_m = apply_calibration(spread, std_calibration) * np.asarray(pairs.scale, np.float64).reshape(-1, 1)
        m.uncertainty = evaluate_uncertainty(std_m, joint_errors_mm(pred, gt, align))
    return m


@torch.no_grad()
def evaluate_fused(model: HandPoseModel, data: DataConfig, n: int = 500, seed: int = 1234, noise_px: float = 2.0,
                   modalities: tuple[str, ...] | None = None) -> PoseMetrics:  # fmt: skip
    """EPE of the fused experts ``modalities`` (default: every run-time encoder the model has: 2d, world, rgb,
    depth, cloud) on ``n`` fresh synthetic hands, image crops rendered as the runtime crops them; for a published
    dataset (``data.kind``), on its test split's first ``n`` images."""
    mods = modalities or tuple(m for m in model.modalities if m != "3d")
    crops = [m for m in ("rgb", "depth", "cloud") if m in mods]
    c = model.cfg
    cfg = data.model_copy(update={"crops": crops, "crop_size": c.image_size, "cloud_points": c.cloud_points,
                                  "crop_view": c.crop_view})  # fmt: skip
    if cfg.kind != "synthetic":  # the published test split's images, true 2D, no augmentation
        from train.datasets.published_images import image_pairs

        pairs = image_pairs(np.random.default_rng(seed), cfg, n, "test", augment=False, noise_px=0.0)
    else:
        pairs = make_pairs(np.random.default_rng(seed), n, cfg, noise_px=noise_px)
    n = len(pairs.scale)
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    src = {"2d": pairs.x2d, "world": pairs.xworld, **pairs.images}
    joints = []
    for i in range(0, n, 256):
        out = model({m: src[m][i : i + 256].to(dev) for m in mods}).joints
        joints.append(out.cpu())
    model.train(was_training)
    pred = decode_3d(torch.cat(joints).numpy().astype(np.float64), pairs.left, pairs.scale, pairs.rot)
    return evaluate_poses(pred, pairs.joints_cam - pairs.joints_cam[:, :1], align="root")


def evaluate_handset(model: HandPoseModel, hands, noise_px: float = 0.0, seed: int = 1234) -> PoseMetrics:
    """2D->3D on a real dataset's ground-truth 2D (optionally with Gaussian pixel noise)."""
    rng = np.random.default_rng(seed)
    kp = hands.joints_2d + rng.normal(0, noise_px, hands.joints_2d.shape) if noise_px else hands.joints_2d
    x2d, rot = encode_2d(kp, hands.left, hands.intrinsics)
    pred = decode_3d(lift_2d(model, torch.from_numpy(x2d)), hands.left, reference_length(hands.joints_cam), rot)
    gt = hands.joints_cam - hands.joints_cam[:, :1]
    return evaluate_poses(pred, gt, align="root")


# ---------------------------------------------------------------------------------------------------------
# real frames: the runtime's own path (detector, lifter, placement) against 3D truth

KEYPOINTS = ("mediapipe", "truth")
#: inputs this evaluation can give the lifter: the detector's 2D, its world landmarks and the RGB crop (no depth)
FRAME_MODALITIES = ("2d", "world", "rgb")
FIGURES = ("rel", "gt_bone", "pa", "root", "abs", "px")
SYSTEM_NAMES = {"streamhand": "streamhand", "mediapipe_world": "mediapipe world + placement"}


def frames_modalities(
    model_modalities: tuple[str, ...], keypoints: str, requested: tuple[str, ...] | None
) -> tuple[str, ...]:
    """The experts to fuse; a ValueError (one line) names a choice that cannot be honoured."""
    if keypoints not in KEYPOINTS:
        raise ValueError(f"--keypoints {keypoints!r}: choose {' or '.join(KEYPOINTS)}")
    if "2d" not in model_modalities and (keypoints == "truth" or not set(FRAME_MODALITIES) & set(model_modalities)):
        raise ValueError(f"the model has no 2d expert (it has {','.join(model_modalities)})")
    if keypoints == "truth":  # no detector: its world landmarks do not exist
        if requested is not None and tuple(requested) != ("2d",):
            raise ValueError("--keypoints truth feeds the exact 2D only: use --modalities 2d (or leave it out)")
        return ("2d",)
    if requested is None:
        return tuple(m for m in FRAME_MODALITIES if m in model_modalities)
    bad = [m for m in requested if m not in FRAME_MODALITIES]
    if bad:
        raise ValueError(f"--modalities {','.join(bad)}: this evaluation gives {', '.join(FRAME_MODALITIES)} only")
    missing = [m for m in requested if m not in model_modalities]
    if missing:
        raise ValueError(f"--modalities {','.join(missing)}: the model has {','.join(model_modalities)} only")
    if not requested:
        raise ValueError("--modalities: name at least one of 2d, world, rgb")
    return tuple(m for m in FRAME_MODALITIES if m in requested)


def _stat(v: np.ndarray) -> dict[str, float] | None:
    return {"mean": float(np.mean(v)), "median": float(np.median(v))} if len(v) else None


def _system_summary(n: int, pred: list, gt: list, px: list, std: list | None,
                    quality: list | None = None) -> dict[str, Any]:  # fmt: skip
    """Figures over the frames where the system gave a hand (means and medians), PCK, AUC, per joint."""
    out: dict[str, Any] = {"det": len(pred) / max(n, 1), "n_frames": len(pred)}
    if not pred:
        out.update({k: None for k in FIGURES})
        return out
    p, g = np.stack(pred), np.stack(gt)
    per_frame = {**camera_errors_mm(p, g), "px": np.asarray(px)}
    out.update({k: _stat(per_frame[k]) for k in FIGURES})
    e = joint_errors_mm(p, g, "root")  # (N, 21) wrist-relative, own scale
    out["pck_rel"] = [float(v) for v in pck_curve(e, PCK_THRESHOLDS_MM)]
    out["auc_20_50"], out["auc_0_50"] = auc(e, 20, 50, 5), auc(e, 0, 50, 1)
    out["per_joint_rel_mm"] = {name: float(v) for name, v in zip(JOINT_NAMES, e.mean(0))}
    if std is not None:
        u = evaluate_uncertainty(np.stack(std), e)
        out["uncertainty"] = u.as_dict()
        out["std_r"], out["std_f"] = u.spearman, u.frame_spearman
    if quality:  # predicted mean joint error against the actual one, hands sorted into ten groups
        out["reliability"] = reliability(np.asarray(quality), e[:, 1:].mean(1) / 1000.0)
    out["_per_frame"] = per_frame
    return out


def evaluate_frames(
    frames: FrameSet,
    lifter: Lifter,
    keypoints: str = "mediapipe",
    modalities: tuple[str, ...] = ("2d",),
    detector: Any = None,
    ray_pull: float = RAY_PULL,
) -> dict[str, Any]:
    """Every frame through the runtime's path: keypoints (MediaPipe's, the detection nearest the truth's
    projection; or the truth's exact projection), the lifter, metric placement without depth, each joint pulled
    ``ray_pull`` of the way toward its keypoint's ray (0: the lifted shape as placed). With MediaPipe, its world
    landmarks placed by least-squares reprojection onto its 2D are measured beside (the peer).

    Handedness: the frame's label, else the detector's, else (``truth``) a right hand."""
    if keypoints not in KEYPOINTS:
        raise ValueError(f"keypoints {keypoints!r}: choose {' or '.join(KEYPOINTS)}")
    own = None
    if keypoints == "mediapipe" and detector is None:
        from streamhand.detect import MediaPipeHands

        detector = own = MediaPipeHands(max_hands=2, tracking=False)
    k = frames.intrinsics
    ours: dict[str, list] = {"pred": [], "gt": [], "px": [], "std": [], "quality": [], "row": []}
    peer: dict[str, list] = {"pred": [], "gt": [], "px": [], "row": []}
    rows: list[dict[str, Any]] = []
    disagree = labelled = assumed_right = 0
    try:
        for fr in frames:
            row: dict[str, Any] = {"image": fr.name, "detected": True}
            rows.append(row)
            det = None
            if keypoints == "truth":
                uv, hand = fr.joints_2d, fr.handedness or "right"
                assumed_right += fr.handedness is None
            else:
                dets = detector(fr.rgb)
                if not dets:
                    row["detected"] = False
                    continue
                det = nearest_detection(dets, fr.joints_2d)
                uv, hand = det.landmarks_px, fr.handedness or det.handedness
                if fr.handedness is not None:
                    labelled += 1
                    disagree += det.handedness != fr.handedness
            world = det.world[None] if det is not None and "world" in modalities else None
            images = None
            if "rgb" in modalities:  # the crop around the keypoints, as the runtime makes it
                be = lifter.backend
                images = hand_crops(fr.rgb, None, [uv], ("rgb",), be.image_size, CROP_MARGIN, (k.fx, k.fy, k.cx, k.cy),
                                    view=be.crop_view)  # fmt: skip
            z = det.landmarks_z[None] if world is not None else None
            lift = lifter(uv[None], np.array([hand == "left"]), k, images=images, world=world, modalities=modalities,
                          landmarks_z=z)  # fmt: skip
            # the answer as a run publishes it, judged as a run judges it (streamhand.run.place_step)
            said = () if det is None else (det.world[None], np.array([det.handedness_score]), np.array([det.score]))
            a = answer_hands(uv[None], lift, k, None, ray_pull, *said)
            px = float(np.linalg.norm(uv - fr.joints_2d, axis=1).mean())
            ours["pred"].append(a.joints[0])
            ours["gt"].append(fr.joints_cam)
            ours["px"].append(px)
            judge = error_model_for(lifter.backend.error_model, lift.experts) if det is not None else None
            if judge is not None:
                j = a.judged(judge)
                std, quality, conf = j.joint_std[0], float(j.quality[0]), float(j.confidence[0])
                row["evidence"] = dict(zip(FEATURES, a.features()[0].tolist()))
            else:
                std = lift.joint_std[0] * (float(a.placed.scale[0]) / float(lift.scale[0]))
                quality, conf = float(std[1:].mean()), None
            row["quality_mm"], row["confidence"] = 1000.0 * quality, conf
            ours["std"].append(std)
            ours["quality"].append(quality)
            ours["row"].append(row)
            row["handedness"] = hand
            if det is not None and np.any(det.world):
                w = np.asarray(det.world, np.float64)
                peer["pred"].append(w + solve_root(uv, w, k))
                peer["gt"].append(fr.joints_cam)
                peer["px"].append(px)
                peer["row"].append(row)
            if (fr.index + 1) % 50 == 0:
                log.info("%d of %d frames", fr.index + 1, len(frames))
    finally:
        if own is not None:
            own.close()
    n = len(frames)
    systems = {"streamhand": _system_summary(n, ours["pred"], ours["gt"], ours["px"], ours["std"], ours["quality"])}
    if keypoints == "mediapipe":
        systems["mediapipe_world"] = _system_summary(n, peer["pred"], peer["gt"], peer["px"], None)
    for name, got in (("streamhand", ours), ("mediapipe_world", peer)):  # per-frame figures go into the rows
        per = systems[name].pop("_per_frame", None) if name in systems else None
        for i, r in enumerate(got["row"] if per is not None else []):
            r[name] = {f: float(per[f][i]) for f in FIGURES}
    out: dict[str, Any] = {"n": n, "keypoints": keypoints, "modalities": list(modalities),
                           "hand_length_m": lifter.hand_length_m, "pck_thresholds_mm": PCK_THRESHOLDS_MM.tolist(),
                           "systems": systems, "frames": rows}  # fmt: skip
    if keypoints == "mediapipe":
        out["handedness"] = {"labelled_and_detected": labelled, "detector_disagrees": disagree}
    else:
        out["handedness"] = {"assumed_right": assumed_right}  # the report's note says it (evaluation_lines)
    return out


def _f(v: dict | None, key: str = "mean") -> str:
    return "n/a" if v is None else f"{v[key]:.1f}"


def frames_report_lines(result: dict[str, Any]) -> list[str]:
    """The printed report: one line per system (means, mm), the PCK table, AUCs, per-joint errors,
    and the joint_std check."""
    systems = result["systems"]
    order = [s for s in ("mediapipe_world", "streamhand") if s in systems]
    lines = []
    for s in order:
        d = systems[s]
        label = SYSTEM_NAMES[s] + (f" ({result['keypoints']} 2D, {'+'.join(result['modalities'])})"
                                   if s == "streamhand" else "")  # fmt: skip
        figs = " ".join(f"{k}={_f(d[k])}" for k in FIGURES)
        r = f" std_r={d['std_r']:.2f}" if d.get("std_r") is not None and np.isfinite(d["std_r"]) else ""
        lines.append(f"{label}: det={d['det']:.3f} {figs}{r}")
    hands = result.get("handedness", {})
    if hands.get("assumed_right"):
        lines.append(f"note: {hands['assumed_right']} of {result['n']} frames have no handedness label and were "
                     "lifted as right hands (label them, or use --keypoints mediapipe for the detector's)")  # fmt: skip
    if hands.get("detector_disagrees"):
        lines.append(f"note: MediaPipe's handedness differs from the label on {hands['detector_disagrees']} of "
                     f"{hands['labelled_and_detected']} labelled frames (the label is used)")  # fmt: skip
    have = [s for s in order if systems[s].get("pck_rel")]
    if not have:
        return [*lines, "no hand was found in any frame: no PCK, AUC or per-joint figures"]
    short = {"streamhand": "streamhand", "mediapipe_world": "mediapipe world"}
    t = result["pck_thresholds_mm"]
    lines.append("PCK of rel (share of joints within T mm):")
    lines.append(f"  {'T mm':<16}" + "".join(f"{v:>6.0f}" for v in t))
    for s in have:
        lines.append(f"  {short[s]:<16}" + "".join(f"{v:>6.2f}" for v in systems[s]["pck_rel"]))
    lines.append("AUC of rel: " + "; ".join(
        f"{short[s]} {systems[s]['auc_20_50']:.3f} (20-50 mm), {systems[s]['auc_0_50']:.3f} (0-50 mm)" for s in have
    ))  # fmt: skip
    lines.append("per-joint mean rel error (mm):")
    lines.append(f"  {'joint':<12}" + "".join(f"{short[s]:>17}" for s in have))
    for j in JOINT_NAMES:
        lines.append(f"  {j:<12}" + "".join(f"{systems[s]['per_joint_rel_mm'][j]:>17.1f}" for s in have))
    u = systems["streamhand"].get("uncertainty")
    if u is not None:
        lines.append(
            f"joint_std vs rel error (wrist left out, {u['n_joints']} joints): Spearman {u['spearman']:.2f}, per hand "
            f"{u['frame_spearman']:.2f}; within 1 std {u['within_1std']:.2f}, within 2 std {u['within_2std']:.2f} "
            f"(a calibrated Gaussian: {u['gaussian_within_1std']:.2f}, {u['gaussian_within_2std']:.2f}); "
            f"mean std {u['mean_std_mm']:.1f} mm, mean error {u['mean_error_mm']:.1f} mm"
        )
    rel = systems["streamhand"].get("reliability")
    if rel:
        lines.append("quality (predicted mean joint error) against the actual, hands in ten groups by quality (mm):")
        lines.append("  predicted " + "".join(f"{b['predicted_mm']:>6.1f}" for b in rel))
        lines.append("  actual    " + "".join(f"{b['actual_mm']:>6.1f}" for b in rel))
    return lines


def write_pck_png(result: dict[str, Any], path: str | Path) -> Path:
    """The PCK curves of rel as a PNG (matplotlib, imported here, Agg backend)."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    t = result["pck_thresholds_mm"]
    for s, d in result["systems"].items():
        if d.get("pck_rel"):
            ax.plot(t, d["pck_rel"], marker="o", label=f"{SYSTEM_NAMES[s]} (AUC 20-50 {d['auc_20_50']:.3f})")
    finish_pck(ax, (t[0], t[-1]), f"3D PCK, wrist-relative, own scale ({result['keypoints']} 2D)")
    return save_figure(fig, path)


def write_pose_pck_png(thresholds_mm: list[float], pck: list[float], title: str, path: str | Path,
                       published: list | None = None) -> Path:  # fmt: skip
    """One 3D PCK curve (0-50 mm) as a PNG, with the published AUCs in the legend where given."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    t, y = np.asarray(thresholds_mm), np.asarray(pck)
    lo = (t >= 20) & (t <= 50)
    ax.plot(t, y, label=f"ours (AUC 20-50 {trapezoid(y[lo], t[lo]) / 30:.3f})")
    for p in published or []:
        if p.auc_20_50 is not None:
            ax.axhline(p.auc_20_50, ls=":", lw=1, color="grey")
            ax.text(1, p.auc_20_50 + 0.01, f"{p.method} {p.task}: AUC {p.auc_20_50:.3f}", fontsize=6, color="grey")
    finish_pck(ax, (0, 50), f"3D PCK, root-aligned: {title}")
    return save_figure(fig, path)
