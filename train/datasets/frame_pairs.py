"""Your own frames as MediaPipe-labelled pairs: fine-tuning a shipped model on a folder in the real-frames format
(:mod:`train.datasets.frames`: images + labels.json with 3D truth).

MediaPipe (static images, the shipped runtime's own detector) runs on every frame; where it finds the labelled
hand (its landmarks' centre within half the hand's size of the truth's projection), its 2D landmarks and world
landmarks are kept beside the frame's 3D truth and the camera — the same fields as the renders' pairs
(:mod:`train.datasets.mediapipe_pairs`), so the trainer mixes them into batches the same way. For a model with an RGB
expert, each hand's colour crop is kept too (``rgb``, uint8, not mirrored), cut from the frame around MediaPipe's
landmarks as the runtime cuts it. The result is cached beside the other pairs, keyed by the folder's labels and
images (and the crops' size and view), so a second run does not detect again.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from train.datasets.frames import FrameDataError, load_frames
from train.progress import track

log = logging.getLogger(__name__)
VERSION = 1  # bump when the stored fields change


#: the colour crops to keep with the pairs: (side in pixels, view: "box" or "turned"), as the model's image_size and
#: crop_view; None: none
Crop = tuple[int, str]


def cache_path(root: str | Path, cache_dir: str | Path, crop: Crop | None = None) -> Path:
    """Where the pairs of ``root`` are kept: named by a hash of its labels and its images' names, sizes and times
    (and the crops' size and view)."""
    r = Path(root)
    h = hashlib.sha1((r / "labels.json").read_bytes())
    for p in sorted((r / "images").rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(r)}:{st.st_size}:{st.st_mtime_ns}".encode())
    crops = "" if crop is None else f"_rgb{crop[0]}{crop[1]}"
    return Path(cache_dir) / f"frame_pairs_v{VERSION}_{h.hexdigest()[:16]}{crops}.npz"


def detect_frames(root: str | Path, progress: bool = True, crop: Crop | None = None) -> dict[str, np.ndarray]:
    """MediaPipe on every frame of ``root``: ``landmarks`` (M, 21, 2) px, ``world`` (M, 21, 3) m, ``joints_cam``
    (M, 21, 3) m, ``left`` (M,) (the label, else MediaPipe's), ``fx``, ``fy``, ``cx``, ``cy`` (M,); with ``crop``,
    ``rgb`` (M, 3, S, S) uint8, each hand's crop as the runtime cuts it (not mirrored)."""
    from streamhand.detect import MediaPipeHands
    from streamhand.detect.crops import CROP_MARGIN, hand_crops

    frames = load_frames(root)
    k, truth_2d = frames.intrinsics, frames.joints_2d
    lms, worlds, cams, lefts, crops = [], [], [], [], []
    with MediaPipeHands(max_hands=2, tracking=False) as det:
        for i in track(range(len(frames)), description=f"MediaPipe on {Path(root).name}", disable=not progress):
            image = frames.image(i)
            dets = det(image)
            size = float(np.ptp(truth_2d[i], axis=0).max())
            dist = [float(np.linalg.norm(d.landmarks_px.mean(0) - truth_2d[i].mean(0))) for d in dets]
            if not dets or min(dist) > 0.5 * size:
                continue
            d = dets[int(np.argmin(dist))]
            if crop is not None:  # the encoder's input in [-0.5, 0.5] back to the bytes it came from
                x = hand_crops(image, None, [d.landmarks_px], ("rgb",), crop[0], CROP_MARGIN,
                               (k.fx, k.fy, k.cx, k.cy), view=crop[1])["rgb"][0]  # fmt: skip
                crops.append(np.round((x + 0.5) * 255.0).astype(np.uint8))
            lms.append(d.landmarks_px)
            worlds.append(d.world)
            cams.append(frames.joints_cam[i])
            lefts.append((frames.handedness[i] or d.handedness) == "left")
    m = len(lms)
    out = {"landmarks": np.array(lms).reshape(m, 21, 2), "world": np.array(worlds).reshape(m, 21, 3),
           "joints_cam": np.array(cams).reshape(m, 21, 3), "left": np.array(lefts, bool),
           "fx": np.full(m, k.fx), "fy": np.full(m, k.fy), "cx": np.full(m, k.cx), "cy": np.full(m, k.cy),
           "n_frames": np.array(len(frames))}  # fmt: skip
    if crop is not None:
        out["rgb"] = np.array(crops, np.uint8).reshape(m, 3, crop[0], crop[0])
    return out


def load_frame_pairs(root: str | Path, cache_dir: str | Path, progress: bool = True,
                     crop: Crop | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """The pairs of ``root`` (detected once, then cached; with ``crop``, each hand's colour crop too);
    :class:`FrameDataError` if MediaPipe finds no labelled hand in it."""
    load_frames(root)  # a folder that is not in the format: its one-line error first
    path = cache_path(root, cache_dir, crop)
    if path.is_file():
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
    else:
        data = detect_frames(root, progress, crop)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **data)  # a hand's colour crop is most of it: about half the bytes
        os.replace(tmp, path)
    n, found = int(data.pop("n_frames")), len(data["left"])
    if found == 0:
        raise FrameDataError(f"{root}: MediaPipe found none of the {n} labelled hands; nothing to train on")
    log.info("%d of %d frames in %s have the labelled hand found by MediaPipe (cached in %s)", found, n, root, path)
    return data
