"""One place that builds a run from its settings: the model read, the publisher bound, the source opened, then
backend, hand size, lifter, detector and pipeline, in that order (a file that is not a model or a busy port fails
before a camera starts or the demo clip loads), and closed in reverse.

``streamhand run``, ``bench --soak``, ``calibrate-hand``, the in-process API and the tests all build through
:func:`build_run`. Anything the user can fix (a missing file, a busy port, a model without the asked-for expert,
no display) raises :class:`RunError`, whose message is one line naming the option or file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamhand.model_files import CheckpointError
from streamhand.outputs import OutputUnfinished
from streamhand.runtime_config import RunConfig

log = logging.getLogger(__name__)


class RunError(Exception):
    """Something the user can fix; ``str(e)`` is one line (the CLI prints it and exits 2)."""


@dataclass
class Run:
    """The parts of one run, built and owned together; ``close()`` (or leaving the ``with`` block) frees them."""

    cfg: RunConfig
    source: Any
    detector: Any = None
    lifter: Any = None
    publisher: Any = None
    pipeline: Any = None
    modalities: tuple[str, ...] = ()
    tracking: bool = True
    hand_length_why: str = ""
    _closers: list[Callable[[], None]] = field(default_factory=list)
    #: outputs that could not be finished when the run closed (a file held open by another program): the command fails
    close_errors: list[str] = field(default_factory=list)
    #: a ``stop`` that came (on the control socket, or a signal) while the run was still loading: its pipeline stops
    #: at once
    stop_requested: bool = False
    #: set by :meth:`stop`; one during ``--compare-mediapipe``'s timing of MediaPipe alone, after the run, ends it
    stopped: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._closers:
            try:
                self._closers.pop()()
            except OutputUnfinished as e:  # an output that could not be finished: the command says so, and fails
                self.close_errors.append(str(e))
            except Exception as e:  # a part that fails to close must not keep the others open
                log.debug("closing: %s", e)

    def run(self, on_tick: Callable[[dict], None] | None = None) -> dict:
        """Stream until the source ends, ``frames`` are done or :meth:`stop`; the run report."""
        return self.pipeline.run(on_tick=on_tick)

    def stop(self) -> None:
        self.stop_requested = True
        self.stopped.set()
        if self.pipeline is not None:
            self.pipeline.stop()

    def compare_mediapipe(self, rep: dict) -> dict:
        """MediaPipe alone on the frames the run report ``rep`` processed (a fresh, unpaced copy of the source):
        adds ``mediapipe_alone`` and, for a run read as fast as it goes, ``ratio_to_mediapipe`` to ``rep``, and returns
        it. A paced run (a live source, or files read in real time) also gets MediaPipe alone paced the same way
        (``mediapipe_alone.paced``: its end-to-end latency, the reference for the run's)."""
        from streamhand.capture.factory import make_source
        from streamhand.run.report import mediapipe_alone, mediapipe_alone_paced

        n, stop = rep["frames_processed"], self.stopped
        stop.clear()  # a stop that ended the run is not one for the comparison: the next one is
        with make_detector(self.cfg, self.tracking, "mediapipe") as det:
            source = make_source(self.cfg.source.model_copy(update={"realtime": False}))
            alone = mediapipe_alone(source, det, n, stop)
        paced = self.source.live or self.cfg.source.realtime
        if paced and not stop.is_set():
            with make_detector(self.cfg, self.tracking, "mediapipe") as det:  # a fresh detector: no tracking state
                alone["paced"] = mediapipe_alone_paced(make_source(self.cfg.source), det, n, stop)
        if stop.is_set():  # a stop during the comparison: the run's own report, without half a baseline
            log.warning("--compare-mediapipe: stopped before MediaPipe alone was timed on every frame; the report "
                        "has no comparison")  # fmt: skip
            return rep
        rep["mediapipe_alone"] = alone
        if alone.get("fps") and rep["fps"] and not paced:  # a paced run's frame time is the source's period
            rep["ratio_to_mediapipe"] = alone["fps"] / rep["fps"]
        return rep


def make_detector(cfg: RunConfig, tracking: bool, kind: str | None = None) -> Any:
    """The run's detector (``kind`` overrides ``detect.detector``); :class:`RunError` if it cannot be made."""
    from streamhand.detect.gpu_hands import HandNetworksDamaged, HandNetworksMissing, default_models_dir
    from streamhand.detect.select import make_detector as make

    try:
        try:
            return make(cfg.detect, tracking, kind, cfg.model.engine_dir)[0]
        except HandNetworksMissing as e:  # the network detector's first use: convert MediaPipe's networks
            if isinstance(e, HandNetworksDamaged) and e.folder.is_relative_to(default_models_dir()):
                import shutil

                log.warning("%s; converting them again", e)
                shutil.rmtree(e.folder, ignore_errors=True)
            try:
                from streamhand.export.hand_networks import prepare_hand_networks

                prepare_hand_networks()
            except ImportError as e:
                from streamhand.errors import torch_missing

                if not torch_missing(e):
                    raise
                raise RunError("detector: MediaPipe's hand networks are converted to ONNX at the network "
                               "detector's first use, which needs PyTorch (pip install 'streamhand[torch]')") from None
            return make(cfg.detect, tracking, kind, cfg.model.engine_dir)[0]
    except (ValueError, ImportError, RuntimeError) as e:
        raise RunError(f"detector: {e}") from None


def read_model(cfg: RunConfig) -> Any:
    """The run's model, read (its encoders and where its weights are), or :class:`RunError`: done before the source
    opens, so that a file that is not a model costs no camera start or demo clip."""
    from streamhand.infer.select import model_encoders

    try:
        return model_encoders(cfg.model.path)
    except CheckpointError as e:
        raise RunError(str(e)) from None


def make_lifter(cfg: RunConfig, has_depth: bool, source_name: str, n_samples: int | None = None,
                model: Any = None):  # fmt: skip
    """The model's backend and lifter for this source: (lifter, modalities, why the hand length); ``model``: the
    run's model as :func:`read_model` gave it (read here if not given)."""
    from streamhand.error_model import check_error_models
    from streamhand.infer.lifter import Lifter
    from streamhand.infer.select import make_backend, model_encoders
    from streamhand.modalities import ModalityError, settle
    from streamhand.model_files import CheckpointError
    from streamhand.place.hand_size import CalibrationError, resolve_hand_length

    try:
        model = model if model is not None else model_encoders(cfg.model.path)
        mods = settle(model.encoders, cfg.model.modalities, has_depth, source_name)
        if n_samples is None:
            n_samples = cfg.model.n_samples if cfg.model.n_samples is not None else model.default_samples(mods)
        backend = make_backend(cfg.model.backend, model, n_samples, cfg.model.threads, mods,
                               Path(cfg.model.engine_dir), prepare_graph, cfg.model.precision)  # fmt: skip
        try:
            check_error_models(backend.error_model, str(cfg.model.path or "default"))
        except ValueError as e:
            raise ValueError(f"--model {cfg.model.path or 'default'}: {e}") from None
        hand_length, why = resolve_hand_length(cfg.model.hand_length_m)
    except (CheckpointError, ModalityError, CalibrationError, ValueError) as e:
        raise RunError(str(e)) from None
    return Lifter(backend, hand_length, cfg.model.image_depth), mods, why


def prepare_graph(*args: Any) -> tuple[Path, dict]:
    """A checkpoint's first run on ONNX Runtime: export its graph (the build step; it needs PyTorch)."""
    try:
        from streamhand.export.onnx_export import prepare_graph as export
    except ImportError:
        raise CheckpointError("this checkpoint's ONNX graph is not prepared, and preparing it needs PyTorch "
                              "(pip install 'streamhand[torch]')") from None  # fmt: skip
    return export(*args)


@dataclass
class Parts:
    """What turns frames into hands, for a run or :class:`streamhand.HandTracker`: one way to make them."""

    lifter: Any
    modalities: tuple[str, ...]
    hand_length_why: str
    tracking: bool
    detector: Any


def build_parts(cfg: RunConfig, has_depth: bool, source_name: str, stills: bool, model: Any = None) -> Parts:
    """The lifter (and the modalities it settles on) and the detector for frames of this kind; :class:`RunError`."""
    lifter, modalities, why = make_lifter(cfg, has_depth, source_name, model=model)
    log.info("hand length %.3f m (%s)", lifter.hand_length_m, why)
    tracking = cfg.detect.tracking_for(stills)
    detector = make_detector(cfg, tracking)
    try:  # a frame can hold up to 2 * max_hands - 1 hands (new palms join the tracked hands, in MediaPipe's graph too)
        lifter.backend.warm_up(tuple(modalities), range(1, 2 * cfg.detect.max_hands))
    except BaseException:  # a Ctrl-C here must not leave MediaPipe's graph and its threads behind
        detector.close()
        raise
    return Parts(lifter, tuple(modalities), why, tracking, detector)


def build_run(cfg: RunConfig, publish: bool = True) -> Run:
    """Open everything a run needs, or close what was opened and raise :class:`RunError`. ``publish=False``
    makes a run without sockets (the in-process API)."""
    from streamhand.capture.base import SourceError
    from streamhand.capture.factory import make_source, unused_settings
    from streamhand.run.pipeline import Pipeline

    if cfg.show:
        from streamhand.viz.viewer import DisplayError, _require_display

        try:
            _require_display()
        except DisplayError as e:
            raise RunError(str(e)) from None
    if cfg.rerun is not None:
        _check_rerun(cfg)
    for warning in unused_settings(cfg.source):
        log.warning(warning)
    model = read_model(cfg)  # a file that is not a model, a port in use: found before the source opens
    run = Run(cfg, None)
    try:
        if publish:
            run.publisher = _publisher(cfg, run)
            run._closers.append(run.publisher.close)
        try:
            src = run.source = make_source(cfg.source)
            src.open()
        except SourceError as e:
            raise RunError(str(e)) from None
        run._closers.append(src.close)
        parts = build_parts(cfg, src.has_depth, src.name, src.stills, model)
        run.lifter, run.modalities, run.hand_length_why = parts.lifter, parts.modalities, parts.hand_length_why
        run.tracking, run.detector = parts.tracking, parts.detector
        run._closers.append(run.detector.close)
        run.pipeline = Pipeline(cfg, src, run.detector, run.lifter, run.publisher, run.modalities)
        if run.stop_requested:  # asked to stop while loading: the pipeline ends before its first frame
            run.pipeline.stop()
        _saves(cfg, run)
        _rerun(cfg, run)
    except BaseException:
        run.close()
        raise
    return run


def _saves(cfg: RunConfig, run: Run) -> None:
    """``--save`` (a tap on the publisher) and ``--save-video`` (a frame hook on the emitter), closed with the run."""
    from streamhand.run.save import OverlayVideo, PoseFile, SaveError

    try:
        if cfg.save is not None:
            if run.publisher is None:
                raise RunError("--save writes what is published; this run publishes nothing")
            poses = PoseFile(cfg.save, source=run.source.name)
            run.publisher.taps.append(poses)
            run._closers.append(poses.close)
        if cfg.save_video is not None:
            fps = cfg.source.fps or getattr(run.source, "fps", None) or 30.0
            video = OverlayVideo(cfg.save_video, float(fps), run.pipeline.stats)
            run.pipeline.emitter.frame_hooks.append(video.write)
            run.pipeline.emitter.end_hooks.append(video.flush)
            run._closers.append(video.close)
    except (SaveError, OSError) as e:
        raise RunError(str(e)) from None


def _rerun_target(cfg: RunConfig) -> tuple[str | None, int]:
    """``--rerun``: (the .rrd to write, or None for a viewer, and the viewer's port)."""
    from streamhand.viz.rerun_log import DEFAULT_VIEWER_PORT, SPAWN

    assert cfg.rerun is not None
    return (None if cfg.rerun == SPAWN else cfg.rerun), DEFAULT_VIEWER_PORT


def _check_rerun(cfg: RunConfig) -> None:
    """``--rerun`` before any work: the SDK, a .rrd that can be written, or a viewer that listens or can start."""
    from streamhand.viz.rerun_log import RerunError, check_target

    try:
        check_target(*_rerun_target(cfg), "--rerun")
    except RerunError as e:
        raise RunError(str(e)) from None


def _rerun(cfg: RunConfig, run: Run) -> None:
    """``--rerun``: what is published (a tap on the publisher) and every processed frame's image (an emitter hook)
    to a Rerun recording or viewer, closed with the run."""
    if cfg.rerun is None:
        return
    from streamhand.viz.rerun_log import RerunError, RerunLog

    if run.publisher is None:
        raise RunError("--rerun logs what is published; this run publishes nothing")
    try:
        out = RerunLog.open(*_rerun_target(cfg), "--rerun")
    except RerunError as e:
        raise RunError(str(e)) from None
    run._closers.append(out.close)
    run.publisher.taps.append(out.tap)
    run.pipeline.emitter.frame_hooks.append(out.frame)
    log.info("--rerun: logging to %s", out.where)


def _publisher(cfg: RunConfig, run: Run) -> Any:
    from streamhand.stream.publish import PortInUse, Publisher
    from streamhand.stream.security import SecurityError

    p = cfg.publish
    try:
        return Publisher(p.bind, p.port, p.control_port, p.sndhwm,
                         stats=lambda: run.pipeline.snapshot() if run.pipeline is not None else {},
                         config=lambda: cfg.model_dump(mode="json"), on_stop=run.stop,
                         connect=p.connect, curve=p.curve())  # fmt: skip
    except (PortInUse, SecurityError) as e:
        raise RunError(str(e)) from None
