"""Rendered image crops for the RGB and depth experts (training, INT8 calibration, benchmarks), made as the
runtime makes its crops.

At run time a crop is the square box around the detector's landmarks (``detect.crop_margin`` x their extent,
:func:`streamhand.detect.crops.square_box`) resampled to S x S. Here the renderer draws that box directly:
a camera whose intrinsics map the box onto an S x S image (focal lengths and principal point scaled and
shifted), so a crop costs an S x S render instead of a full frame. The box comes from the noisy 2D keypoints,
so crops jitter as they do behind a real detector. Depth has the renderer's RealSense-like noise, holes and
edge artefacts. Both are normalised by the runtime's own functions and left hands are mirrored like their
keypoints. (Unlike the runtime, a box reaching past the image edge shows scene instead of no data.)
"""

from __future__ import annotations

import numpy as np

from streamhand.detect.crops import normalise_depth, normalise_rgb, square_box
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
) -> dict[str, np.ndarray]:
    """(n, 3, S, S) ``rgb`` and/or (n, 1, S, S) ``depth`` for ``n`` hands."""
    rgb, depth = [], []
    for i in range(len(joints_cam)):
        box = square_box(kp2d[i], width, height, margin)
        s = size / box.side
        k = Intrinsics(size, size, float(cams.fx[i]) * s, float(cams.fy[i]) * s, (float(cams.cx[i]) - box.x0) * s,
                       (float(cams.cy[i]) - box.y0) * s)  # fmt: skip
        r = render(rng, [joints_cam[i]], k, cfg=CROP_RENDER, left=[bool(left[i])])
        flip = (lambda a: a[..., ::-1]) if left[i] else (lambda a: a)
        if "rgb" in modalities:
            rgb.append(flip(normalise_rgb(r.rgb)))
        if "depth" in modalities:
            depth.append(flip(normalise_depth(r.depth.astype(np.float32) / 1000.0)))
    out = {}
    if rgb:
        out["rgb"] = np.ascontiguousarray(np.stack(rgb), dtype=np.float32)
    if depth:
        out["depth"] = np.ascontiguousarray(np.stack(depth), dtype=np.float32)
    return out
