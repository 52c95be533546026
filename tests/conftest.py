"""Shared fixtures: seeded generators, rendered frames, free ports."""

from __future__ import annotations

import os
import socket

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n N` on N cores: one compute thread per worker, set before numpy and PyTorch load. Their default, a
    # thread per core in every worker, has the workers' thread pools fight over the cores (a smoke training ran 10x
    # slower in the suite than alone).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, each group in its own order: with ``-n 2`` the workers take the long tests while
    there are short ones left to even out their ends, rather than one worker finishing a minute-long test alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _environment_restored():
    """What a test's in-process command sets in os.environ (``quiet.configure`` quiets OpenCV and FFmpeg there)
    does not reach later tests, nor the processes they start (whose own quieting they check)."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


#: every port free_port has handed out in this process: the system may hand one out again once its probe socket
#: is closed, and two equal ports in one command (``--port`` and ``--control-port``) are refused by the command
_GIVEN: set[int] = set()


def free_port() -> int:
    """A free port on 127.0.0.1 that no earlier call in this process returned."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port
    raise RuntimeError("no free port that was not handed out before")


def free_ports(n: int) -> list[int]:
    """``n`` different free ports."""
    return [free_port() for _ in range(n)]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """An untrained but valid 2D+3D checkpoint (fast to build and run)."""
    import torch

    from streamhand.checkpoint import save_checkpoint
    from streamhand.models import HandPoseModel, ModelConfig

    torch.manual_seed(0)
    model = HandPoseModel(ModelConfig(z_dim=8, hidden=32))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", model, metrics={"note": "untrained"})


@pytest.fixture(scope="session", autouse=True)
def _demo_cache(tmp_path_factory):
    """One demo-clip cache for the whole test session, the default clip rendered into it up front: the tests that
    start several `streamhand run --source demo` processes at once then find it there instead of each rendering
    it while a subscriber waits."""
    os.environ.setdefault("STREAMHAND_CACHE", str(tmp_path_factory.mktemp("cache")))
    from streamhand.capture.demo import DemoSource

    DemoSource(realtime=False).open()
