"""The compiled per-frame arithmetic (streamhand/jit.py): the placement, the pull toward the 2D, the error model and
the smoothing give the same answers compiled and as the plain Python they are written in (numba switched off in a
child process, as on a platform without numba)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from streamhand import jit

ROOT = Path(__file__).resolve().parents[1]

# one frame of two hands, one where a depth image (with holes) sees it and one where it does not, judged by the
# shipped default model's error model; printed as the child process computes it
_FRAME = r"""
import sys
import numpy as np
from streamhand.error_model import ErrorModel, hand_features
from streamhand.geometry import Intrinsics, project
from streamhand.model_files import model_summary
from streamhand.place.placement import place_hands, pull_to_rays
from streamhand.place.smoothing import OneEuro
from streamhand.skeleton import normalize
from streamhand.synth.hand import reference_pose

k = Intrinsics.from_fov(640, 480, 60)
rng = np.random.default_rng(7)
hands = [reference_pose() @ np.diag([1.0, -1.0, -1.0]).T + np.array(o) for o in ((0.05, 0.02, 0.5), (-0.2, 0.0, 0.7))]
uv = np.stack([project(h, k) for h in hands]) + rng.normal(0, 2.0, (2, 21, 2))
norm = np.stack([normalize(h)[0] for h in hands]) + rng.normal(0, 0.02, (2, 21, 3))
depth = np.zeros((480, 640), np.float32)
for p, z in zip(np.round(uv[0]).astype(int), hands[0][:, 2]):
    depth[p[1] - 4 : p[1] + 5, p[0] - 4 : p[0] + 5] = z + rng.normal(0, 0.004)
depth[rng.random(depth.shape) < 0.2] = 0  # holes
placed = place_hands(uv, norm, np.array([0.09, 0.08]), k, depth)
answer = pull_to_rays(placed.joints_cam, uv, k.fx, k.fy, k.cx, k.cy)
spec = model_summary("default")["error_model"]["2d+world"]  # read from its ONNX graph: no PyTorch
kk = (k.fx, k.fy, k.cx, k.cy)
said = (np.stack(hands) - np.stack(hands)[:, :1], rng.random((2, 21)), np.array([0.9, 0.6]), np.array([0.99, 0.8]))
judged = ErrorModel(spec).judge_hands(uv, placed.joints_cam, kk, placed.scale, *said, answer=answer)
feats, res = hand_features(uv, placed.joints_cam, kk, *said, answer=answer)
one_euro = OneEuro()
smoothed = [one_euro(answer[0] + 0.01 * i, 0.033 * i) for i in range(3)][-1]
out = np.concatenate([a.ravel() for a in (placed.joints_cam, placed.scale, placed.from_depth, answer, judged.joint_std,
                                          judged.quality, judged.confidence, feats, res, smoothed)])
np.savetxt(sys.stdout, out, fmt="%.17g")
"""


def _frame(env: dict) -> np.ndarray:
    done = subprocess.run([sys.executable, "-c", _FRAME], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    return np.array(done.stdout.split(), float)


def test_the_compiled_arithmetic_answers_as_the_plain_python_it_is_written_in():
    env = {key: v for key, v in os.environ.items() if not key.startswith("NUMBA_")}
    compiled, plain = _frame(env), _frame({**env, "NUMBA_DISABLE_JIT": "1"})
    assert jit.COMPILED
    ask = [sys.executable, "-c", "from streamhand.jit import COMPILED; print(COMPILED)"]
    said = subprocess.run(ask, cwd=ROOT, env={**env, "NUMBA_DISABLE_JIT": "1"}, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert said.stdout.strip() == "False"  # what the run report's `compiled` then says
    assert compiled.shape == plain.shape and compiled.size == 423
    np.testing.assert_allclose(compiled, plain, rtol=1e-12, atol=1e-12)


def test_without_a_writable_cache_folder_it_compiles_in_memory_and_says_so(tmp_path):
    """A read-only install and home (some containers): numba finds no folder for its cache. Importing the package
    must not fail; the functions compile in the process, give the same answers, and one warning says why a start is
    slow. Simulated by giving numba only ``NUMBA_CACHE_DIR`` to try, under a file where no folder can be made."""
    from streamhand.codec import encode_2d

    (tmp_path / "a_file").write_text("")
    env = {key: v for key, v in os.environ.items() if not key.startswith("NUMBA_")}
    env.update(NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator", NUMBA_CACHE_DIR=str(tmp_path / "a_file" / "x"))
    code = ("import sys, numpy as np\nfrom streamhand import codec, jit\n"
            "np.savetxt(sys.stdout, codec.encode_2d(np.arange(84.0).reshape(2, 21, 2) ** 1.5, np.array([False, True]))"
            "[0].ravel(), fmt='%.9g')\n"
            "print(jit.cache_folder(codec._encode_2d), len(jit.UNCACHED), file=sys.stderr)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    want = encode_2d(np.arange(84.0).reshape(2, 21, 2) ** 1.5, np.array([False, True]))[0].ravel()
    np.testing.assert_allclose(np.array(done.stdout.split(), float), want, rtol=1e-6)
    lines = done.stderr.strip().splitlines()
    assert sum("no writable folder for numba's cache" in line for line in lines) == 1, done.stderr
    folder, uncached = lines[-1].split()
    assert folder == "None" and int(uncached) >= 2  # encode_2d and the projection it calls, at least
    assert not list((tmp_path).rglob("*.nbi"))  # nothing cached anywhere it was pointed at


# the runtime's per-frame arithmetic on frames of two hands, one, three and one again, with and without a depth image,
# after the warm-up a run does before its first frame: which compiled functions had to compile again
_FRAMES = r"""
import numba
import numpy as np
import streamhand
from streamhand.error_model import error_model_for
from streamhand.geometry import Intrinsics
from streamhand.infer.lifter import Lifter
from streamhand.infer.select import make_backend
from streamhand.model_files import model_summary
from streamhand.place.smoothing import TrackSmoother
from streamhand.run.place_step import answer_hands, warm_up
from streamhand.synth.hand import reference_pose

def signatures():
    import sys
    found = {}
    for name, mod in list(sys.modules.items()):
        if name.startswith("streamhand"):
            for f in vars(mod).values():
                if isinstance(f, numba.core.registry.CPUDispatcher):
                    found[f.py_func.__qualname__] = {str(s) for s in f.signatures}
    return found

lifter = Lifter(make_backend("onnxruntime", "default", n_samples=0))
judge = error_model_for(model_summary("default")["error_model"], "2d+world")
smoother = TrackSmoother()
warm_up()
before = signatures()
k = Intrinsics.from_fov(640, 480, 60)
hand = reference_pose() @ np.diag([1.0, -1.0, -1.0]).T
depth = np.full((480, 640), 0.6, np.float32)
for i, n in enumerate((2, 1, 3, 1)):
    world = np.stack([hand - hand[0]] * n)
    uv = np.stack([hand[:, :2] / (hand[:, 2:] + 0.5 + 0.1 * b) * k.fx + (k.cx, k.cy) for b in range(n)])
    lift = lifter(uv, np.arange(n) % 2 == 0, k, world=world)
    for d in (None, depth):
        a = answer_hands(uv, lift, k, d, world=world, handedness_score=np.full(n, 0.9), presence=np.full(n, 0.99))
        a.judged(judge)
        for b in range(n):
            smoother(b, a.joints[b], 0.033 * i)
after = signatures()
for name in sorted(after):
    for s in sorted(after[name] - before.get(name, set())):
        print(name, s)
"""


def test_a_second_hand_compiles_nothing_after_the_warm_up():
    """numba compiles a function once per kind of argument, and a read-only array is a kind of its own: one hand's
    intrinsics (a broadcast needing no copy) were read-only and two hands' were not, so the first frame with a
    second hand compiled six functions again, mid-run (seconds on a 2-core CPU; `streamhand precompile` did not
    cover it). Every array now reaches the compiled code C-ordered and writable (``jit.carray``)."""
    env = {key: v for key, v in os.environ.items() if not key.startswith("NUMBA_DISABLE")}
    done = subprocess.run([sys.executable, "-c", _FRAMES], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"compiled again after the warm-up:\n{done.stdout}"


# a compiled function of its own module (numba caches only functions in files), called once; what it answered on
# stdout, and which of its functions were not kept on disk on stderr (after any warning)
_TINY = "from streamhand.jit import njit\n\n\n@njit\ndef twice_plus_one(x):\n    return 2.0 * x + 1.0\n"
_CALL = ("import sys\nsys.path.insert(0, sys.argv[1])\nimport tiny_jit\nfrom streamhand import jit\n"
         "print(tiny_jit.twice_plus_one(20.5))\n"
         "print(sorted(getattr(jit, 'NOT_KEPT', {})), file=sys.stderr)")  # fmt: skip


def _call_tiny(tmp_path: Path, **popen) -> subprocess.CompletedProcess:
    (tmp_path / "mod").mkdir(exist_ok=True)
    (tmp_path / "mod" / "tiny_jit.py").write_text(_TINY)
    env = {key: v for key, v in os.environ.items() if not key.startswith("NUMBA_")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    return subprocess.run([sys.executable, "-c", _CALL, str(tmp_path / "mod")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, **popen)  # fmt: skip


def test_a_damaged_cache_is_compiled_around_and_its_folder_named(tmp_path):
    """A truncated ``.nbi``/``.nbc`` file (a disk that filled, a copy cut short) raised numba's ``UnpicklingError:
    pickle data was truncated`` from the first compiled call of every run and every `streamhand precompile` ("failed
    unexpectedly", a crash log). Now the function is compiled in memory, and one warning names the folder to delete."""
    first = _call_tiny(tmp_path)
    assert first.returncode == 0 and first.stdout.split() == ["42.0"], first.stderr[-2000:]
    cached = sorted((tmp_path / "numba").rglob("*.nb[ic]"))
    assert {p.suffix for p in cached} == {".nbi", ".nbc"}
    for p in cached:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    for _ in range(2):  # until the folder is deleted: every process, each with its warning
        done = _call_tiny(tmp_path)
        assert done.returncode == 0 and done.stdout.split() == ["42.0"], done.stderr[-2000:]
        said = [line for line in done.stderr.splitlines() if "is damaged" in line]
        assert len(said) == 1 and "pickle data was truncated" in said[0], done.stderr
        assert f"rm -rf '{cached[0].parent}'" in said[0]
        assert done.stderr.splitlines()[-1] == "['twice_plus_one']"


def test_a_full_disk_is_compiled_around_and_said_once(tmp_path):
    """A full disk under numba's cache raised ``OSError: [Errno 28] No space left on device`` when it saved the
    machine code, failing the run it was compiled for. Now the run goes on compiled in memory, with one warning, and
    leaves no part file. A full disk is simulated by a file-size limit of 0 bytes (writes fail with ``EFBIG``: an
    ``OSError`` as ``ENOSPC`` is, raised where it is)."""
    import resource

    done = _call_tiny(tmp_path, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0)))
    assert done.returncode == 0 and done.stdout.split() == ["42.0"], done.stderr[-2000:]
    said = [line for line in done.stderr.splitlines() if "cannot be written" in line]
    assert len(said) == 1 and "File too large" in said[0] and "until there is room" in said[0], done.stderr
    assert done.stderr.splitlines()[-1] == "['twice_plus_one']"
    assert [p for p in (tmp_path / "numba").rglob("*") if p.is_file()] == []  # no part file left
    again = _call_tiny(tmp_path)  # room again: kept on disk as ever
    assert again.returncode == 0 and again.stderr.splitlines() == ["[]"], again.stderr
    assert len(list((tmp_path / "numba").rglob("*.nbc"))) == 1
