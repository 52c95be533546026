"""Keypoint encoding/decoding: the virtual camera turned toward the hand, normalisation, mirroring."""

import numpy as np
import pytest

from streamhand.codec import decode_3d, encode_2d, encode_3d, encode_world, palm_size, to_view, view_rotation
from streamhand.geometry import Intrinsics, axis_angle
from streamhand.skeleton import canonical_hand, normalize, normalize_2d
from streamhand.synth.sampler import SamplerConfig, sample_hands


@pytest.fixture(scope="module")
def hands():
    return sample_hands(np.random.default_rng(0), 300, SamplerConfig(hfov_range=(70.0, 78.0)))


def test_view_rotation_is_a_rotation_onto_the_axis(hands):
    rot = view_rotation(hands.joints_2d, hands.intrinsics)
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)
    k = hands.intrinsics
    mid = 0.5 * (hands.joints_2d[:, 0] + hands.joints_2d[:, 9])
    ray = np.stack([(mid[:, 0] - k.cx) / k.fx, (mid[:, 1] - k.cy) / k.fy, np.ones(len(mid))], 1)
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", rot, ray), np.tile([0.0, 0.0, 1.0], (len(ray), 1)), atol=1e-9)


def test_view_is_the_projection_of_the_turned_hand(hands):
    rot = view_rotation(hands.joints_2d, hands.intrinsics)
    turned = hands.joints_cam @ rot.transpose(0, 2, 1)
    np.testing.assert_allclose(to_view(hands.joints_2d, hands.intrinsics, rot), turned[..., :2] / turned[..., 2:3],
                               atol=1e-9)  # fmt: skip


def test_training_targets_decode_to_the_camera_frame(hands):
    _, rot = encode_2d(hands.joints_2d, hands.left, hands.intrinsics)
    target, scale = encode_3d(hands.joints_cam, hands.left, rot)  # what the model learns to output
    np.testing.assert_allclose(scale, normalize(hands.joints_cam)[1])
    assert not np.allclose(target, canonical_hand(normalize(hands.joints_cam)[0], hands.left))  # turned
    back = decode_3d(target, hands.left, scale, rot)
    np.testing.assert_allclose(back, hands.joints_cam - hands.joints_cam[:, :1], atol=1e-12)


def test_a_hand_seen_off_axis_encodes_like_the_same_hand_at_the_centre():
    """Turning the whole scene about the camera moves the hand across the image; the model's input stays
    the same up to an in-plane turn (the virtual camera sees the same hand)."""
    k = Intrinsics.from_fov(640, 480, 75)
    hs = sample_hands(np.random.default_rng(3), 1, SamplerConfig(facing_fraction=1.0))
    centre = hs.joints_cam[0] - 0.5 * (hs.joints_cam[0, 0] + hs.joints_cam[0, 9]) + np.array([0.0, 0.0, 0.5])
    turned, plain = [], []
    for angle in (0.0, 0.5):  # about 29 degrees to the side
        q = axis_angle(np.array([0.0, 1.0, 0.0]), np.array([angle]))[0]
        cam = centre @ q.T
        px = np.stack([k.fx * cam[:, 0] / cam[:, 2] + k.cx, k.fy * cam[:, 1] / cam[:, 2] + k.cy], -1)[None]
        turned.append(encode_2d(px, False, k)[0][0].astype(np.float64))
        plain.append(encode_2d(px, False)[0][0].astype(np.float64))

    def residual(a: np.ndarray, b: np.ndarray) -> float:
        u, _, vt = np.linalg.svd(b.T @ a)  # best in-plane rotation b -> a
        return float(np.abs(b @ (u @ vt) - a).max())

    assert residual(*turned) < 0.01
    assert residual(*plain) > 0.03  # without the turn the border view is a different 2D shape


def test_without_intrinsics_the_view_is_not_turned(hands):
    x, rot = encode_2d(hands.joints_2d, hands.left)
    np.testing.assert_array_equal(rot, np.broadcast_to(np.eye(3), rot.shape))
    assert x.dtype == np.float32 and x.shape == hands.joints_2d.shape


def test_the_compiled_encodings_are_the_composition_they_stand_for(hands):
    """encode_2d (one compiled call) is to_view, then normalize_2d, then canonical_hand; encode_world is wrist-relative,
    over palm_size, turned, mirrored; decode_3d is their inverse, for any leading shape."""
    x, rot = encode_2d(hands.joints_2d, hands.left, hands.intrinsics)
    composed = canonical_hand(normalize_2d(to_view(hands.joints_2d, hands.intrinsics, rot)), hands.left)
    np.testing.assert_allclose(x, composed, rtol=0, atol=2e-6)
    world = hands.joints_cam - hands.joints_cam.mean(1, keepdims=True)
    rel = world - world[:, :1]
    composed = canonical_hand((rel / palm_size(rel)[:, None, None]) @ rot.transpose(0, 2, 1), hands.left)
    np.testing.assert_allclose(encode_world(world, hands.left, rot), composed, rtol=0, atol=2e-6)
    y, scale = encode_3d(hands.joints_cam, hands.left, rot)
    back = decode_3d(
        y.reshape(3, 100, 21, 3), hands.left.reshape(3, 100), scale.reshape(3, 100), rot.reshape(3, 100, 3, 3)
    )
    np.testing.assert_allclose(back.reshape(-1, 21, 3), hands.joints_cam - hands.joints_cam[:, :1], atol=1e-12)
    np.testing.assert_allclose(decode_3d(y[0], True, 2.0), canonical_hand(y[0], True) * 2.0, atol=1e-15)
