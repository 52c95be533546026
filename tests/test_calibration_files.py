"""Calibration files other tools write, read as a run's intrinsics (``--intrinsics``, ``HandTracker(intrinsics=)``):
ROS camera_calibration's YAML, a ROS CameraInfo message (ROS 2 and ROS 1), Kalibr's camera chain and OpenCV's
FileStorage YAML and XML (written here by OpenCV itself); each gives the same camera, its distortion warned of; the
broken ones are one line."""

from __future__ import annotations

import logging
import warnings

import cv2
import numpy as np
import pytest

from streamhand.geometry import Intrinsics

WANT = Intrinsics(1280, 720, 910.5, 911.0, 641.25, 362.5)
K = [[910.5, 0, 641.25], [0, 911.0, 362.5], [0, 0, 1]]

ROS_CALIBRATION = """image_width: 1280
image_height: 720
camera_name: webcam
camera_matrix:
  rows: 3
  cols: 3
  data: [910.5, 0, 641.25, 0, 911.0, 362.5, 0, 0, 1]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.12, -0.2, 0.0, 0.0, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [910.5, 0, 641.25, 0, 0, 911.0, 362.5, 0, 0, 0, 1, 0]
"""
ROS2_CAMERA_INFO = """header:
  stamp:
    sec: 1700000000
    nanosec: 0
  frame_id: camera_color_optical_frame
height: 720
width: 1280
distortion_model: plumb_bob
d:
- 0.0
- 0.0
- 0.0
- 0.0
- 0.0
k:
- 910.5
- 0.0
- 641.25
- 0.0
- 911.0
- 362.5
- 0.0
- 0.0
- 1.0
r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
p: [910.5, 0.0, 641.25, 0.0, 0.0, 911.0, 362.5, 0.0, 0.0, 0.0, 1.0, 0.0]
binning_x: 0
binning_y: 0
roi: {x_offset: 0, y_offset: 0, height: 0, width: 0, do_rectify: false}
---
"""
ROS1_CAMERA_INFO = """height: 720
width: 1280
distortion_model: "plumb_bob"
D: [0.1, 0.0, 0.0, 0.0, 0.0]
K: [910.5, 0.0, 641.25, 0.0, 911.0, 362.5, 0.0, 0.0, 1.0]
R: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
P: [910.5, 0.0, 641.25, 0.0, 0.0, 911.0, 362.5, 0.0, 0.0, 0.0, 1.0, 0.0]
"""
KALIBR = """cam0:
  camera_model: pinhole
  intrinsics: [910.5, 911.0, 641.25, 362.5]
  distortion_model: radtan
  distortion_coeffs: [0.05, -0.01, 0.0, 0.0]
  resolution: [1280, 720]
  rostopic: /camera/color/image_raw
"""


def _opencv(tmp_path, name: str, dist: bool = True, matrix: str = "camera_matrix") -> str:
    path = tmp_path / name
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 1280)
    fs.write("image_height", 720)
    fs.write(matrix, np.array(K, float))
    if dist:
        fs.write("distortion_coefficients", np.array([[0.1, -0.2, 0, 0, 0]]))
    fs.release()
    return str(path)


@pytest.mark.parametrize(
    ("name", "text", "warns"),
    [
        ("ost.yaml", ROS_CALIBRATION, True),  # camera_calibration's output
        ("info.yaml", ROS2_CAMERA_INFO, False),  # `ros2 topic echo --once .../camera_info`, zero distortion
        ("info1.yaml", ROS1_CAMERA_INFO, True),
        ("camchain.yaml", KALIBR, True),
        ("flat.json", '{"width": 1280, "height": 720, "fx": 910.5, "fy": 911.0, "cx": 641.25, "cy": 362.5}', False),
        ("rows.json", '{"width": 1280, "height": 720, "camera_matrix": ' + str(K) + "}", False),
        ("opencv.yaml", None, True),
        ("opencv.xml", None, True),
        ("opencv_k.yml", "K", False),
    ],
)
def test_every_layout_gives_the_same_camera(tmp_path, caplog, name, text, warns):
    if text is None or text == "K":
        path = _opencv(tmp_path, name, dist=text is None, matrix="K" if text == "K" else "camera_matrix")
    else:
        path = str(tmp_path / name)
        (tmp_path / name).write_text(text)
    with caplog.at_level(logging.WARNING):
        assert Intrinsics.from_file(path) == WANT
    assert ("not applied" in caplog.text) == warns, caplog.text


@pytest.mark.parametrize(
    "matrix",
    [[v for row in K for v in row], np.array(K), tuple(map(tuple, K)), np.array(K).ravel(), "np.matrix"],
)
def test_a_tracker_takes_a_ros_camera_info_given_as_a_dict(matrix):
    if isinstance(matrix, str):  # numpy's matrix class (rows of 1x3 matrices), made here where its warning is kept
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            matrix = np.asmatrix(K)
    assert Intrinsics.from_mapping({"width": 1280, "height": 720, "k": matrix}) == WANT


def test_an_opencv_file_whose_size_is_not_a_number_says_so(tmp_path):
    path = tmp_path / "c.yaml"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", "wide")
    fs.write("image_height", 720)
    fs.write("camera_matrix", np.array(K, float))
    fs.release()
    with pytest.raises(ValueError, match="width must be a number, got 'wide'"):
        Intrinsics.from_file(path)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("image_width: 1280\nimage_height: 720\ncamera_matrix:\n  rows: 2\n  cols: 2\n  data: [1, 2, 3, 4]\n",
         "the camera matrix must be 3x3"),
        ("width: 1280\nk: [910.5, 0, 641.25, 0, 911.0, 362.5, 0, 0, 1]\n", "height missing"),
        ("cam0:\n  intrinsics: [910.5, 911.0, 641.25]\n  resolution: [1280, 720]\n", "Kalibr's intrinsics are"),
        ("%YAML:1.0\n---\nimage_width: 1280\nimage_height: 720\n", "an OpenCV file without a camera matrix"),
        ("width: 1280\nheight: 720\nk: [-910.5, 0, 641.25, 0, 911.0, 362.5, 0, 0, 1]\n", "fx must be positive"),
        ("%YAML:1.0\n---\ncamera_matrix: !!opencv-matrix\n   rows: 3\n   cols: 3\n   dt: d\n   data: [ 910.5, 0.,\n",
         r"not valid OpenCV FileStorage \(.*Parsing error"),  # cut short: OpenCV's parser raised inside a SystemError
        ('<?xml version="1.0"?>\n<opencv_storage><camera_matrix type_id="opencv-matrix"><rows>3</rows>',
         "not valid OpenCV FileStorage"),
        ("width: 1280\nheight: 720\nk: [[910.5, 0], [641.25, 0, 911.0, 362.5], [0, 0, 1]]\n",
         "the camera matrix must be 3x3"),  # ragged rows that hold nine numbers
    ],
)  # fmt: skip
def test_broken_calibration_files_are_one_line(tmp_path, text, says):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=says) as e:
        Intrinsics.from_file(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
