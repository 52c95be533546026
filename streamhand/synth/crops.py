"""Rendered image crops for the RGB and depth experts (training, INT8 calibration, benchmarks), made as the
runtime makes its crops.

At run time a crop is the square box around the detector's landmarks (``detect.crop_margin`` x their extent,
:func:`streamhand.detect.crops.square_box`) resampled to S x S. Here the renderer draws that box directly:
a camera whose intrinsics map the box onto an S x S image (focal lengths and principal point scaled and
shifted), so a crop costs an S x S render instead of a full frame. The box comes from the noisy 2D keypoints,
so crops jitter as they do behind a real detector. Depth has the renderer's RealSense-like noise, holes and
edge artefacts. Both are normalised by the runtime's own functions and left hands are mirrored like their
keypoints. (Unlike the runtime, a box reaching past the image edge shows scene instead of no data.) The same
boxes give the point-cloud expert its cloud (:func:`streamhand.detect.crops.depth_cloud`, camera-frame metres,
from a :data:`~streamhand.detect.crops.CLOUD_CROP` render) and the heatmap decoder its targets (the true 2D).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from streamhand.detect.crops import (
    CLOUD_CROP,
    crop_intrinsics,
    depth_cloud,
    keypoint_heatmaps,
    normalise_depth,
    normalise_rgb,
    square_box,
    view_crop,
)
from streamhand.geometry import Intrinsics
from streamhand.synth.render import RenderConfig, render
from streamhand.synth.sampler import IntrinsicsBatch

CROP_RENDER = RenderConfig(depth_noise=True, depth_holes=True, background_depth_m=(0.8, 2.5))


def render_crops(
    rng: np.random.Generator,
    joints_cam: np.ndarray,
    kp2d: np.ndarray,
    left: np.ndarray,
    cams: IntrinsicsBatch,
    width: int,
    height: int,
    modalities: list[str],
    size: int,
    margin: float = 1.4,
    truth_2d: np.ndarray | None = None,
    heatmap_size: int = 32,
    cloud_points: int = 256,
    view: str = "box",
) -> dict[str, np.ndarray]:
    """For ``n`` hands, those of ``modalities`` asked for: (n, 3, S, S) ``rgb``, (n, 1, S, S) ``depth``,
    (n, P, 3) ``cloud`` (camera frame, metres; not mirrored) and (n, 21, H, H) ``heatmap`` of ``truth_2d``.
    ``view="turned"``: the rgb / depth crops are rendered by the virtual camera the 2D is encoded in
    (:func:`streamhand.detect.crops.view_crop`), as the runtime warps them."""
    out: dict[str, list[np.ndarray]] = {m: [] for m in ("rgb", "depth", "cloud", "heatmap") if m in modalities}
    for i in range(len(joints_cam)):
        box = square_box(kp2d[i], width, height, margin)
        cam = (float(cams.fx[i]), float(cams.fy[i]), float(cams.cx[i]), float(cams.cy[i]))
        flip = (lambda a: a[..., ::-1]) if left[i] else (lambda a: a)
        r = None
        if ("rgb" in out or "depth" in out) and view == "turned":
            vc = view_crop(kp2d[i], cam, size, margin)  # the hand turned into the virtual camera, rendered there
            rc = replace(CROP_RENDER, hole_scale=vc.f / cam[0])
            r = render(rng, [joints_cam[i] @ vc.rot.T], Intrinsics(size, size, vc.f, vc.f, vc.c, vc.c), cfg=rc,
                       left=[bool(left[i])])  # fmt: skip
        elif "rgb" in out or "depth" in out:
            rc = replace(CROP_RENDER, hole_scale=size / box.side)
            r = render(rng, [joints_cam[i]], Intrinsics(size, size, *crop_intrinsics(box, size, *cam)), cfg=rc,
                       left=[bool(left[i])])  # fmt: skip
        if "rgb" in out:
            out["rgb"].append(flip(normalise_rgb(r.rgb)))
        if "depth" in out:
            out["depth"].append(flip(normalise_depth(r.depth.astype(np.float32) / 1000.0)))
        if "cloud" in out:
            kc = crop_intrinsics(box, CLOUD_CROP, *cam)
            if r is None or size != CLOUD_CROP or view == "turned":
                rc = replace(CROP_RENDER, hole_scale=CLOUD_CROP / box.side)
                r = render(rng, [joints_cam[i]], Intrinsics(CLOUD_CROP, CLOUD_CROP, *kc), cfg=rc,
                           left=[bool(left[i])])  # fmt: skip
            out["cloud"].append(depth_cloud(r.depth.astype(np.float32) / 1000.0, kc, cloud_points))
        if "heatmap" in out:
            if truth_2d is None:
                raise ValueError("heatmap targets need the true 2D keypoints (truth_2d)")
            uv = box.to_crop(truth_2d[i], heatmap_size)
            if left[i]:
                uv = np.stack([heatmap_size - 1 - uv[:, 0], uv[:, 1]], -1)
            out["heatmap"].append(keypoint_heatmaps(uv, heatmap_size))
    if len(joints_cam) == 0:
        shapes = {"rgb": (3, size, size), "depth": (1, size, size), "cloud": (cloud_points, 3),
                  "heatmap": (21, heatmap_size, heatmap_size)}  # fmt: skip
        return {m: np.zeros((0, *shapes[m]), np.float32) for m in out}
    return {m: np.ascontiguousarray(np.stack(v), dtype=np.float32) for m, v in out.items()}
