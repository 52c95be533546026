"""Model inputs made from rendered synthetic hands: INT8 calibration batches and benchmark inputs.

Keypoint inputs go through the same encoding as at run time (:func:`streamhand.codec.encode_2d`,
:func:`~streamhand.codec.encode_world`); image crops are rendered as the runtime crops
(:func:`streamhand.synth.crops.render_crops`).
"""

from __future__ import annotations

import numpy as np

from streamhand.codec import encode_2d, encode_cloud, encode_world


def model_inputs(modalities: tuple[str, ...], n: int, image_size: int = 128, seed: int = 0,
                 cloud_points: int = 256) -> dict[str, np.ndarray]:  # fmt: skip
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
    if any(m in modalities for m in ("rgb", "depth", "cloud")):
        out.update(_image_inputs(rng, hs, modalities, image_size, cloud_points))
        if "cloud" in out:
            out["cloud"] = encode_cloud(out["cloud"], hs.left, rot)
    return out


def _image_inputs(rng: np.random.Generator, hs, modalities: tuple[str, ...], size: int,
                  cloud_points: int) -> dict[str, np.ndarray]:  # fmt: skip
    from streamhand.synth.crops import render_crops

    mods = [m for m in ("rgb", "depth", "cloud") if m in modalities]
    cam = hs.intrinsics
    return render_crops(rng, hs.joints_cam, hs.joints_2d, hs.left, cam, cam.width, cam.height, mods, size,
                        cloud_points=cloud_points)  # fmt: skip
