"""The skinned hand surface: the shipped template, skinning to poses, and the OpenGL raster of it."""

from __future__ import annotations

import numpy as np
import pytest

from streamhand.geometry import Intrinsics, axis_angle, deproject, project
from streamhand.synth import gl_render
from streamhand.synth.hand import ANGLE_LIMITS, NUM_ANGLES, forward_kinematics
from streamhand.synth.hand_mesh import (
    MESH_VERSION,
    build_template,
    pose_mesh,
    template,
    template_angles,
    template_joints,
)
from streamhand.synth.render import RenderConfig, posed_mesh, render
from streamhand.synth.sampler import SamplerConfig, sample_hands


def _in_front(j: np.ndarray, z: float = 0.4) -> np.ndarray:
    """Palm toward the camera, fingers up, the palm centre ``z`` metres ahead."""
    palm = 0.5 * (j[0] + j[9])
    return (j - palm) @ np.diag([1.0, -1.0, -1.0]).T + np.array([0.0, 0.0, z])


def _winding(v: np.ndarray, faces: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Generalised winding number of closed mesh (v, faces) at points q: 1 inside, 0 outside."""
    a, b, c = (v[faces[:, i]][None].astype(np.float64) - q[:, None] for i in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=2) for x in (a, b, c))
    det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
    den = la * lb * lc + np.einsum("pfi,pfi->pf", a, b) * lc + np.einsum("pfi,pfi->pf", b, c) * la
    den += np.einsum("pfi,pfi->pf", c, a) * lb
    return 2 * np.arctan2(det, den).sum(1) / (4 * np.pi)


def _surface(v: np.ndarray, faces: np.ndarray, per_face: int = 12) -> np.ndarray:
    """Points spread over a triangle mesh's surface (for distances to the surface, not to its vertices)."""
    r = np.random.default_rng(0).random((per_face, 2))
    r = np.where(r.sum(1, keepdims=True) > 1, 1 - r, r)
    a, b, c = (v[faces[:, i]] for i in range(3))
    return (a[:, None] + r[None, :, :1] * (b - a)[:, None] + r[None, :, 1:] * (c - a)[:, None]).reshape(-1, 3)


def test_template_is_one_closed_surface():
    t = template()
    assert len(t.vertices) > 2000 and t.faces.max() < len(t.vertices) and t.faces.min() >= 0
    edges = np.sort(np.concatenate([t.faces[:, [0, 1]], t.faces[:, [1, 2]], t.faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert np.all(counts == 2)  # every edge between exactly two triangles: watertight, no seams
    assert len(t.vertices) - len(counts) + len(t.faces) == 2  # Euler: one closed surface, no handles
    np.testing.assert_allclose(t.weights.sum(1), 1.0, atol=1e-5)
    assert {0, *range(1, 16)} <= set(np.unique(t.part).astype(int))  # palm and every phalanx own vertices
    assert 0 < (t.nail > 0.5).sum() < 0.05 * len(t.vertices)


@pytest.mark.slow
def test_shipped_template_matches_the_code():
    """The shipped file is what build_template makes (coarser here: the same surface within a few mm)."""
    pytest.importorskip("skimage")
    pytest.importorskip("fast_simplification")
    coarse = build_template(voxel=0.003, target_faces=0)
    shipped = template()
    from scipy.spatial import cKDTree

    d_ab, _ = cKDTree(_surface(coarse.vertices, coarse.faces, 2)).query(shipped.vertices)
    d_ba, _ = cKDTree(_surface(shipped.vertices, shipped.faces)).query(coarse.vertices)
    assert max(np.percentile(d_ab, 99), np.percentile(d_ba, 99)) < 0.004
    np.testing.assert_allclose(shipped.rest_joints, template_joints(), atol=1e-6)
    assert MESH_VERSION >= 1


def test_rest_pose_skins_to_the_template_and_motion_is_rigid():
    t = template()
    j = template_joints()
    v, n = pose_mesh(j, 1.0, forearm_length=0.12)
    np.testing.assert_allclose(v, t.vertices, atol=1e-5)
    r, shift = axis_angle(np.array([0.3, -1.0, 0.5]), 1.1), np.array([0.1, -0.05, 0.6])
    v2, n2 = pose_mesh(j @ r.T + shift, 1.0, forearm_length=0.12)
    np.testing.assert_allclose(v2, v @ r.T + shift, atol=1e-5)
    np.testing.assert_allclose(n2, n @ r.T, atol=1e-4)


def test_skinned_hand_wraps_its_joints_in_many_poses():
    rng = np.random.default_rng(1)
    lo, hi = ANGLE_LIMITS[:, 0], ANGLE_LIMITS[:, 1]
    for _ in range(20):
        a = rng.uniform(lo, hi)
        scale = float(rng.uniform(0.85, 1.15))
        j = forward_kinematics(a[None], np.array([scale]))[0]
        v, n = pose_mesh(j, scale)
        assert np.all(np.isfinite(v)) and np.allclose(np.linalg.norm(n, axis=1), 1, atol=1e-4)
        d = np.linalg.norm(v[None] - j[:, None], axis=2).min(1)
        assert d[[4, 8, 12, 16, 20]].max() < 0.006  # fingertips on the skin
        inner = [0, 1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19]
        assert _winding(v, template().faces, j[inner]).min() > 0.95  # the rest inside (2 where fingers cross)


def test_a_finger_moves_alone():
    t = template()
    a = template_angles()
    j0 = forward_kinematics(a[None])[0]
    b = a.copy()
    b[5], b[7] = np.deg2rad(70), np.deg2rad(80)  # index MCP and PIP flex
    v0, _ = pose_mesh(j0, 1.0)
    v1, _ = pose_mesh(forward_kinematics(b[None])[0], 1.0)
    moved = np.linalg.norm(v1 - v0, axis=1)
    part = t.part.astype(int)
    assert moved[np.isin(part, [4, 5, 6])].mean() > 0.02  # the index finger's phalanges
    assert moved[np.isin(part, [13, 14, 15])].max() < 1e-6  # the pinky's do not move
    assert moved[np.isin(part, [10, 11, 12])].max() < 1e-6  # nor the ring finger's


def test_raster_lands_on_the_mesh():
    """Every hand pixel, back-projected with its depth through off-centre intrinsics, lies on the surface."""
    j = _in_front(forward_kinematics(np.zeros((1, NUM_ANGLES)))[0], 0.35) + np.array([0.03, 0.02, 0])
    k = Intrinsics(200, 160, 180.0, 175.0, 83.0, 91.0)
    v, n, _ = posed_mesh(j, 1.0, False, 0.25)
    look = gl_render.HandLook(skin=np.array([200.0, 150, 120]))
    light = gl_render.Lighting(np.array([0, -0.5, -1.0]), np.ones(3), np.array([0, 0, -1.0]), 0.2 * np.ones(3),
                               0.2 * np.ones(3), 0.1 * np.ones(3))  # fmt: skip
    ras = gl_render.renderer().draw(k, [(v, n)], [look], light)
    ys, xs = np.nonzero(ras.hand)
    assert len(xs) > 500
    z = ras.z[ys, xs]
    pts = deproject(np.stack([xs, ys], 1), z, k)
    from scipy.spatial import cKDTree

    d, _ = cKDTree(_surface(v, template().faces)).query(pts)
    assert np.percentile(d, 95) < 0.002
    # and every visible vertex facing the camera projects onto a hand pixel
    u, w = np.round(project(v, k)).astype(int).T
    inside = (u >= 0) & (u < k.width) & (w >= 0) & (w < k.height) & (n[:, 2] < -0.5)
    assert ras.hand[w[inside], u[inside]].mean() > 0.97
    # coverage is 1 inside, fractional only along the silhouette
    assert np.median(ras.coverage[ras.hand > 0]) == pytest.approx(1.0)
    assert 0 < ((ras.coverage > 0.05) & (ras.coverage < 0.95)).sum() < 0.5 * len(xs)


def test_left_hand_is_the_mirror_image():
    j = _in_front(forward_kinematics(template_angles()[None])[0], 0.4)
    jl = j * np.array([-1.0, 1, 1])
    k = Intrinsics(160, 160, 200.0, 200.0, 79.5, 79.5)
    cfg = RenderConfig(blur=False, image_noise=False, depth_noise=False, depth_holes=False, background="plain")
    right = render(np.random.default_rng(4), [j], k, cfg=cfg)
    left = render(np.random.default_rng(4), [jl], k, cfg=cfg, left=[True])
    a, b = right.mask > 0, left.mask[:, ::-1] > 0
    assert (a & b).sum() / (a | b).sum() > 0.97
    both = a & b
    assert np.abs(right.depth.astype(int) - left.depth[:, ::-1].astype(int))[both].mean() < 1.0  # mm


def test_light_from_one_side_lights_that_side():
    j = _in_front(forward_kinematics(np.zeros((1, NUM_ANGLES)))[0], 0.4)
    k = Intrinsics(160, 160, 200.0, 200.0, 79.5, 79.5)
    v, n, _ = posed_mesh(j, 1.0, False, 0.25)
    look = gl_render.HandLook(skin=np.array([200.0, 150, 120]))

    def lit(x: float) -> np.ndarray:
        light = gl_render.Lighting(np.array([x, 0, -0.3]), np.ones(3) * 1.5, np.array([0, 0, -1.0]), np.zeros(3),
                                   0.05 * np.ones(3), 0.05 * np.ones(3))  # fmt: skip
        return gl_render.renderer().draw(k, [(v, n)], [look], light)

    left_lit, right_lit = lit(-1.0), lit(1.0)
    xs = np.nonzero(left_lit.hand)[1]
    mid = np.median(xs)
    m = left_lit.hand > 0
    cols = np.arange(k.width)[None, :].repeat(k.height, 0)
    lum_l = left_lit.color.mean(-1)
    lum_r = right_lit.color.mean(-1)
    assert lum_l[m & (cols < mid)].mean() > lum_l[m & (cols > mid)].mean() + 4
    assert lum_r[m & (cols > mid)].mean() > lum_r[m & (cols < mid)].mean() + 4


def test_two_hands_and_none():
    hs = sample_hands(np.random.default_rng(2), 2, SamplerConfig(width=320, height=240, shared_camera=True))
    r = render(np.random.default_rng(0), list(hs.joints_cam), hs.intrinsics[0], list(hs.scale), left=[False, True])
    assert set(np.unique(r.mask)) <= {0, 1, 2}
    empty = gl_render.renderer().draw(hs.intrinsics[0], [], [], gl_render.Lighting(*[np.ones(3)] * 6))
    assert empty.hand.max() == 0 and np.isinf(empty.z).all()


def test_no_opengl_is_one_clear_error(monkeypatch):
    import moderngl

    def refuse(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(moderngl, "create_standalone_context", refuse)
    with pytest.raises(RuntimeError, match=r"needs OpenGL 3\.3.*EGL"):
        gl_render._context(moderngl)


def test_egl_runtime_libraries_alone_are_enough(monkeypatch):
    """Where only libEGL.so.1 / libGL.so.1 are installed (no -dev package's unversioned names), the renderer
    still gets its context by naming the versioned libraries."""
    import moderngl

    tried = []

    def only_versioned(*args, **kwargs):
        tried.append(kwargs)
        if kwargs.get("libegl") != "libEGL.so.1":
            raise RuntimeError("libEGL.so: cannot open shared object file")
        return "context"

    monkeypatch.setattr(moderngl, "create_standalone_context", only_versioned)
    assert gl_render._context(moderngl) == "context"
    assert [k.get("backend") for k in tried] == [None, "egl", "egl"]


def test_demo_without_opengl_is_one_line_exit_2(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from streamhand.cli import app

    def refuse(moderngl):
        raise gl_render.RendererUnavailable("the hand renderer needs OpenGL 3.3 (EGL); no display")

    monkeypatch.setattr(gl_render, "_context", refuse)
    monkeypatch.setattr(gl_render, "_RENDERER", None)
    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path))  # no cached clip: the demo must render
    from tests.conftest import free_port

    res = CliRunner().invoke(app, ["run", "--source", "demo", "--frames", "2", "--no-realtime",
                                   "--port", str(free_port()), "--control-port", str(free_port())])  # fmt: skip
    assert res.exit_code == 2, res.output
    out = res.output  # stdout and stderr together
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and "OpenGL" in lines[0] and "Traceback" not in out, out


def test_cavities_between_curled_fingers_are_shaded():
    """The room's light is blocked where curled fingers meet each other and the palm, not on an open hand; the
    shading is a mirror image on a left hand; the renderer draws it darker."""
    from streamhand.synth.hand_mesh import cavity_occlusion
    from streamhand.synth.sampler import SamplerConfig, sample_hands

    hs = sample_hands(np.random.default_rng(3), 300, SamplerConfig())
    curl = hs.angles.mean(1)
    open_j, fist_j = hs.joints_cam[np.argmin(curl)], hs.joints_cam[np.argmax(curl)]
    assert posed_mesh(open_j, 1.0, False, 0.1)[2] is None  # off unless asked for
    _, _, ao_open = posed_mesh(open_j, 1.0, False, 0.1, cavities=True)
    _, _, ao_fist = posed_mesh(fist_j, 1.0, False, 0.1, cavities=True)
    assert ao_open.dtype == np.float32 and ao_open.min() >= 0.15 and ao_open.max() <= 1.0
    assert (ao_open < 0.9).mean() < 0.05  # an open hand is open to the room
    assert (ao_fist < 0.9).mean() > 2 * max((ao_open < 0.9).mean(), 0.01)
    palm = (template().part == 0) & (template().side > 0.5)
    assert ao_fist[palm].mean() < ao_open[palm].mean()
    _, _, ao_left = posed_mesh(fist_j * np.array([-1.0, 1, 1]), 1.0, True, 0.1, cavities=True)
    np.testing.assert_allclose(ao_left, ao_fist, atol=1e-5)
    v, n, _ = posed_mesh(fist_j, 1.0, False, 0.1)
    np.testing.assert_allclose(cavity_occlusion(fist_j, v, n), ao_fist, atol=1e-6)
    # drawn: the same fist, lit the same, is darker with its cavities than without
    k = Intrinsics(160, 160, 200.0, 200.0, 79.5, 79.5)
    j = _in_front(fist_j - fist_j[0], 0.35)
    v, n, ao = posed_mesh(j, 1.0, False, 0.1, cavities=True)
    look = gl_render.HandLook(skin=np.array([200.0, 150, 120]))
    light = gl_render.Lighting(np.array([0, -0.5, -1.0]), np.ones(3), np.array([0, 0, -1.0]), 0.4 * np.ones(3),
                               0.3 * np.ones(3), 0.2 * np.ones(3))  # fmt: skip
    shaded = gl_render.renderer().draw(k, [(v, n, ao)], [look], light)
    plain = gl_render.renderer().draw(k, [(v, n)], [look], light)
    m = (shaded.hand > 0) & (plain.hand > 0)
    assert shaded.color[m].mean() < plain.color[m].mean() and (shaded.color[m] <= plain.color[m] + 1e-3).all()


def test_a_rooms_diffuse_light_takes_light_from_the_key_to_the_fill_and_the_ceiling():
    """Renderer 8's room light: the same draws as renderer 7's, the fill and hemisphere raised against the key
    (key 0.5-6 times the fill instead of 2-25) with about the same light in all; a hand drawn in it is lit by
    more of the room (as bright or brighter where it faces the camera and the key comes from aside)."""
    from streamhand.synth.render import random_lighting

    ratio, total = [], []
    for s in range(200):
        a, b = random_lighting(np.random.default_rng(s), True), random_lighting(np.random.default_rng(s), False)
        for f in ("key_dir", "fill_dir"):
            assert np.array_equal(getattr(a, f), getattr(b, f))
        assert (a.shadow_soft, a.sss, a.gloss) == (b.shadow_soft, b.sss, b.gloss)
        ratio.append((a.key_col.mean() / a.fill_col.mean(), b.key_col.mean() / b.fill_col.mean()))
        total.append(sum(x.mean() for x in (a.key_col, a.fill_col, a.sky_col)) /
                     sum(x.mean() for x in (b.key_col, b.fill_col, b.sky_col)))  # fmt: skip
    ratio = np.array(ratio)
    assert ratio[:, 0].min() > 0.4 and ratio[:, 0].max() < 7 and ratio[:, 1].min() > 1.8 and ratio[:, 1].max() > 15
    assert 0.8 < np.median(total) < 1.2
    j = _in_front(forward_kinematics(np.zeros((1, NUM_ANGLES)))[0], 0.4)
    k = Intrinsics(160, 160, 200.0, 200.0, 79.5, 79.5)
    mean = {}
    for diffuse in (True, False):
        cfg = RenderConfig(background="plain", blur=False, image_noise=False, occluders=0.0, motion_blur=0.0,
                           forearm=False, diffuse_light=diffuse)  # fmt: skip
        rs = [render(np.random.default_rng(s), [j], k, cfg=cfg) for s in range(4)]
        mean[diffuse] = np.mean([r.rgb.astype(np.float64).mean(-1)[r.mask == 1].mean() for r in rs])
    assert 1.0 < mean[True] / mean[False] < 1.6
