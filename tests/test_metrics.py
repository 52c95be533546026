import numpy as np
import pytest

from streamhand import metrics


def _pose(rng):
    return rng.normal(scale=0.05, size=(2, 21, 3))


def test_epe_hand_computed():
    gt = np.zeros((1, 21, 3))
    pred = np.zeros((1, 21, 3))
    pred[0, 1:, 0] = 0.010  # every non-root joint 10 mm off
    e = metrics.joint_errors_mm(pred, gt)
    assert e[0, 0] == 0 and e[0, 1:] == pytest.approx(10.0)
    m = metrics.evaluate_poses(pred, gt)
    assert m.epe_mean_mm == pytest.approx(200 / 21)
    assert m.epe_median_mm == pytest.approx(10.0)
    assert m.auc_20_50 == pytest.approx(1.0)
    assert len(m.per_joint_mm) == 21


def test_root_alignment_removes_translation(rng):
    gt = _pose(rng)
    assert metrics.evaluate_poses(gt + np.array([1.0, 2.0, 3.0]), gt).epe_mean_mm == pytest.approx(0, abs=1e-9)


def test_scale_alignment_removes_scale_only(rng):
    gt = _pose(rng)
    assert metrics.evaluate_poses(1.3 * gt, gt, "scale").epe_mean_mm == pytest.approx(0, abs=1e-9)
    assert metrics.evaluate_poses(1.3 * gt, gt, "root").epe_mean_mm > 1


def test_procrustes_removes_similarity(rng):
    gt = _pose(rng)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    pred = 0.7 * gt @ q.T + 0.2
    assert metrics.evaluate_poses(pred, gt, "procrustes").epe_mean_mm == pytest.approx(0, abs=1e-6)
    assert metrics.evaluate_poses(pred, gt, "scale").epe_mean_mm > 1


@pytest.mark.parametrize(
    ("errors", "lo", "hi", "expected"),
    [
        ([10.0], 20, 50, 1.0),
        ([60.0], 20, 50, 0.0),
        ([35.0], 20, 50, 0.5),  # PCK 0,0,0,1,1,1,1 over 20..50 step 5 -> trapezoid = 17.5/30
    ],
)
def test_auc_cases(errors, lo, hi, expected):
    if expected == 0.5:
        expected = 17.5 / 30
    assert metrics.auc(np.array(errors), lo, hi, 5) == pytest.approx(expected)


def test_pck_curve():
    np.testing.assert_allclose(metrics.pck_curve(np.array([1, 2, 3, 4]), np.array([0, 2, 4])), [0, 0.5, 1])


@pytest.mark.parametrize(
    ("pred", "gt", "align"),
    [(np.zeros((1, 21, 3)), np.zeros((1, 21, 2)), "root"), (np.zeros((21, 3)), np.zeros((21, 3)), "root"),
     (np.zeros((1, 21, 3)), np.zeros((1, 21, 3)), "bogus")],
)  # fmt: skip
def test_metric_errors(pred, gt, align):
    with pytest.raises(ValueError):
        metrics.joint_errors_mm(pred, gt, align)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1, 2, 3, 4], [10, 20, 30, 40], 1.0),
        ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
        ([1, 2, 3, 4], [1, 100, 1000, 10000], 1.0),  # ranks only: any increasing map
        # ties share their average rank: a -> 1, 2.5, 2.5, 4; b -> 1, 3, 2, 4; r = 4.5 / sqrt(4.5 * 5)
        ([1, 2, 2, 3], [1, 3, 2, 4], np.sqrt(0.9)),
        ([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], 0.8),  # 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 4 / 120
        ([1, 2], [1, 2], np.nan),  # too few pairs
        ([1, 1, 1], [1, 2, 3], np.nan),  # constant
    ],
)
def test_spearman_hand_computed(a, b, expected):
    r = metrics.spearman(np.array(a, float), np.array(b, float))
    assert np.isnan(r) if np.isnan(expected) else r == pytest.approx(expected)


def test_ranks_average_ties():
    np.testing.assert_allclose(metrics.ranks(np.array([3, 1, 3, 2])), [3.5, 1, 3.5, 2])


@pytest.mark.parametrize(
    ("std", "err", "k", "expected"),
    [
        ([1, 1, 2, 2], [0.5, 1.5, 1, 5], 1.0, 0.5),
        ([1, 1, 2, 2], [0.5, 1.5, 1, 5], 2.0, 0.75),
        ([1, 1], [1, 1], 1.0, 1.0),  # "within" includes the bound
        ([0, 0], [0, 0.1], 1.0, 0.5),
    ],
)
def test_within_std_hand_computed(std, err, k, expected):
    assert metrics.within_std(np.array(std, float), np.array(err, float), k) == pytest.approx(expected)


def test_evaluate_uncertainty_leaves_the_wrist_out():
    std = np.full((2, 3), 0.010)  # 10 mm predicted for every joint
    std[:, 0] = 0.0  # the wrist: no spread, no error, not counted
    err = np.array([[0.0, 5.0, 15.0], [0.0, 25.0, 30.0]])  # mm
    u = metrics.evaluate_uncertainty(std, err)
    assert u.n_joints == 4 and u.within_1std == pytest.approx(0.25) and u.within_2std == pytest.approx(0.5)
    assert u.mean_std_mm == pytest.approx(10.0) and u.mean_error_mm == pytest.approx(18.75)
    assert np.isnan(u.spearman)  # the spread does not vary: no ranking to judge
    std[:, 1:] = [[0.01, 0.03], [0.02, 0.04]]  # ranks 1,3,2,4 against the errors' 1,2,3,4: 1 - 6 * 2 / 60
    assert metrics.evaluate_uncertainty(std, err).spearman == pytest.approx(0.8)
    assert metrics.evaluate_uncertainty(std, err, root=None).n_joints == 6
    with pytest.raises(ValueError):
        metrics.evaluate_uncertainty(std, err[:, :2])


@pytest.mark.parametrize(
    ("k", "dims", "expected"),
    [(1, 1, 0.682689), (2, 1, 0.954500), (1, 2, 1 - np.exp(-1)), (1, 3, 0.608375), (2, 3, 0.992617)],
)
def test_gaussian_radial_share(k, dims, expected):
    assert metrics.gaussian_radial_share(k, dims) == pytest.approx(expected, abs=1e-5)


def test_gaussian_radial_share_matches_sampling(rng):
    e = rng.normal(scale=0.004, size=(100_000, 3))  # 4 mm per axis: radial std sqrt(3) * 4 mm
    std = np.full(len(e), np.sqrt(3) * 0.004)
    assert metrics.within_std(std, np.linalg.norm(e, axis=1), 1.0) == pytest.approx(0.6084, abs=0.01)


def test_camera_errors_hand_computed(rng):
    gt = _pose(rng) + np.array([0.0, 0.0, 0.5])
    shifted = metrics.camera_errors_mm(gt + np.array([0.010, 0.0, 0.0]), gt)  # 10 mm to the right
    for k, v in {"rel": 0, "gt_bone": 0, "pa": 0, "root": 10, "abs": 10}.items():
        np.testing.assert_allclose(shifted[k], v, atol=1e-9)
    root = gt[:, :1]
    big = metrics.camera_errors_mm(root + 2.0 * (gt - root), gt)  # twice the size about the wrist
    np.testing.assert_allclose(big["root"], 0, atol=1e-9)
    np.testing.assert_allclose(big["gt_bone"], 0, atol=1e-9)
    np.testing.assert_allclose(big["pa"], 0, atol=1e-6)
    np.testing.assert_allclose(big["rel"], 1000 * np.linalg.norm(gt - root, axis=-1).mean(1))
