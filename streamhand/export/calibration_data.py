"""Model inputs made from rendered synthetic hands: INT8 calibration batches and benchmark inputs.

Keypoint inputs go through the same encoding as at run time (:func:`streamhand.codec.encode_2d`,
:func:`~streamhand.codec.encode_world`); image crops come from the renderer through the run-time crop.
"""

from __future__ import annotations

import numpy as np

from streamhand.codec import encode_2d, encode_world


def model_inputs(modalities: tuple[str, ...], n: int, image_size: int = 128, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` hands' inputs for each modality (float32, batch first)."""
    from streamhand.synth.sampler import SamplerConfig, sample_hands

    rng = np.random.default_rng(seed)
    hs = sample_hands(rng, n, SamplerConfig(in_frame_margin=20.0))
    x2d, rot = encode_2d(hs.joints_2d, hs.left, hs.intrinsics)
    out: dict[str, np.ndarray] = {}
    if "2d" in modalities:
        out["2d"] = x2d.astype(np.float32)
    if "world" in modalities:
        centre = hs.joints_cam.mean(1, keepdims=True)
        out["world"] = encode_world(hs.joints_cam - centre, hs.left, rot)
    if "rgb" in modalities or "depth" in modalities:
        out.update(_image_inputs(rng, hs, modalities, image_size))
    return out


def _image_inputs(rng: np.random.Generator, hs, modalities: tuple[str, ...], size: int) -> dict[str, np.ndarray]:
    from streamhand.detect.crops import crop_square, normalise_depth, normalise_rgb, square_box
    from streamhand.synth.render import render

    rgb, depth = [], []
    for i in range(len(hs)):
        k = hs.intrinsics[i]
        r = render(rng, [hs.joints_cam[i]], k, left=[bool(hs.left[i])])
        box = square_box(hs.joints_2d[i], k.width, k.height)
        c = normalise_rgb(crop_square(r.rgb, box, size))
        rgb.append(c[..., ::-1] if hs.left[i] else c)  # left hands are mirrored like their keypoints
        d = normalise_depth(crop_square(r.depth.astype(np.float32) / 1000.0, box, size, interpolation=0))
        depth.append(d[..., ::-1] if hs.left[i] else d)
    out = {}
    if "rgb" in modalities:
        out["rgb"] = np.ascontiguousarray(np.stack(rgb), dtype=np.float32)
    if "depth" in modalities:
        out["depth"] = np.ascontiguousarray(np.stack(depth), dtype=np.float32)
    return out
