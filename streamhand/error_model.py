"""The error model: what a published hand's ``joint_std`` and ``quality`` say, from evidence about the answer itself.

Each placed hand is described by a few numbers that predict how wrong it is (:func:`hand_features`): the hand's size
in pixels; how far the placed 3D reprojects from MediaPipe's 2D landmarks (in hand sizes); how far MediaPipe's own
metric landmarks, placed the same way, reproject from its 2D (the detector disagreeing with itself); how far the
fused experts' answers lie from the fused one; MediaPipe's handedness score; how implausible the published answer's
bone lengths are (after the pull toward the 2D's rays, which stretches bones where the lifted shape and the 2D
disagree); how edge-on the palm is to the camera; and the landmark network's doubt that the crop holds a hand (one
minus its presence score). A linear model of the log of the hand's mean shape error
(in reference bones) on these, times a per-joint profile, gives each joint's shape error; the hand's unknown size adds
an error growing with each joint's distance from the wrist (``scale_sigma``, the spread of people's hand sizes and of
the lifter's proportions as the renders measured it). Both are learned on renders labelled by the real MediaPipe,
and the coverage factor ``kappa`` and the quality calibration on other held-out renders
(``python -m train fit-error-model``); nothing is fitted on real photographs.

Per hand it gives: ``joint_std`` (21,) metres, ``kappa`` times each joint's expected error (the wrist: 0);
``quality`` the expected mean joint error in metres (wrist-relative, the system's own scale); ``confidence`` the
probability that the mean joint error is below ``CONFIDENT_BELOW_M`` (from the spread of the actual error around
``quality`` on the held-out renders). It is stored in the checkpoint and the exported graphs as ``error_model``,
per set of fused experts: ``{"2d+world": {"features": [...], "mean": [...], "std": [...], "weights": [...],
"bias": b, "profile": [21], "scale_sigma": s, "kappa": k, "quality_bias": c, "quality_sigma": q}}``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamhand.geometry import intrinsics_per_hand
from streamhand.jit import carray, f64, njit
from streamhand.modalities import INPUTS
from streamhand.modalities import key as modality_key
from streamhand.place.placement import hand_root
from streamhand.skeleton import BONES

Arr = np.ndarray  # the compiled arithmetic's arguments

__all__ = ["CONFIDENT_BELOW_M", "FEATURES", "ErrorModel", "HandJudgement", "default_samples", "hand_features"]

#: ``confidence`` is the chance that a hand's mean joint error is below this (metres)
CONFIDENT_BELOW_M = 0.02
#: the evidence, in the order of :func:`hand_features`'s columns
FEATURES = ("log_size_px", "log_residual", "log_world_residual", "log_disagreement", "handedness_doubt",
            "bone_implausibility", "edge_on", "presence_doubt")  # fmt: skip
#: bone lengths of the average adult hand in reference bones (middle MCP-PIP), mediapipe21 bone order: what
#: ``bone_implausibility`` compares an answer with (streamhand.synth.hand at scale 1, proportions 1)
_BONE_TEMPLATE: np.ndarray | None = None
_PARENT, _CHILD = (np.array(v) for v in zip(*BONES))


def _template() -> np.ndarray:
    global _BONE_TEMPLATE
    if _BONE_TEMPLATE is None:
        from streamhand.synth.hand import forward_kinematics

        j = forward_kinematics(np.zeros((1, 21)), np.ones(1), np.ones((1, 5, 3)), np.zeros(1, bool))[0]
        lengths = np.array([np.linalg.norm(j[b] - j[a]) for a, b in BONES])
        _BONE_TEMPLATE = lengths / np.linalg.norm(j[10] - j[9])
    return _BONE_TEMPLATE


_EMPTY1, _EMPTY2, _EMPTY3 = np.empty(0), np.empty((0, 21)), np.empty((0, 21, 3))
_NO_SCORES = np.empty((2, 0))


def _float(x: Any, empty: np.ndarray) -> np.ndarray:
    """``x`` as a C-ordered float64 array (what the compiled evidence takes), ``empty`` for None (absent)."""
    return empty if x is None else f64(x)


@njit
def _evidence(uv: Arr, cam: Arr, pub: Arr, kk: Arr, world: Arr, dis: Arr, said: Arr, need: Arr, template: Arr,
              parent: Arr, child: Arr) -> tuple[Arr, Arr]:  # fmt: skip
    """:func:`hand_features`'s arithmetic, compiled: every array float64 and C-ordered, ``kk`` (4, B) fx, fy, cx,
    cy per hand, ``world`` / ``dis`` empty when absent, ``said`` (2, B or 0) the handedness and presence scores,
    ``need`` (F,) bool. Returns ((B, F) features, (B, 21) reprojection residuals in hand sizes, left 0 where
    ``log_residual`` is not needed)."""
    n_hands, n = uv.shape[0], uv.shape[1]
    feats, res = np.zeros((n_hands, len(need))), np.zeros((n_hands, n))
    for b in range(n_hands):
        fx, fy, cx, cy = kk[0, b], kk[1, b], kk[2, b], kk[3, b]
        u0, u1, v0, v1 = np.inf, -np.inf, np.inf, -np.inf
        for j in range(n):
            u0, u1 = min(u0, uv[b, j, 0]), max(u1, uv[b, j, 0])
            v0, v1 = min(v0, uv[b, j, 1]), max(v1, uv[b, j, 1])
        size = max(max(u1 - u0, v1 - v0), 1.0)  # the hand's size in pixels
        feats[b, 0] = np.log(size / 100.0)
        if need[1]:  # the placement's reprojection from the 2D
            total = 0.0
            for j in range(n):
                res[b, j] = _pixels_off(uv[b, j], cam[b, j, 0], cam[b, j, 1], cam[b, j, 2], fx, fy, cx, cy) / size
                total += res[b, j] if j > 0 else 0.0
            feats[b, 1] = np.log(total / (n - 1) + 1e-3)
        if need[2] and world.shape[0] > 0:  # the detector's metric landmarks placed by the perspective solve
            w = world[b] - world[b, 0]
            root = hand_root(uv[b], w, fx, fy, cx, cy, np.nan)
            total = 0.0
            for j in range(n):
                total += _pixels_off(uv[b, j], w[j, 0] + root[0], w[j, 1] + root[1], w[j, 2] + root[2], fx, fy, cx, cy)
            feats[b, 2] = np.log(total / n / size + 1e-3)
        if dis.shape[0] > 0:
            feats[b, 3] = np.log(dis[b, 1:].sum() / (n - 1) + 1e-3)
        if said.shape[1] > 0:
            feats[b, 4] = 1.0 - min(max(said[0, b], 0.0), 1.0)
            feats[b, 7] = 1.0 - min(max(said[1, b], 0.0), 1.0)
        if need[5]:  # the published answer's bones against the average hand's, in reference bones
            ref = max(_length(pub, b, 9, 10), 1e-6)
            total = 0.0
            for i in range(len(parent)):
                total += abs(np.log(max(_length(pub, b, parent[i], child[i]) / ref, 1e-3) / template[i]))
            feats[b, 5] = total / len(parent)
        if need[6]:  # how edge-on the palm is: its normal (index MCP x pinky MCP, from the wrist) against the ray
            ax, ay, az = pub[b, 5, 0] - pub[b, 0, 0], pub[b, 5, 1] - pub[b, 0, 1], pub[b, 5, 2] - pub[b, 0, 2]
            bx, by, bz = pub[b, 17, 0] - pub[b, 0, 0], pub[b, 17, 1] - pub[b, 0, 1], pub[b, 17, 2] - pub[b, 0, 2]
            nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
            rx, ry, rz = 0.0, 0.0, 0.0
            for j in (0, 5, 9, 13, 17):
                rx, ry, rz = rx + pub[b, j, 0], ry + pub[b, j, 1], rz + pub[b, j, 2]
            norm_n = max(np.sqrt(nx * nx + ny * ny + nz * nz), 1e-9)
            norm_r = max(np.sqrt(rx * rx + ry * ry + rz * rz), 1e-9)
            feats[b, 6] = 1.0 - abs((nx * rx + ny * ry + nz * rz) / (norm_n * norm_r))
    return feats, res


@njit
def _pixels_off(uv: Arr, x: float, y: float, z: float, fx: float, fy: float, cx: float, cy: float) -> float:
    """How far the camera-frame point (x, y, z) projects from the pixel ``uv`` (2,) (its depth at least 1 mm)."""
    z = max(z, 1e-3)
    du, dv = fx * x / z + cx - uv[0], fy * y / z + cy - uv[1]
    return np.sqrt(du * du + dv * dv)


@njit
def _length(p: Arr, b: int, i: int, j: int) -> float:
    """The distance between joints ``i`` and ``j`` of hand ``b`` of ``p`` (B, 21, 3)."""
    dx, dy, dz = p[b, j, 0] - p[b, i, 0], p[b, j, 1] - p[b, i, 1], p[b, j, 2] - p[b, i, 2]
    return np.sqrt(dx * dx + dy * dy + dz * dz)


@njit
def _expected(feats: Arr, joints: Arr, ref_m: Arr, lin: Arr, bias: float, profile: Arr, scale_sigma: float) -> Arr:
    """(B, 21) each joint's expected error (metres), compiled: the linear model ``lin`` (3, F: mean, std, weights)
    and ``bias`` of the log shape error in reference bones, times ``profile`` and ``ref_m`` (B,), and the scale's
    error, ``scale_sigma`` times each joint's distance from the wrist of ``joints`` (B, 21, 3)."""
    e = np.empty((feats.shape[0], joints.shape[1]))
    for b in range(feats.shape[0]):
        log_e = bias
        for i in range(feats.shape[1]):
            log_e += (feats[b, i] - lin[0, i]) / lin[1, i] * lin[2, i]
        shape = np.exp(log_e) * ref_m[b]
        for j in range(joints.shape[1]):
            s, size = shape * profile[j], scale_sigma * _length(joints, b, 0, j)
            e[b, j] = np.sqrt(s * s + size * size)
    return e


@njit
def _judgement(feats: Arr, joints: Arr, ref_m: Arr, lin: Arr, consts: Arr, profile: Arr) -> tuple[Arr, Arr, Arr]:
    """joint_std (B, 21), quality (B,) and confidence (B,) from the evidence, compiled (``consts``: bias,
    scale_sigma, kappa, quality_bias, quality_sigma, CONFIDENT_BELOW_M)."""
    e = _expected(feats, joints, ref_m, lin, consts[0], profile, consts[1])
    quality, conf = np.empty(len(e)), np.empty(len(e))
    for b in range(len(e)):
        e[b, 0] = 0.0  # the wrist is the origin of wrist-relative joints
        quality[b] = consts[3] * e[b, 1:].sum() / (e.shape[1] - 1)
        x = (np.log(consts[5]) - np.log(max(quality[b], 1e-6))) / consts[4]
        conf[b] = 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
    return consts[2] * e, quality, conf


@njit
def _judge(uv: Arr, cam: Arr, pub: Arr, kk: Arr, world: Arr, dis: Arr, said: Arr, need: Arr, template: Arr,
           parent: Arr, child: Arr, ref_m: Arr, lin: Arr, consts: Arr, profile: Arr
           ) -> tuple[Arr, Arr, Arr]:  # fmt: skip
    """:func:`_evidence` and :func:`_judgement` in one compiled call (what a run does once a frame)."""
    feats, _ = _evidence(uv, cam, pub, kk, world, dis, said, need, template, parent, child)
    return _judgement(feats, pub, ref_m, lin, consts, profile)


def _arguments(uv: Any, joints_cam: Any, k: tuple, world: Any, disagreement: Any, handedness_score: Any, presence: Any,
               needed: Any, answer: Any) -> tuple:  # fmt: skip
    """:func:`hand_features`'s arguments as :func:`_evidence` takes them."""
    uv, cam = f64(uv), f64(joints_cam)
    b = len(uv)
    kk = intrinsics_per_hand(*k, b)
    pub = cam if answer is None else f64(answer)
    if handedness_score is None and presence is None:
        said = _NO_SCORES
    else:
        said = np.empty((2, b))
        said[0] = 1.0 if handedness_score is None else handedness_score
        said[1] = 1.0 if presence is None else presence
    need = np.ones(len(FEATURES), bool) if needed is None else carray(needed, bool)
    return (uv, cam, pub, kk, _float(world, _EMPTY3), _float(disagreement, _EMPTY2), said, need, _template(),
            _PARENT, _CHILD)  # fmt: skip


def hand_features(
    uv: np.ndarray,
    joints_cam: np.ndarray,
    k: tuple[Any, Any, Any, Any],
    world: np.ndarray | None = None,
    disagreement: np.ndarray | None = None,
    handedness_score: np.ndarray | None = None,
    presence: np.ndarray | None = None,
    needed: np.ndarray | None = None,
    answer: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The evidence about B placed hands: ((B, len(FEATURES)) features, (B, 21) each joint's reprojection residual in
    hand sizes, None where ``log_residual`` is not needed).

    ``uv`` (B, 21, 2) MediaPipe's landmarks (px); ``joints_cam`` (B, 21, 3) the placed answer (metres, camera frame,
    before smoothing); ``k`` (fx, fy, cx, cy), all scalars or all (B,); ``world`` (B, 21, 3) MediaPipe's metric
    landmarks; ``disagreement`` (B, 21) the fused experts' distance from the fused answer in reference bones (None: one
    expert); ``handedness_score`` (B,) MediaPipe's; ``presence`` (B,) the landmark network's hand-presence score
    (``Detection.score``). ``needed`` (len(FEATURES),) bool: the features a model weighs
    (the others, left 0, are not computed: a run spends nothing on evidence its error model ignores). ``answer``
    (B, 21, 3) the published joints (``joints_cam`` pulled toward the 2D's rays,
    :func:`streamhand.place.placement.pull_to_rays`; None: the placement itself): the bones and the palm's facing
    are read from it, the reprojection from the placement. Absent scores count as doubt 0."""
    args = _arguments(uv, joints_cam, k, world, disagreement, handedness_score, presence, needed, answer)
    feats, res = _evidence(*args)
    return feats, (res if args[7][1] else None)


@dataclass(frozen=True)
class HandJudgement:
    """What the error model says of B hands."""

    joint_std: np.ndarray  # (B, 21) metres
    quality: np.ndarray  # (B,) expected mean joint error, metres
    confidence: np.ndarray  # (B,) probability that the mean joint error is below CONFIDENT_BELOW_M


class ErrorModel:
    """One fitted error model (one set of fused experts); see the module's docstring for ``spec``."""

    def __init__(self, spec: dict):
        missing = {"features", "mean", "std", "weights", "bias", "profile", "scale_sigma", "kappa", "quality_bias",
                   "quality_sigma"} - set(spec)  # fmt: skip
        if missing:
            raise ValueError(f"error model lacks {', '.join(sorted(missing))}")
        names = list(spec["features"])
        unknown = [f for f in names if f not in FEATURES]
        if unknown:
            raise ValueError(f"error model features {unknown} are not among this version's")
        if len(set(names)) < len(names):
            raise ValueError(f"error model features {names} repeat")
        mean, std, weights = (np.asarray(spec[q], float) for q in ("mean", "std", "weights"))
        if not len(weights) == len(mean) == len(std) == len(names):
            raise ValueError(f"error model's weights, mean and std do not match its {len(names)} features")
        # a model fitted before some evidence existed weighs it 0 (it is then not computed)
        at = [FEATURES.index(f) for f in names]
        self.mean, self.std, self.weights = np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.zeros(len(FEATURES))
        self.mean[at], self.std[at], self.weights[at] = mean, np.maximum(std, 1e-9), weights
        self.bias = float(spec["bias"])
        self.profile = np.asarray(spec["profile"], float)
        if self.profile.shape != (21,):
            raise ValueError(f"error model's profile has {self.profile.size} joints, not 21")
        self.needed = self.weights != 0  # the evidence it weighs: the rest is not computed for it
        self.scale_sigma, self.kappa = float(spec["scale_sigma"]), float(spec["kappa"])
        self.quality_bias, self.quality_sigma = float(spec["quality_bias"]), max(float(spec["quality_sigma"]), 1e-3)
        self.spec = spec
        self._lin = np.stack([self.mean, self.std, self.weights])  # what the compiled arithmetic reads
        self._consts = np.array([self.bias, self.scale_sigma, self.kappa, self.quality_bias, self.quality_sigma,
                                 CONFIDENT_BELOW_M])  # fmt: skip

    def expected_errors(self, feats: np.ndarray, rel: np.ndarray, ref_m: np.ndarray) -> np.ndarray:
        """(B, 21) each joint's expected error (metres): the shape error predicted from ``feats`` (B, F) in reference
        bones times ``ref_m`` (B,), and the scale's error along ``rel`` (B, 21, 3), the answer's wrist-relative
        joints (metres)."""
        return _expected(_float(feats, _EMPTY2), _float(rel, _EMPTY3), _float(ref_m, _EMPTY1), self._lin, self.bias,
                         self.profile, self.scale_sigma)  # fmt: skip

    def __call__(self, feats: np.ndarray, rel: np.ndarray, ref_m: np.ndarray) -> HandJudgement:
        """What the model says of B hands from their evidence ``feats`` (B, F), their wrist-relative answers ``rel``
        (B, 21, 3) and reference bones ``ref_m`` (B,)."""
        std, quality, conf = _judgement(_float(feats, _EMPTY2), _float(rel, _EMPTY3), _float(ref_m, _EMPTY1),
                                        self._lin, self._consts, self.profile)  # fmt: skip
        return HandJudgement(std, quality, conf)

    def judge_hands(self, uv: np.ndarray, joints_cam: np.ndarray, k: tuple[Any, Any, Any, Any], ref_m: np.ndarray,
                    world: np.ndarray | None = None, disagreement: np.ndarray | None = None,
                    handedness_score: np.ndarray | None = None, presence: np.ndarray | None = None,
                    answer: np.ndarray | None = None) -> HandJudgement:  # fmt: skip
        """B placed hands (the arguments of :func:`hand_features`; ``ref_m`` (B,) the reference bone each was placed
        with): the evidence and what it says, in one compiled call. The size term follows the published ``answer``'s
        joints (the placement's where None)."""
        args = _arguments(uv, joints_cam, k, world, disagreement, handedness_score, presence, self.needed, answer)
        std, quality, conf = _judge(*args, _float(ref_m, _EMPTY1), self._lin, self._consts, self.profile)
        return HandJudgement(std, quality, conf)


def default_samples(judged: Iterable[str], modalities: Iterable[str]) -> int:
    """Posterior samples a run fusing ``modalities`` takes unless told, given the sets of experts (``2d+world``) a
    model's error model ``judged``: none where it judges this set (joint_std comes from it), else 16 (a set it does
    not judge, in a checkpoint fitted before the fits covered every set, would otherwise publish a joint_std of 0)."""
    mods = {m for e in modalities for m in e.split("+")} & set(INPUTS)
    return 0 if modality_key(mods) in set(judged) else 16


def check_error_models(models: dict | None, checkpoint: str = "CKPT") -> None:
    """Every fitted model of a model's ``error_model`` metadata readable by this version, or a one-line ValueError
    naming the set of experts and what to do (else a run fails on the first frame that set judges, perhaps hours in);
    ``checkpoint``: the model's file, for the command that refits it."""
    for key, spec in (models or {}).items():
        if spec:
            try:
                ErrorModel(spec)
            except (ValueError, TypeError, KeyError) as e:
                raise ValueError(f"its error model for {key} cannot be read by this streamhand ({e}); refit it with "
                                 f"`python -m train fit-error-model --checkpoint {checkpoint}`") from None


def error_model_for(models: dict | None, key: str) -> ErrorModel | None:
    """The fitted model for the expert set ``key`` (``"2d+world"``) of a model's ``error_model`` metadata, if any."""
    spec = (models or {}).get(key)
    return ErrorModel(spec) if spec else None
