"""The scenes' drawing machinery: :class:`Scene`, a camera with a colour and a depth buffer, and :class:`Layer`,
a rectangle of the image drawn privately and then z-tested into the scene.

Geometry is a pinhole camera (OpenCV frame: x right, y down, z forward; principal point at the image centre,
square pixels, focal length ``fx``) pitched down by ``pitch``. Planar surfaces are drawn through their
homographies (textures warped at about the screen's resolution) with per-pixel plane depth; people, arms and
objects are camera-facing layers at their own depth; everything is z-tested, so the depth map matches what is
drawn (a face where the face is, the desk's depth by row). :meth:`Scene.finish` lights the result: soft
illumination, lamps, windows and screens at their own brightness, and surface grain.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamhand.synth.scene_paint import F32, Draws, col3, copy, full, gray3, surface_grain


class Layer:
    """A rectangle of the image drawn privately (colour and depth), then z-tested into the scene."""

    def __init__(self, x0: int, y0: int, x1: int, y1: int):
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        self.rgb = np.zeros((y1 - y0, x1 - x0, 3), F32)
        self.z = np.full((y1 - y0, x1 - x0), np.inf, F32)

    def p(self, x: float, y: float) -> tuple[int, int]:
        return (round(x - self.x0), round(y - self.y0))

    def ellipse(self, x, y, ax, ay, colour, z, angle=0.0, a0=0.0, a1=360.0, thickness=-1) -> None:
        axes = (max(0, round(ax)), max(0, round(ay)))
        cv2.ellipse(self.rgb, self.p(x, y), axes, angle, a0, a1, col3(colour), thickness)
        if z is not None:
            cv2.ellipse(self.z, self.p(x, y), axes, angle, a0, a1, float(z), thickness)

    def poly(self, pts, colour, z) -> None:
        q = np.round(np.asarray(pts, np.float64) - [self.x0, self.y0]).astype(np.int32)
        cv2.fillPoly(self.rgb, [q], col3(colour))
        if z is not None:
            cv2.fillPoly(self.z, [q], float(z))

    def rect(self, x0, y0, x1, y1, colour, z) -> None:
        self.poly([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], colour, z)

    def line(self, a, b, colour, z, thickness: float) -> None:
        t = max(1, round(thickness))
        cv2.line(self.rgb, self.p(*a), self.p(*b), col3(colour), t)
        if z is not None:
            cv2.line(self.z, self.p(*a), self.p(*b), float(z), t)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Image coordinates of the layer's columns (1, W) and rows (H, 1)."""
        xs = np.arange(self.x0, self.x1, dtype=F32)[None, :]
        ys = np.arange(self.y0, self.y1, dtype=F32)[:, None]
        return xs, ys


class Scene:
    """A camera, a colour and a depth buffer, and drawing of planes and layers with a z-test."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, fx: float, pitch: float = 0.0):
        self.rng, self.r = rng, Draws(rng)
        self.h, self.w, self.fx = h, w, float(fx)
        self.pitch = pitch
        self.cx, self.cy = (w - 1) / 2, (h - 1) / 2
        c, s = math.cos(pitch), math.sin(pitch)
        self.R = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])  # world (y down, level) -> camera (pitched down)
        self.K = np.array([[fx, 0, self.cx], [0, fx, self.cy], [0, 0, 1.0]])
        self.KR = self.K @ self.R
        self.rgb = np.zeros((h, w, 3), F32)
        self.iz = np.full((h, w), F32(0.1), F32)  # 1 / depth: the z-buffer (nearer = larger); 0.1 = 10 m, empty
        self.blank = True
        self.u = np.arange(w, dtype=F32)
        self.v = np.arange(h, dtype=F32)
        self.emissive: list[tuple[int, int, int, int, np.ndarray, float]] = []
        gh = 12
        self.light = np.ones((gh, max(2, round(gh * w / h))), F32)  # low-resolution illumination

    # geometry ---------------------------------------------------------------------------------------------
    def ray(self, u: float, v: float) -> np.ndarray:
        """World direction of the ray through pixel (u, v), scaled to camera z = 1."""
        return self.R.T @ np.array([(u - self.cx) / self.fx, (v - self.cy) / self.fx, 1.0])

    def unproject(self, u: float, v: float, z: float) -> np.ndarray:
        return self.ray(u, v) * z

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(pts, np.float64) @ self.KR.T
        return q[:, :2] / q[:, 2:3], q[:, 2]

    def cam_z(self, p: np.ndarray) -> float:
        return float(self.R[2] @ p)

    def ray_plane(self, u: float, v: float, p0: np.ndarray, n: np.ndarray) -> np.ndarray | None:
        d = self.ray(u, v)
        den = float(n @ d)
        if abs(den) < 1e-9:
            return None
        t = float(n @ p0) / den
        return d * t if t > 0 else None

    def inv_depth_coeffs(self, p0, n) -> tuple[float, float, float] | None:
        """1/z = a u + b v + c for the plane through world point ``p0`` with world normal ``n``."""
        nc, pc = self.R @ n, self.R @ p0
        d = float(nc @ pc)
        if abs(d) < 1e-6:
            return None
        a, b = nc[0] / (self.fx * d), nc[1] / (self.fx * d)
        return a, b, (nc[2] - nc[0] * self.cx / self.fx - nc[1] * self.cy / self.fx) / d

    # drawing ----------------------------------------------------------------------------------------------
    def plane(self, p0, e1, e2, colour=None, tex=None, tex_m=(1.0, 1.0), extent=None, zbias=0.0,
              res=0.8, emissive=0.0) -> None:  # fmt: skip
        """A plane through world point ``p0`` spanned by unit vectors ``e1``, ``e2``: infinite when ``extent``
        is None, else the rectangle ``(s0, s1, t0, t1)`` metres along them. Filled with ``colour`` or ``tex``
        (``tex_m``: the texture's size in metres, tiled; a finite plane's texture spans its extent; ``tex`` may be
        a function returning ``(tex, tex_m)``, called only if the plane shows), warped at
        at most ``res`` times the screen resolution. ``zbias`` pulls it toward the camera for the z-test only
        (decals on a wall); ``emissive`` > 0 makes it a light source (not shaded, that bright)."""
        p0, e1, e2 = np.asarray(p0, np.float64), np.asarray(e1, np.float64), np.asarray(e2, np.float64)
        h, w = self.h, self.w
        poly = None
        if extent is None:
            x0, y0, x1, y1 = 0, 0, w, h
        else:
            s0, s1, t0, t1 = extent
            q = (np.array([[s0, t0], [s1, t0], [s1, t1], [s0, t1]]) @ np.stack([e1, e2]) + p0) @ self.KR.T
            if q[:, 2].min() < 0.05:
                return
            poly = q[:, :2] / q[:, 2:3]
            xs, ys = poly[:, 0].tolist(), poly[:, 1].tolist()
            x0, y0 = max(math.floor(min(xs)), 0), max(math.floor(min(ys)), 0)
            x1, y1 = min(math.ceil(max(xs)) + 1, w), min(math.ceil(max(ys)) + 1, h)
            if x1 - x0 < 1 or y1 - y0 < 1:
                return
        n = np.array([e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]])
        co = self.inv_depth_coeffs(p0, n)
        if co is None:
            return
        a, b, c = co
        if self.blank and poly is None and not zbias:  # the first surface: no z-test against an empty buffer
            iz = np.add((F32(b) * self.v + F32(c))[:, None], F32(a) * self.u[None, :], out=self.iz)
            izroi = iz
            m = iz > F32(0.1)
        else:
            # only rows where the plane may be nearer than what is there (and than 10 m)
            izr = b * self.v[y0:y1] + F32(c + max(a * x0, a * (x1 - 1)))  # each row's largest 1/z
            if zbias:
                izr = izr / np.maximum(F32(1) - F32(zbias) * izr, F32(1e-6))
            rows = np.flatnonzero(izr > self.iz[y0:y1, x0:x1].min(axis=1))
            if rows.size == 0:
                return
            y0, y1 = y0 + int(rows[0]), y0 + int(rows[-1]) + 1
            iz = (F32(b) * self.v[y0:y1, None] + F32(c)) + F32(a) * self.u[None, x0:x1]
            izroi = self.iz[y0:y1, x0:x1]
            m = (iz / np.maximum(F32(1) - F32(zbias) * iz, F32(1e-6)) if zbias else iz) > izroi
        self.blank = False
        if poly is not None:
            pm = np.zeros(m.shape, np.uint8)
            cv2.fillConvexPoly(pm, np.round((poly - [x0, y0]) * 4).astype(np.int32), 1, shift=2)
            m &= pm.view(bool)
        everywhere = bool(m.all())
        if not everywhere and not m.any():
            return
        roi = self.rgb[y0:y1, x0:x1]
        if tex is None:
            if everywhere:
                cv2.rectangle(roi, (0, 0), (x1 - x0, y1 - y0), col3(colour), -1)
            else:
                copy(roi, full(y1 - y0, x1 - x0, colour), m)
        else:
            if callable(tex):  # made only now that the plane is known to show
                tex, tex_m = tex()
            area = (x1 - x0) * (y1 - y0)
            cap = 12000 if extent is not None else 40000  # texels warped at most (then resized)
            res = 1.0 if area < 5000 else min(res, math.sqrt(cap / area))  # small: no resampling pass
            col = self._warp(tex, p0, e1, e2, tex_m, extent, x0, y0, x1, y1, res)
            if everywhere:
                roi[...] = col
            else:
                copy(roi, col, m)
        if izroi is iz:  # written in place (the first surface); where it is beyond 10 m, the buffer's 'empty'
            if not everywhere:
                iz[~m] = F32(0.1)
        elif everywhere:
            izroi[...] = iz
        else:
            copy(izroi, iz, m)
        if emissive > 0:
            self.emissive.append((x0, y0, x1, y1, np.where(m, iz, F32(np.nan)), emissive))

    def _warp(self, tex, p0, e1, e2, tex_m, extent, x0, y0, x1, y1, res) -> np.ndarray:
        th, tw = tex.shape[:2]
        if extent is None:
            s0, t0, sw, sh, border = 0.0, 0.0, tex_m[0], tex_m[1], cv2.BORDER_WRAP
        else:
            s0, t0 = extent[0], extent[2]
            sw, sh, border = extent[1] - extent[0], extent[3] - extent[2], cv2.BORDER_REPLICATE
        du, dv = e1 * (sw / tw), e2 * (sh / th)
        hmat = self.KR @ np.column_stack([du, dv, p0 + s0 * e1 + t0 * e2 + 0.5 * (du + dv)])  # texel -> pixel
        bw, bh = x1 - x0, y1 - y0
        lw, lh = max(1, round(bw * res)), max(1, round(bh * res))
        sx, sy = lw / bw, lh / bh
        to_low = np.array([[sx, 0, (0.5 - x0) * sx - 0.5], [0, sy, (0.5 - y0) * sy - 0.5], [0, 0, 1.0]])
        out = cv2.warpPerspective(tex, to_low @ hmat, (lw, lh), flags=cv2.INTER_LINEAR, borderMode=border)
        if (lw, lh) != (bw, bh):
            out = cv2.resize(out, (bw, bh), interpolation=cv2.INTER_LINEAR)
        return out

    def layer(self, x0: float, y0: float, x1: float, y1: float) -> Layer | None:
        x0, y0 = max(0, math.floor(x0)), max(0, math.floor(y0))
        x1, y1 = min(self.w, math.ceil(x1)), min(self.h, math.ceil(y1))
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        return Layer(x0, y0, x1, y1)

    def put(self, layer: Layer | None) -> np.ndarray | None:
        """Z-test a layer into the scene; returns where it won."""
        if layer is None:
            return None
        sl = np.s_[layer.y0 : layer.y1, layer.x0 : layer.x1]
        liz = np.reciprocal(layer.z)
        m = liz > self.iz[sl]
        copy(self.rgb[sl], layer.rgb, m)
        copy(self.iz[sl], liz, m)
        return m

    def emit(self, layer: Layer, where: np.ndarray, gain: float) -> None:
        """Make the pixels of ``layer`` at ``where`` (after :meth:`put`) a light source of brightness ``gain``."""
        izs = np.where(where, np.reciprocal(layer.z), F32(np.nan)).astype(F32)
        self.emissive.append((layer.x0, layer.y0, layer.x1, layer.y1, izs, gain))

    def add_light(self, u: float, v: float, sigma_px: float, amount: float) -> None:
        """A soft blob of extra (negative: less) light centred on pixel (u, v)."""
        gh, gw = self.light.shape
        gx = (np.arange(gw, dtype=F32) + 0.5) * F32(self.w / gw) - F32(u)
        gy = (np.arange(gh, dtype=F32) + 0.5) * F32(self.h / gh) - F32(v)
        s2 = F32(2 * max(sigma_px, 1.0) ** 2)
        self.light += F32(amount) * np.exp(-(gy[:, None] ** 2 + gx[None, :] ** 2) / s2)

    def finish(self, grain: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The lit image (float32 RGB 0-255) and depth (metres)."""
        h, w = self.h, self.w
        light = np.maximum(self.light, F32(0.05))
        mid = cv2.resize(light, (max(2, w // 8), max(2, h // 8)), interpolation=cv2.INTER_CUBIC)
        gain = cv2.resize(mid, (w, h), interpolation=cv2.INTER_LINEAR)
        if grain:
            cv2.multiply(gain, surface_grain(self.rng, h, w), dst=gain)
        for x0, y0, x1, y1, izs, e in self.emissive:  # lamps, windows, screens: their own brightness
            vis = self.iz[y0:y1, x0:x1] == izs
            copy(gain[y0:y1, x0:x1], np.full(vis.shape, F32(e)), vis)
        out = cv2.multiply(self.rgb, gray3(gain))
        flat = out.reshape(h, -1)  # one channel wide: OpenCV's scalar ops are fastest there
        cv2.min(flat, 255.0, dst=flat)
        return out, self.depth()

    def depth(self) -> np.ndarray:
        """The depth buffer in metres, within 0.5-4."""
        d = np.reciprocal(self.iz)
        cv2.max(d, 0.5, dst=d)
        cv2.min(d, 4.0, dst=d)
        return d
