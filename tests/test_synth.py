from dataclasses import replace

import numpy as np
import pytest

from streamhand.geometry import Intrinsics, project
from streamhand.skeleton import bone_lengths, reference_length
from streamhand.synth.hand import (
    ANGLE_LIMITS,
    NUM_ANGLES,
    REFERENCE_HAND_LENGTH_M,
    forward_kinematics,
    reference_pose,
    thumb_pronation,
)
from streamhand.synth.render import RenderConfig, background, render
from streamhand.synth.sampler import GESTURES, SamplerConfig, sample_articulation, sample_hands


def test_reference_hand_is_adult_sized():
    j = reference_pose()
    hand_length = np.linalg.norm(j[12] - j[0])
    assert hand_length == pytest.approx(REFERENCE_HAND_LENGTH_M, abs=0.002)  # wrist to middle tip
    # Buchholz et al. (1992): middle proximal phalanx 0.277 of hand length
    assert reference_length(j) == pytest.approx(0.277 * REFERENCE_HAND_LENGTH_M, rel=1e-6)
    assert j[4, 0] > j[20, 0]  # right hand: thumb toward +x


@pytest.mark.parametrize(
    ("gesture", "a", "b", "lo_mm", "hi_mm"),
    [
        ("pinch", 4, 8, 0, 10),  # thumb opposes the index: tips meet
        ("ok", 4, 8, 0, 10),
        ("fist", 4, 10, 0, 45),  # the thumb lies over the folded fingers, not in front of the palm
        ("open", 4, 8, 90, 160),
        ("spread", 8, 20, 110, 200),  # index and little fingertips far apart
    ],
)
def test_gesture_geometry(gesture, a, b, lo_mm, hi_mm):
    j = forward_kinematics(GESTURES[gesture][None])[0]
    assert lo_mm <= 1000 * np.linalg.norm(j[a] - j[b]) <= hi_mm


def test_joint_limits_include_hyperextension_and_abduction():
    assert np.rad2deg(ANGLE_LIMITS[5, 0]) <= -30  # index MCP bends backwards
    assert np.rad2deg(ANGLE_LIMITS[17, 1] - ANGLE_LIMITS[17, 0]) >= 40  # little finger abduction range
    hyper = forward_kinematics(GESTURES["hyperextended"][None])[0]
    assert hyper[8, 2] < -0.01  # the index tip is bent back behind the palm plane (-z)
    # opposition: the flexed, abducted thumb turns about its axis (pronation) toward the fingers
    a = np.zeros((1, NUM_ANGLES))
    a[0, :5] = np.deg2rad([55, 40, 40, 0, 40])
    assert thumb_pronation(a[0, 0], a[0, 1]) > 0
    j = forward_kinematics(a)[0]
    assert np.linalg.norm(j[4] - j[13]) < np.linalg.norm(j[4] - j[5]) + 0.02


def test_articulations_cover_open_folded_and_hyperextended_fingers(rng):
    a = np.rad2deg(sample_articulation(rng, 4000, gesture_fraction=0.0))
    mcp = a[:, [5, 9, 13, 17]]
    assert (mcp < -10).mean() > 0.02  # some hyperextension
    assert (mcp > 60).mean() > 0.2 and (mcp < 15).mean() > 0.2  # folded and extended fingers
    folded = (a[:, [7, 11, 15, 19]] > 60).sum(1)  # PIPs folded per hand: all counts 0..4 occur
    assert set(np.unique(folded)) == {0, 1, 2, 3, 4}


def test_left_hand_is_mirror_of_right():
    a = np.zeros((1, NUM_ANGLES))
    r = forward_kinematics(a, left=False)[0]
    l_ = forward_kinematics(a, left=True)[0]
    np.testing.assert_allclose(l_[:, 0], -r[:, 0])
    np.testing.assert_allclose(l_[:, 1:], r[:, 1:])


def test_flexion_curls_toward_palm_and_limits_apply():
    a = np.zeros((1, NUM_ANGLES))
    a[0, 5 + 4 * 1 + 2] = np.deg2rad(90)  # middle PIP
    j = forward_kinematics(a)[0]
    assert j[12, 2] > 0.02  # middle fingertip moved to the palm side (+z)
    too_far = np.full((1, NUM_ANGLES), 10.0)
    j2 = forward_kinematics(too_far)
    np.testing.assert_allclose(j2, forward_kinematics(ANGLE_LIMITS[:, 1][None]))


def test_bone_lengths_do_not_depend_on_pose(rng):
    a = sample_articulation(rng, 50)
    s = np.full(50, 1.1)
    bl = bone_lengths(forward_kinematics(a, s))
    np.testing.assert_allclose(bl, np.broadcast_to(bl[0], bl.shape), atol=1e-12)


def test_sampler_ranges_and_projection(rng):
    hs = sample_hands(rng, 500, SamplerConfig())
    palm_z = 0.5 * (hs.joints_cam[:, 0, 2] + hs.joints_cam[:, 9, 2])
    assert palm_z.min() >= 0.25 - 1e-9 and palm_z.max() <= 0.9 + 1e-9
    assert np.all((hs.angles >= ANGLE_LIMITS[:, 0] - 1e-12) & (hs.angles <= ANGLE_LIMITS[:, 1] + 1e-12))
    k = hs.intrinsics[7]
    np.testing.assert_allclose(project(hs.joints_cam[7], k), hs.joints_2d[7])
    assert 0.6 < hs.visible.mean() < 0.98  # some joints hidden by the hand, most visible
    assert 0.35 < hs.left.mean() < 0.65


def test_sampler_is_seeded():
    a = sample_hands(np.random.default_rng(5), 20)
    b = sample_hands(np.random.default_rng(5), 20)
    np.testing.assert_array_equal(a.joints_2d, b.joints_2d)


def test_gestures_named():
    assert {"open", "fist", "point", "pinch", "thumbs_up", "victory", "grasp"} <= set(GESTURES)
    fist = forward_kinematics(GESTURES["fist"][None])[0]
    open_ = forward_kinematics(GESTURES["open"][None])[0]
    assert np.linalg.norm(fist[12] - fist[0]) < 0.6 * np.linalg.norm(open_[12] - open_[0])


def test_render_outputs_and_determinism():
    hs = sample_hands(np.random.default_rng(3), 1, SamplerConfig(width=256, height=256, facing_fraction=1.0))
    k = hs.intrinsics[0]
    a = render(np.random.default_rng(9), [hs.joints_cam[0]], k, [hs.scale[0]])
    b = render(np.random.default_rng(9), [hs.joints_cam[0]], k, [hs.scale[0]])
    assert a.rgb.shape == (256, 256, 3) and a.rgb.dtype == np.uint8
    assert a.depth.shape == (256, 256) and a.depth.dtype == np.uint16
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    fg = a.mask > 0
    assert 0.01 < fg.mean() < 0.9
    # depth on the hand (within its joints' box: the forearm reaches further back) is close to the joints' depth
    # (mm), background is far
    x0, y0 = np.floor(hs.joints_2d[0].min(0)).astype(int)
    x1, y1 = np.ceil(hs.joints_2d[0].max(0)).astype(int)
    box = np.zeros_like(fg)
    box[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = True
    valid = fg & box & (a.depth > 0)
    jz = hs.joints_cam[0, :, 2] * 1000
    assert jz.min() - 60 < np.median(a.depth[valid]) < jz.max() + 30
    assert np.median(a.depth[~fg & (a.depth > 0)]) >= 1000
    # the wrist projects onto the hand (or the forearm) in the mask
    u, v = np.round(hs.joints_2d[0, 9]).astype(int)
    if 0 <= u < 256 and 0 <= v < 256:
        assert fg[max(v - 3, 0) : v + 4, max(u - 3, 0) : u + 4].any()


def test_render_clean_depth_matches_geometry():
    k = Intrinsics.from_fov(320, 240, 60)
    j = reference_pose() @ np.diag([1.0, -1.0, -1.0]).T + np.array([0, 0.05, 0.5])
    cfg = RenderConfig(depth_noise=False, depth_holes=False, background="plain")
    r = render(np.random.default_rng(0), [j], k, None, cfg)
    u, v = np.round(project(j[9], k)).astype(int)  # middle MCP: the palm surface is in front of it
    assert abs(int(r.depth[v, u]) - 1000 * j[9, 2]) < 25


@pytest.mark.parametrize("n_hands", [0, 2])
def test_render_zero_or_two_hands(n_hands, rng):
    hs = sample_hands(rng, max(n_hands, 1), SamplerConfig(width=200, height=150, shared_camera=True))
    r = render(rng, list(hs.joints_cam[:n_hands]), hs.intrinsics[0], list(hs.scale[:n_hands]))
    assert set(np.unique(r.mask)) <= set(range(n_hands + 1))
    if n_hands == 0:
        assert r.mask.max() == 0


@pytest.mark.parametrize(("kind", "max_saturation"), [("room", 0.45), ("clutter", 1.0), ("plain", 1.0), ("none", 0.0)])
def test_backgrounds(kind, max_saturation):
    a = background(np.random.default_rng(4), 120, 160, kind)
    b = background(np.random.default_rng(4), 120, 160, kind)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (120, 160, 3) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 255
    rgb = a.astype(np.uint8)
    sat = (rgb.max(-1).astype(float) - rgb.min(-1)) / np.maximum(rgb.max(-1), 1)
    assert np.median(sat) <= max_saturation  # indoor rooms are muted


def test_random_backgrounds_are_mostly_rooms():
    rng = np.random.default_rng(0)
    sats = []
    for _ in range(40):
        rgb = background(rng, 48, 64, "random").astype(np.uint8)
        sats.append(np.median((rgb.max(-1).astype(float) - rgb.min(-1)) / np.maximum(rgb.max(-1), 1)))
    muted = np.mean(np.array(sats) < 0.45)
    assert 0.55 < muted < 0.95


def test_render_scene_stays_behind_the_hand_and_occluders_cover_it():
    hs = sample_hands(np.random.default_rng(6), 6, SamplerConfig(width=320, height=240, facing_fraction=1.0,
                                                                 in_frame_margin=10.0))  # fmt: skip
    covered = 0
    for i in range(6):
        args = ([hs.joints_cam[i]], hs.intrinsics[i], [hs.scale[i]])
        cfg = RenderConfig(occluders=0.0, depth_noise=False, depth_holes=False, background="scene")
        clear = render(np.random.default_rng(i), *args, cfg)
        held = render(np.random.default_rng(i), *args, replace(cfg, occluders=1.0))
        fg = clear.mask > 0
        # the scene is behind the whole arm
        assert np.median(clear.depth[~fg]) > clear.depth[fg].max()
        # an occluder only ever hides hand pixels, and what hides them is nearer than the hand
        assert not np.any(held.mask[~fg])
        hidden = fg & (held.mask == 0)
        if hidden.any():
            covered += 1
            assert np.median(held.depth[hidden]) < np.median(clear.depth[hidden])
            assert hidden.sum() < 0.6 * fg.sum()
    assert covered >= 3


def test_render_clean_camera_is_the_raster():
    """With the webcam and depth models off, the colour is the raster composited over the scene, unchanged."""
    hs = sample_hands(np.random.default_rng(8), 1, SamplerConfig(width=160, height=120, facing_fraction=1.0))
    cfg = RenderConfig(blur=False, image_noise=False, depth_noise=False, depth_holes=False, occluders=0.0,
                       background="plain")  # fmt: skip
    a = render(np.random.default_rng(1), [hs.joints_cam[0]], hs.intrinsics[0], None, cfg)
    import cv2

    near_hand = cv2.dilate((a.mask > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # edges blend
    plain = a.rgb[~near_hand].reshape(-1, 3)
    assert np.ptp(plain, axis=0).max() <= 1  # the plain background untouched by noise or blur


def _hand_means(take: int | None, seeds: range) -> np.ndarray:
    """The mean colour (RGB) of one hand's pixels and of the scene behind it, drawn with frame seeds ``seeds``
    and a take drawn with seed ``take`` (None: none) over a fixed backdrop (as the demo clip is drawn)."""
    from streamhand.synth.render import Take

    hs = sample_hands(np.random.default_rng(3), 1, SamplerConfig(width=160, height=160, facing_fraction=1.0))
    cfg = RenderConfig(occluders=0.0, motion_blur=0.0)
    backdrop = np.full((160, 160, 3), 120.0, np.float32)
    steady = None if take is None else Take.draw(np.random.default_rng(take), 1)
    out = []
    for s in seeds:
        r = render(np.random.default_rng(s), [hs.joints_cam[0]], hs.intrinsics[0], [hs.scale[0]], cfg,
                   backdrop=backdrop, take=steady)  # fmt: skip
        rgb = r.rgb.astype(np.float64)
        out.append(np.concatenate([rgb[r.mask == 1].mean(0), rgb[r.mask == 0].mean(0)]))
    return np.array(out)


def test_a_video_take_keeps_its_light_look_and_camera_from_frame_to_frame():
    """With a take every frame has the same light, look and camera settings (a real recording), only the
    noise differs; without it each frame draws its own (the hand's and the scene's colour jump between frames)."""
    steady, each = _hand_means(7, range(6)), _hand_means(None, range(6))
    assert np.abs(steady - steady.mean(0)).max() < 1.5  # the sensor's noise alone
    assert np.abs(each - each.mean(0)).max() > 8.0
    assert np.abs(_hand_means(8, range(1)) - steady.mean(0)).max() > 3.0  # another take, another look
    a, b = _hand_means(7, range(0, 1)), _hand_means(7, range(1, 2))
    assert not np.array_equal(a, b)  # the noise is the frame's own


def test_the_demo_clip_is_one_steady_recording():
    """The demo's scene, behind the hands, keeps its colour from frame to frame (one camera's settings)."""
    from streamhand.capture.demo import demo_clip

    corner = [rgb[:24, :24].astype(np.float64).mean((0, 1)) for rgb, *_ in demo_clip(8, 160, 120, hands=1)]
    assert np.ptp(np.array(corner), axis=0).max() < 3.0


def _lit(key: tuple[float, float, float], fill: tuple[float, float, float], light_dir, offsets) -> np.ndarray:
    """Mean colour of the first of flat right hands (palm toward the camera, 0.4 m away, shifted by ``offsets``,
    metres) drawn by the OpenGL renderer under one key light (with shadows) and one fill light (without), both
    from ``light_dir`` (toward the light), no room light."""
    from streamhand.synth.gl_render import HandLook, Lighting, renderer
    from streamhand.synth.hand_mesh import template_joints
    from streamhand.synth.render import posed_mesh

    base = template_joints() @ np.diag([1.0, -1.0, -1.0]).T  # fingers up, palm toward the camera
    base = base - base[9] + np.array([0.0, 0.0, 0.4])
    k = Intrinsics.from_fov(320, 320, 60.0)
    meshes = [posed_mesh(base + np.asarray(o), 1.0, False, 0.1) for o in offsets]
    d = np.asarray(light_dir, np.float64) / np.linalg.norm(light_dir)
    black = np.zeros(3)
    light = Lighting(d, np.array(key), d, np.array(fill), black, black, shadow_soft=1.0, sss=0.0, gloss=0.0)
    ras = renderer().draw(k, meshes, [HandLook(skin=np.array([200.0, 160.0, 130.0]))] * len(meshes), light)
    return ras.color[ras.hand == 1].mean(0)


def test_the_key_light_reaches_the_hand_and_casts_shadows():
    """The key light lights what faces it as the shadowless fill light does (a shadow map read wrongly once left
    every point in shadow: the key light, its shadows and the skin's sheen were missing from every render), and
    a hand between it and another shades the one behind."""
    towards_camera = (0.0, 0.0, -1.0)
    by_key = _lit((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), towards_camera, [(0, 0, 0)])
    by_fill = _lit((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), towards_camera, [(0, 0, 0)])
    assert by_fill.mean() > 60 and by_key.mean() > 0.9 * by_fill.mean()
    # the same key light from the camera's side, another hand 5 cm nearer to it and a little aside
    alone = _lit((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (0.5, 0.0, -1.0), [(0, 0, 0)])
    shaded = _lit((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (0.5, 0.0, -1.0), [(0, 0, 0), (0.03, 0.0, -0.05)])
    assert shaded.mean() < 0.8 * alone.mean()
