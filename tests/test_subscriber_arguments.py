"""``PoseSubscriber``'s arguments: a bad one is a one-line ValueError when the subscriber is made, not an error from
deep inside its first read."""

from __future__ import annotations

import numpy as np
import pytest

from streamhand.stream.client import PoseSubscriber
from tests.conftest import free_port


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"timeout": -1}, "timeout -1: give seconds"),
        ({"timeout": "5"}, "timeout '5': give seconds"),
        ({"timeout": float("nan")}, "timeout nan: give seconds"),
        ({"timeout": float("inf")}, "timeout inf: give seconds"),
        ({"timeout": True}, "timeout True: give seconds"),
        ({"control_timeout": -0.5}, "control_timeout -0.5: give seconds"),
        ({"control": "tcp://127.0.0.1:{port}"}, "give one of them"),
        ({"topics": ("status",)}, "without raw=True"),
        ({"curve_server_key": "server.key"}, "go together"),
    ],
)
def test_bad_arguments_say_so_at_once(kwargs, says):
    port = free_port()
    kwargs = {k: v.format(port=port) if k == "control" else v for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=says) as e:
        PoseSubscriber(f"tcp://127.0.0.1:{port}", **kwargs)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("timeout", [None, 0, 0.2, 3, np.float32(1.5), 1e6])
def test_waits_it_takes(timeout):
    sub = PoseSubscriber(f"tcp://127.0.0.1:{free_port()}", timeout=timeout)
    try:
        assert sub.timeout == timeout
    finally:
        sub.close()
