"""The built-in demo source: an endless, seamlessly looping clip of one or two rendered hands moving
through gestures, with RGB, depth and ground-truth 3D. The clip is rendered once when opened."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from streamhand.cache import cache_dir
from streamhand.capture.base import Frame, FrameSource, Pacer, SourceError, now
from streamhand.cpu import usable_cores
from streamhand.geometry import Intrinsics, axis_angle, project
from streamhand.outputs import remove_abandoned
from streamhand.synth.gl_render import HandLook, Lighting, RendererUnavailable
from streamhand.synth.hand import forward_kinematics, sample_shape
from streamhand.synth.render import RENDER_VERSION, RenderConfig, Take, render
from streamhand.synth.sampler import GESTURES
from streamhand.synth.scene import scene_background
from streamhand.synth.sensor import DEPTH_SETTINGS, WEBCAM_SETTINGS

log = logging.getLogger(__name__)
#: bump when the clip's script changes (4: one light, look and camera settings for the whole clip, as a real
#: recording has); renderer changes bump RENDER_VERSION (both key the cache)
DEMO_VERSION = 4


_SEQUENCES = (
    ("open", "point", "victory", "fist", "thumbs_up", "relaxed", "pinch", "grasp"),
    ("relaxed", "open", "grasp", "point", "open", "fist", "victory", "open"),
)


def _ease(t: np.ndarray | float) -> np.ndarray | float:
    return 0.5 - 0.5 * np.cos(np.pi * t)


def _angles_at(seq: tuple[str, ...], phase: float) -> np.ndarray:
    """Joint angles at ``phase`` in [0, 1): hold each gesture, then blend into the next (loops)."""
    x = phase * len(seq)
    i = int(x) % len(seq)
    f = x - int(x)
    blend = _ease(np.clip((f - 0.55) / 0.45, 0, 1))
    a, b = GESTURES[seq[i]], GESTURES[seq[(i + 1) % len(seq)]]
    return (1 - blend) * a + blend * b


def demo_hand_lengths(seed: int = 0) -> list[float]:
    """The true lengths (wrist to middle fingertip along the finger, metres) of the demo's two hands."""
    from streamhand.place.hand_size import chain_length
    from streamhand.synth.hand import NUM_ANGLES

    scales, props = sample_shape(np.random.default_rng(seed), 2)
    return [float(v) for v in chain_length(forward_kinematics(np.zeros((2, NUM_ANGLES)), scales, props))]


def demo_take(tones: list[np.ndarray]) -> Take:
    """The demo's recording, the same in every frame: a desk under a ceiling light ahead and to one side, a
    window's daylight from the other, light from the walls; bare hands of the given skin ``tones``; a webcam and
    a depth sensor at the middle of every setting the renderer draws (no defocus, neutral exposure and white
    balance, a lit room's noise)."""

    def unit(v: list[float]) -> np.ndarray:
        a = np.array(v)
        return a / np.linalg.norm(a)

    light = Lighting(key_dir=unit([0.35, -0.75, -0.55]), key_col=np.array([1.15, 1.1, 1.0]),
                     fill_dir=unit([-0.6, -0.1, -0.8]), fill_col=np.array([0.42, 0.45, 0.5]),
                     sky_col=np.array([0.33, 0.33, 0.35]), ground_col=np.array([0.12, 0.11, 0.1]),
                     shadow_soft=2.5, sss=0.6, gloss=0.06)  # fmt: skip
    looks = [HandLook(skin=np.asarray(t, np.float64), detail=0.7) for t in tones]
    return Take(light, looks, np.full(WEBCAM_SETTINGS, 0.5), np.full(DEPTH_SETTINGS, 0.5))


def demo_clip(n_frames: int, width: int, height: int, hands: int = 2, seed: int = 0):
    """Yield (rgb, depth_m, joints_cam list, left list) for each frame of a looping clip."""
    rng = np.random.default_rng(seed)
    k = Intrinsics.from_fov(width, height, 60.0)
    scales, props = sample_shape(rng, 2)
    backdrop, backdrop_depth = scene_background(rng, height, width, k.fx)
    backdrop_depth += max(0.0, 1.0 - float(backdrop_depth.min()))  # the scene stays behind the arms, every frame
    tone = [np.array([224, 172, 120], np.float32), np.array([214, 165, 118], np.float32)]
    cfg = RenderConfig(depth_noise=True, depth_holes=True, motion_blur=0.0)
    take = demo_take(tone)
    base = np.diag([1.0, -1.0, -1.0])  # palm toward the camera, fingers up
    for fi in range(n_frames):
        ph = fi / n_frames
        joints, lefts = [], []
        for h in range(hands):
            if h == 1 and ph < 0.5:  # the second hand joins for the second half of the loop
                continue
            left = h == 1
            angles = _angles_at(_SEQUENCES[h], (ph * (2 if h == 1 else 1)) % 1.0)
            local = forward_kinematics(angles[None], scales[h : h + 1], props[h : h + 1], left)[0]
            w = 2 * np.pi * ph
            roll = axis_angle(np.array([0, 0, 1.0]), np.deg2rad(18 * np.sin(w * 2 + h)))
            tilt = axis_angle(np.array([1.0, 0, 0]), np.deg2rad(15 * np.sin(w * 3 + 1)))
            yaw = axis_angle(np.array([0, 1.0, 0]), np.deg2rad(20 * np.sin(w + 2 * h)))
            r = roll @ tilt @ yaw @ base
            palm = 0.5 * (local[0] + local[9])
            side = 1.0 if left else -1.0  # facing us, the person's left hand is on the image's right
            centre = np.array([side * 0.11 if hands > 1 and ph >= 0.5 else 0.03 * np.sin(w),
                               0.02 + 0.03 * np.sin(2 * w), 0.45 + 0.07 * np.sin(w + h)])  # fmt: skip
            joints.append((local - palm) @ r.T + centre)
            lefts.append(left)
        out = render(rng, joints, k, [float(scales[i]) for i in range(len(joints))], cfg, left=lefts,
                     backdrop=backdrop, backdrop_depth=backdrop_depth, take=take)  # fmt: skip
        # a webcam-like MJPEG round trip (also what the on-disk cache stores)
        jpg = cv2.imdecode(cv2.imencode(".jpg", out.rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])[1], 1)
        yield np.ascontiguousarray(jpg[:, :, ::-1]), out.depth.astype(np.float32) / 1000.0, joints, lefts, k


class DemoSource(FrameSource):
    name = "demo"
    has_depth = True

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, seconds: float = 4.0,
                 hands: int = 2, realtime: bool = True, seed: int = 0, loop: bool = True):  # fmt: skip
        super().__init__()
        if hands not in (1, 2):
            raise ValueError("demo hands must be 1 or 2")
        self.width, self.height, self.fps, self.hands, self.seed = width, height, fps, hands, seed
        self.n_frames = max(2, int(round(seconds * fps)))
        self.loop = loop
        self._pacer = Pacer(fps if realtime else None)
        self._clip: list = []

    def _cache_path(self) -> Path:
        key = f"{DEMO_VERSION}-r{RENDER_VERSION}-{self.n_frames}-{self.width}x{self.height}-{self.hands}-{self.seed}"
        return cache_dir() / f"demo-{hashlib.sha1(key.encode()).hexdigest()[:12]}.zip"

    def open(self) -> None:
        if not self._clip:
            path = self._cache_path()
            try:
                self._clip = _load_clip(path) if path.is_file() else []
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                log.warning("demo clip cache %s unreadable; rendering again", path)
                self._clip = []
            if not self._clip:
                log.info("rendering the demo clip once (%d frames, %dx%d); cached in %s",
                         self.n_frames, self.width, self.height, path.parent)  # fmt: skip
                try:
                    self._clip = list(demo_clip(self.n_frames, self.width, self.height, self.hands, self.seed))
                except RendererUnavailable as e:
                    raise SourceError(f"demo: {e}") from None
                try:
                    _save_clip(path, self._clip)
                except OSError as e:  # a read-only home is fine: we just render next time too
                    log.warning("could not cache the demo clip: %s", e)
        self._i = 0

    @property
    def length(self) -> int | None:
        return None if self.loop else self.n_frames

    def read(self) -> Frame | None:
        if not self.loop and self._i >= self.n_frames:
            return None
        rgb, depth, joints, lefts, k = self._clip[self._i % self.n_frames]
        self._i += 1
        self._pacer.wait()
        t, tu = now()
        # cut: the clip starts again here, and the true hands jump
        truth = {"joints_cam": [j.copy() for j in joints], "left": list(lefts),
                 "joints_2d": [project(j, k) for j in joints],
                 "cut": self._i > 1 and (self._i - 1) % self.n_frames == 0}  # fmt: skip
        i = self._next_index()
        return Frame(i, t, tu, rgb, k, "demo", depth=depth, truth=truth, t_media=i / self.fps)


def _save_clip(path: Path, clip: list) -> None:
    """Frames as PNG (lossless copies of the JPEG-decoded RGB; 16-bit depth in mm) plus truth, in one zip,
    written atomically. The images are encoded on every core (OpenCV's codecs release the GIL); nothing else runs
    in those threads (Python 3.11's parser, which reading an ``.npz`` header uses, is not safe across threads)."""

    def pngs(frame: tuple) -> tuple[bytes, bytes]:
        rgb, depth = frame[0], frame[1]
        mm = np.clip(np.rint(depth * 1000.0), 0, 65535).astype(np.uint16)  # the millimetres rendered, exactly
        return (cv2.imencode(".png", rgb[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes(),
                cv2.imencode(".png", mm)[1].tobytes())  # fmt: skip

    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(path)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        with ThreadPoolExecutor(usable_cores()) as pool, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
            for i, ((rgb_png, depth_png), (_, _, joints, lefts, k)) in enumerate(zip(pool.map(pngs, clip), clip)):
                z.writestr(f"{i:05d}.rgb.png", rgb_png)
                z.writestr(f"{i:05d}.depth.png", depth_png)
                buf = io.BytesIO()
                np.savez(buf, joints=np.array(joints).reshape(-1, 21, 3), left=np.array(lefts, bool),
                         k=np.array([k.width, k.height, k.fx, k.fy, k.cx, k.cy]))  # fmt: skip
                z.writestr(f"{i:05d}.truth.npz", buf.getvalue())
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C or a full disk while saving: no partial clip left (a kill -9 is swept later)
        tmp.unlink(missing_ok=True)
        raise


def _load_clip(path: Path) -> list:
    """The frames :func:`_save_clip` wrote; the images decoded on every core, as they were encoded, a few frames per
    core at a time (the whole clip's compressed images are never held at once). The truth is read in this thread,
    while the pool is idle."""

    def images(parts: tuple[bytes, bytes]) -> tuple[np.ndarray, np.ndarray]:
        rgb = cv2.imdecode(np.frombuffer(parts[0], np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        mm = cv2.imdecode(np.frombuffer(parts[1], np.uint8), cv2.IMREAD_UNCHANGED)
        return np.ascontiguousarray(rgb), mm.astype(np.float32) / 1000.0

    cores = usable_cores()
    clip = []
    with zipfile.ZipFile(path) as z, ThreadPoolExecutor(cores) as pool:
        names = sorted({n.split(".")[0] for n in z.namelist()})
        for at in range(0, len(names), 4 * cores):
            chunk = names[at : at + 4 * cores]
            stored = [(z.read(f"{n}.rgb.png"), z.read(f"{n}.depth.png")) for n in chunk]
            truths = [dict(np.load(io.BytesIO(z.read(f"{n}.truth.npz")))) for n in chunk]  # read before decoding
            for (rgb, depth), t in zip(pool.map(images, stored), truths):
                kk = t["k"]
                k = Intrinsics(int(kk[0]), int(kk[1]), *map(float, kk[2:]))
                clip.append((rgb, depth, list(t["joints"]), [bool(v) for v in t["left"]], k))
    return clip
