"""Synthetic-data report: sampler and renderer speed, MediaPipe's detection rate on rendered hands, how deep
its world landmarks read them (:func:`train.world_depth.depth_reading`), and the closed loop (render -> real
MediaPipe -> lift its 2D with a checkpoint -> compare with the renderer's 3D);
optionally the same figures on a folder of real frames with 3D truth (:mod:`train.datasets.frames`) beside
them. Also a contact sheet of rendered hands (:func:`render_sheet`)."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamhand.codec import IMAGE_DEPTH_WEIGHT
from streamhand.detect.crops import CROP_MARGIN, crop_square, hand_crops, square_box
from streamhand.infer import Lifter, LiftResult
from streamhand.metrics import evaluate_poses
from streamhand.skeleton import reference_length
from streamhand.synth.render import RENDER_VERSION, render
from streamhand.synth.sampler import SamplerConfig, detection_test_config, sample_hands
from train.datasets.frames import FrameSet, nearest_detection
from train.datasets.mediapipe_pairs import detect_rendered
from train.hand_likeness import HandLikeness
from train.pose_matched import pose_matched_figures
from train.world_depth import depth_reading

log = logging.getLogger(__name__)


@dataclass
class SynthReport:
    pose_samples_per_s: float = 0.0
    render_256_per_s: float = 0.0
    #: what read the renders: MediaPipe's graph, or its networks with each hand's mirrored crop (``--flip-average``)
    detector: str = "MediaPipe"
    detection_n: int = 0
    detection_rate: float = 0.0
    detection_rate_palm: float = 0.0
    detection_rate_back: float = 0.0
    handedness_accuracy: float = 0.0
    landmark_error_px_median: float = 0.0
    #: how deep MediaPipe's world landmarks read the hands it found (:func:`~train.world_depth.depth_reading`);
    #: None with none found
    world_depth: dict | None = None
    #: how hand-like MediaPipe's palm and landmark networks find every rendered hand where the truth puts it
    #: (:func:`train.hand_likeness.likeness_figures`); None where its networks are not available
    likeness: dict | None = None
    closed_loop: dict = field(default_factory=dict)
    #: the same figures on a folder of real frames (:func:`frames_figures`), None without one
    real_frames: dict | None = None


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


def detection_and_closed_loop(n: int = 200, seed: int = 2024, checkpoint: str | None = None, progress: bool = True,
                              flip_average: bool = False):  # fmt: skip
    """Render ``n`` 640x480 frames of hands facing the camera, run MediaPipe (``flip_average``: its networks, each
    hand read with its mirrored crop), lift what it finds (with the model's image experts fed crops of the rendered
    frame, boxed around MediaPipe's landmarks as at run time)."""
    rng = np.random.default_rng(seed)
    hs = sample_hands(rng, n, detection_test_config())
    found = np.zeros(n, bool)
    hand_ok, lm_err, dets = 0, [], []
    likeness = HandLikeness()
    lifter = None
    if checkpoint is not None:
        from streamhand.infer import Lifter, TorchBackend

        lifter = Lifter(TorchBackend(checkpoint))
    image_mods = tuple(m for m in ("rgb", "depth") if lifter is not None and m in lifter.backend.modalities)
    crops: dict[str, list[np.ndarray]] = {m: [] for m in image_mods}
    for i, d, r in detect_rendered(rng, hs, progress, flip_average):
        likeness(r.rgb, hs.joints_2d[i])
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
    likeness.close()
    palm = hs.rotation[:, 2, 2] < 0  # palm normal toward the camera
    idx = np.array([i for i, _ in dets], int)  # the hands MediaPipe found, and its world landmarks of them
    world = np.array([d.world for _, d in dets])
    world_z = np.array([d.landmarks_z for _, d in dets])
    rep = dict(
        detection_n=n,
        detection_rate=float(found.mean()),
        detection_rate_palm=float(found[palm].mean()) if palm.any() else float("nan"),
        detection_rate_back=float(found[~palm].mean()) if (~palm).any() else float("nan"),
        handedness_accuracy=hand_ok / max(len(dets), 1),
        landmark_error_px_median=float(np.median(lm_err)) if lm_err else float("nan"),
        world_depth=depth_reading(world, hs.joints_cam[idx]),
        likeness=likeness.figures(),
    )
    closed = {}
    if lifter is not None and dets:
        images = {m: np.stack(v) for m, v in crops.items()}
        lm = np.stack([d.landmarks_px for _, d in dets])
        gt = hs.joints_cam[idx] - hs.joints_cam[idx, :1]
        gt_scale = reference_length(hs.joints_cam[idx])
        kb = hs.intrinsics.take(idx)
        mp_left = np.array([d.handedness == "left" for _, d in dets])
        for name, left in (("mediapipe_handedness", mp_left), ("true_handedness", hs.left[idx])):
            res = lifter(lm, left, kb, scale=gt_scale, images=images, world=world, landmarks_z=world_z)
            m = evaluate_poses(res.joints_rel, gt, "root")
            closed[name] = {"epe_mean_mm": m.epe_mean_mm, "epe_median_mm": m.epe_median_mm,
                            "auc_20_50": m.auc_20_50, "n": m.n}  # fmt: skip
        from train.calibrate_std import expert_sets

        closed["experts"] = {}  # ablation: each expert alone and fused, MediaPipe's handedness
        for mods in expert_sets(lifter.backend.modalities):
            res = lifter(lm, mp_left, kb, scale=gt_scale, images=images, world=world, modalities=mods,
                         landmarks_z=world_z)  # fmt: skip
            m = evaluate_poses(res.joints_rel, gt, "root")
            closed["experts"]["+".join(mods)] = {"epe_mean_mm": m.epe_mean_mm, "epe_median_mm": m.epe_median_mm}
        res = lifter(hs.joints_2d[idx], hs.left[idx], kb, scale=gt_scale)
        m = evaluate_poses(res.joints_rel, gt, "root")
        closed["renderer_2d_reference"] = {"epe_mean_mm": m.epe_mean_mm, "epe_median_mm": m.epe_median_mm, "n": m.n}
    return rep, closed


def synth_report(
    n: int = 200, checkpoint: str | None = None, progress: bool = True, frames: FrameSet | None = None,
    flip_average: bool = False,
) -> SynthReport:
    """The report on ``n`` renders and, with ``frames``, the same figures on those real frames (``flip_average``:
    the renders' hands read as ``run --flip-average`` reads them; the real frames' as a plain run does)."""
    reader = "MediaPipe's networks, each hand with its mirror" if flip_average else "MediaPipe"
    rep = SynthReport(pose_samples_per_s=bench_sampler(), render_256_per_s=bench_render(), detector=reader)
    det, closed = detection_and_closed_loop(n, checkpoint=checkpoint, progress=progress, flip_average=flip_average)
    for k, v in det.items():
        setattr(rep, k, v)
    rep.closed_loop = closed
    if frames is not None:
        rep.real_frames = frames_figures(frames, checkpoint, progress)
    return rep


def as_dict(rep: SynthReport) -> dict:
    """The report as JSON-ready data (``real_frames`` only where real frames were measured), with the renderer's
    version and the share of MediaPipe's image depth the closed loop lifted with (what the figures depend on)."""
    d = {"renderer": RENDER_VERSION, "image_depth": IMAGE_DEPTH_WEIGHT, **asdict(rep)}
    if d["real_frames"] is None:
        del d["real_frames"]
    return d


# ---------------------------------------------------------------------------------------------------------
# the same figures on real frames: MediaPipe on each frame once, the lifter through train.evaluate's frames path


class _DetectOnce:
    """A detector that runs on each distinct frame once and replays its detections when the frame comes again,
    so that every expert set of the closed loop sees the same MediaPipe output (and MediaPipe runs once)."""

    def __init__(self, detector: Any):
        self.detector = detector
        self.seen: dict[bytes, list] = {}

    def __call__(self, rgb: np.ndarray) -> list:
        h = hashlib.blake2b(repr(rgb.shape).encode(), digest_size=16)
        h.update(memoryview(np.ascontiguousarray(rgb)).cast("B"))
        key = h.digest()
        if key not in self.seen:
            self.seen[key] = self.detector(rgb)
        return self.seen[key]


def _subset(fs: FrameSet, idx: list[int], handedness: list[str | None]) -> FrameSet:
    return FrameSet(fs.root, fs.intrinsics, fs.joints_cam[idx], [fs.images[i] for i in idx],
                    [fs.crop_boxes[i] for i in idx], handedness)  # fmt: skip


def _key(landmarks_px: np.ndarray) -> bytes:
    return np.ascontiguousarray(landmarks_px, np.float64).tobytes()


class _TruthScale(Lifter):
    """A lifter that lifts each hand at the truth's scale (its reference bone), as the renders' closed loop does;
    it recognises the hand by the keypoints it is lifted from (``scales``: keypoints' bytes -> metres)."""

    def __init__(self, lifter: Lifter, scales: dict[bytes, float]):
        super().__init__(lifter.backend, lifter.hand_length_m)
        self.scales = scales

    def __call__(self, landmarks_px: np.ndarray, left: np.ndarray, k: Any, scale: np.ndarray | None = None,
                 **kwargs: Any) -> LiftResult:  # fmt: skip
        if scale is None:
            scale = np.array([self.scales[_key(lm)] for lm in landmarks_px])
        return super().__call__(landmarks_px, left, k, scale=scale, **kwargs)


def _loop_figures(at_truth: dict[str, Any], at_runtime: dict[str, Any]) -> dict[str, Any] | None:
    """One closed-loop entry from two :func:`train.evaluate.evaluate_frames` results of the same frames: the
    wrist-relative EPE mean (mm, the ``rel`` figure) with the truth's scale (``epe_mean_mm``, the renders'
    figure) and at the run-time scale (``epe_runtime_scale_mean_mm``, ``eval --data frames``' rel)."""
    t, r = at_truth["systems"]["streamhand"], at_runtime["systems"]["streamhand"]
    if t["rel"] is None:  # no hand found
        return None
    return {"epe_mean_mm": t["rel"]["mean"], "epe_runtime_scale_mean_mm": r["rel"]["mean"], "n": t["n_frames"],
            "modalities": at_truth["modalities"]}  # fmt: skip


def frames_figures(
    frames: FrameSet,
    checkpoint: str | None = None,
    progress: bool = True,
    detector: Any = None,
    pose_matched: bool = True,
) -> dict[str, Any]:
    """The renders' figures on real frames: MediaPipe's detection rate, handedness accuracy (on the frames whose
    labels say which hand; None without labels), landmark error (median over the frames found of each frame's
    median joint distance, px, against the truth projected with the camera's intrinsics) and, with a
    ``checkpoint``, the closed loop through :func:`train.evaluate.evaluate_frames` (its detection choice, crops
    and placement) for the expert sets of the renders' loop that real frames can feed (2d, world, rgb; not
    depth). As on renders: the frames MediaPipe found, MediaPipe's handedness (``true_handedness``: the labels',
    where every frame has one), the truth's exact 2D as a reference, each hand lifted at the truth's scale
    (``epe_mean_mm``, wrist-relative mean); besides, at the run-time scale (the adult average hand length).

    ``detector``: a MediaPipe-like callable (rgb -> detections); by default the real MediaPipe (two hands,
    static images, as ``eval --data frames``). Of several detections the one nearest the truth counts.
    ``pose_matched``: also the same figures on renders of the frames' own poses and views
    (``pose_matched_renders``, :func:`train.pose_matched.pose_matched_figures`; None without)."""
    from train.progress import track

    own = None
    if detector is None:
        from streamhand.detect import MediaPipeHands

        detector = own = MediaPipeHands(max_hands=2, tracking=False)
    once = _DetectOnce(detector)
    likeness = HandLikeness()
    n = len(frames)
    found: list[int] = []
    mp_hand: list[str | None] = [None] * n
    lm_err: list[float] = []
    worlds: list[np.ndarray] = []  # MediaPipe's world landmarks of the hand counted, beside its truth
    truths: list[np.ndarray] = []
    scales: dict[bytes, float] = {}  # keypoints (detected or the truth's) -> the truth's reference bone
    labelled = hand_ok = 0
    try:
        for fr in track(frames, total=n, description="real frames + MediaPipe", disable=not progress):
            dets = once(fr.rgb)
            likeness(fr.rgb, fr.joints_2d)
            ref = float(reference_length(fr.joints_cam))
            scales.update({_key(d.landmarks_px): ref for d in dets})
            scales[_key(fr.joints_2d)] = ref
            if not dets:
                continue
            d = nearest_detection(dets, fr.joints_2d)
            found.append(fr.index)
            mp_hand[fr.index] = d.handedness
            lm_err.append(float(np.median(np.linalg.norm(d.landmarks_px - fr.joints_2d, axis=1))))
            worlds.append(d.world)
            truths.append(fr.joints_cam)
            if fr.handedness is not None:
                labelled += 1
                hand_ok += d.handedness == fr.handedness
        out: dict[str, Any] = {
            "root": str(frames.root),
            "detection_n": n,
            "detection_rate": len(found) / n,
            "handedness_labelled": labelled,
            "handedness_accuracy": hand_ok / labelled if labelled else None,
            "landmark_error_px_median": float(np.median(lm_err)) if lm_err else None,
            "world_depth": depth_reading(np.array(worlds), np.array(truths)),
            "likeness": likeness.figures(),
            # the frames' own poses drawn by the renderer: the renders' look alone (train.pose_matched)
            "pose_matched_renders": None,
            "closed_loop": {},
        }
        if pose_matched:
            hands = [frames.handedness[i] or mp_hand[i] for i in range(n)]
            out["pose_matched_renders"] = pose_matched_figures(frames, hands, detector, progress)
        if checkpoint is not None:
            out["closed_loop"] = _frames_closed_loop(frames, checkpoint, once, found, mp_hand, scales)
    finally:
        likeness.close()
        if own is not None:
            own.close()
    return out


def _frames_closed_loop(
    frames: FrameSet,
    checkpoint: str,
    detector: _DetectOnce,
    found: list[int],
    mp_hand: list[str | None],
    scales: dict[bytes, float],
) -> dict[str, Any]:
    from streamhand.infer import TorchBackend
    from train.calibrate_std import expert_sets
    from train.evaluate import FRAME_MODALITIES, evaluate_frames, frames_modalities

    lifter = Lifter(TorchBackend(checkpoint))
    truth_scale = _TruthScale(lifter, scales)
    have = tuple(lifter.backend.modalities)

    def both(fs: FrameSet, keypoints: str, mods: tuple[str, ...], what: str) -> dict[str, Any] | None:
        log.info("real frames: closed loop, %s, %s", "+".join(mods), what)
        # the lifter's answer at the truth's scale, as the renders' loop scores it (no pull toward the 2D)
        at_truth = evaluate_frames(fs, truth_scale, keypoints, mods, detector=detector, ray_pull=0.0)
        return _loop_figures(at_truth, evaluate_frames(fs, lifter, keypoints, mods, detector=detector))

    unlabelled = _subset(frames, list(range(len(frames))), [None] * len(frames))  # MediaPipe's handedness
    done: dict[tuple[str, ...], dict[str, Any] | None] = {}

    def loop(mods: tuple[str, ...]) -> dict[str, Any] | None:
        if mods not in done:
            done[mods] = both(unlabelled, "mediapipe", mods, "MediaPipe's handedness")
        return done[mods]

    closed: dict[str, Any] = {"hand_length_m": lifter.hand_length_m, "model_id": lifter.backend.model_id}
    try:
        fused = frames_modalities(have, "mediapipe", None)
    except ValueError:  # no expert real frames can feed
        fused = ()
    closed["mediapipe_handedness"] = loop(fused) if fused else None
    closed["true_handedness"] = None  # n/a unless every frame says which hand it is
    if fused and all(h is not None for h in frames.handedness):
        closed["true_handedness"] = both(frames, "mediapipe", fused, "the labels' handedness")
    # each expert set of the renders' loop; None where real frames lack its input (depth)
    closed["experts"] = {"+".join(m): loop(m) if set(m) <= set(FRAME_MODALITIES) else None for m in expert_sets(have)}
    closed["truth_2d_reference"] = None  # the truth's exact 2D on the frames found: the lifter's own share
    if "2d" in have and found:
        hands = [frames.handedness[i] or mp_hand[i] for i in found]
        closed["truth_2d_reference"] = both(_subset(frames, found, hands), "truth", ("2d",), "the truth's exact 2D")
    return closed


# ---------------------------------------------------------------------------------------------------------
# the printed report


def _num(v: float | None, fmt: str = ".3f") -> str:
    return "n/a" if v is None or not np.isfinite(v) else format(v, fmt)


def _mm(entry: dict | None, missing: str = "n/a", mods: bool = False) -> str:
    """An entry's EPE mean (mm), with its experts where ``mods``; ``missing`` where it was not measured."""
    if entry is None:
        return missing
    return _num(entry.get("epe_mean_mm"), ".1f") + (f" ({'+'.join(entry['modalities'])})" if mods else "")


def _found(d: dict[str, Any], n_key: str = "detection_n") -> str:
    n, rate = d[n_key], d["detection_rate"]
    return "n/a (none)" if rate is None else f"{_num(rate)} ({round(n * rate)} of {n})"


def _depth_rows(row: Any, *columns: dict | None) -> list[str]:
    """The rows of :func:`depth_reading` for each column (n/a where no hand was found)."""

    def cells(d: dict | None) -> tuple[str, str, str]:
        if d is None:
            return "n/a", "n/a", "n/a"
        q = (f"{_num(d['depth_slope_median'], '.2f')} "
             f"[{_num(d['depth_slope_q25'], '.2f')}..{_num(d['depth_slope_q75'], '.2f')}]")  # fmt: skip
        return q, _num(d["across_slope_median"], ".2f"), f"{d['depth_error_mm']:.1f} / {d['across_error_mm']:.1f}"

    c = [cells(d) for d in columns]
    return [row("MediaPipe world landmarks: depth slope [quartiles]", *(x[0] for x in c)),
            row("  slope across the image, median", *(x[1] for x in c)),
            row("  mean error in depth / across the image, mm", *(x[2] for x in c))]  # fmt: skip


def _likeness_rows(row: Any, *columns: dict | None) -> list[str]:
    """The rows of :func:`train.hand_likeness.likeness_figures` for each column (n/a where not measured)."""

    def cells(d: dict | None) -> tuple[str, str]:
        if d is None:
            return "n/a", "n/a"
        return (f"{_num(d['palm_found'])} / {_num(d['palm_logit_mean'], '.2f')}",
                f"{_num(d['presence_mean'])} / {_num(d['presence_p10'])}")  # fmt: skip

    c = [cells(d) for d in columns]
    return [row("  at the true hand: palm score >= 0.5 / mean log-odds", *(x[0] for x in c)),
            row("  at the true hand: presence score, mean / 10th pct", *(x[1] for x in c))]  # fmt: skip


def report_lines(rep: dict[str, Any]) -> list[str]:
    """:func:`as_dict`'s report as a table: a column of the renders' figures and, where real frames were
    measured, a column of theirs beside it."""
    real = rep.get("real_frames")
    pm = (real or {}).get("pose_matched_renders")
    heads = ["renders"] + (["real frames"] if real is not None else []) + (["renders of their poses"] if pm else [])

    def row(label: str, *cells: str) -> str:
        cells = (cells + ("-",) * len(heads))[: len(heads)]
        return (f"{label:<54}" + "".join(f"{c:<24}" for c in cells)).rstrip()

    lines = [row("figure", *heads), row("-" * 52, *["-" * 22] * len(heads))]
    lines.append(row("pose + projection samples / s", f"{rep['pose_samples_per_s']:,.0f}", "", ""))
    lines.append(row("rendered 256x256 images / s", f"{rep['render_256_per_s']:.1f}", "", ""))
    lines.append(row("hands read by", rep.get("detector", "MediaPipe"), "", ""))
    if "renderer" in rep:
        lines.append(row("renderer version", str(rep["renderer"]), "", ""))
    pm_found = _found(pm, "rendered_n") if pm else ""
    lines.append(row("MediaPipe detection rate (found of frames)", _found(rep), _found(real) if real else "", pm_found))
    palm, back = _num(rep["detection_rate_palm"], ".2f"), _num(rep["detection_rate_back"], ".2f")
    lines.append(row("  palm toward the camera / back of the hand", f"{palm} / {back}", "", ""))
    lines += _likeness_rows(row, rep.get("likeness"), *([real.get("likeness")] if real is not None else []),
                            *([pm.get("likeness")] if pm else []))  # fmt: skip
    hand = ""
    if real is not None:
        labelled = real["handedness_labelled"]
        hand = f"{_num(real['handedness_accuracy'])} ({labelled} labelled)" if labelled else "n/a (not labelled)"
    pm_hand = f"{_num(pm['handedness_accuracy'])} (the hand drawn)" if pm else ""
    lines.append(row("MediaPipe handedness correct", _num(rep["handedness_accuracy"]), hand, pm_hand))
    px = _num(real["landmark_error_px_median"], ".1f") if real else ""
    lines.append(row("MediaPipe 2D vs the truth's projection, median px", _num(rep["landmark_error_px_median"], ".1f"),
                     px, _num(pm["landmark_error_px_median"], ".1f") if pm else ""))  # fmt: skip
    depth_cols = [rep.get("world_depth")] + ([real.get("world_depth")] if real is not None else [])
    lines += _depth_rows(row, *depth_cols, *([pm.get("world_depth")] if pm else []))
    closed, rc = rep.get("closed_loop") or {}, (real or {}).get("closed_loop") or {}
    if not closed and not rc:
        return [*lines, "closed loop: not measured (no --checkpoint, or no hand found)"]
    model = f", model {rc['model_id']}" if rc.get("model_id") else ""
    lines.append(f"closed loop{model}: MediaPipe -> lifter, EPE mean mm, wrist-relative, at the truth's scale")
    lines.append("  (renders: the rendered frames MediaPipe found" +
                 ("; real frames: the real frames MediaPipe found)" if real is not None else ")"))  # fmt: skip
    experts, real_experts = closed.get("experts", {}), rc.get("experts", {})
    for name in dict.fromkeys([*experts, *real_experts]):
        no = "n/a (no depth)" if "depth" in name.split("+") else "n/a"
        lines.append(row(f"  {name}, MediaPipe's handedness", _mm(experts.get(name)), _mm(real_experts.get(name), no)))
    lines.append(row("  all experts, MediaPipe's handedness", _mm(closed.get("mediapipe_handedness")),
                     _mm(rc.get("mediapipe_handedness"), mods=True)))  # fmt: skip
    lines.append(row("  all experts, true handedness", _mm(closed.get("true_handedness")),
                     _mm(rc.get("true_handedness"), "n/a (not labelled)", mods=True)))  # fmt: skip
    lines.append(row("  the truth's exact 2D, 2d expert", _mm(closed.get("renderer_2d_reference")),
                     _mm(rc.get("truth_2d_reference"))))  # fmt: skip
    if rc:
        at = [f"{k} {_num(v['epe_runtime_scale_mean_mm'], '.1f')}" for k, v in real_experts.items() if v is not None]
        lines.append(f"real frames at the run-time scale (hand length {rc['hand_length_m']:.3f} m; eval --data frames' "
                     f"rel), EPE mean mm: {', '.join(at) or 'n/a'}")  # fmt: skip
    return lines


# ---------------------------------------------------------------------------------------------------------
# contact sheet


def _depth_colours(depth_mm: np.ndarray, hand: np.ndarray, span_mm: float = 250.0) -> np.ndarray:
    """uint16 depth (mm, 0 = hole) as RGB: near red to far blue over ``span_mm`` from the hand's nearest
    point, farther saturated, holes black."""
    d = depth_mm.astype(np.float32)
    valid = d > 0
    ref = d[hand & valid] if (hand & valid).any() else d[valid]
    near = float(np.percentile(ref, 1)) if ref.size else 0.0
    t = np.clip((d - near) / span_mm, 0, 1)
    bgr = cv2.applyColorMap((255 * (1 - t)).astype(np.uint8), cv2.COLORMAP_JET)
    bgr[~valid] = 0
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _label(tile: np.ndarray, text: str) -> None:
    scale = tile.shape[0] / 256 * 0.45
    org = (max(2, tile.shape[0] // 64), tile.shape[0] - max(4, tile.shape[0] // 32))
    cv2.putText(tile, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def sheet_shape(n: int, size: int, cols: int, depth: bool = False) -> tuple[int, int]:
    """(height, width) in pixels of :func:`render_sheet`'s image."""
    c = min(cols, n)
    return math.ceil(n / c) * size * (2 if depth else 1), c * size


def render_sheet(
    n: int = 24, seed: int = 0, size: int = 256, cols: int = 6, depth: bool = False, progress: bool = True
) -> np.ndarray:
    """A contact sheet (RGB uint8) of ``n`` rendered hands: poses, cameras and handedness from the pose sampler
    (hands facing the camera, wholly in view: :func:`~streamhand.synth.sampler.detection_test_config`), skin,
    light and background from the renderer; each a full 640x480 render cut square around the hand as the runtime
    crops (:data:`~streamhand.detect.crops.CROP_MARGIN`) and scaled to ``size``, labelled with its index, hand
    and side shown. ``depth``: under each row of colour tiles, the same crops' depth (near red, far blue,
    holes black). ``cols`` tiles a row (fewer when ``n`` is smaller); the size is :func:`sheet_shape`."""
    from train.progress import track

    rng = np.random.default_rng(seed)
    cfg = detection_test_config()
    hs = sample_hands(rng, n, cfg)
    sheet = np.full((*sheet_shape(n, size, cols, depth), 3), 40, np.uint8)
    c = min(cols, n)
    for i in track(range(n), description="render sheet", disable=not progress):
        r = render(rng, [hs.joints_cam[i]], hs.intrinsics[i], [hs.scale[i]], left=[bool(hs.left[i])])
        box = square_box(hs.joints_2d[i], cfg.width, cfg.height, CROP_MARGIN)
        tile = np.ascontiguousarray(crop_square(r.rgb, box, size, cv2.INTER_AREA))
        side = "palm" if hs.rotation[i, 2, 2] < 0 else "back"  # the palm normal toward the camera
        if size >= 64:
            _label(tile, f"{i} {'L' if hs.left[i] else 'R'} {side}")
        y, x = (i // c) * size * (2 if depth else 1), (i % c) * size
        sheet[y : y + size, x : x + size] = tile
        if depth:
            d = crop_square(r.depth, box, size, cv2.INTER_NEAREST)
            m = crop_square(r.mask, box, size, cv2.INTER_NEAREST) > 0
            sheet[y + size : y + 2 * size, x : x + size] = _depth_colours(d, m)
    return sheet


def write_png(rgb: np.ndarray, path: str | Path) -> Path:
    """Write an RGB uint8 image as PNG; an OSError where the file cannot be written."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"cannot encode {path} as PNG")
    path = Path(path)
    path.write_bytes(buf.tobytes())
    return path
