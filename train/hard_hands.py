"""Hands the model cannot read well, made from our own renders so that their truth is known: drawn, heavily blurred,
gloved and partly hidden hands beside the same renders left clean. Each frame goes through the runtime
(:class:`streamhand.HandTracker`, still images), and the published uncertainty is set against the actual error:
does ``joint_std`` grow with it, is it at least half of it (``python -m train hard-hands``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np

from streamhand.synth.render import render
from streamhand.synth.sampler import SamplerConfig, sample_hands
from train.progress import track

log = logging.getLogger(__name__)

#: glove colours (RGB): blue, black, yellow, green, white
GLOVES = np.array([[40, 70, 190], [35, 35, 38], [225, 200, 40], [50, 150, 70], [235, 235, 230]], float)


def _hand_size(uv: np.ndarray) -> float:
    return float(np.ptp(uv, axis=0).max())


def drawing(rng: np.random.Generator, rgb: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """A coloured-pencil drawing of the frame (OpenCV's pencil sketch)."""
    _gray, colour = cv2.pencilSketch(rgb, sigma_s=float(rng.uniform(40, 80)), sigma_r=0.07, shade_factor=0.04)
    return colour


def blur(rng: np.random.Generator, rgb: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Heavy motion blur along a random direction (0.3-0.5 of the hand's size), then a little defocus."""
    length = max(3, int(_hand_size(uv) * rng.uniform(0.3, 0.5)))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    turn = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, turn, (length, length))
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.GaussianBlur(cv2.filter2D(rgb, -1, kernel), (0, 0), 1.5)


def hidden(rng: np.random.Generator, rgb: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """An opaque object (a box or a disc, of a random colour) over 30-50 % of the hand's joints."""
    out = rgb.copy()
    share = rng.uniform(0.3, 0.5)
    centre = uv[rng.integers(1, 21)]
    order = np.argsort(np.linalg.norm(uv - centre, axis=1))[: max(1, round(share * 21))]
    lo, hi = uv[order].min(0) - 6, uv[order].max(0) + 6
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    if rng.random() < 0.5:
        cv2.rectangle(out, tuple(int(v) for v in lo), tuple(int(v) for v in hi), colour, -1)
    else:
        c, axes = (lo + hi) / 2, (hi - lo) / 2 * 1.3
        cv2.ellipse(out, (int(c[0]), int(c[1])), (int(axes[0]), int(axes[1])), 0, 0, 360, colour, -1)
    return out


#: each kind: (how it changes a rendered frame, whether the hand is rendered in a glove)
KINDS: dict[str, tuple[Callable | None, bool]] = {
    "clean": (None, False), "drawing": (drawing, False), "blur": (blur, False), "glove": (None, True),
    "hidden": (hidden, False),
}  # fmt: skip


def frames(kind: str, n: int, seed: int):
    """``n`` frames of ``kind``: (rgb, intrinsics, truth joints (21, 3) m, truth 2D (21, 2) px), one hand each."""
    change, gloved = KINDS[kind]
    rng = np.random.default_rng(seed)
    hs = sample_hands(rng, n, SamplerConfig(width=640, height=480, facing_fraction=0.85, in_frame_margin=8.0))
    for i in range(n):
        skin = [GLOVES[rng.integers(len(GLOVES))]] if gloved else None
        r = render(rng, [hs.joints_cam[i]], hs.intrinsics[i], [hs.scale[i]], skin=skin, left=[bool(hs.left[i])])
        rgb = r.rgb if change is None else change(rng, r.rgb, hs.joints_2d[i])
        yield np.ascontiguousarray(rgb), hs.intrinsics[i], hs.joints_cam[i], hs.joints_2d[i]


def hard_hands(model: str | None = None, n: int = 60, seed: int = 5150, kinds: tuple[str, ...] = tuple(KINDS),
               progress: bool = True, flip_average: bool = False) -> dict:  # fmt: skip
    """Per kind: ``n``, ``detected`` (share), and over the detected hands ``error_mm`` (mean wrist-relative joint
    error), ``std_mm`` (mean joint_std), ``std_over_error``, ``quality_mm``, ``confidence`` and ``score`` (the
    detector's presence score, ``Hand.score``) (means); ``hard``: the same pooled over every kind but ``clean``. The
    same hands (``seed``) in every kind. ``flip_average``: the hands read as ``run --flip-average`` reads them
    (MediaPipe's networks, each hand with its mirrored crop)."""
    from streamhand import HandTracker

    out: dict = {}
    pooled: dict[str, list] = {m: [] for m in _MEASURES}
    pooled_n = 0
    with HandTracker(model=model, smooth=False, tracking=False, flip_average=flip_average) as tracker:
        for kind in kinds:
            got: dict[str, list] = {m: [] for m in _MEASURES}  # one entry per hand found
            for rgb, k, truth, uv in track(frames(kind, n, seed), total=n, description=kind, disable=not progress):
                hands = tracker.process(rgb, intrinsics=k)
                if not hands:
                    continue
                h = min(hands, key=lambda h: float(np.linalg.norm(h.joints_2d - uv, axis=1).mean()))
                if np.linalg.norm(h.joints_2d.mean(0) - uv.mean(0)) > 0.5 * _hand_size(uv):
                    continue  # found something else
                got["err"].append(1000 * float(np.linalg.norm(h.joints_rel - (truth - truth[0]), axis=1)[1:].mean()))
                got["std"].append(1000 * float(h.joint_std[1:].mean()))
                got["q"].append(1000 * h.quality)
                got["c"].append(np.nan if h.confidence is None else h.confidence)
                got["p"].append(h.score)
            out[kind] = _summary(n, got)
            if kind != "clean":
                for m in _MEASURES:
                    pooled[m] += got[m]
                pooled_n += n
            log.info("%s: %s", kind, out[kind])
    if pooled_n:
        out["hard"] = _summary(pooled_n, pooled)
    return out


#: what is kept of each hand found: its error, mean joint_std and quality (mm), confidence, presence score
_MEASURES = ("err", "std", "q", "c", "p")


def _summary(n: int, got: dict[str, list]) -> dict:
    """The figures of ``n`` frames whose found hands gave ``got`` (:data:`_MEASURES`, one entry per hand)."""
    found = len(got["err"])
    s: dict = {"n": n, "detected": found / max(n, 1)}
    if found:
        e, d = float(np.mean(got["err"])), float(np.mean(got["std"]))
        c = got["c"]
        s.update({"error_mm": e, "std_mm": d, "std_over_error": d / e, "quality_mm": float(np.mean(got["q"])),
                  "confidence": float(np.nanmean(c)) if np.isfinite(c).any() else None,
                  "score": float(np.mean(got["p"]))})  # fmt: skip
    return s


def report_lines(result: dict) -> list[str]:
    """A table: one line per kind and the pooled hard hands."""
    head = (("kind", 9), ("frames", 7), ("found", 7), ("error mm", 10), ("std mm", 8), ("std/err", 9), ("quality", 9),
            ("score", 7))  # fmt: skip
    lines = ["".join(f"{t:<{w}}" if i == 0 else f"{t:>{w}}" for i, (t, w) in enumerate(head)) + f"{'conf':>6}"]
    for kind, s in result.items():
        if "error_mm" not in s:
            lines.append(f"{kind:<9}{s['n']:>7}{s['detected']:>7.2f}   (no hand found)")
            continue
        conf = "-" if s["confidence"] is None else f"{s['confidence']:.2f}"
        lines.append(f"{kind:<9}{s['n']:>7}{s['detected']:>7.2f}{s['error_mm']:>10.1f}{s['std_mm']:>8.1f}"
                     f"{s['std_over_error']:>9.2f}{s['quality_mm']:>9.1f}{s['score']:>7.2f}{conf:>6}")  # fmt: skip
    return lines


def examples(seed: int = 5150, size: int = 160) -> np.ndarray:
    """One example of each kind side by side (RGB; :func:`train.synth_report.write_png` writes it)."""
    tiles = []
    for kind in KINDS:
        rgb, _k, _t, uv = next(frames(kind, 1, seed))
        c = uv.mean(0)
        half = int(max(_hand_size(uv) * 0.8, 40))
        x0, y0 = (int(max(0, min(v - half, lim - 2 * half))) for v, lim in zip(c, (rgb.shape[1], rgb.shape[0])))
        crop = rgb[y0 : y0 + 2 * half, x0 : x0 + 2 * half]
        tile = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, kind, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    return np.hstack(tiles)
