"""Camera calibration files that other tools write, read into the flat map of :class:`~streamhand.geometry.Intrinsics`
(``width``, ``height``, ``fx``, ``fy``, ``cx``, ``cy``; distortion kept under ``dist`` so that it is warned of):

* ROS ``camera_calibration``'s YAML (``image_width``, ``image_height``, ``camera_matrix: {rows, cols, data}``,
  ``distortion_coefficients``);
* a ROS ``sensor_msgs/CameraInfo`` message as ``ros2 topic echo --once`` prints it (``width``, ``height``, ``k``,
  ``d``; ROS 1's ``K``, ``D``);
* Kalibr's camera chain (``cam0: {intrinsics: [fu, fv, pu, pv], resolution: [w, h]}``);
* OpenCV's ``cv::FileStorage`` YAML or XML, as its calibration sample writes it (``image_width``, ``image_height``,
  ``camera_matrix`` or ``K``, ``distortion_coefficients``), which plain YAML cannot read (``%YAML:1.0``,
  ``!!opencv-matrix``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: the camera matrix's names: ROS 2, ROS 1, camera_calibration and OpenCV's sample, OpenCV's other spellings
MATRIX_KEYS = ("k", "K", "camera_matrix", "cameraMatrix", "intrinsic_matrix")
_WIDTH, _HEIGHT = ("width", "image_width"), ("height", "image_height")
_DISTORTION = ("d", "D", "distortion_coefficients", "dist_coeffs")


def is_opencv_storage(text: str) -> bool:
    """Whether ``text`` is OpenCV's FileStorage YAML or XML rather than plain YAML or JSON."""
    head = text.lstrip()[:200]
    return head.startswith(("%YAML:", "<?xml")) or "!!opencv-matrix" in text or "<opencv_storage>" in head


def read_opencv_storage(path: str | Path) -> dict:
    """The image size, camera matrix and distortion an OpenCV FileStorage file holds, as a plain map (a
    ValueError, one line, where it holds no camera matrix)."""
    import cv2

    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as e:  # OpenCV's parser on a damaged file (its error inside a SystemError)
        said = " ".join(str(e.__cause__ or e.__context__ or e).split())
        raise ValueError(said.split("error: ", 1)[-1][:200] or "OpenCV cannot parse it") from None
    try:
        if not fs.isOpened():
            raise ValueError("OpenCV cannot read it as a FileStorage file")
        out: dict[str, Any] = {}
        for key in (*_WIDTH, *_HEIGHT):
            node = fs.getNode(key)
            if not node.empty():  # a number; anything else is given on as text, which the reader names
                out[key] = node.real() if node.isReal() or node.isInt() else node.string() or "?"
        for key in (*MATRIX_KEYS, *_DISTORTION):
            node = fs.getNode(key)
            if node.empty():
                continue
            m = node.mat()
            out[key] = m.ravel().tolist() if m is not None else None
        if not any(out.get(key) for key in MATRIX_KEYS):
            raise ValueError(f"an OpenCV file without a camera matrix ({', '.join(MATRIX_KEYS)})")
        return out
    finally:
        fs.release()


def flat_intrinsics(data: Any, where: str) -> Any:
    """``data`` (a file's map) as the flat map: the flat map itself, or one of the layouts above; anything else as it
    is (its reader then says what is missing). A ValueError (one line, starting with ``where``) for a camera matrix
    that is not 3x3."""
    if not isinstance(data, dict) or all(k in data for k in ("fx", "fy", "cx", "cy")):
        return data
    if isinstance(data.get("cam0"), dict):  # Kalibr's camera chain: the first camera's
        data = data["cam0"]
    if isinstance(data.get("intrinsics"), list) and isinstance(data.get("resolution"), list):
        fu_fv_pu_pv, size = data["intrinsics"], data["resolution"]
        if len(fu_fv_pu_pv) != 4 or len(size) != 2:
            raise ValueError(f"{where}: Kalibr's intrinsics are [fu, fv, pu, pv] and its resolution [width, height]")
        out = {"width": size[0], "height": size[1], **dict(zip(("fx", "fy", "cx", "cy"), fu_fv_pu_pv))}
        return _with_distortion(out, data.get("distortion_coeffs"))
    matrix = next((data[k] for k in MATRIX_KEYS if data.get(k) is not None), None)
    if matrix is None:
        return data
    if isinstance(matrix, dict):  # camera_calibration's {rows: 3, cols: 3, data: [...]}
        matrix = matrix.get("data")
    if isinstance(matrix, np.matrix):  # its rows are 1x3 matrices: as a plain array
        matrix = np.asarray(matrix)
    if isinstance(matrix, (list, tuple, np.ndarray)) and len(matrix) == 3 and all(
        isinstance(r, (list, tuple, np.ndarray)) and len(r) == 3 for r in matrix
    ):
        matrix = [v for row in matrix for v in row]  # written as rows (or an array given in code)
    if not isinstance(matrix, (list, tuple, np.ndarray)) or len(matrix) != 9 or np.ndim(matrix) != 1:
        raise ValueError(f"{where}: the camera matrix must be 3x3 (9 numbers: fx, 0, cx, 0, fy, cy, 0, 0, 1)")
    matrix = [v.item() if isinstance(v, np.generic) else v for v in matrix]
    dist = next((data[k] for k in _DISTORTION if data.get(k) is not None), None)
    if isinstance(dist, dict):
        dist = dist.get("data")
    out = {"fx": matrix[0], "fy": matrix[4], "cx": matrix[2], "cy": matrix[5]}
    for name, keys in (("width", _WIDTH), ("height", _HEIGHT)):
        given = next((data[k] for k in keys if k in data), None)
        if given is not None:
            out[name] = given
    return _with_distortion(out, dist)


def _with_distortion(flat: dict, dist: Any) -> dict:
    """``flat`` with the lens distortion a file gives under ``dist`` (warned of, not applied), where it gives one."""
    return flat if dist is None else {**flat, "dist": dist}
