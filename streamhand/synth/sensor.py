"""Camera and depth-sensor effects on a rendered frame: what a webcam and an Intel RealSense D4xx deliver.

:func:`apply_webcam` turns a clean render (float32 RGB 0-255) into a webcam frame (uint8 RGB): defocus (Gaussian
or disc, sometimes on the background only, the hand in focus), motion blur of the hand along its displacement
during the exposure (composited through the blurred mask, so its edges smear over the background), exposure,
white-balance error, vignetting, signal-dependent sensor noise (shot + read, some chroma noise), sharpening,
a tone curve and JPEG compression. :func:`realsense_depth` turns a true depth map (metres) into D4xx-like depth
(uint16 millimetres, 0 = no data): disparity noise and quantisation (error growing with z^2), flying pixels at
depth edges, holes at grazing angles, the band left of near objects that the second imager cannot see (stereo
occlusion), random blobs and low-texture dropouts.

Both draw everything from the caller's generator: a seed gives the same output. Sizes that belong to the sensor
(blur radii, hole blobs, edge bands) are in sensor pixels times ``pixel_scale`` (this image's pixels per sensor
pixel), so crops rendered at another resolution keep them the same on the scene.

Speed on one core (``cv2.setNumThreads(1)``, numpy 1.26, OpenCV 4.11): :func:`apply_webcam` about 5 ms at
256x256 and 30 ms at 640x480 (6 and 33 ms with motion blur); :func:`realsense_depth` about 4 and 22 ms.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

F32 = np.float32
#: how many uniform 0-1 decisions set a webcam's (:func:`apply_webcam`) and a depth sensor's
#: (:func:`realsense_depth`) behaviour for a frame
WEBCAM_SETTINGS, DEPTH_SETTINGS = 24, 16


def _gray3(s: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(s, F32), cv2.COLOR_GRAY2RGB)


def _quantise(img: np.ndarray) -> np.ndarray:
    flat = cv2.max(np.ascontiguousarray(img, F32).reshape(img.shape[0], -1), 0.0)
    return cv2.convertScaleAbs(flat).reshape(img.shape)  # rounds and saturates at 255


# ------------------------------------------------------------------------------------------------- webcam


def _disc_kernel(radius: float) -> np.ndarray:
    """A normalised, anti-aliased disc (lens defocus) of ``radius`` pixels."""
    r = int(math.ceil(radius))
    k = np.zeros((4 * (2 * r + 1),) * 2, np.uint8)
    cv2.circle(k, (4 * r + 2, 4 * r + 2), max(1, round(4 * radius)), 255, -1)
    k = cv2.resize(k.astype(F32), (2 * r + 1, 2 * r + 1), interpolation=cv2.INTER_AREA)
    return k / k.sum()


def _defocus(img: np.ndarray, sigma: float, disc: bool) -> np.ndarray:
    """Lens blur: Gaussian, or a disc (bokeh-like) of radius 1.6 sigma; strong blurs run at half resolution."""
    if sigma < 0.25:
        return img
    h, w = img.shape[:2]
    if sigma > 2.0 and min(h, w) >= 16:  # blur half-size and upsample: the same look for a quarter of the work
        small = cv2.resize(img, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        small = _defocus(small, math.sqrt(max(sigma * sigma - 1.0, 1.0)) / 2, disc)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if disc and sigma >= 0.7:
        return cv2.filter2D(img, -1, _disc_kernel(1.6 * sigma), borderType=cv2.BORDER_REFLECT)
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _line_kernel(dx: float, dy: float) -> np.ndarray:
    """A normalised straight streak through the kernel's centre from -(dx, dy)/2 to +(dx, dy)/2 (sub-pixel)."""
    length = math.hypot(dx, dy)
    r = int(math.ceil(length / 2)) + 1
    k = np.zeros((2 * r + 1, 2 * r + 1), np.float64)
    t = np.linspace(-0.5, 0.5, max(2, int(math.ceil(length * 4)) + 1))
    x, y = r + t * dx, r + t * dy
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for ox, oy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + oy, x0 + ox), wgt)
    return (k / k.sum()).astype(F32)


def _motion_blur(img: np.ndarray, hand: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """Smear the hand's pixels along ``motion`` (its displacement during the exposure), over the background."""
    dx, dy = float(motion[0]), float(motion[1])
    if math.hypot(dx, dy) < 0.5:
        return img
    h, w = hand.shape
    hand8 = hand.astype(np.uint8)
    bx, by, bw, bh = cv2.boundingRect(hand8)
    if bw == 0:
        return img
    k = _line_kernel(dx, dy)
    pad = k.shape[0] // 2 + 2
    x0, y0, x1, y1 = max(0, bx - pad), max(0, by - pad), min(w, bx + bw + pad), min(h, by + bh + pad)
    roi, m8 = img[y0:y1, x0:x1], hand8[y0:y1, x0:x1]
    m = m8.astype(F32)
    # the hand's colour and its share of the exposure, smeared together (one 4-channel filter)
    ys, xs = np.nonzero(k)  # the streak's rows and columns only, anchored at the kernel's centre
    kc = np.ascontiguousarray(k[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    anchor = (k.shape[1] // 2 - int(xs.min()), k.shape[0] // 2 - int(ys.min()))
    smear = cv2.filter2D(cv2.merge([*cv2.split(cv2.multiply(roi, _gray3(m))), m]), -1, kc, anchor=anchor,
                         borderType=cv2.BORDER_CONSTANT)  # fmt: skip
    fg, alpha = np.ascontiguousarray(smear[..., :3]), smear[..., 3]
    # what the hand uncovers: the background around it, smoothly filled in
    f = max(1, int(min(x1 - x0, y1 - y0) // 16))
    sw, sh = max(1, (x1 - x0) // f), max(1, (y1 - y0) // f)
    inv = F32(1) - m
    bsum = cv2.resize(cv2.multiply(roi, _gray3(inv)), (sw, sh), interpolation=cv2.INTER_AREA)
    wsum = cv2.resize(inv, (sw, sh), interpolation=cv2.INTER_AREA)
    s = max(1.0, 0.25 * max(sw, sh))
    bsum, wsum = cv2.GaussianBlur(bsum, (0, 0), s), cv2.GaussianBlur(wsum, (0, 0), s)
    fill = cv2.divide(bsum, _gray3(np.maximum(wsum, F32(1e-4))))
    fill = cv2.resize(fill, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    bg = roi.copy()
    cv2.copyTo(fill, m8, bg)
    out = img.copy()
    out[y0:y1, x0:x1] = cv2.multiply(bg, _gray3(F32(1) - np.minimum(alpha, F32(1)))) + fg
    return out


def _tone_lut(gamma: float, contrast: float, black: float) -> np.ndarray:
    x = np.arange(256) / 255.0
    y = x**gamma
    y = y + contrast * np.sin(2 * np.pi * y) / (2 * np.pi)  # an S-curve (monotonic for |contrast| < 1)
    y = black + (1 - black) * y
    return np.clip(np.round(y * 255), 0, 255).astype(np.uint8)


def apply_webcam(
    rng: np.random.Generator,
    img: np.ndarray,
    mask: np.ndarray | None = None,
    motion_px: np.ndarray | None = None,
    strength: float = 1.0,
    pixel_scale: float = 1.0,
    settings: np.ndarray | None = None,
) -> np.ndarray:
    """What a webcam makes of a rendered frame: float32 RGB 0-255 (H, W, 3) in, uint8 RGB out.

    ``img`` is the renderer's linear-ish RGB (values above 255 are highlights that clip); the tone curve applied
    is a random perturbation of identity (gamma 0.8-1.25, S-curve, lifted blacks), not a full sRGB encode, so
    the input should already look right on screen. ``mask`` (uint8, 0 = background, i + 1 = hand i) enables
    background-only defocus and motion blur; ``motion_px`` (2,) is the hands' displacement in pixels during the
    exposure, smeared symmetrically about the rendered pose. ``strength`` scales every random effect (1 =
    typical webcams, 0 = only rounding to uint8; motion blur is applied as given whenever strength > 0).
    ``pixel_scale``: this image's pixels per sensor pixel (blur radii scale with it, noise shrinks below 1).
    ``settings``: the camera's settings as :data:`WEBCAM_SETTINGS` uniform 0-1 decisions (focus, exposure, white
    balance, vignetting, noise levels, sharpening, tone, JPEG quality), the same every frame of one video; None
    draws them from ``rng``. The noise itself comes from ``rng`` either way.
    """
    img = np.asarray(img, F32)
    s = max(float(strength), 0.0)
    if s == 0:
        return _quantise(img)
    h, w = img.shape[:2]
    ps = float(pixel_scale)
    u = rng.random(WEBCAM_SETTINGS) if settings is None else np.asarray(settings, np.float64)  # every decision
    sm = min(s, 1.0)
    hand = None if mask is None else np.asarray(mask) > 0
    has_hand = hand is not None and bool(hand.any())
    out = img
    # optics: defocus, sometimes with the hand in focus and the background not
    if u[0] < 0.75 * sm:
        disc = u[1] < 0.3
        if has_hand and u[2] < 0.35:
            bg = _defocus(out, (1.0 + 2.5 * u[3]) * s * ps, disc)
            fg = _defocus(out, 0.6 * u[4] * s * ps, False)
            soft = cv2.GaussianBlur(hand.astype(F32), (0, 0), max(0.5, 0.7 * ps))
            out = cv2.blendLinear(fg, bg, soft, F32(1) - soft)
        else:
            out = _defocus(out, (0.3 + 1.2 * u[3]) * s * ps, disc)
    if has_hand and motion_px is not None:
        out = _motion_blur(out, hand, np.asarray(motion_px, np.float64).reshape(2))
    # exposure, white balance, vignetting: one gain per pixel and channel
    exposure = 2.0 ** (s * (0.9 * u[5] - 0.5))
    temp, tint = s * 0.14 * (2 * u[6] - 1), s * 0.05 * (2 * u[7] - 1)  # warm/cool and green/magenta casts
    wb = np.array([math.exp(temp), math.exp(tint), math.exp(-temp)])
    wb /= 0.3 * wb[0] + 0.59 * wb[1] + 0.11 * wb[2]
    gh, gw = 9, max(2, round(9 * w / h))
    yy = np.linspace(-1, 1, gh)[:, None] * (h / math.hypot(h, w))
    xx = np.linspace(-1, 1, gw)[None, :] * (w / math.hypot(h, w))
    vig = (1 - s * 0.45 * u[8] * (xx * xx + yy * yy) ** (0.75 + 0.5 * u[9])).astype(F32)
    gain = cv2.resize(vig, (w, h), interpolation=cv2.INTER_LINEAR) * F32(exposure)
    out = cv2.multiply(out, cv2.merge([gain * F32(c) for c in wb]))
    # sensor noise: shot noise (variance grows with the signal) + read noise, mostly luma, some chroma
    shot, read = s * (0.03 + 0.5 * u[10] ** 2), s * (0.5 + 1.5 * u[11])  # mostly good light, some dim rooms
    luma = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    sigma = np.sqrt(np.maximum(luma, 0) * F32(shot) + F32(read * read)) * F32(min(1.0, ps))
    nh, nw = max(1, round(h / max(ps, 1))), max(1, round(w / max(ps, 1)))
    n1 = rng.standard_normal((nh, nw), dtype=F32)
    if (nh, nw) != (h, w):
        n1 = cv2.resize(n1, (w, h), interpolation=cv2.INTER_LINEAR)
    ch, cw = max(1, h // 3), max(1, w // 3)
    chroma = rng.standard_normal((ch, cw, 3), dtype=F32) * F32(0.3 + 0.5 * u[12])
    chroma = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR)
    chroma += _gray3(n1)
    out = out + cv2.multiply(chroma, _gray3(sigma))
    # in-camera sharpening
    if u[13] < 0.4 * sm:
        k = F32(s * (0.3 + 0.9 * u[14]))
        out = cv2.addWeighted(out, 1 + float(k), cv2.GaussianBlur(out, (0, 0), 1.0 * max(ps, 0.5)), -float(k), 0)
    lut = _tone_lut(math.exp(s * 0.22 * (2 * u[15] - 1)), s * (0.55 * u[16] - 0.15), s * 0.05 * u[17])
    q = cv2.LUT(_quantise(out), lut)
    if u[18] < 0.6 * sm:
        quality = int(round(95 - 55 * sm * u[19]))
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(q, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            q = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return q


# -------------------------------------------------------------------------------------------------- depth


def _low_bits(u: np.ndarray, k: int) -> np.ndarray:
    """A second uniform [0, 1) field from the bits of ``u`` below 1/k (float32 keeps 24 bits)."""
    x = u * F32(k)
    x -= np.rint(x)
    x += F32(0.5)
    return x


def stereo_occlusion(depth_m: np.ndarray, fx: float, baseline_m: float) -> np.ndarray:
    """Pixels of ``depth_m`` (metres, 0 = none) that the second imager, ``baseline_m`` along +x (negative: -x),
    cannot see because a nearer surface is in the way: on a D4xx (depth in the left imager's frame, the right one
    at +x) the band just left of a near object's silhouette, fx * baseline * (1/z_near - 1/z_far) pixels wide."""
    z = np.asarray(depth_m, F32)
    if baseline_m < 0:
        return stereo_occlusion(z[:, ::-1], fx, -baseline_m)[:, ::-1]
    w = z.shape[1]
    with np.errstate(divide="ignore"):
        disp = np.where(z > 0, F32(fx * baseline_m) / z, F32(0))
    xr = np.arange(w, dtype=F32)[None, :] - disp  # where each point lands in the second image
    right_min = np.minimum.accumulate(xr[:, ::-1], axis=1)[:, ::-1]
    excl = np.empty_like(right_min)
    excl[:, :-1] = right_min[:, 1:]
    excl[:, -1] = np.inf
    return (z > 0) & (xr > excl + F32(0.25))


def realsense_depth(
    rng: np.random.Generator,
    depth_m: np.ndarray,
    mask: np.ndarray,
    normals: np.ndarray | None,
    fx: float,
    baseline_m: float = 0.05,
    pixel_scale: float = 1.0,
    principal: tuple[float, float] | None = None,
    settings: np.ndarray | None = None,
) -> np.ndarray:
    """What an Intel RealSense D4xx makes of a true depth map: uint16 millimetres, 0 = no data.

    ``depth_m`` float (H, W) metres along the optical axis (0 or non-finite: nothing), ``mask`` uint8 (0 =
    background, i + 1 = hand i), ``normals`` (H, W, 3) camera-frame unit normals on hand pixels (zeros
    elsewhere) or None; where there are none they are estimated from the depth's slope. ``fx`` in this image's
    pixels, ``principal`` (cx, cy) its principal point (default: the image centre). ``baseline_m`` puts the
    second imager at +x (D4xx: the unmatched band lies left of near objects); negative puts it at -x.
    ``pixel_scale``: this image's pixels per sensor pixel (sensor fx = fx / pixel_scale for the noise; blob and
    edge sizes scale with it). ``settings``: the sensor's :data:`DEPTH_SETTINGS` uniform 0-1 decisions (as
    :func:`apply_webcam`'s: the same every frame of one video); None draws them from ``rng``.

    Noise is in disparity: sigma_d 0.05-0.1 sensor pixels, so sigma_z = z^2 sigma_d / (fx_sensor baseline)
    (about 0.2 % of z at 1 m with a 640-pixel focal length), then quantised to 1/32 pixel and to millimetres.
    """
    z = np.asarray(depth_m, F32)
    valid = (z > 0) & (z < F32(1e4))
    if not valid.all():
        z = np.where(valid, z, F32(0))
    h, w = z.shape
    ps = float(pixel_scale)
    pe = min(ps, 1.0)  # chance scale for one-sensor-pixel effects on coarser images
    b = abs(float(baseline_m))
    fxs = float(fx) / ps
    u = rng.random(DEPTH_SETTINGS) if settings is None else np.asarray(settings, np.float64)
    # one uniform field for every per-pixel decision: its high bits, and its low bits as a second draw
    draw = rng.random((h, w), dtype=F32)
    draw2 = _low_bits(draw, 64)
    holes = stereo_occlusion(z, fx, baseline_m)
    # flying pixels and dropouts along depth discontinuities
    ks = max(3, 2 * round(1.5 * max(ps, 1.0) - 0.5) + 1)
    ker = np.ones((ks, ks), np.uint8)
    zmin = cv2.erode(np.where(valid, z, F32(1e4)), ker)
    zmax = cv2.dilate(z, ker)
    jump = valid & (zmax - zmin > F32(0.04) + F32(0.03) * zmin)
    jy, jx = np.nonzero(jump)
    if jy.size:
        p_fly, p_drop = (0.2 + 0.4 * u[0]) * pe, (0.1 + 0.25 * u[1]) * pe
        dj = draw[jy, jx]
        f = dj < F32(p_fly)
        lo, hi = zmin[jy[f], jx[f]], zmax[jy[f], jx[f]]
        z = z.copy()
        z[jy[f], jx[f]] = lo + (F32(0.1) + F32(0.8) * draw2[jy[f], jx[f]]) * (hi - lo)  # between the two surfaces
        d = (dj >= F32(p_fly)) & (dj < F32(p_fly + p_drop))
        holes[jy[d], jx[d]] = True
    # grazing angles: |n . view| small; normals from the depth's slope where none are given
    cx, cy = principal if principal is not None else ((w - 1) / 2, (h - 1) / 2)
    xs = ((np.arange(w, dtype=F32) - F32(cx)) / F32(fx))[None, :]
    ys = ((np.arange(h, dtype=F32) - F32(cy)) / F32(fx))[:, None]
    zu = cv2.Sobel(z, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    zv = cv2.Sobel(z, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    zf = z * F32(1 / fx)
    nz = xs * zu + ys * zv + zf
    rn2 = xs * xs + ys * ys + F32(1)
    cos = zf / np.sqrt((zu * zu + zv * zv + nz * nz) * rn2 + F32(1e-20))
    cos[~valid | cv2.dilate(jump.view(np.uint8), ker).view(bool)] = 1
    if normals is not None:
        nx, ny, nz_ = cv2.split(np.ascontiguousarray(normals, F32))
        nn = nx * nx + ny * ny + nz_ * nz_
        have = (np.asarray(mask) > 0) & (nn > F32(0.25)) & valid
        cn = np.abs(nx * xs + ny * ys + nz_) / np.sqrt(nn * rn2 + F32(1e-20))
        cos = np.where(have, cn, cos)
    thr = 0.15 + 0.1 * u[2]
    holes |= draw2 < (F32(1.5 * thr) - cos) * F32((0.5 + 0.45 * u[3]) / thr)  # chance 0 above 1.5 thr
    # random blobs, sized in sensor pixels
    blobs = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.poisson(1.0))):
        c = rng.random(5)
        ax = (max(1, round((2 + 8 * c[2]) * ps)), max(1, round((2 + 8 * c[3]) * ps)))
        cv2.ellipse(blobs, (int(c[0] * w), int(c[1] * h)), ax, float(c[4] * 180), 0, 360, 1, -1)
    holes |= blobs.view(bool)
    # weak-pattern / low-texture dropouts: irregular patches and speckle, likelier far away
    if u[4] < 0.4:
        gh, gw = max(2, round(h / (20 * ps))), max(2, round(w / (20 * ps)))
        field = cv2.resize(rng.random((gh, gw), dtype=F32), (w, h), interpolation=cv2.INTER_CUBIC)
        far = np.minimum(np.maximum(z - F32(2.5), F32(0)), F32(2))
        field += F32(0.1) * far
        holes |= field > F32(0.95 + 0.08 * u[5])
        holes |= draw < F32(0.015 * u[6]) * far
    # disparity noise (a white and a spatially correlated part) and sub-pixel quantisation
    sd = 0.05 + 0.05 * u[7]
    gh, gw = max(2, round(h / (6 * ps))), max(2, round(w / (6 * ps)))
    noise = cv2.resize(rng.standard_normal((gh, gw), dtype=F32), (w, h), interpolation=cv2.INTER_LINEAR)
    noise *= F32(0.75 * sd)
    noise += (_low_bits(draw, 4096) - F32(0.5)) * F32(0.85 * sd * math.sqrt(12))  # white, unit variance
    with np.errstate(divide="ignore", invalid="ignore"):
        disp = F32(fxs * b) / z
        disp += noise
        disp = np.round(disp * F32(32)) * F32(1 / 32)
        mm = np.round(F32(fxs * b * 1000) / disp)
    ok = valid & ~holes & (disp > 0) & (z > F32(0.17)) & (z < F32(10.0))
    mm[~ok] = 0
    return np.minimum(mm, F32(65535)).astype(np.uint16)
