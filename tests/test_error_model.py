"""The error model (streamhand/error_model.py, train/error_model.py): its evidence from known geometry, what it predicts
from a spec, fitting on data whose error is known, and what a run publishes with it: ``quality``, ``confidence``,
``--min-confidence`` withholding or flagging, no posterior sampling where it gives joint_std, the shipped models'."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest

from streamhand.error_model import CONFIDENT_BELOW_M, FEATURES, ErrorModel, error_model_for, hand_features
from streamhand.synth.hand import forward_kinematics
from tests.conftest import free_port
from tests.helpers import invoke

K = (600.0, 600.0, 320.0, 240.0)


def _hand(z: float = 0.5, facing: bool = True) -> np.ndarray:
    """The average adult hand (flat, fingers straight) at depth ``z``: palm to the camera or edge-on."""
    j = forward_kinematics(np.zeros((1, 21)), np.ones(1), np.ones((1, 5, 3)), np.zeros(1, bool))[0]
    j = j - j[0]
    normal = np.cross(j[5], j[17])
    normal /= np.linalg.norm(normal)
    # turn the palm's normal onto the optical axis, or onto the x axis (the palm seen edge-on)
    target = np.array([0.0, 0.0, 1.0]) if facing else np.array([1.0, 0.0, 0.0])
    v, c = np.cross(normal, target), float(normal @ target)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    rot = np.eye(3) + vx + vx @ vx / (1 + c) if c > -0.999 else -np.eye(3)
    return j @ rot.T + np.array([0.0, 0.0, z])


def _project(cam: np.ndarray) -> np.ndarray:
    fx, fy, cx, cy = K
    return np.stack([fx * cam[..., 0] / cam[..., 2] + cx, fy * cam[..., 1] / cam[..., 2] + cy], -1)


def _features(cam, uv=None, world=None, dis=None, score=0.9, presence=0.75):
    uv = _project(cam) if uv is None else uv
    f, res = hand_features(uv[None], cam[None], K, None if world is None else world[None],
                           None if dis is None else dis[None], np.array([score]), np.array([presence]))  # fmt: skip
    return dict(zip(FEATURES, f[0])), res[0]


def test_evidence_of_several_hands_with_intrinsics_per_hand_or_shared():
    """Hands judged at once, with the camera given once or one per hand (a batch from several cameras), get what
    each gets alone."""
    cams = np.stack([_hand(), _hand(facing=False), _hand() + np.array([0.05, -0.02, 0.1])])
    uv = _project(cams) + np.random.default_rng(1).normal(0, 2, (3, 21, 2))
    world = cams - cams.mean(1, keepdims=True)
    dis, score = np.full((3, 21), 0.1), np.array([0.9, 0.6, 1.0])
    shared, _ = hand_features(uv, cams, K, world, dis, score)
    per_hand, _ = hand_features(uv, cams, tuple(np.full(3, q) for q in K), world, dis, score)
    alone = np.concatenate([hand_features(uv[i : i + 1], cams[i : i + 1], K, world[i : i + 1], dis[i : i + 1],
                                          score[i : i + 1])[0] for i in range(3)])  # fmt: skip
    np.testing.assert_allclose(shared, alone, rtol=0, atol=1e-12)
    np.testing.assert_allclose(per_hand, alone, rtol=0, atol=1e-12)


def test_evidence_from_known_geometry():
    cam = _hand()
    exact, res = _features(cam, world=cam - cam.mean(0))
    assert exact["log_residual"] == pytest.approx(np.log(1e-3), abs=1e-3) and res.max() < 1e-9
    assert exact["log_world_residual"] == pytest.approx(np.log(1e-3), abs=1e-3)  # its own 2D: placed exactly
    assert exact["bone_implausibility"] < 1e-6  # the template hand itself
    # facing the optical axis, the palm seen from a ray a few degrees off it; edge-on: at right angles
    assert exact["edge_on"] < 0.02 and _features(_hand(facing=False))[0]["edge_on"] > 0.97
    assert exact["handedness_doubt"] == pytest.approx(0.1)
    assert exact["presence_doubt"] == pytest.approx(0.25)
    off = _project(cam) + np.r_[[[0.0, 0.0]], np.full((20, 2), 5.0)]  # the detector 5 px off on every finger joint
    moved, res = _features(cam, uv=off)
    size = np.ptp(off, axis=0).max()
    assert np.exp(moved["log_residual"]) == pytest.approx(np.hypot(5, 5) / size + 1e-3, rel=1e-6)
    assert res[1] == pytest.approx(np.hypot(5, 5) / size)
    longer = cam.copy()
    longer[8] = longer[7] + 2.0 * (longer[8] - longer[7])  # a fingertip twice as long as a hand's
    assert _features(longer)[0]["bone_implausibility"] == pytest.approx(np.log(2) / 20, rel=1e-6)
    far = _features(_hand(z=1.0))[0]["log_size_px"]
    assert far == pytest.approx(exact["log_size_px"] - np.log(2), abs=0.02)  # twice as far: half the size
    assert _features(cam, dis=np.full(21, 0.2))[0]["log_disagreement"] == pytest.approx(np.log(0.201))


def test_the_bones_and_the_palms_facing_are_read_from_the_published_answer_the_reprojection_from_the_placement():
    """``answer`` (the placement pulled toward the 2D's rays, as a run publishes it): bone lengths and the palm's
    facing come from it; how far the placement reprojects from the 2D, and the rest, do not change with it."""
    cam = _hand()
    uv = _project(cam) + np.r_[[[0.0, 0.0]], np.full((20, 2), 4.0)]
    world, dis, score, presence = cam - cam.mean(0), np.full((1, 21), 0.1), np.array([0.9]), np.array([0.8])
    args = (uv[None], cam[None], K, world[None], dis, score, presence)
    placed, res = hand_features(*args)
    same, res_same = hand_features(*args, answer=cam[None])
    np.testing.assert_array_equal(placed, same)
    np.testing.assert_array_equal(res, res_same)
    answer = cam.copy()
    answer[8] = answer[7] + 2.0 * (answer[8] - answer[7])  # the pull stretched the index fingertip to twice its length
    edge = _hand(facing=False)  # and, another answer, the palm turned edge-on
    got = {name: dict(zip(FEATURES, hand_features(*args, answer=a[None])[0][0])) for name, a in
           (("longer", answer), ("edge-on", edge))}  # fmt: skip
    assert got["longer"]["bone_implausibility"] == pytest.approx(np.log(2) / 20, rel=1e-6)
    assert got["edge-on"]["edge_on"] > 0.97 and dict(zip(FEATURES, placed[0]))["edge_on"] < 0.02
    for name, f in got.items():
        for other in ("log_size_px", "log_residual", "log_world_residual", "log_disagreement", "handedness_doubt",
                      "presence_doubt"):  # fmt: skip
            assert f[other] == dict(zip(FEATURES, placed[0]))[other], (name, other)
    # the size term of joint_std follows the published joints: a model of size error alone
    em = ErrorModel(_spec(bias=float(np.log(1e-9)), scale_sigma=0.1))
    j = em.judge_hands(uv[None], cam[None], K, np.array([0.04]), answer=answer[None])
    np.testing.assert_allclose(j.joint_std[0, 1:], 0.1 * np.linalg.norm(answer - answer[0], axis=1)[1:], rtol=1e-6)


def _spec(**over) -> dict:
    spec = {"features": list(FEATURES), "mean": [0.0] * len(FEATURES), "std": [1.0] * len(FEATURES),
            "weights": [0.0] * len(FEATURES), "bias": float(np.log(0.2)), "profile": [0.0] + [1.0] * 20,
            "scale_sigma": 0.0, "kappa": 1.0, "quality_bias": 1.0, "quality_sigma": 0.5}  # fmt: skip
    return {**spec, **over}


def test_evidence_a_model_gives_no_weight_is_not_computed_and_changes_nothing():
    """Each shipped error model skips the features it weighs 0 (left 0) and judges exactly as with all of them."""
    from streamhand.checkpoint import load_checkpoint

    rng = np.random.default_rng(3)
    cam = np.stack([_hand(0.4), _hand(0.6, facing=False)]) + rng.normal(0, 0.004, (2, 21, 3))
    uv = _project(cam) + rng.normal(0, 3, (2, 21, 2))
    args = (uv, cam, K, np.full(2, 0.04), cam - cam.mean(1, keepdims=True), rng.uniform(0.05, 0.3, (2, 21)),
            np.array([0.8, 0.97]), np.array([0.9, 0.6]))  # fmt: skip
    for name in ("default", "depth", "rgb"):
        for key, spec in load_checkpoint(name).meta["error_model"].items():
            em = ErrorModel(spec)
            weighs = dict(zip(spec["features"], spec["weights"]))
            assert em.needed.tolist() == [weighs.get(f, 0.0) != 0 for f in FEATURES]
            lean = em.judge_hands(*args)
            em.needed = np.ones(len(FEATURES), bool)
            full = em.judge_hands(*args)
            for got, want in zip(vars(lean).values(), vars(full).values()):
                np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"{name} {key}")
    skip = np.array([f in ("log_residual", "edge_on") for f in FEATURES])
    some, res = hand_features(*args[:2], K, *args[4:], needed=~skip)
    every, _ = hand_features(*args[:2], K, *args[4:])
    assert res is None and not some[:, skip].any() and np.array_equal(some[:, ~skip], every[:, ~skip])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kappa": None}, "lacks kappa"),
        ({"features": [*FEATURES[:-1], "sharpness"]}, "are not among this version's"),
        ({"features": [*FEATURES[:-1], "log_size_px"]}, "repeat"),
        ({"features": ["log_size_px"]}, "weights, mean and std do not match its 1 features"),
        ({"weights": [0.0, 1.0]}, "weights, mean and std do not match its"),
        ({"profile": [1.0] * 20}, "profile has 20 joints"),
    ],
)
def test_a_spec_that_does_not_fit_is_refused(spec, message):
    s = _spec(**spec)
    if s["kappa"] is None:
        del s["kappa"]
    with pytest.raises(ValueError, match=message):
        ErrorModel(s)


def test_a_spec_fitted_before_some_evidence_existed_weighs_it_zero():
    """An error model stored by an earlier version (without ``presence_doubt``) judges as the same model with that
    evidence at weight 0, and does not compute it."""
    full = _spec(weights=[0.0, 0.3, 0.1, 0.2, 0.05, 0.1, 0.0, 0.0], mean=[0.5] * len(FEATURES),
                 std=[2.0] * len(FEATURES))  # fmt: skip
    old = {**full, **{q: full[q][:-1] for q in ("features", "mean", "std", "weights")}}
    assert "presence_doubt" not in old["features"]
    feats = np.random.default_rng(0).normal(0, 1, (3, len(FEATURES)))
    rel = np.tile(_hand() - _hand()[0], (3, 1, 1))
    a, b = ErrorModel(old), ErrorModel(full)
    assert not a.needed[FEATURES.index("presence_doubt")]
    ref = np.full(3, 0.04)
    for got, want in zip(vars(a(feats, rel, ref)).values(), vars(b(feats, rel, ref)).values()):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_what_a_spec_predicts():
    rel = np.tile(_hand() - _hand()[0], (2, 1, 1))
    ref = np.array([0.04, 0.08])
    feats = np.zeros((2, len(FEATURES)))
    j = ErrorModel(_spec())(feats, rel, ref)
    # shape error: exp(bias) reference bones per joint, the wrist none
    assert np.allclose(j.joint_std[:, 0], 0) and np.allclose(j.joint_std[:, 1:], (0.2 * ref)[:, None])
    assert j.quality == pytest.approx(0.2 * ref)
    # the hand's size: an error growing with each joint's distance from the wrist
    size_only = ErrorModel(_spec(bias=-30.0, scale_sigma=0.1))(feats, rel, ref)
    assert np.allclose(size_only.joint_std[0, 1:], 0.1 * np.linalg.norm(rel[0, 1:], axis=-1))
    # kappa scales joint_std, not quality; confidence falls as the expected error grows, 0.5 at CONFIDENT_BELOW_M
    wide = ErrorModel(_spec(kappa=2.0))(feats, rel, ref)
    assert np.allclose(wide.joint_std, 2 * j.joint_std) and np.allclose(wide.quality, j.quality)
    at = ErrorModel(_spec(bias=float(np.log(CONFIDENT_BELOW_M / 0.04))))(feats[:1], rel[:1], ref[:1])
    assert at.quality[0] == pytest.approx(CONFIDENT_BELOW_M) and at.confidence[0] == pytest.approx(0.5)
    assert j.confidence[0] > j.confidence[1]  # 8 mm expected is likelier under 2 cm than 16 mm
    weighted = ErrorModel(_spec(weights=[0, 1.0] + [0.0] * (len(FEATURES) - 2)))
    rest = [0.0] * (len(FEATURES) - 2)
    worse = weighted(np.array([[0, 0.0, *rest], [0, 1.0, *rest]]), rel, ref[[0, 0]])
    assert worse.quality[1] == pytest.approx(np.e * worse.quality[0])


def test_fitting_finds_the_evidence_that_predicts_the_error():
    """Synthetic hands whose shape error grows with the residual feature: the fit weights it, the profile and the
    scale spread come back, and kappa covers 68 % of the held-out joints within one std."""
    from train.error_model import ClosedLoop, calibrate_on, fit_shape, judge

    def loop(seed: int, n: int = 3000) -> ClosedLoop:
        rng = np.random.default_rng(seed)
        feats = rng.normal(0, 1, (n, len(FEATURES)))
        profile = np.r_[0.0, np.linspace(0.5, 1.5, 20)]
        hand = np.exp(-1.5 + 0.5 * feats[:, 1] + rng.normal(0, 0.2, n))
        shape = hand[:, None] * profile * rng.chisquare(3, (n, 21)) / 3
        rel = np.tile(_hand() - _hand()[0], (n, 1, 1))
        ref = np.full(n, 0.04)
        log_ratio = rng.normal(0, 0.07, n)
        size = np.abs(log_ratio)[:, None] * np.linalg.norm(rel, axis=-1)
        error = np.hypot(shape * ref[:, None], size)
        return ClosedLoop(feats, rel, ref, error, shape, log_ratio, np.zeros((n, 21)))

    spec = fit_shape(loop(1))
    w = np.asarray(spec["weights"])
    assert w[1] == pytest.approx(0.5, abs=0.05) and np.abs(np.delete(w, 1)).max() < 0.05
    assert spec["scale_sigma"] == pytest.approx(0.07, rel=0.1)
    assert np.corrcoef(spec["profile"][1:], np.linspace(0.5, 1.5, 20))[0, 1] > 0.95
    held = loop(2)
    spec = calibrate_on(spec, held)
    j = ErrorModel(spec)(held.feats, held.rel, held.ref)
    figures = judge(j.joint_std, held.error)
    # every hand has the same pose: only the evidence tells them apart
    assert figures["cov1"] == pytest.approx(0.68, abs=0.01) and figures["std_f"] > 0.5
    unseen = loop(3)
    assert judge(ErrorModel(spec)(unseen.feats, unseen.rel, unseen.ref).joint_std, unseen.error)["cov1"] == (
        pytest.approx(0.68, abs=0.03))


def test_the_shape_model_is_fitted_on_the_hands_mediapipe_named_right():
    """Renders MediaPipe named the wrong hand are lifted mirrored and err far more; fitted on them too, the handedness
    doubt that flags them takes the weight of the evidence that predicts every other hand's error."""
    from train.error_model import ClosedLoop, fit_shape, named_right_only

    rng = np.random.default_rng(5)
    n = 4000
    feats = rng.normal(0, 1, (n, len(FEATURES)))
    right = rng.random(n) > 0.1
    residual, doubt = FEATURES.index("log_residual"), FEATURES.index("handedness_doubt")
    feats[~right, doubt] += 2.0  # the misnamed hands: MediaPipe less sure of its label
    hand = np.exp(-1.5 + 0.4 * feats[:, residual] + rng.normal(0, 0.2, n) + np.where(right, 0.0, 1.5))
    shape = np.tile(hand[:, None], (1, 21)) * np.r_[0.0, np.ones(20)]
    rel = np.tile(_hand() - _hand()[0], (n, 1, 1))
    loop = ClosedLoop(feats, rel, np.full(n, 0.04), shape * 0.04, shape, np.zeros(n), np.zeros((n, 21)), right)
    kept = named_right_only(loop)
    assert len(kept.ref) == right.sum() and kept.named_right.all() and np.array_equal(kept.feats, feats[right])
    every, named_right = (np.asarray(fit_shape(x)["weights"]) for x in (loop, kept))
    assert named_right[residual] == pytest.approx(0.4, abs=0.03) and abs(named_right[doubt]) < 0.03
    assert every[doubt] > 0.2  # the few misnamed hands' errors set that weight
    unlabelled = ClosedLoop(*(getattr(loop, f) for f in ("feats", "rel", "ref", "error", "shape_error",
                                                         "log_scale_ratio", "spread")))  # fmt: skip
    assert named_right_only(unlabelled) is unlabelled  # pairs that do not say: every hand kept


def test_the_experts_disagreement_weighs_nothing_unless_asked(monkeypatch):
    """Renders whose error follows the experts' disagreement and, less, the bones: by default the fit gives the
    disagreement no weight and the bones take what they can; asked to weigh it, the fit finds it. Evidence the model
    does not have is an error."""
    import train.error_model as E

    rng = np.random.default_rng(11)
    n = 3000
    dis, bones = FEATURES.index("log_disagreement"), FEATURES.index("bone_implausibility")
    feats = rng.normal(0, 1, (n, len(FEATURES)))
    feats[:, bones] += 0.6 * feats[:, dis]  # the two go together, as on renders
    hand = np.exp(-1.5 + 0.4 * feats[:, dis] + 0.2 * feats[:, bones] + rng.normal(0, 0.2, n))
    shape = np.tile(hand[:, None], (1, 21)) * np.r_[0.0, np.ones(20)]
    rel = np.tile(_hand() - _hand()[0], (n, 1, 1))
    loop = E.ClosedLoop(feats, rel, np.full(n, 0.04), shape * 0.04, shape, np.zeros(n), np.zeros((n, 21)))
    asked = np.asarray(E.fit_shape(loop)["weights"])
    assert asked[dis] == pytest.approx(0.4, abs=0.03) and asked[bones] == pytest.approx(0.2, abs=0.03)
    left_out = np.asarray(E.fit_shape(loop, E.LEFT_OUT)["weights"])
    assert left_out[dis] == 0.0 and left_out[bones] > 0.3  # the bones stand in for what they share with it
    with pytest.raises(ValueError, match="no such evidence"):
        E.fit_shape(loop, ("log_disagreemnt",))
    # fit_error_models leaves it out by default and weighs it when asked
    monkeypatch.setattr(E, "closed_loop", lambda lifter, pairs, mods: loop)
    default, _ = E.fit_error_models(None, {}, {}, [("2d", "world")])
    weighed, _ = E.fit_error_models(None, {}, {}, [("2d", "world")], weigh_disagreement=True)
    assert default["2d+world"]["weights"][dis] == 0.0
    assert weighed["2d+world"]["weights"][dis] == pytest.approx(0.4, abs=0.03)


def test_the_shipped_models_carry_one_per_expert_set_and_run_without_sampling():
    from streamhand.checkpoint import load_checkpoint
    from streamhand.infer.select import model_encoders

    for name in ("default", "rgb", "depth"):
        ck = load_checkpoint(name)
        assert set(ck.meta["error_model"]) == set(ck.meta["std_calibration"])
        assert error_model_for(ck.meta["error_model"], "2d+world") is not None
        assert model_encoders(name).default_samples() == 0
        # the spread of people's hand sizes and of the lifter's proportions: a few tens of percent, never x2
        assert all(spec["scale_sigma"] < 0.5 for spec in ck.meta["error_model"].values()), name
    assert error_model_for(None, "2d") is None and error_model_for({"2d": {}}, "2d") is None


def test_a_model_without_one_keeps_its_sampling(tiny_checkpoint):
    from streamhand.infer.select import model_encoders

    assert model_encoders(tiny_checkpoint).default_samples() == 16


@pytest.fixture(scope="module")
def default_judging_2d_world_only(tmp_path_factory):
    """The default model as a checkpoint fitted before the fits covered every set: an error model and a joint_std
    calibration for 2d + world only."""
    from streamhand.checkpoint import load_checkpoint, shipped_models
    from train.calibrate_std import write_meta

    dst = tmp_path_factory.mktemp("older") / "older.pt"
    dst.write_bytes(shipped_models()["default"].read_bytes())
    meta = load_checkpoint(dst).meta
    return write_meta(dst, error_model={"2d+world": meta["error_model"]["2d+world"]},
                      std_calibration={"2d+world": meta["std_calibration"]["2d+world"]})  # fmt: skip


@pytest.mark.parametrize(("modalities", "samples"), [
    (None, 0), (("2d", "world"), 0), (("world", "2d"), 0),  # the set the error model judges, in any order
    (("world",), 16), (("2d",), 16),  # sets it does not judge sample their spread, not a joint_std of 0
])  # fmt: skip
def test_a_run_samples_only_the_sets_its_error_model_does_not_judge(default_judging_2d_world_only, modalities,
                                                                    samples):  # fmt: skip
    from streamhand.infer.select import model_encoders

    assert model_encoders(default_judging_2d_world_only).default_samples(modalities) == samples


@pytest.mark.slow
def test_a_set_without_an_error_model_publishes_its_sampled_spread(tmp_path, default_judging_2d_world_only):
    _, poses, _ = _run_poses(tmp_path, "--model", str(default_judging_2d_world_only), "--modalities", "world")
    assert poses and all((np.asarray(p["joint_std"])[1:] > 0).all() and p["confidence"] is None for p in poses)


def _run_poses(tmp_path, *extra: str) -> tuple[dict, list[dict]]:
    rep, save = tmp_path / "r.json", tmp_path / "p.jsonl"
    r = invoke("run", "--source", "demo", "--frames", "20", "--no-realtime", "--port", str(free_port()),
               "--control-port", str(free_port()), "--report", str(rep), "--save", str(save), *extra)  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    lines = [json.loads(x) for x in save.read_text().splitlines()]
    return json.loads(rep.read_text()), [m for m in lines if m["topic"].startswith("hand.pose.")], r


@pytest.mark.slow
def test_a_run_publishes_quality_and_confidence_and_gates_on_it(tmp_path):
    rep, poses, _ = _run_poses(tmp_path)
    assert poses and rep["hands_withheld"] == 0
    for p in poses:
        std = np.asarray(p["joint_std"])
        assert 0.002 < p["quality"] < 0.1 and 0.0 <= p["confidence"] <= 1.0 and not p["low_confidence"]
        assert std[0] == 0 and (std[1:] > 0).all()
    # every hand below a confidence of 1: all withheld, counted, and the frames still published
    rep, none, _ = _run_poses(tmp_path, "--min-confidence", "1")
    assert none == [] and rep["hands_published"] == 0 and rep["hands_withheld"] == len(poses)
    rep, flagged, _ = _run_poses(tmp_path, "--min-confidence", "1", "--low-confidence", "flag")
    assert len(flagged) == len(poses) and all(p["low_confidence"] for p in flagged) and rep["hands_withheld"] == 0
    floor = float(np.median([p["confidence"] for p in poses]))
    rep, some, _ = _run_poses(tmp_path, "--min-confidence", str(floor))
    assert 0 < len(some) < len(poses) and all(p["confidence"] >= floor for p in some)


def test_a_model_without_an_error_model_publishes_no_confidence_and_says_the_gate_is_idle(tmp_path, tiny_checkpoint,
                                                                                         caplog):  # fmt: skip
    rep, poses, _ = _run_poses(tmp_path, "--model", str(tiny_checkpoint), "--min-confidence", "0.5")
    assert poses and all(p["confidence"] is None and p["quality"] > 0 for p in poses)
    assert rep["hands_withheld"] == 0 and "has no error model" in caplog.text


def test_subscribers_read_the_fields_and_older_messages_without_them():
    from streamhand.stream.client import HandPose

    msg = {"topic": "hand.pose.right", "schema": 1, "seq": 3, "frame_id": 1, "t_capture": 1.0,
           "t_capture_unix": 2.0, "t_publish": 1.1,
           "camera": {"id": "demo", "width": 640, "height": 480, "fx": 600.0, "fy": 600.0, "cx": 320.0, "cy": 240.0},
           "track_id": 1, "handedness": "right", "handedness_score": 0.9, "score": 0.9, "layout": "mediapipe21",
           "units": "m", "joints_cam": [[0.0, 0.0, 0.5]] * 21, "joints_rel": [[0.0, 0.0, 0.0]] * 21,
           "joints_2d": [[1.0, 2.0]] * 21, "joint_std": [0.01] * 21, "root_source": "estimate",
           "modalities": ["2d", "world"], "model": "m", "latency_ms": {"total": 1.0}}  # fmt: skip
    old = HandPose.from_message("hand.pose.right", msgpack.unpackb(msgpack.packb(msg)))
    assert old.quality is None and old.confidence is None and not old.low_confidence
    new = HandPose.from_message("hand.pose.right", {**msg, "quality": 0.012, "confidence": 0.8,
                                                    "low_confidence": True})  # fmt: skip
    assert (new.quality, new.confidence, new.low_confidence) == (0.012, 0.8, True)
    with pytest.raises(ValueError):
        HandPose.from_message("hand.pose.right", {**msg, "confidence": "high"})


def test_write_meta_keeps_the_weights_their_precision_and_the_id(tmp_path):
    import torch

    from streamhand.checkpoint import load_checkpoint, shipped_models
    from train.calibrate_std import write_meta

    src = shipped_models()["rgb"]  # stored in float16
    dst = tmp_path / "m.pt"
    dst.write_bytes(src.read_bytes())
    before = torch.load(dst, map_location="cpu", weights_only=True)
    write_meta(dst, error_model={"x": 1})
    after = torch.load(dst, map_location="cpu", weights_only=True)
    assert after["error_model"] == {"x": 1} and after["model_id"] == before["model_id"]
    assert all(after["state_dict"][k].dtype == v.dtype and torch.equal(after["state_dict"][k], v)
               for k, v in before["state_dict"].items())  # fmt: skip
    assert load_checkpoint(dst).model_id == before["model_id"]


def test_a_hands_judgement_reads_this_frames_handedness_score_not_its_tracks():
    """The error model was fitted on the detector's own score for each frame; a track's vote is the mean over its
    frames, which must not move a hand's judgement (real lifter and linker; a detector that gives the same hand
    every frame, sure of it every other frame)."""
    from streamhand import HandTracker
    from streamhand.capture.base import Frame
    from streamhand.detect import Detection, TrackLinker
    from streamhand.geometry import Intrinsics
    from streamhand.run.place_step import PlaceStep
    from streamhand.run.work import DetectStep, InferStep, Work
    from streamhand.runtime_config import SmoothConfig

    cam = _hand(0.5)
    dets = [Detection(_project(cam), np.zeros(21), cam - cam.mean(0), "right", s, 0.97) for s in (0.97, 0.6)]
    k = Intrinsics(640, 480, *K)
    frame_no = iter(range(100))
    with HandTracker() as t:
        step = DetectStep(lambda rgb: [dets[next(frame_no) % 2]], TrackLinker(link=True), t.lifter, t.modalities, 2,
                          0.25)  # fmt: skip
        infer = InferStep(t.lifter, t.modalities)
        place = PlaceStep(SmoothConfig(enabled=False), t.lifter.backend.error_model)
        track_scores, stds = [], []
        for i in range(4):
            w = Work(Frame(i, float(i), float(i), np.zeros((480, 640, 3), np.uint8), k, "test"))
            step(w)
            infer(w)
            (hand,) = place(w)
            track_scores.append(w.detections[0].handedness_score)
            stds.append(hand.joint_std)
    assert track_scores[0] == pytest.approx(0.97) and track_scores[2] < 0.97  # the track's mean moves ...
    assert w.frame_handedness_scores == [0.6]
    np.testing.assert_allclose(stds[2], stds[0], rtol=1e-6)  # ... the judgement follows each frame's own score
    np.testing.assert_allclose(stds[3], stds[1], rtol=1e-6)


def test_a_hand_lifted_against_this_frames_label_is_judged_doubtful():
    """A track keeps its label through the detector's slips, and the hand is lifted with it; on a frame where the
    detector says, sure of it, that this is the other hand, the hand may be lifted mirrored (a left hand that took
    a right hand's place), so the error model reads the detector's doubt about the label the hand was lifted with:
    the quality rises and the confidence falls (real lifter, linker and error model)."""
    from streamhand import HandTracker
    from streamhand.capture.base import Frame
    from streamhand.detect import Detection, TrackLinker
    from streamhand.geometry import Intrinsics
    from streamhand.run.place_step import PlaceStep
    from streamhand.run.work import DetectStep, InferStep, Work
    from streamhand.runtime_config import SmoothConfig

    cam = _hand(0.5)
    labels = ["right"] * 6 + ["left"]
    k = Intrinsics(640, 480, *K)
    with HandTracker() as t:
        step = DetectStep(None, TrackLinker(link=True), t.lifter, t.modalities, 2, 0.25)
        infer = InferStep(t.lifter, t.modalities)
        place = PlaceStep(SmoothConfig(enabled=False), t.lifter.backend.error_model)
        hands = []
        for i, label in enumerate(labels):
            step.detector = lambda rgb, label=label: [Detection(_project(cam), np.zeros(21), cam - cam.mean(0),
                                                                label, 0.95, 0.97)]  # fmt: skip
            w = Work(Frame(i, float(i), float(i), np.zeros((480, 640, 3), np.uint8), k, "test"))
            step(w)
            infer(w)
            (hand,) = place(w)
            hands.append(hand)
    assert hands[-1].detection.handedness == "right"  # the track's label holds ...
    assert w.frame_handedness_scores == [pytest.approx(0.05)]  # ... against the detector's 0.95 for "left"
    assert hands[-1].quality > 1.05 * hands[-2].quality and hands[-1].confidence < hands[-2].confidence


def test_fit_error_model_reads_the_evidence_a_run_judges():
    """``fit-error-model``'s closed loop and a run's placing step read the same evidence from the same hands, so the
    error model is fitted on what it will judge (the shipped lifter and error model; the placing step unsmoothed)."""
    from streamhand import HandTracker
    from streamhand.capture.base import Frame
    from streamhand.detect import Detection
    from streamhand.geometry import Intrinsics
    from streamhand.run.place_step import PlaceStep
    from streamhand.run.work import InferStep, Work
    from streamhand.runtime_config import SmoothConfig
    from train.error_model import closed_loop

    rng = np.random.default_rng(3)
    cams = np.stack([_hand(0.5), _hand(0.6, facing=False), _hand(0.45) + np.array([0.04, -0.03, 0.0])])
    uv = _project(cams) + rng.normal(0, 2, (3, 21, 2))
    world = cams - cams[:, :1] + rng.normal(0, 0.004, cams.shape)
    image_z = rng.normal(0, 5, (3, 21))
    scores, presence = np.array([0.97, 0.8, 0.9]), np.array([0.99, 0.9, 0.95])
    pairs = {"landmarks": uv, "joints_cam": cams, "left": np.zeros(3, bool), "world": world, "landmarks_z": image_z,
             "handedness_score": scores, "score": presence,
             **{q: np.full(3, v) for q, v in zip(("fx", "fy", "cx", "cy"), K)}}  # fmt: skip
    with HandTracker() as t:
        models = t.lifter.backend.error_model
        loop = closed_loop(t.lifter, pairs, tuple(t.modalities))
        dets = [Detection(uv[i], image_z[i], world[i], "right", scores[i], presence[i]) for i in range(3)]
        w = Work(Frame(0, 0.0, 0.0, np.zeros((480, 640, 3), np.uint8), Intrinsics(640, 480, *K), "test"),
                 detections=dets, track_ids=[1, 2, 3], frame_handedness_scores=list(scores))  # fmt: skip
        InferStep(t.lifter, t.modalities)(w)
        hands = PlaceStep(SmoothConfig(enabled=False), models)(w)
        judge = ErrorModel(models[w.lift.experts])
    want = judge(loop.feats, loop.rel, loop.ref)
    np.testing.assert_allclose(np.stack([h.joint_std for h in hands]), want.joint_std, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose([h.quality for h in hands], want.quality, rtol=1e-6)
    # and the user's error in the loop is the published answer's
    np.testing.assert_allclose(np.stack([h.joints_rel for h in hands]), loop.rel, atol=1e-9)
