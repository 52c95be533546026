"""streamhand's cache folder (streamhand/cache.py): `streamhand info` says where it is and what it holds, the crash
logs in it do not grow without bound, and a cache the ONNX graphs cannot be written into says where to move it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.helpers import invoke


def test_info_names_the_cache_its_size_and_largest_parts(tmp_path):
    """`info` named numba's folder but not streamhand's own cache, which grows by a demo clip (70-250 MB each), the
    ONNX graphs of every checkpoint run and the converted hand networks."""
    cache = tmp_path / "cache"
    for rel, size in (("demo-aaa.zip", 3_000_000), ("demo-bbb.zip", 2_000_000), ("onnx/0123/k0_x.onnx", 1_500_000),
                      ("onnx/0123/k0_x.int8.onnx", 500_000), ("hand_networks/mp/a.onnx", 40_000),
                      ("logs/crash-1.log", 900)):  # fmt: skip
        (cache / rel).parent.mkdir(parents=True, exist_ok=True)
        (cache / rel).write_bytes(b"\0" * size)
    r = invoke("info", env={"STREAMHAND_CACHE": str(cache)})
    assert r.returncode == 0, r.stderr[-1500:]
    line = next(x for x in r.stdout.splitlines() if x.strip().startswith("streamhand cache"))
    assert f"{cache} (7.0 MB: demo clips 5.0 MB, onnx/ 2.0 MB, hand_networks/ 40.0 kB, logs/ 900 B;" in line, line
    assert "deleted" in line
    r = invoke("info", env={"STREAMHAND_CACHE": str(tmp_path / "none")})
    assert f"streamhand cache         {tmp_path / 'none'} (not made yet)" in r.stdout, r.stdout


def test_a_new_crash_log_keeps_the_newest_fifty(tmp_path, monkeypatch):
    """Each unexpected failure wrote a traceback into ``<cache>/logs/`` and none was ever removed."""
    from streamhand.errors import crash_log

    monkeypatch.setenv("STREAMHAND_CACHE", str(tmp_path))
    logs = tmp_path / "logs"
    logs.mkdir()
    old = [logs / f"crash-20250101-{i:06d}-1.log" for i in range(60)]
    for p in old:
        p.write_text("old")
    (logs / "other.txt").write_text("not a crash log")
    new = crash_log(RuntimeError("boom"), "info")
    assert new is not None and "RuntimeError: boom" in new.read_text()
    left = sorted(logs.glob("crash-*.log"))
    assert len(left) == 50 and left[-1] == new
    assert left[:-1] == old[-49:]  # the oldest went
    assert (logs / "other.txt").is_file()


@pytest.mark.parametrize("blocked", ["onnx", "onnx/*"])
def test_a_cache_the_onnx_graphs_cannot_be_written_into_says_where_to_move_it(tiny_checkpoint, tmp_path, blocked):
    """A checkpoint's first run exports its ONNX graphs into ``<cache>/onnx/<sha>/``: into a read-only cache that
    failed with ``error: .../onnx/<sha>: cannot make the folder (Read-only file system)`` and no way out. It says to
    point STREAMHAND_CACHE at a writable folder now, as converting the hand networks does. The cache is made
    unwritable by a file where a folder must go (read-only permissions do not stop root)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for clip in Path(os.environ["STREAMHAND_CACHE"]).glob("demo-*.zip"):  # the session's demo clip (conftest)
        (cache / clip.name).symlink_to(clip)
    if blocked == "onnx":
        (cache / "onnx").write_text("a file in the way")
    else:  # the graph's own folder
        from streamhand.model_files import cached_graph_path, file_sha256

        where = cached_graph_path(file_sha256(tiny_checkpoint), "m", ("2d",), 0).parent
        (cache / "onnx").mkdir()
        (cache / "onnx" / where.name).write_text("a file in the way")
    r = invoke("run", "--source", "demo", "--model", str(tiny_checkpoint), "--frames", "1", "--no-realtime",
               "--port", str(free_port()), "--control-port", str(free_port()),
               env={"STREAMHAND_CACHE": str(cache), "DISPLAY": ""})  # fmt: skip
    assert r.returncode == 2, (r.returncode, r.stderr[-1500:])
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "cannot make the folder" in last, r.stderr[-1500:]
    assert "point STREAMHAND_CACHE at a writable folder" in last and "Traceback" not in r.stderr
