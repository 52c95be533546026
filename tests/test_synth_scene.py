"""Synthetic scenes (backgrounds, occluders) and the webcam / RealSense effects applied to rendered frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamhand.synth import scene
from streamhand.synth.scene import add_occluder, scene_background
from streamhand.synth.sensor import apply_webcam, realsense_depth, stereo_occlusion

F32 = np.float32


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------------------- scenes


@pytest.mark.parametrize(("h", "w", "fx"), [(96, 128, 110.0), (64, 64, 400.0)])
def test_scene_background_shapes_ranges_and_seeding(h, w, fx):
    for seed in range(15):
        rgb, depth = scene_background(_rng(seed), h, w, fx)
        assert rgb.shape == (h, w, 3) and rgb.dtype == np.float32
        assert depth.shape == (h, w) and depth.dtype == np.float32
        assert np.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 255
        assert np.isfinite(depth).all() and depth.min() >= 0.5 and depth.max() <= 4.0
    a_rgb, a_d = scene_background(_rng(7), h, w, fx)
    b_rgb, b_d = scene_background(_rng(7), h, w, fx)
    c_rgb, _ = scene_background(_rng(8), h, w, fx)
    assert np.array_equal(a_rgb, b_rgb) and np.array_equal(a_d, b_d)
    assert not np.array_equal(a_rgb, c_rgb)


def test_scenes_are_varied_and_include_people():
    means, spans, people = [], [], 0
    for seed in range(40):
        sc = scene.Scene(_rng(seed), 72, 96, 90.0, 0.1)
        info = scene.build(sc, scene.LAYOUTS[seed % 3])
        rgb, depth = sc.finish()
        means.append(rgb.mean((0, 1)))
        spans.append(np.ptp(depth))
        people += "person" in info
    assert np.std(np.array(means), axis=0).min() > 10  # colours differ from scene to scene
    assert np.mean(np.array(spans) > 0.3) > 0.5  # most scenes have depth structure, not a flat backdrop
    assert 3 <= people <= 25


def test_face_and_body_are_drawn_at_their_depth_in_front_of_the_wall():
    h, w = 240, 320
    sc = scene.Scene(_rng(3), h, w, 300.0)
    sc.plane((0, 0, 2.5), (1, 0, 0), (0, 1, 0), colour=(180, 180, 180))
    hx, hy, hh = scene.draw_person(sc, 0.8, hx=160.0, hy=90.0)
    rgb, depth = sc.finish()
    assert depth[0, 0] == pytest.approx(2.5, abs=1e-3) and depth[0, w - 1] == pytest.approx(2.5, abs=1e-3)
    face = depth[int(hy), int(hx)]
    assert 0.72 <= face <= 0.8  # the face's outline at 0.8 m, bulging toward the camera
    assert depth[h - 1, int(hx)] == pytest.approx(0.85, abs=0.01)  # the torso below it
    person = depth < 1.5
    assert person[int(hy) - int(0.4 * hh) : int(hy) + int(0.4 * hh), int(hx)].all()
    assert not person[:, :40].any()  # nothing of it far to the side
    wall = rgb[~person].mean(0)
    assert np.abs(rgb[int(hy), int(hx)] - wall).max() > 10  # the face is drawn where its depth is


def test_desk_depth_follows_the_plane_row_by_row():
    h, w, fx, pitch, desk_y = 120, 160, 150.0, 0.5, 0.6
    sc = scene.Scene(_rng(0), h, w, fx, pitch)
    sc.plane((0, 0, 3.0), (1, 0, 0), (0, 1, 0), colour=(200, 200, 200))
    sc.plane((0, desk_y, 0), (1, 0, 0), (0, 0, 1), colour=(120, 80, 40), extent=(-2, 2, 0.05, 2.5))
    _, depth = sc.finish()
    cy = (h - 1) / 2
    for v in (70, 90, 110, 119):
        expected = desk_y / (np.cos(pitch) * (v - cy) / fx + np.sin(pitch))
        assert depth[v, w // 2] == pytest.approx(expected, rel=2e-3)
    col = depth[60:, w // 2]
    assert (np.diff(col) <= 1e-6).all()  # nearer toward the bottom of the image


def _hand_frame():
    rgb = np.full((200, 200, 3), 90, F32)
    depth = np.full((200, 200), 2.0, F32)
    mask = np.zeros((200, 200), np.uint8)
    cv2.ellipse(mask, (100, 100), (35, 55), 0, 0, 360, 1, -1)
    depth[mask > 0] = 0.6
    rgb[mask > 0] = (220, 170, 140)
    return rgb, depth, mask, (65, 45, 136, 156)


def test_occluder_covers_part_of_the_hand_from_in_front():
    drawn = 0
    for seed in range(40):
        rgb, depth, mask, box = _hand_frame()
        rgb0, depth0, mask0 = rgb.copy(), depth.copy(), mask.copy()
        ok = add_occluder(_rng(seed), rgb, depth, mask, box, 0.6, probability=1.0)
        changed = (depth != depth0) | (rgb != rgb0).any(-1)
        if not ok:
            assert not changed.any() and np.array_equal(mask, mask0)
            continue
        drawn += 1
        covered = (mask0 > 0) & (mask == 0)
        assert covered.any()
        assert (depth[covered] < 0.6).all() and (depth[covered] > 0.6 - 0.2).all()
        assert (depth[changed] < depth0[changed]).all()  # only ever in front of what was there
        assert not ((mask0 == 0) & (mask > 0)).any()
        x0, y0, x1, y1 = box
        assert changed[y0:y1, x0:x1].mean() <= 0.3
    assert drawn >= 30
    rgb, depth, mask, box = _hand_frame()
    assert not add_occluder(_rng(0), rgb, depth, mask, box, 0.6, probability=0.0)
    a, b = _hand_frame(), _hand_frame()
    add_occluder(_rng(5), a[0], a[1], a[2], a[3], 0.6, probability=1.0)
    add_occluder(_rng(5), b[0], b[1], b[2], b[3], 0.6, probability=1.0)
    assert all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3]))


# ------------------------------------------------------------------------------------------------- webcam


def test_webcam_strength_zero_only_quantises():
    img = _rng(0).uniform(0, 255, (48, 64, 3)).astype(F32)
    out = apply_webcam(_rng(1), img, strength=0.0)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.abs(out.astype(F32) - img).max() <= 0.5 + 1e-3


def test_webcam_is_seeded_and_degrades():
    rgb, _, mask, _ = _hand_frame()
    a = apply_webcam(_rng(3), rgb, mask, np.array([5.0, 2.0]))
    b = apply_webcam(_rng(3), rgb, mask, np.array([5.0, 2.0]))
    assert np.array_equal(a, b)
    diffs = [np.abs(apply_webcam(_rng(s), rgb, mask).astype(F32) - rgb).mean() for s in range(6)]
    assert min(diffs) > 0.5 and np.std(diffs) > 0.1  # always some change, differing from frame to frame


def _edge_width(profile: np.ndarray) -> int:
    """Pixels between 10 % and 90 % of the way from the first to the last value."""
    lo, hi = profile[:5].mean(), profile[-5:].mean()
    t = (profile - lo) / (hi - lo)
    return int(np.argmax(t > 0.9) - np.argmax(t > 0.1))


@pytest.mark.parametrize("strength", [1e-3, 1.0])
def test_motion_blur_smears_the_hand_along_its_motion_only(strength):
    img = np.full((120, 160, 3), 40, F32)
    mask = np.zeros((120, 160), np.uint8)
    mask[40:100, 50:110] = 1
    img[mask > 0] = 200
    for seed in range(3):
        out = apply_webcam(_rng(seed), img, mask, np.array([18.0, 0.0]), strength=strength).astype(F32).mean(-1)
        across = out[55:85, 20:80].mean(0)  # left edge of the hand, along the motion
        down = out[10:70, 65:95].mean(1)  # top edge, across the motion
        assert _edge_width(across) >= 13
        assert _edge_width(down) <= (2 if strength < 0.01 else 8)
    out = apply_webcam(_rng(0), img, mask, np.array([0.0, 18.0]), strength=1e-3).astype(F32).mean(-1)
    assert _edge_width(out[10:70, 65:95].mean(1)) >= 13 and _edge_width(out[55:85, 20:80].mean(0)) <= 2


# -------------------------------------------------------------------------------------------------- depth


def test_depth_noise_grows_with_the_square_of_depth():
    stds = {}
    for z in (0.5, 1.0, 2.0):
        out = realsense_depth(_rng(4), np.full((160, 160), z, F32), np.zeros((160, 160), np.uint8), None, 640.0)
        v = out[out > 0].astype(np.float64) / 1000
        assert v.size > 0.8 * out.size
        assert abs(v.mean() - z) < 0.002 * z
        stds[z] = v.std()
    assert 0.0008 < stds[1.0] < 0.004  # 0.05-0.1 px of disparity noise: a few tenths of a percent at 1 m
    assert 8 < stds[2.0] / stds[0.5] < 32  # z^2: 16x from 0.5 m to 2 m


def _square_scene():
    depth = np.full((200, 200), 2.0, F32)
    depth[70:130, 70:130] = 0.6
    return depth


def test_stereo_shadow_lies_beside_a_near_object_on_the_far_imager_side():
    depth, mask = _square_scene(), np.zeros((200, 200), np.uint8)
    band = 300.0 * 0.05 * (1 / 0.6 - 1 / 2.0)  # 17.5 pixels
    occ = stereo_occlusion(depth, 300.0, 0.05)
    assert occ[100, 70 - int(band) + 1 : 70].all() and not occ[100, : 70 - int(band) - 1].any()
    assert not occ[:, 130:].any()
    for baseline, shadow, lit in (
        (0.05, np.s_[80:120, 56:68], np.s_[80:120, 133:145]),
        (-0.05, np.s_[80:120, 133:145], np.s_[80:120, 56:68]),
    ):
        outs = [realsense_depth(_rng(s), depth, mask, None, 300.0, baseline_m=baseline) for s in range(5)]
        assert all((out[shadow] == 0).mean() > 0.95 for out in outs)  # beside the square, on that side: no data
        assert np.median([(out[lit] > 0).mean() for out in outs]) > 0.8  # on the other side: the wall


def test_flying_pixels_lie_between_the_near_and_far_surface():
    depth = _square_scene()
    out = realsense_depth(_rng(2), depth, np.zeros((200, 200), np.uint8), None, 300.0)
    flying = (out > 650) & (out < 1950)
    assert flying.sum() >= 10
    edge = cv2.morphologyEx((depth < 1).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    assert edge[flying].all()  # only on the silhouette
    valid = out[out > 0]
    assert valid.min() > 560 and valid.max() < 2100  # never in front of the near or behind the far surface


def test_grazing_normals_make_holes():
    h, w = 100, 160
    depth = np.full((h, w), 0.8, F32)
    mask = np.ones((h, w), np.uint8)
    fx = 200.0
    x = (np.arange(w) - (w - 1) / 2) / fx
    y = (np.arange(h) - (h - 1) / 2) / fx
    ray = np.stack(np.broadcast_arrays(x[None, :], y[:, None], 1.0), -1)
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    side = np.stack(np.broadcast_arrays(1.0, 0.0 * y[:, None], -x[None, :]), -1)  # at right angles to the ray
    side /= np.linalg.norm(side, axis=-1, keepdims=True)
    normals = (side - 0.08 * ray).astype(F32)  # |n . view| about 0.08: nearly edge-on to the camera
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    normals[:, w // 2 :] = -ray[:, w // 2 :]  # facing it
    holes = np.mean([realsense_depth(_rng(s), depth, mask, normals, fx) == 0 for s in range(4)], axis=0)
    assert holes[:, 10 : w // 2 - 10].mean() > 0.4
    assert holes[:, w // 2 + 10 : -10].mean() < 0.1


def test_realsense_is_seeded_and_sizes_holes_in_sensor_pixels():
    depth = _square_scene()
    mask = np.zeros((200, 200), np.uint8)
    a = realsense_depth(_rng(9), depth, mask, None, 300.0)
    b = realsense_depth(_rng(9), depth, mask, None, 300.0)
    assert a.dtype == np.uint16 and a.shape == depth.shape and np.array_equal(a, b)
    small = cv2.resize(depth, (100, 100), interpolation=cv2.INTER_NEAREST)
    c = realsense_depth(_rng(9), small, np.zeros((100, 100), np.uint8), None, 150.0, pixel_scale=0.5)
    assert c.shape == (100, 100) and (c[40:60, 28:34] == 0).mean() > 0.9  # the shadow scales with fx
