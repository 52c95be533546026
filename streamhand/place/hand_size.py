"""The user's own hand size: a calibration file written once and read by every run.

Without depth the metric scale of a hand (and so its distance from the camera) follows the assumed hand
length, wrist crease to middle fingertip along the finger. An adult's is 0.16-0.21 m, so the adult average
(0.185 m) can be 10 % off. ``streamhand calibrate-hand`` stores the user's own: typed in (measured with a
ruler) or measured with a depth camera, where each frame's hand is scaled to fit its 2D landmarks at the
measured depth and the median over frames is kept.

The file is YAML at ``$STREAMHAND_CONFIG/hand.yaml`` (default ``$XDG_CONFIG_HOME/streamhand`` or
``~/.config/streamhand``): ``hand_length_m``, ``source`` ("manual" | "depth"), ``frames``, ``spread_m``,
``created``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

log = logging.getLogger(__name__)

#: adult average hand length, wrist crease to middle fingertip (metres)
DEFAULT_HAND_LENGTH_M = 0.185
#: plausible adult (and teenage) hand lengths (metres)
HAND_LENGTH_RANGE_M = (0.12, 0.25)
_MIDDLE_CHAIN = (0, 9, 10, 11, 12)


class CalibrationError(ValueError):
    """An unusable calibration (bad value, unreadable file, too few measurements)."""


def chain_length(joints: np.ndarray) -> np.ndarray:
    """Length along wrist -> middle MCP -> PIP -> DIP -> tip, shape (...)."""
    d = np.diff(np.asarray(joints)[..., _MIDDLE_CHAIN, :], axis=-2)
    return np.sqrt((d * d).sum(-1)).sum(-1)


def calibration_path() -> Path:
    """``$STREAMHAND_CONFIG/hand.yaml``, else under ``$XDG_CONFIG_HOME`` (unset or empty: ``~/.config``)."""
    base = os.environ.get("STREAMHAND_CONFIG") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "streamhand"
    )
    return Path(base) / "hand.yaml"


def check_length(m: float) -> float:
    lo, hi = HAND_LENGTH_RANGE_M
    if not np.isfinite(m) or not lo <= m <= hi:
        raise CalibrationError(f"hand length {m:.3f} m is outside {lo}-{hi} m (wrist crease to middle fingertip)")
    return float(m)


def save_hand_length(m: float, source: str, frames: int = 0, spread_m: float = 0.0, path: Path | None = None) -> Path:
    """Write the calibration atomically (a half-written file never replaces a good one); a place it cannot be
    written is a CalibrationError in one line, and nothing is left behind."""
    from streamhand.outputs import OutputError, write_text_atomic

    p = path or calibration_path()
    data = {"hand_length_m": round(check_length(m), 4), "source": source, "frames": int(frames),
            "spread_m": round(float(spread_m), 4), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
    try:  # two calibrations at once: each renames a whole file
        return write_text_atomic(p, yaml.safe_dump(data, sort_keys=False))
    except OutputError:
        why = "a folder is in its place" if p.is_dir() else "it could not be written"
        raise CalibrationError(f"{p}: cannot store the calibration ({why}); set STREAMHAND_CONFIG to a folder you "
                               "can write") from None  # fmt: skip


def load_hand_length(path: Path | None = None) -> float | None:
    """The calibrated hand length, or None when there is no calibration; a broken file raises one line."""
    p = path or calibration_path()
    if p.parent.exists() and not p.parent.is_dir():
        raise CalibrationError(f"{p.parent}: a file where the calibration's folder should be (STREAMHAND_CONFIG "
                               "names a folder)")  # fmt: skip
    if p.exists() and not p.is_file():
        raise CalibrationError(f"{p}: a folder, not a calibration file; remove it, or run `streamhand calibrate-hand`"
                               " with STREAMHAND_CONFIG set to another folder")  # fmt: skip
    if not p.is_file():
        return None
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise CalibrationError(f"{p}: cannot read the calibration ({e.strerror or type(e).__name__})") from None
    except UnicodeDecodeError:
        raise CalibrationError(f"{p}: not a hand calibration (not UTF-8 text); run `streamhand calibrate-hand` "
                               "again") from None  # fmt: skip
    try:
        data = yaml.safe_load(text)
        if not isinstance(data, dict) or "hand_length_m" not in data:
            raise ValueError("empty" if data is None else "no hand_length_m")
        value = data["hand_length_m"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"hand_length_m {str(value)[:20]!r} is not a number of metres")
        return check_length(float(value))
    except CalibrationError as e:
        raise CalibrationError(f"{p}: {e}; run `streamhand calibrate-hand` again") from None
    except (yaml.YAMLError, TypeError, KeyError, ValueError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CalibrationError(f"{p}: not a hand calibration ({why}); run `streamhand calibrate-hand` again") from None


def resolve_hand_length(configured: float | None, path: Path | None = None) -> tuple[float, str]:
    """(hand length, where it came from): the configured value, else the calibration, else the average."""
    if configured is not None:
        return float(configured), "set by --hand-size or model.hand_length_m"
    cal = load_hand_length(path)
    if cal is not None:
        return cal, f"calibrated ({path or calibration_path()})"
    return DEFAULT_HAND_LENGTH_M, "adult average"


@dataclass
class HandLengthEstimate:
    """Per-frame hand lengths measured with depth; the median is robust to a few bad frames."""

    values: list[float] = field(default_factory=list)

    def add(self, rel_norm: np.ndarray, scale: float) -> None:
        """One hand placed with depth: its normalised 3D and the scale fitted at the measured depth."""
        v = float(scale * chain_length(rel_norm))
        if np.isfinite(v) and HAND_LENGTH_RANGE_M[0] <= v <= HAND_LENGTH_RANGE_M[1]:
            self.values.append(v)

    def result(self, min_frames: int = 10) -> tuple[float, float]:
        """(median length, median absolute deviation) in metres."""
        if len(self.values) < min_frames:
            raise CalibrationError(
                f"only {len(self.values)} frames with a hand on valid depth (need {min_frames}): hold one hand "
                "open, palm to the camera, 0.3-0.8 m away"
            )
        v = np.array(self.values)
        med = float(np.median(v))
        return med, float(np.median(np.abs(v - med)))


def measure_hand_length(source, detector, lifter, frames: int, on_frame=None) -> HandLengthEstimate:
    """Read up to ``frames`` frames of a depth ``source`` (opened), and for each with exactly one hand add the
    length of that hand scaled to fit its 2D landmarks at the measured depth. ``on_frame(i)`` reports progress."""
    from streamhand.place.placement import place_hand

    if not source.has_depth:
        raise CalibrationError(f"the {source.name} source has no depth; measure with --realsense, or give --length")
    est = HandLengthEstimate()
    for i in range(frames):
        f = source.read()
        if f is None:
            break
        if on_frame is not None:
            on_frame(i)
        if f.depth is None:
            continue
        dets = detector(f.rgb)
        if len(dets) != 1:
            continue
        d = dets[0]
        left = np.array([d.handedness == "left"])
        lift = lifter(d.landmarks_px[None], left, f.intrinsics, world=d.world[None], landmarks_z=d.landmarks_z[None])
        _, _, how, s = place_hand(d.landmarks_px, lift.joints_norm[0], float(lift.scale[0]), f.intrinsics, f.depth,
                                  scale_range=(0.5, 2.0))  # fmt: skip
        if how == "depth":
            est.add(lift.joints_norm[0], s)
    return est
