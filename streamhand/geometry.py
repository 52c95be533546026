"""Pinhole camera intrinsics (OpenCV convention: x right, y down, z forward), projection, rotations."""

from __future__ import annotations

import json
import logging
import math
import numbers
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: lens distortion as intrinsics files write it (OpenCV's, RealSense's ``coeffs``): read, warned of, not applied
DISTORTION_KEYS = ("coeffs", "dist", "distortion", "dist_coeffs", "D")


def finite_number(v: Any) -> bool:
    """A real number, not a bool, and finite (an integer too large for a float is not)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _nonzero(v: Any) -> bool:
    try:
        return bool(np.any(np.asarray(v, dtype=np.float64) != 0))
    except (TypeError, ValueError):
        return v not in (None, "", [], {})


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels for an image of ``width`` x ``height``."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> Intrinsics:
        """Square pixels, principal point at the centre, ``hfov_deg`` the field of view across the longer side: a
        webcam's horizontal one, and the same camera's for a picture taken upright (portrait), which is then as
        far away as the same picture turned (applied to a portrait picture's width, it placed hands 40 % nearer)."""
        if not 10.0 <= hfov_deg <= 170.0:  # as check_plausible takes a camera's
            raise ValueError(f"field of view must be between 10 and 170 degrees, got {hfov_deg}")
        f = 0.5 * max(width, height) / math.tan(math.radians(hfov_deg) / 2)
        return cls(width, height, f, f, (width - 1) / 2, (height - 1) / 2)

    @classmethod
    def from_file(cls, path: str | Path) -> Intrinsics:
        """Read ``{"width", "height", "fx", "fy", "cx", "cy"}`` from JSON or YAML, or another tool's calibration file
        (ROS, Kalibr, OpenCV: :mod:`streamhand.calibration_files`); a ValueError (one line) names what is wrong:
        unreadable syntax, a missing field, a value that is not a number or out of range."""
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: cannot read the intrinsics ({getattr(e, 'strerror', None) or type(e).__name__})"
                             ) from None  # fmt: skip
        from streamhand.calibration_files import flat_intrinsics, is_opencv_storage, read_opencv_storage

        try:
            if is_opencv_storage(text):  # OpenCV's own YAML or XML, which plain YAML cannot read
                kind = "OpenCV FileStorage"
                data = read_opencv_storage(path)
            elif str(path).endswith((".yaml", ".yml")):
                import yaml

                kind = "YAML"
                try:  # the first document: `ros2 topic echo` ends each message with ---
                    data = next((d for d in yaml.safe_load_all(text) if d is not None), None)
                except yaml.YAMLError as e:
                    raise ValueError(str(e).replace("\n", " ")) from None
            else:
                kind = "JSON"
                data = json.loads(text)
        except ValueError as e:
            raise ValueError(f"{path}: not valid {kind} ({e})") from None
        data = flat_intrinsics(data, str(path))
        k = cls.from_mapping(data, str(path))
        lens = [name for name in DISTORTION_KEYS if name in data and _nonzero(data[name])]
        if lens:  # a file is read once a run: said once
            log.warning("%s: %s given but not applied: streamhand takes frames as a pinhole camera sees them "
                        "(undistort them first where the lens distorts much)", path, " and ".join(lens))  # fmt: skip
        return k

    @classmethod
    def from_mapping(cls, data: Any, where: str = "intrinsics") -> Intrinsics:
        """``{"width", "height", "fx", "fy", "cx", "cy"}`` (what :meth:`from_file` reads, or a dict given in code; also
        ROS's and Kalibr's layouts, :func:`~streamhand.calibration_files.flat_intrinsics`);
        a ValueError (one line, starting with ``where``) names a missing field or a value that is not a number or
        out of range."""
        from streamhand.calibration_files import flat_intrinsics

        data = flat_intrinsics(data, where)  # another tool's layout (ROS, Kalibr) as the flat map
        if not isinstance(data, dict):
            raise ValueError(f"{where}: intrinsics need a map of width, height, fx, fy, cx, cy")
        missing = [k for k in ("width", "height", "fx", "fy", "cx", "cy") if k not in data]
        if missing:
            raise ValueError(f"{where}: intrinsics need width, height, fx, fy, cx, cy ({', '.join(missing)} missing)")
        vals = {}
        for k in ("width", "height", "fx", "fy", "cx", "cy"):
            v = data[k]
            if isinstance(v, str):  # YAML 1.1 reads 5e2 (no dot) as text: a number written so is still one
                try:
                    v = float(v)
                except ValueError:
                    raise ValueError(f"{where}: {k} must be a number, got {data[k]!r}") from None
            if not finite_number(v):
                raise ValueError(f"{where}: {k} must be a number, got {data[k]!r}"[:200])
            if k in ("width", "height") and (v != int(v) or v < 1):
                raise ValueError(f"{where}: {k} must be a positive whole number of pixels, got {v!r}")
            if k in ("fx", "fy") and v <= 0:
                raise ValueError(f"{where}: {k} must be positive (pixels), got {v!r}")
            vals[k] = v
        k = cls(int(vals["width"]), int(vals["height"]), *(float(vals[k]) for k in ("fx", "fy", "cx", "cy")))
        k.check_plausible(where)
        return k

    def fov_deg(self) -> tuple[float, float]:
        """Horizontal and vertical field of view (degrees)."""
        return (math.degrees(2 * math.atan(self.width / (2 * self.fx))),
                math.degrees(2 * math.atan(self.height / (2 * self.fy))))  # fmt: skip

    def check_plausible(self, where: str) -> None:
        """A ValueError (one line, starting with ``where``) for intrinsics no camera has: the principal point
        outside the image, a field of view under 10 or over 170 degrees, or pixels more than 1.5x taller than
        wide (or the other way)."""
        if not (0 <= self.cx <= self.width and 0 <= self.cy <= self.height):
            raise ValueError(f"{where}: the principal point ({self.cx:g}, {self.cy:g}) lies outside the "
                             f"{self.width}x{self.height} image")  # fmt: skip
        hfov, vfov = self.fov_deg()
        if not (10 <= hfov <= 170 and 10 <= vfov <= 170):
            raise ValueError(f"{where}: a field of view of {hfov:.1f} x {vfov:.1f} degrees (fx {self.fx:g}, "
                             f"fy {self.fy:g} on {self.width}x{self.height}) is not a camera's; "
                             "fx and fy are in pixels")  # fmt: skip
        if not 1 / 1.5 <= self.fx / self.fy <= 1.5:
            raise ValueError(f"{where}: fx {self.fx:g} and fy {self.fy:g} differ by more than 1.5x (pixels are "
                             "square on webcams: fx and fy are nearly equal)")  # fmt: skip

    def for_frame(self, width: int, height: int) -> Intrinsics:
        """These intrinsics for frames of ``width`` x ``height``: as they are, or scaled where only the resolution
        differs; frames of another aspect ratio (a crop, not a scale) raise a ValueError naming both sizes."""
        if (width, height) == (self.width, self.height):
            return self
        if not self.same_aspect(width, height):
            raise ValueError(f"the intrinsics are for {self.width}x{self.height} but the frames are "
                             f"{width}x{height}, another aspect ratio; calibrate at this resolution "
                             "(or, for a camera, set --width/--height to match)")  # fmt: skip
        return self.scaled(width, height)

    def scaled(self, width: int, height: int) -> Intrinsics:
        sx, sy = width / self.width, height / self.height
        return Intrinsics(width, height, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy)

    def same_aspect(self, width: int, height: int) -> bool:
        """Whether frames of ``width`` x ``height`` have these intrinsics' aspect ratio (within 1 %)."""
        return abs(width * self.height - height * self.width) <= 0.01 * width * self.height

    def resized(self, width: int, height: int) -> Intrinsics:
        """These intrinsics for a camera that now delivers ``width`` x ``height``: scaled where only the resolution
        changed; for another aspect ratio, pixels kept square and the field of view across the longer side kept (a
        webcam's 16:9 mode is its 4:3 sensor cropped top and bottom), the principal point where it was relatively.
        Scaling each axis on its own would make pixels 1.33x taller than wide and place every hand wrong."""
        if self.same_aspect(width, height):
            return self.scaled(width, height)
        s = max(width, height) / max(self.width, self.height)
        return Intrinsics(width, height, self.fx * s, self.fy * s, self.cx * width / self.width,
                          self.cy * height / self.height)  # fmt: skip

    def mirrored(self) -> Intrinsics:
        """Intrinsics of the horizontally flipped image."""
        return Intrinsics(self.width, self.height, self.fx, self.fy, self.width - 1 - self.cx, self.cy)

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    def as_dict(self) -> dict:
        return asdict(self)


def intrinsic_columns(fx, fy, cx, cy) -> np.ndarray:
    """(4, B or 1, 1) float64: fx, fy, cx, cy as columns that broadcast over a batch of hands' joints (B, J); each
    argument a scalar, or all of them (B,) (one camera per hand)."""
    return np.asarray((fx, fy, cx, cy), dtype=np.float64).reshape(4, -1, 1)


def intrinsics_per_hand(fx: object, fy: object, cx: object, cy: object, b: int) -> np.ndarray:
    """(4, b) float64, C-ordered and writable, as the compiled functions take it (:func:`streamhand.jit.carray`): fx,
    fy, cx, cy as one column per hand (each argument a scalar, or all (b,))."""
    return np.require(np.broadcast_to(intrinsic_columns(fx, fy, cx, cy)[..., 0], (4, b)), np.float64, ("C", "W"))


def project(points: np.ndarray, k: Intrinsics) -> np.ndarray:
    """Camera-frame points (..., 3) -> pixels (..., 2)."""
    p = np.asarray(points, dtype=np.float64)
    z = np.maximum(p[..., 2], 1e-6)
    return np.stack([k.fx * p[..., 0] / z + k.cx, k.fy * p[..., 1] / z + k.cy], axis=-1)


def deproject(uv: np.ndarray, depth: np.ndarray, k: Intrinsics) -> np.ndarray:
    """Pixels (..., 2) and depth in metres (...) -> camera-frame points (..., 3)."""
    uv = np.asarray(uv, dtype=np.float64)
    z = np.asarray(depth, dtype=np.float64)
    return np.stack([(uv[..., 0] - k.cx) / k.fx * z, (uv[..., 1] - k.cy) / k.fy * z, z], axis=-1)


def axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: axes (..., 3), angles (...) -> rotation matrices (..., 3, 3)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    a = np.asarray(angle, dtype=np.float64)[..., None, None]
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    kx = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    eye = np.broadcast_to(np.eye(3), kx.shape)
    return eye + np.sin(a) * kx + (1 - np.cos(a)) * (kx @ kx)


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniformly distributed rotations (n, 3, 3) from random unit quaternions."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )
