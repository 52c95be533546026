"""MediaPipe-labelled renders: render synthetic hands, run the real MediaPipe detector on them, and keep its
2D landmarks and its own metric 3D (world landmarks) paired with the renderer's 3D. Training on these teaches
the 2D path MediaPipe's landmark convention and noise (where it puts the wrist, the CMC, the fingertips on the
skin) and the world expert how MediaPipe's 3D relates to the truth."""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from streamhand.detect.mediapipe_hands import Detection
from streamhand.synth.render import RENDER_VERSION, Rendered, render
from streamhand.synth.sampler import HandSamples, SamplerConfig, sample_hands
from train.progress import track

log = logging.getLogger(__name__)
#: bump when the stored fields change (3: world landmarks; 4: MediaPipe's handedness and score; 5: the score is the
#: landmark network's presence; 6: its image landmarks' relative depth)
PAIRS_VERSION = 6


def rendered_hand_detector(flip_average: bool = False):
    """The detector renders are judged with: MediaPipe's graph (static images, one hand), or with ``flip_average``
    its networks run by our tracking, each hand read with its mirrored crop (what ``run --flip-average`` does)."""
    if not flip_average:
        from streamhand.detect import MediaPipeHands

        return MediaPipeHands(max_hands=1, tracking=False)
    from streamhand.detect.gpu_hands import NetworkHands
    from streamhand.export.hand_networks import prepare_hand_networks

    return NetworkHands(max_hands=1, tracking=False, runtime="onnxruntime", models_dir=prepare_hand_networks(),
                        flip_average=True)  # fmt: skip


def detect_rendered(
    rng: np.random.Generator, hs: HandSamples, progress: bool = True, flip_average: bool = False
) -> Iterator[tuple[int, Detection | None, Rendered]]:
    """Render each sampled hand alone and run the real MediaPipe (static images, one hand;
    :func:`rendered_hand_detector`) on it: yields (index, its first detection or None, the rendered frame)."""
    with rendered_hand_detector(flip_average) as det:
        for i in track(range(len(hs)), description="render + MediaPipe", disable=not progress):
            r = render(rng, [hs.joints_cam[i]], hs.intrinsics[i], [hs.scale[i]], left=[bool(hs.left[i])])
            d = det(r.rgb)
            yield i, (d[0] if d else None), r


def generate(n: int, seed: int, width: int = 640, height: int = 480, progress: bool = True) -> dict[str, np.ndarray]:
    """Render ``n`` hands and keep those MediaPipe finds: ``landmarks`` (M, 21, 2) px, ``world`` (M, 21, 3)
    MediaPipe's world landmarks (m), ``joints_cam`` (M, 21, 3) m, ``left`` (M,) (the true handedness), the
    camera's ``fx``, ``fy``, ``cx``, ``cy`` (M,), MediaPipe's own ``mp_left``, ``handedness_score`` and ``score``
    (M,) and ``landmarks_z`` (M, 21), its image landmarks' relative depth (pixels, as ``Detection.landmarks_z``)."""
    rng = np.random.default_rng(seed)
    cfg = SamplerConfig(width=width, height=height, facing_fraction=0.85, in_frame_margin=8.0)
    hs = sample_hands(rng, n, cfg)
    lms, zs, worlds, cams, lefts, ks, mp_left, hscore, score = [], [], [], [], [], [], [], [], []
    for i, d, _ in detect_rendered(rng, hs, progress):
        if d is None:
            continue
        size = float(np.ptp(hs.joints_2d[i], axis=0).max())
        if np.linalg.norm(d.landmarks_px.mean(0) - hs.joints_2d[i].mean(0)) > 0.5 * size:
            continue  # found something else
        lms.append(d.landmarks_px)
        zs.append(d.landmarks_z)
        worlds.append(d.world)
        cams.append(hs.joints_cam[i])
        lefts.append(bool(hs.left[i]))
        mp_left.append(d.handedness == "left")
        hscore.append(d.handedness_score)
        score.append(d.score)
        k = hs.intrinsics[i]
        ks.append((k.fx, k.fy, k.cx, k.cy))
    kk = np.array(ks, np.float64).reshape(-1, 4)
    return {"landmarks": np.array(lms).reshape(-1, 21, 2), "world": np.array(worlds).reshape(-1, 21, 3),
            "joints_cam": np.array(cams).reshape(-1, 21, 3), "left": np.array(lefts, bool),
            "mp_left": np.array(mp_left, bool), "handedness_score": np.array(hscore, np.float32),
            "score": np.array(score, np.float32), "fx": kk[:, 0], "fy": kk[:, 1], "cx": kk[:, 2],
            "cy": kk[:, 3], "landmarks_z": np.array(zs, np.float32).reshape(-1, 21)}  # fmt: skip


def cache_path(cache_dir: str | Path, n: int, seed: int) -> Path:
    """Where :func:`load_or_generate` keeps ``n`` labelled renders of ``seed`` from this renderer version."""
    return Path(cache_dir) / f"mediapipe_pairs_v{PAIRS_VERSION}_n{n}_s{seed}_r{RENDER_VERSION}.npz"


def shards_of(n: int, seed: int, shards: int = 1) -> list[tuple[int, int]]:
    """``(n, seed)`` of each cache that ``n`` labelled renders made as ``shards`` caches consist of: ``n // shards``
    each, seeds ``seed``, ``seed + 1``, ..."""
    return [(n // shards, seed + i) for i in range(shards)]


def load_shards(cache_dir: str | Path, n: int, seed: int, shards: int = 1) -> dict[str, np.ndarray]:
    """``n`` labelled renders made as ``shards`` caches (:func:`shards_of`; generate them in parallel with
    ``python -m train mediapipe-pairs``), concatenated."""
    parts = [load_or_generate(cache_dir, k, s) for k, s in shards_of(n, seed, shards)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def load_or_generate(cache_dir: str | Path, n: int, seed: int) -> dict[str, np.ndarray]:
    path = cache_path(cache_dir, n, seed)
    if path.is_file():
        try:
            with np.load(path) as z:  # pickles refused: a cache holds arrays only
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # cut short, or not this program's
            log.warning("%s: unreadable (%s: %s); labelling the hands again", path, type(e).__name__, e)
    log.info("generating %d MediaPipe-labelled hands (cached in %s)", n, path)
    data = generate(n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, **data)
        os.replace(tmp, path)
    except BaseException:  # a full disk, Ctrl-C: no part file left in the cache
        tmp.unlink(missing_ok=True)
        raise
    return data
