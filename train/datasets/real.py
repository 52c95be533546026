"""Readers for public hand datasets in their on-disk formats, returned in mediapipe21 and metres.

* RHD (``RHD_published_v2/<split>/anno_<split>.pickle``): per sample ``xyz`` (42, 3) m, ``uv_vis``
  (42, 3), ``K`` (3, 3); left hand 0-20, right 21-41, each finger tip-first. Both hands are returned
  when their keypoints are all inside the image.
* STB (``labels/<Seq>_SK.mat``, ``handPara`` (3, 21, N) in mm, palm root): the SK colour camera; needs
  scipy. The wrist is recovered from the palm centre (DESIGN: palm = (wrist + middle MCP) / 2).
* FreiHAND (``<split>_xyz.json``, ``<split>_K.json``): already mediapipe21 order, metres, right hands.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamhand.skeleton import from_rhd, from_stb
from streamhand.synth.sampler import IntrinsicsBatch

#: STB's SK colour camera intrinsics (from the dataset's documentation)
STB_SK_COLOR = (607.92271, 607.88192, 314.78337, 236.42484)


@dataclass
class HandSet:
    joints_cam: np.ndarray  # (N, 21, 3) metres
    joints_2d: np.ndarray  # (N, 21, 2) pixels
    left: np.ndarray  # (N,) bool
    name: str
    k: np.ndarray  # (N, 3, 3) camera matrices

    def __len__(self) -> int:
        return len(self.joints_cam)

    @property
    def intrinsics(self) -> IntrinsicsBatch:
        k = self.k
        return IntrinsicsBatch(0, 0, k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2])


def _project(xyz: np.ndarray, k: np.ndarray) -> np.ndarray:
    p = xyz @ np.asarray(k).T
    return p[..., :2] / p[..., 2:3]


def load_rhd(root: str | Path, split: str = "evaluation") -> HandSet:
    path = Path(root) / split / f"anno_{split}.pickle"
    if not path.is_file():
        raise FileNotFoundError(f"RHD annotations not found: {path}")
    with path.open("rb") as f:
        anno = pickle.load(f)  # the dataset's own format (a dict of numpy arrays)
    cams, uvs, lefts, ks = [], [], [], []
    for key in sorted(anno):
        a = anno[key]
        xyz, uv_vis = np.asarray(a["xyz"], float), np.asarray(a["uv_vis"], float)
        left_xyz, right_xyz = from_rhd(xyz)
        left_uv, right_uv = from_rhd(uv_vis)
        for j, uv, is_left in ((left_xyz, left_uv, True), (right_xyz, right_uv, False)):
            if uv[:, 2].sum() >= 21 and np.all(j[:, 2] > 0):  # every keypoint visible: a usable hand
                cams.append(j)
                uvs.append(_project(j, a["K"]))
                lefts.append(is_left)
                ks.append(np.asarray(a["K"], float))
    return HandSet(np.array(cams).reshape(-1, 21, 3), np.array(uvs).reshape(-1, 21, 2), np.array(lefts, bool), "rhd",
                   np.array(ks).reshape(-1, 3, 3))  # fmt: skip


def load_stb(root: str | Path, sequences: tuple[str, ...] = ("B1Counting", "B1Random")) -> HandSet:
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ImportError("reading STB needs scipy: pip install scipy") from None
    fx, fy, cx, cy = STB_SK_COLOR
    k = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    cams = []
    for seq in sequences:
        path = Path(root) / "labels" / f"{seq}_SK.mat"
        if not path.is_file():
            raise FileNotFoundError(f"STB labels not found: {path}")
        para = np.asarray(loadmat(str(path))["handPara"], float)  # (3, 21, N) mm
        cams.append(from_stb(np.transpose(para, (2, 1, 0))))
    j = np.concatenate(cams)
    return HandSet(j, _project(j, k), np.zeros(len(j), bool), "stb", np.broadcast_to(k, (len(j), 3, 3)).copy())


def load_freihand(root: str | Path, split: str = "training") -> HandSet:
    root = Path(root)
    xyz_p, k_p = root / f"{split}_xyz.json", root / f"{split}_K.json"
    for p in (xyz_p, k_p):
        if not p.is_file():
            raise FileNotFoundError(f"FreiHAND file not found: {p}")
    xyz = np.array(json.loads(xyz_p.read_text()), float)
    ks = np.array(json.loads(k_p.read_text()), float)
    uv = np.einsum("nij,nkj->nki", ks, xyz)
    return HandSet(xyz, uv[..., :2] / uv[..., 2:3], np.zeros(len(xyz), bool), "freihand", ks)


LOADERS = {"rhd": load_rhd, "stb": load_stb, "freihand": load_freihand}
