"""``python -m streamhand.export.ship``, the maintainers' tool that rebuilds a shipped model's graphs: bad input is
one line and a non-zero exit, and nothing shipped is touched."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamhand.model_files import SHIPPED_GRAPHS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "error: checkpoint not found: nosuch (shipped models by name: default, depth, rgb)"),
        (["--int4"], "unrecognized arguments: --int4"),
    ],
)
def test_ship_bad_input_is_one_line(args, message):
    before = {p: p.stat().st_mtime_ns for p in SHIPPED_GRAPHS.rglob("*")}
    r = subprocess.run([sys.executable, "-m", "streamhand.export.ship", *args], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert {p: p.stat().st_mtime_ns for p in SHIPPED_GRAPHS.rglob("*")} == before
