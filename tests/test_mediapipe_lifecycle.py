"""MediaPipe's graph inside long-lived programs: a detector dropped without ``close()`` is freed, one interrupted
while it starts leaves nothing behind, a forked child says what to do instead of aborting, a detector that never
sees a hand stops filtering the process's standard error, and the filter gives standard error back whatever
happens inside it. Real MediaPipe, in child processes where the process's own state is measured."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from streamhand import quiet
from tests.helpers import ROOT


def _child(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=180,
                       cwd=str(ROOT), env={**os.environ, "GLOG_minloglevel": "2"})  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_a_detector_dropped_without_close_frees_its_graph():
    """MediaPipe's objects hold one another in a cycle Python cannot see: each detector dropped without closing kept
    its graph's threads and about 80 MB for good."""
    out = _child("""
        import gc, os
        from streamhand.detect.mediapipe_hands import MediaPipeHands
        threads = lambda: len(os.listdir("/proc/self/task"))
        MediaPipeHands().close()  # MediaPipe's own first-use threads, once
        gc.collect()
        before = threads()
        for _ in range(4):
            d = MediaPipeHands()
            del d
            gc.collect()
        print(before, threads())
    """)
    before, after = map(int, out.split())
    assert after <= before + 1, (before, after)


def test_a_forked_child_is_told_to_start_its_workers_by_spawn():
    """MediaPipe's threads and locks do not survive a fork: a detector used in the child, or a new one made there,
    aborted the child or hung it; both now say what to do."""
    out = _child("""
        import multiprocessing as mp
        import numpy as np
        from streamhand.detect.mediapipe_hands import MediaPipeHands

        def child(q, d):
            said = []
            for attempt in (lambda: d(np.zeros((64, 64, 3), np.uint8)), MediaPipeHands):
                try:
                    attempt()
                    said.append("ran")
                except RuntimeError as e:
                    said.append(str(e))
            d.close()  # the parent's graph: left alone
            d._free()  # as when the child collects its copy or exits: left alone (it waited on the parent's threads)
            q.put(said)

        d = MediaPipeHands()
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q, d))
        p.start()
        try:
            said = q.get(timeout=60)
        finally:
            p.join(60)
            if p.is_alive():
                p.kill()
        print(said[0].split(";")[0])
        print(said[1].split(":")[0])
        print(len(d(np.zeros((64, 64, 3), np.uint8))))  # the parent's detector still works
        d.close()
    """)
    assert out.splitlines() == [
        "this MediaPipe hand detector was made in another process (before a fork)",
        "MediaPipe cannot run in a process forked from one that ran it",
        "0",
    ]


def test_a_ctrl_c_while_the_detector_starts_leaves_no_graph_behind(monkeypatch):
    from streamhand.detect import mediapipe_graph, mediapipe_hands

    closed = []

    class Starting:
        def process(self, rgb):
            raise KeyboardInterrupt

        def close(self):
            closed.append(True)

    monkeypatch.setattr(mediapipe_graph, "hands_with_presence", lambda *a: Starting())
    with pytest.raises(KeyboardInterrupt):
        mediapipe_hands.MediaPipeHands()
    assert closed == [True]


def test_a_detector_that_never_sees_a_hand_stops_filtering_standard_error(monkeypatch):
    """The filter (which holds the whole process's standard error back while MediaPipe runs) waits for the landmark
    model's start-up lines, which come with the first hands: without hands it ends after a few calls."""
    from streamhand.detect.mediapipe_hands import NOISY_CALLS_AT_MOST, MediaPipeHands

    d = MediaPipeHands()
    entered = []
    real = quiet.native_stderr_filtered

    def counting():
        entered.append(1)
        return real()

    monkeypatch.setattr(quiet, "native_stderr_filtered", counting)
    try:
        for _ in range(NOISY_CALLS_AT_MOST + 10):
            assert d(np.zeros((64, 64, 3), np.uint8)) == []
    finally:
        d.close()
    assert len(entered) == NOISY_CALLS_AT_MOST


@pytest.mark.parametrize("raised", [KeyboardInterrupt, RuntimeError])
def test_the_filter_gives_standard_error_back_whatever_happens_inside_it(raised):
    before = os.fstat(2)
    fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(raised), quiet.native_stderr_filtered():
        raise raised
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    assert len(os.listdir("/proc/self/fd")) == fds  # no descriptor left open


def test_the_first_detector_of_a_process_is_not_kept_alive_by_mediapipes_import():
    """MediaPipe keeps an exception from its import at module level; made in the first detector's frame, its
    traceback kept that detector (and, through a tracker's frames, a demo clip's 250 MB) alive for good."""
    out = _child("""
        import gc, weakref
        from streamhand.detect.mediapipe_hands import MediaPipeHands
        d = MediaPipeHands()
        first = weakref.ref(d)
        d.close()
        del d
        gc.collect()
        print(first() is None)
    """)
    assert out.strip() == "True"


def test_a_home_that_cannot_be_written_gives_no_matplotlib_warnings(tmp_path):
    """MediaPipe's import pulls in matplotlib, which printed two long warnings on every run where the home folder
    cannot be written (a container, a service user); its config folder is then one in streamhand's cache."""
    not_a_folder = tmp_path / "home"
    not_a_folder.write_text("a file where the home folder should be")
    env = {**os.environ, "HOME": str(not_a_folder), "STREAMHAND_CACHE": str(tmp_path / "cache")}
    env.pop("MPLCONFIGDIR", None)
    env.pop("XDG_CONFIG_HOME", None)
    code = ("from streamhand import quiet; quiet.configure(False); import matplotlib.pyplot, os; "
            "print(os.environ['MPLCONFIGDIR'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and "matplotlib" not in r.stderr.lower(), r.stderr
    assert r.stdout.strip() == str(tmp_path / "cache" / "matplotlib")
