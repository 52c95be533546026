import numpy as np
import pytest

from streamhand import skeleton as sk


def _rand(rng, *shape):
    return rng.normal(size=shape)


def test_layout_tables():
    assert len(sk.JOINT_NAMES) == 21 and len(sk.PARENTS) == 21 and len(sk.BONES) == 20
    assert sk.PARENTS[0] == -1
    assert [sk.PARENTS[j] for j in (1, 5, 9, 13, 17)] == [0] * 5
    assert sk.PARENTS[8] == 7 and sk.PARENTS[4] == 3
    assert sk.FINGER_CHAINS[2] == (9, 10, 11, 12)
    assert sk.JOINT_NAMES[sk.MIDDLE_PIP] == "middle_pip"


@pytest.mark.parametrize(
    ("rhd_index", "mp_index"),
    [(0, 0), (4, 1), (1, 4), (8, 5), (5, 8), (12, 9), (9, 12), (16, 13), (20, 17), (17, 20)],
)
def test_rhd_known_permutation(rhd_index, mp_index):
    kp = np.zeros((42, 3))
    kp[rhd_index] = 1.0  # left hand
    kp[21 + rhd_index] = 2.0  # right hand
    left, right = sk.from_rhd(kp)
    assert left[mp_index, 0] == 1.0 and right[mp_index, 0] == 2.0
    assert np.count_nonzero(left[:, 0]) == 1


@pytest.mark.parametrize(
    ("stb_index", "mp_index"),
    [(1, 17), (4, 20), (5, 13), (9, 9), (12, 12), (13, 5), (17, 1), (20, 4)],
)
def test_stb_known_permutation(stb_index, mp_index):
    kp = np.zeros((21, 3))
    kp[stb_index] = 1000.0  # mm
    out = sk.from_stb(kp)
    assert out[mp_index, 0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "roundtrip",
    [
        lambda j: sk.from_rhd(sk.to_rhd(j, j + 1))[0],
        lambda j: sk.from_rhd(sk.to_rhd(j - 1, j))[1],
        lambda j: sk.from_stb(sk.to_stb(j)),
        lambda j: sk.from_palm_root(sk.to_palm_root(j)),
        lambda j: sk.from_freihand(j),
        lambda j: sk.mirror_x(sk.mirror_x(j)),
    ],
    ids=["rhd-left", "rhd-right", "stb", "palm", "freihand", "mirror"],
)
def test_round_trips(roundtrip, rng):
    j = _rand(rng, 5, 21, 3)
    np.testing.assert_allclose(roundtrip(j), j, atol=1e-12)


def test_stb_is_reverse_of_rhd_fingers(rng):
    j = _rand(rng, 21, 3)
    rhd = sk.to_rhd(j, j)[:21]
    stb = sk.to_palm_root(j)[sk._STB_TO_MP.argsort()]
    np.testing.assert_allclose(stb[1:], rhd[1:][::-1])


def test_palm_root_is_midpoint(rng):
    j = _rand(rng, 21, 3)
    p = sk.to_palm_root(j)
    np.testing.assert_allclose(p[0], (j[0] + j[9]) / 2)
    np.testing.assert_allclose(p[1:], j[1:])


def test_bone_lengths_preserved_by_conversions_and_rigid_motion(rng):
    j = _rand(rng, 3, 21, 3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    moved = j @ q.T + rng.normal(size=3)
    np.testing.assert_allclose(sk.bone_lengths(moved), sk.bone_lengths(j), atol=1e-12)
    np.testing.assert_allclose(sk.bone_lengths(sk.from_stb(sk.to_stb(j))), sk.bone_lengths(j), atol=1e-9)
    np.testing.assert_allclose(sk.bone_lengths(sk.mirror_x(j)), sk.bone_lengths(j), atol=1e-12)


def test_normalize_and_inverse(rng):
    j = _rand(rng, 4, 21, 3)
    n, s = sk.normalize(j)
    np.testing.assert_allclose(n[:, 0], 0)
    np.testing.assert_allclose(sk.reference_length(n), 1.0)
    np.testing.assert_allclose(sk.denormalize(n, s, j[:, 0]), j, atol=1e-12)


def test_normalize_2d_is_scale_and_translation_invariant(rng):
    k = rng.uniform(0, 100, (21, 2))
    np.testing.assert_allclose(sk.normalize_2d(3 * k + 7), sk.normalize_2d(k), atol=1e-12)
    assert np.abs(sk.normalize_2d(k)).max() <= 1.0


@pytest.mark.parametrize(
    ("fn", "arg"),
    [
        (sk.from_rhd, np.zeros((21, 3))),
        (sk.from_stb, np.zeros((42, 3))),
        (sk.normalize, np.zeros((20, 3))),
        (sk.normalize, np.zeros((21, 3))),  # zero reference bone
        (sk.normalize_2d, np.zeros((3,))),
    ],
)
def test_bad_inputs_raise(fn, arg):
    with pytest.raises(ValueError):
        fn(arg)
