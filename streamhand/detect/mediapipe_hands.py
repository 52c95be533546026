"""MediaPipe Hands (0.10.21, models bundled in the package) as a typed detector.

Images reaching this module are true (un-mirrored) views: a selfie-mirrored camera is flipped back
at capture. MediaPipe labels handedness as if the image were mirrored, so its labels are swapped here,
once, to name the person's real hand. One hand reported twice is reported once (:mod:`streamhand.detect.dedup`).
Each hand's ``score`` is the landmark network's presence score, read from MediaPipe's own graph
(:mod:`streamhand.detect.mediapipe_graph`).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamhand import quiet
from streamhand.detect.dedup import merge_duplicates

log = logging.getLogger(__name__)


@dataclass
class Detection:
    """One detected hand."""

    landmarks_px: np.ndarray  # (21, 2) pixels, mediapipe21 order
    landmarks_z: np.ndarray  # (21,) MediaPipe's relative depth (image-width units, wrist-relative)
    world: np.ndarray  # (21, 3) MediaPipe's own metric estimate around the hand centre (metres)
    handedness: str  # "left" | "right": the person's real hand
    handedness_score: float
    #: the detector's confidence that this is a hand: the landmark network's presence score (0-1)
    score: float


#: the process that first ran a MediaPipe graph: a process forked from it cannot run one (MediaPipe's threads and
#: locks do not survive a fork; it aborts or hangs)
_GRAPH_PID: int | None = None
#: the calls whose native output is filtered at most, hands or none (a detector that never sees a hand stops then)
NOISY_CALLS_AT_MOST = 30


def _import_off_the_stack(module: str) -> None:
    """Import ``module`` in a thread of its own. MediaPipe keeps an exception from its import (its audio module's
    missing PortAudio) at module level, and that exception's frames would keep the importing caller's frames, and
    everything they hold (a tracker, a demo clip's frames), alive for the life of the process."""
    import importlib
    import sys

    if module in sys.modules:
        return
    failed: list[BaseException] = []

    def load() -> None:
        try:
            importlib.import_module(module)
        except BaseException as e:  # given back to the caller's thread
            failed.append(e)

    th = threading.Thread(target=load, name="import-mediapipe")
    th.start()
    th.join()
    if failed:
        raise failed[0]


def _close_in(hands: Any, pid: int) -> None:
    """Close MediaPipe's graph ``hands``, where this is the process ``pid`` that made it (a forked child that closed
    or collected its copy would wait for ever on the parent's threads)."""
    if os.getpid() == pid:
        hands.close()


def _check_process() -> None:
    """A RuntimeError in a process forked from one that ran MediaPipe (which would abort or hang here)."""
    if _GRAPH_PID is not None and os.getpid() != _GRAPH_PID:
        raise RuntimeError("MediaPipe cannot run in a process forked from one that ran it: start the worker "
                           "processes with multiprocessing's 'spawn' (or 'forkserver') start method")  # fmt: skip


class MediaPipeHands:
    """MediaPipe Hands; ``tracking=True`` uses its video mode (detection only when a hand is lost). Its graph is
    freed by :meth:`close`, or when the detector is garbage-collected (MediaPipe's own objects hold one another in a
    cycle that Python cannot see: a detector dropped without closing kept about 80 MB and two threads for good)."""

    def __init__(
        self,
        max_hands: int = 2,
        tracking: bool = True,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        model_complexity: int = 1,
    ):
        global _GRAPH_PID
        quiet.configure(verbose=False)  # environment defaults only: a verbose CLI has set its own first
        _check_process()
        self.max_hands = max_hands
        self._hands = None
        self._pid = os.getpid()
        # MediaPipe's native start-up lines come until its landmark model has run twice: with hands
        self._noisy_calls, self._calls = 0, 0
        with quiet.native_stderr_filtered():
            _import_off_the_stack("mediapipe")  # heavy, only where used
            from streamhand.detect.mediapipe_graph import hands_with_presence

            args = (not tracking, max_hands, model_complexity, min_detection_confidence, min_tracking_confidence)
            try:
                hands = hands_with_presence(*args)
            except RuntimeError as e:  # another MediaPipe release: its own graph, and no presence score
                import mediapipe as mp

                log.warning("%s: each hand's score repeats its handedness score", e)
                hands = mp.solutions.hands.Hands(*args)
            _GRAPH_PID = os.getpid()
            # closed once: by close() or when collected; in a forked child never (the graph is the parent's)
            self._free = weakref.finalize(self, _close_in, hands, os.getpid())
            self._hands = hands
            try:  # the graph starts its inference engines on the first frame, in its own threads: one blank frame
                # here, so that their start-up lines are caught now (no hand: no tracking state is left behind)
                hands.process(np.zeros((64, 64, 3), np.uint8))
            except BaseException:  # a Ctrl-C while it starts: nothing of it stays behind
                self.close()
                raise

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        """Detect hands in an RGB uint8 image (H, W, 3)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
        if self._hands is None:
            raise RuntimeError("this MediaPipe hand detector is closed")
        if os.getpid() != self._pid:
            raise RuntimeError("this MediaPipe hand detector was made in another process (before a fork); make a new "
                               "one in a process started with multiprocessing's 'spawn' start method")  # fmt: skip
        h, w = rgb.shape[:2]
        if self._noisy_calls < 2 and self._calls < NOISY_CALLS_AT_MOST:
            self._calls += 1
            with quiet.native_stderr_filtered():
                res = self._hands.process(np.ascontiguousarray(rgb))
            self._noisy_calls += bool(res.multi_hand_landmarks)
        else:
            res = self._hands.process(np.ascontiguousarray(rgb))
        out: list[Detection] = []
        if not res.multi_hand_landmarks:
            return out
        worlds = res.multi_hand_world_landmarks or [None] * len(res.multi_hand_landmarks)
        presences = getattr(res, "multi_hand_presence", None) or [None] * len(res.multi_hand_landmarks)
        for lms, hd, wl, presence in zip(res.multi_hand_landmarks, res.multi_handedness, worlds, presences):
            pts = np.array([[p.x * w, p.y * h, p.z * w] for p in lms.landmark], dtype=np.float64)
            world = (
                np.array([[p.x, p.y, p.z] for p in wl.landmark], dtype=np.float64)
                if wl is not None
                else np.zeros((21, 3))
            )
            cls = hd.classification[0]
            label = "right" if cls.label.lower() == "left" else "left"  # un-mirror MediaPipe's label
            score = float(cls.score if presence is None else presence)
            out.append(Detection(pts[:, :2], pts[:, 2], world, label, float(cls.score), score))
        merged = merge_duplicates(out)
        if len(merged) < len(out):
            log.debug("merged %d duplicate detection(s) of one hand", len(out) - len(merged))
        return merged

    def close(self) -> None:
        """Free MediaPipe's graph (once; closing again does nothing; in a forked child, nothing: the graph is the
        parent's)."""
        self._hands = None
        if hasattr(self, "_free"):
            self._free()

    def __enter__(self) -> MediaPipeHands:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
