"""Synthetic 2D/3D pairs from :mod:`streamhand.synth`, with detector-like 2D noise, generated in seeded chunks.

Keypoints are in the model's frames: seen by a virtual camera turned toward the hand (see
:mod:`streamhand.codec`), normalised, and left hands mirrored to right ones.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import numpy as np
import torch

from streamhand.codec import encode_2d, encode_3d, encode_world, mirror_crops
from streamhand.detect.crops import normalise_rgb
from streamhand.synth.sampler import IntrinsicsBatch, SamplerConfig, sample_hands
from train.config import DataConfig
from train.datasets.pairs import PoseBatch, encode_pairs, simulated_world


def make_pairs(
    rng: np.random.Generator,
    n: int,
    cfg: DataConfig,
    noise_px: float | None = None,
    crop_rows: np.ndarray | None = None,
) -> PoseBatch:
    """``n`` samples; ``noise_px`` replaces the detector-like noise by fixed Gaussian pixels (evaluation);
    ``crop_rows``: the only samples whose crops are rendered (:func:`train.datasets.pairs.encode_pairs`)."""
    sc = SamplerConfig(
        width=cfg.width,
        height=cfg.height,
        depth_range=cfg.depth_range,
        facing_fraction=cfg.facing_fraction,
        gesture_fraction=cfg.gesture_fraction,
    )
    hs = sample_hands(rng, n, sc)
    return encode_pairs(rng, hs.joints_cam, hs.joints_2d, hs.visible, hs.left, hs.intrinsics, cfg, noise_px,
                        crop_rows)  # fmt: skip


def turn_about_axis(mp: dict[str, np.ndarray], idx: np.ndarray, angle: np.ndarray) -> dict[str, np.ndarray]:
    """Labelled renders ``idx`` as seen by their camera turned about its optical axis by ``angle`` (radians):
    landmarks turn about the principal point, 3D (truth and world landmarks) about the z axis."""
    c, s = np.cos(angle), np.sin(angle)
    rz = np.zeros((len(idx), 3, 3))
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = c, -s, s, c, 1.0
    f = {a: mp[a][idx] for a in ("fx", "fy", "cx", "cy")}
    focal = np.stack([f["fx"], f["fy"]], -1)[:, None]
    centre = np.stack([f["cx"], f["cy"]], -1)[:, None]
    rays = (mp["landmarks"][idx] - centre) / focal
    px = (rays @ rz[:, :2, :2].transpose(0, 2, 1)) * focal + centre
    return {"landmarks": px, "joints_cam": mp["joints_cam"][idx] @ rz.transpose(0, 2, 1),
            "world": mp["world"][idx] @ rz.transpose(0, 2, 1), "left": mp["left"][idx], **f}  # fmt: skip


def turn_crops(crops: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(k, 3, S, S) uint8 crops as the camera they were cut from, turned about its optical axis by ``angle`` (k,
    radians; :func:`turn_about_axis`), would cut them: each turned about its centre, the corners it uncovers black
    as beyond a frame's edge; (k, 3, S, S) float32 in [-0.5, 0.5], the image encoders' input."""
    import cv2

    out = np.empty(crops.shape, np.float32)
    size = crops.shape[-1]
    centre = ((size - 1) / 2.0, (size - 1) / 2.0)
    for i, (crop, a) in enumerate(zip(crops, angle)):
        img = np.ascontiguousarray(crop.transpose(1, 2, 0))
        if a != 0:  # cv2's positive angle turns the picture the other way round from turn_about_axis's
            img = cv2.warpAffine(img, cv2.getRotationMatrix2D(centre, -np.degrees(a), 1.0), (size, size),
                                 flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))  # fmt: skip
        out[i] = normalise_rgb(img)
    return out


def mediapipe_rows(rng: np.random.Generator, n: int, mp: dict[str, np.ndarray], cfg: DataConfig) -> np.ndarray:
    """Which of ``n`` samples :func:`mix_mediapipe` replaces by MediaPipe-labelled hands."""
    k = int(round(cfg.mediapipe_fraction * n))
    if k == 0 or len(mp["left"]) == 0:
        return np.zeros(0, np.int64)
    return rng.choice(n, k, replace=False)


def mix_mediapipe(
    rng: np.random.Generator,
    data: PoseBatch,
    mp: dict[str, np.ndarray],
    cfg: DataConfig,
    dst: np.ndarray | None = None,
) -> None:
    """Replace a share (``cfg.mediapipe_fraction``) of ``data``'s inputs by MediaPipe-labelled hands (in place),
    each turned about the optical axis by a random angle (``cfg.mediapipe_augment``); the world input is
    MediaPipe's own for ``cfg.mediapipe_world_fraction`` of them, simulated from the truth for the rest. Where the
    hands carry colour crops (``rgb``: your own frames') and ``data`` has crops, theirs replace them, turned alike
    and mirrored for left hands as the renders' are. ``dst``: the samples replaced, if already chosen
    (:func:`mediapipe_rows`)."""
    if dst is None:
        dst = mediapipe_rows(rng, len(data.scale), mp, cfg)
    k = len(dst)
    if k == 0:
        return
    src = rng.integers(0, len(mp["left"]), k)
    angle = rng.uniform(-np.pi, np.pi, k) if cfg.mediapipe_augment else np.zeros(k)
    m = turn_about_axis(mp, src, angle)
    left = m["left"]
    ks = IntrinsicsBatch(0, 0, m["fx"], m["fy"], m["cx"], m["cy"])
    x2d, rot = encode_2d(m["landmarks"], left, ks)
    y3d, scale = encode_3d(m["joints_cam"], left, rot)
    data.x2d[dst] = torch.from_numpy(x2d)
    own = rng.random(k) < cfg.mediapipe_world_fraction
    world = np.where(own[:, None, None], m["world"], simulated_world(rng, m["joints_cam"], cfg.world_noise))
    data.xworld[dst] = torch.from_numpy(encode_world(world, left, rot))
    data.y3d[dst] = torch.from_numpy(y3d.astype(np.float32))
    data.y2d[dst] = data.x2d[dst]  # MediaPipe's 2D is the 2D target too
    data.joints_cam[dst], data.scale[dst], data.left[dst], data.rot[dst] = m["joints_cam"], scale, left, rot
    if "rgb" in mp and "rgb" in data.images:
        data.images["rgb"][dst] = torch.from_numpy(mirror_crops(turn_crops(mp["rgb"][src], angle), left))


def chunk_data(
    seed: int, c: int, cfg: DataConfig, n: int, mediapipe: dict[str, np.ndarray] | None = None, rank: int = 0
) -> PoseBatch:
    """Chunk ``c`` of the stream of ``rank`` (one process of a multi-GPU run): ``default_rng([seed, c])`` for
    rank 0, so a single-process run's data does not depend on how it is made."""
    rng = np.random.default_rng([seed, c] if rank == 0 else [seed, c, rank])
    if cfg.kind != "synthetic" and cfg.crops:  # a published dataset's images for the image experts
        from train.datasets.published_images import image_pairs

        return image_pairs(rng, cfg, n)
    if cfg.kind != "synthetic":  # a published dataset's hands, drawn with replacement
        from train.datasets.published import published_hands

        hands = published_hands(cfg, "train")
        i = rng.integers(0, len(hands), n)
        return encode_pairs(rng, hands.joints_cam[i], hands.joints_2d[i], np.ones((n, 21), bool), hands.left[i],
                            hands.intrinsics.take(i), cfg)  # fmt: skip
    if mediapipe is not None and "rgb" in mediapipe and set(cfg.crops) == {"rgb"}:
        # your frames' colour crops replace the renders' for their share: only the rest are rendered
        dst = mediapipe_rows(rng, n, mediapipe, cfg)
        data = make_pairs(rng, n, cfg, crop_rows=np.setdiff1d(np.arange(n), dst))
        mix_mediapipe(rng, data, mediapipe, cfg, dst)
        return data
    data = make_pairs(rng, n, cfg)
    if mediapipe is not None:
        mix_mediapipe(rng, data, mediapipe, cfg)
    return data


_WORKER: dict = {}


def _worker_init(cfg: DataConfig, mediapipe: dict[str, np.ndarray] | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the trainer stops its workers
    torch.set_num_threads(1)
    _WORKER.update(cfg=cfg, mediapipe=mediapipe)


def _worker_chunk(seed: int, c: int, n: int, rank: int) -> PoseBatch:
    return chunk_data(seed, c, _WORKER["cfg"], n, _WORKER["mediapipe"], rank)


def batches(
    seed: int,
    cfg: DataConfig,
    batch_size: int,
    start_step: int = 0,
    mediapipe: dict[str, np.ndarray] | None = None,
    workers: int = 0,
    rank: int = 0,
) -> Iterator[PoseBatch]:
    """Endless batches; chunk ``c`` is drawn from its own seeded generator, so resuming is exact and the data
    are the same whether chunks are made here or by ``workers`` processes (made ahead, in order)."""
    per_chunk = max(1, cfg.chunk // batch_size)
    n = per_chunk * batch_size
    c = start_step // per_chunk
    skip = start_step % per_chunk
    pool = None
    if workers > 0:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(workers, mp.get_context("spawn"), initializer=_worker_init,
                                   initargs=(cfg, mediapipe))  # fmt: skip
    ahead: list = []
    try:
        while True:
            if pool is not None:
                while len(ahead) < 2 * workers:
                    ahead.append(pool.submit(_worker_chunk, seed, c + len(ahead), n, rank))
                data = ahead.pop(0).result()
            else:
                data = chunk_data(seed, c, cfg, n, mediapipe, rank)
            for i in range(skip, per_chunk):
                s = slice(i * batch_size, (i + 1) * batch_size)
                yield data.take(s)
            skip = 0
            c += 1
    finally:
        if pool is not None:
            for f in ahead:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def pooled(
    stream: Iterator[PoseBatch],
    samples: int,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    convert: Callable[[PoseBatch], PoseBatch] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[PoseBatch]:
    """Endless batches replayed from the first ``samples`` of ``stream`` (whole batches, taken from it here, each
    passed through ``convert`` as it arrives, e.g. crops to a frozen trunk's features), every pass in its own seeded
    order, so step ``k`` sees the same batch whether or not the run was resumed. ``progress(n)`` is told the samples
    made."""
    parts = []
    for _ in range(max(1, samples // batch_size)):
        b = next(stream)
        parts.append(convert(b) if convert is not None else b)
        if progress is not None:
            progress(len(parts) * batch_size)
    return _replay(PoseBatch.concat(parts), batch_size, seed, start_step)


def _replay(pool: PoseBatch, batch_size: int, seed: int, step: int) -> Iterator[PoseBatch]:
    per_pass = len(pool.scale) // batch_size
    while True:
        order = np.random.default_rng([seed, step // per_pass]).permutation(len(pool.scale))
        i = step % per_pass
        yield pool.take(order[i * batch_size : (i + 1) * batch_size])
        step += 1
