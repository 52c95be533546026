"""Inputs that are not what they claim are refused in one line (exit 2) before any model loads; a truncated JPEG in
an image set is counted as corrupt, without libjpeg's own warning."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.conftest import free_port
from tests.helpers import invoke


def _jpeg(path, truncate: bool = False):
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    data = cv2.imencode(path.suffix, img)[1].tobytes()
    path.write_bytes(data[: len(data) // 2] if truncate else data)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--images", "{txt}"], "--images: {txt} is not a readable image"),
        (["--images", "{bad_dir}"], "--images: none of the 2 files in {bad_dir} is a readable image"),
        (["--video", "{jpg}"], "--video {jpg}: an image, not a video"),
        (["--source", "images"], "--source images needs --images"),
        (["--source", "video"], "--source video needs --video FILE"),
    ],
)
def test_inputs_that_are_not_what_they_claim(tmp_path, args, message):
    subs = {"{txt}": tmp_path / "notes.txt", "{jpg}": _jpeg(tmp_path / "photo.jpg"), "{bad_dir}": tmp_path / "bad"}
    subs["{txt}"].write_text("not an image")
    subs["{bad_dir}"].mkdir()
    (subs["{bad_dir}"] / "a.png").write_bytes(b"\x89PNG garbage")
    _jpeg(subs["{bad_dir}"] / "b.jpg", truncate=True)
    for k, v in subs.items():
        args = [a.replace(k, str(v)) for a in args]
        message = message.replace(k, str(v))
    r = invoke("run", *args, "--frames", "1", "--port", str(free_port()), "--control-port", str(free_port()))
    assert r.returncode == 2, r.stderr[-1500:]
    assert r.stderr.strip().splitlines() == [f"error: {message}" + r.stderr.strip().split(message, 1)[-1]]


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_truncated_image_is_counted_as_corrupt_and_skipped(tmp_path, capfd, suffix):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _jpeg(folder / f"a{suffix}")
    _jpeg(folder / f"b{suffix}", truncate=True)
    rep = tmp_path / "r.json"
    r = invoke("run", "--images", str(folder), "--no-realtime", "--report", str(rep), "--port", str(free_port()),
               "--control-port", str(free_port()))  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    report = json.loads(rep.read_text())
    assert report["frames_in"] == 1 and report["corrupt_frames"] == 1
    said = capfd.readouterr().err + r.stderr
    assert "Premature end of JPEG" not in said and "libpng" not in said  # the codec libraries' own lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["echo", "--address", "127.0.0.1:5560"], "error: --address '127.0.0.1:5560': not a ZeroMQ endpoint"),
        (["echo", "--control", "localhost"], "error: --control 'localhost': not a ZeroMQ endpoint"),
    ],
)
def test_malformed_addresses_are_one_line(args, message):
    r = invoke(*args, "--timeout", "1")
    assert r.returncode == 2, r.stderr[-1500:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), r.stderr[-1500:]
