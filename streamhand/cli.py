"""The ``streamhand`` command line: run, echo, view, record, replay, calibrate-hand, bench, keys, proxy, info.

Bad input gives one line on stderr and exit code 2; a clean stop (end of source, ``--frames``,
Ctrl-C, SIGTERM or the control socket's ``stop``) exits 0.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from streamhand import cli_record
from streamhand.errors import Commands, check_distinct_or_fail, check_output_or_fail, fail, fail_without_torch
from streamhand.options import with_options
from streamhand.outputs import OutputUnfinished, json_finite
from streamhand.runtime_config import (
    SOURCE_SETTINGS,
    RunConfig,
    not_one_sample,
    other_source_setting,
    source_kind_from_settings,
)
from streamhand.stop_signals import exit_on_stop_signals, on_stop_signals
from streamhand.stream.protocol import tcp_endpoint
from streamhand.stream.security import warn_if_open

app = typer.Typer(cls=Commands, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Real-time 3D hand pose from a camera to ZeroMQ topics.")  # fmt: skip
log = logging.getLogger("streamhand")


def _setup_logging(verbose: bool) -> None:
    from streamhand import quiet

    quiet.configure(verbose)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")  # fmt: skip


def _build_config(config: Path | None, overrides: dict) -> RunConfig:
    """The config file (or the defaults) with the command line's options on top. ``overrides``: dotted
    config key -> value, or -> (option name, value) so that an invalid value is reported by its option."""
    from streamhand.configio import ConfigError, load_yaml, validate

    try:
        # only what the file sets: a setting left at its default is not validated again as if it were given
        base = load_yaml(RunConfig, config).model_dump(exclude_unset=True) if config else {}
        if config and not base:
            raise ConfigError(f"--config {config}: the file sets nothing (streamhand run --print-config shows every "
                              "setting)")  # fmt: skip
    except ConfigError as e:
        fail(str(e))
    picked = any((v[1] if isinstance(v, tuple) else v) is not None for k, v in overrides.items() if k in _SOURCE_PICKS)
    if not picked:  # an option that picks the source settles a file's mismatch
        _check_source_kind(config, base.get("source"))
    flags = {}
    for dotted, value in overrides.items():
        if isinstance(value, tuple):
            flags[dotted], value = value
        if value is None:
            continue
        d = base
        *path, last = dotted.split(".")
        for p in path:
            d = d.setdefault(p, {})
        d[last] = value
    source = base.get("source")
    if isinstance(source, dict) and "kind" not in source:  # the file names its source by a setting, not a kind
        try:
            kind = source_kind_from_settings(source)
        except ValueError as e:
            fail(f"{config}: {e}")
        if kind is not None:
            source["kind"] = kind
    try:
        return validate(RunConfig, base, "options")
    except ConfigError as e:
        msg = str(e)
        for dotted, flag in flags.items():
            if overrides[dotted][1] is not None and f"options: {dotted}:" in msg:
                msg = msg.replace(f"options: {dotted}:", f"{flag}:")
        if msg.startswith("options: "):  # a setting of the file, or one checked with another: say where it came from
            msg = msg.replace("options: ", f"{config}, with the options: " if config else "", 1)
        fail(msg)
    raise AssertionError  # unreachable


#: the options that pick a run's source (a file's source.kind beside another source's setting is theirs to settle)
_SOURCE_PICKS = ("source.kind", *(f"source.{k}" for k in SOURCE_SETTINGS))


def _check_source_kind(config: Path | None, source: object) -> None:
    """A config file whose ``source.kind`` is one source while a setting of another is set is one line, not the other
    source's setting ignored without a word (:func:`~streamhand.runtime_config.other_source_setting`)."""
    if not isinstance(source, dict) or not source.get("kind"):
        return
    other = other_source_setting(source)
    if other is not None:
        key, named = other
        fail(f"{config}: source.kind is {source['kind']}, but source.{key} (a {named} setting) is set too; set "
             f"kind: {named}, or remove {key}")


@app.command()
@with_options(RunConfig)
def run(
    overrides: dict,
    realsense: Annotated[bool, typer.Option("--realsense", help="Intel RealSense colour + depth")] = False,
    config: Annotated[Path | None, typer.Option(help="runtime YAML (options override it)")] = None,
    print_config: Annotated[bool, typer.Option(
        "--print-config", help="print every setting (the file's and the options' on the defaults) as a --config "
        "YAML, and exit")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Stream 3D hand poses from a source to ZeroMQ topics."""
    _setup_logging(verbose)
    given = {k: v for k, (_, v) in overrides.items() if v is not None}
    picked = [k for k in ("camera", "video", "images") if f"source.{k}" in given]
    picked += ["realsense"] if realsense or "source.realsense_serial" in given else []
    picked += ["realsense-file"] if "source.realsense_file" in given else []
    kind = {"realsense-file": "realsense"}.get(picked[0], picked[0]) if picked else None  # a recording: RealSense
    source = given.get("source.kind")
    if len(picked) > 1 or (picked and source and source != kind):
        fail(f"choose one source; got {', '.join(picked + ([source] if source else []))}")
    if picked:
        overrides["source.kind"] = ("--source", kind)
    cfg = _build_config(config, overrides)
    if print_config:
        raise typer.Exit(_print_config(cfg))
    check_output_or_fail(cfg.report, "--report")
    _check_saves(cfg)
    src = cfg.source
    rrd = cfg.rerun if cfg.rerun not in (None, "spawn") else None
    outputs = [(cfg.save, "--save"), (cfg.save_video, "--save-video"), (cfg.report, "--report"), (rrd, "--rerun")]
    inputs = [(src.video, "--video"), (src.images, "--images"), (src.realsense_file, "--realsense-file"),
              (src.intrinsics, "--intrinsics"), (config, "--config"), (cfg.model.path, "--model")]
    check_distinct_or_fail(outputs, inputs)
    raise typer.Exit(_run(cfg))


def _print_config(cfg: RunConfig) -> int:
    """``run --print-config``: every setting as YAML a ``--config`` file takes back, each option's YAML key beside
    the option that sets it."""
    import yaml

    from streamhand.options import flagged_fields

    flags = {dotted: flag.name for dotted, flag, _ in flagged_fields(RunConfig)}
    text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, default_flow_style=False, width=1000)
    lines, section = [], ""
    for line in text.splitlines():
        key = line.strip().split(":", 1)[0]
        section = key if not line.startswith(" ") else section
        dotted = key if not line.startswith(" ") else f"{section}.{key}"
        lines.append(f"{line}  # {flags[dotted]}" if dotted in flags else line)
    typer.echo("# streamhand run's settings (a --config file may keep any part of them)\n" + "\n".join(lines))
    return 0


def _check_saves(cfg: RunConfig) -> None:
    """``--save`` and ``--save-video``: the right kind of file, somewhere it can be written; before any work."""
    from streamhand.run.save import POSE_FORMATS, VIDEO_SUFFIXES, SaveError, check_save_path

    for path, option, kinds in ((cfg.save, "--save", POSE_FORMATS), (cfg.save_video, "--save-video", VIDEO_SUFFIXES)):
        if path is not None:
            try:
                check_save_path(path, option, kinds)
            except SaveError as e:
                fail(str(e))
            check_output_or_fail(path, option)


def _write_at_end(path: Path | str, text: str, option: str) -> int:
    """Write a result file after the work; a failure is one line: exit 1."""
    from streamhand.outputs import OutputError, write_text_atomic

    try:
        write_text_atomic(path, text, option)
    except OutputError as e:
        typer.echo(f"error: {e}", err=True)
        return 1
    return 0


def _run(cfg) -> int:
    from streamhand.app import RunError, build_run
    from streamhand.run import live_line
    from streamhand.stream.publish import ZmqLogHandler

    exit_on_stop_signals()  # while loading: a stop signal ends the run at once (also as a container's PID 1)
    try:
        run = build_run(cfg)
    except RunError as e:
        fail(str(e))
    with run:
        src = run.source
        handler = ZmqLogHandler(run.publisher, camera_id=cfg.publish.camera_id or src.camera_id)
        logging.getLogger().addHandler(handler)
        on_stop_signals(run.stop)  # from here: finish the frame in hand, the outputs and the report, then end
        if cfg.publish.connect:
            log.info("publishing through the proxy at %s as camera %s", cfg.publish.connect,
                     cfg.publish.camera_id or src.name)  # fmt: skip
        if cfg.publish.curve() is None:
            warn_if_open(cfg.publish.bind, "the stream and the control socket (which can stop this run) are")
        where = (f"through the proxy at {cfg.publish.connect}" if cfg.publish.connect
                 else f"on {tcp_endpoint(cfg.publish.bind, cfg.publish.port)}")  # fmt: skip
        if cfg.publish.connect and not cfg.publish.camera_id:
            log.warning("publishing through %s as camera %r, the source's name: give each run behind one proxy its "
                        "own --camera-id, or subscribers mix two cameras' messages (and count false gaps in their "
                        "seq)", cfg.publish.connect, src.camera_id)  # fmt: skip
        log.info("publishing %s (control %d); source %s; modalities %s; %s", where, cfg.publish.control_port,
                 src.name, ",".join(run.modalities),
                 "tracking across frames" if run.tracking else "each frame detected on its own")  # fmt: skip
        live = None
        if live_line.wanted():
            live = live_line.LiveLine(cfg.frames if cfg.frames is not None else src.length)
            live.attach_logging()
        try:
            rep = run.run(on_tick=live.update if live is not None else None)
        finally:
            if live is not None:
                live.close()
            logging.getLogger().removeHandler(handler)
        run.detector.close()
        if cfg.compare_mediapipe and not src.live and rep["frames_processed"]:
            log.info("--compare-mediapipe: timing MediaPipe alone on the same %d frames%s (Ctrl-C skips it)",
                     rep["frames_processed"], ", back to back, then paced as the run was" if cfg.source.realtime
                     else "")  # fmt: skip
            try:
                run.compare_mediapipe(rep)
            except RunError as e:
                fail(str(e))
        failed = 1 if rep["errors"] else 0
        if cfg.report:  # before the summary line: a closed standard error must not cost the report
            text = json.dumps(json_finite(rep), indent=1, default=float, allow_nan=False)  # JSON has no NaN
            failed |= _write_at_end(cfg.report, text, "--report")
        typer.echo(_summary(rep, run.stop_requested), err=True)
    for e in run.close_errors:  # an output left unfinished as the run closed (a file held open by another program)
        typer.echo(f"error: {e}", err=True)
    return failed | (1 if run.close_errors else 0)


def _modalities(text: str | None) -> list[str] | None:
    """``--modalities`` as a list (None: not given); an unknown name is one line and exit 2."""
    from streamhand.modalities import ModalityError, parse

    try:
        return parse(text)
    except ModalityError as e:
        fail(str(e))
    return None


def _opt(p: Path | None) -> str | None:
    return str(p) if p is not None else None


def _summary(rep: dict, stopped: bool = False) -> str:
    """The closing ``done:`` line (``failed:`` where a stage failed, the error logged above it): frames, rate, frames
    dropped (where some were), latency, detection, comparisons."""
    from streamhand.run.live_line import dropped

    lead = "failed" if rep.get("errors") else "done"
    if stopped and not rep["frames_in"]:
        return f"{lead}: stopped before the first frame (a `stop` on the control socket, or a signal)"
    if not rep["frames_processed"]:  # nothing to time or score
        return (f"{lead}: no frame processed ({rep['frames_in']} read, {rep.get('corrupt_frames', 0)} skipped as "
                "unreadable or too small: see the log)")  # fmt: skip
    e2e = rep["latency_ms"].get("end_to_end", {})
    fps = f"{rep['fps']:.1f} fps" if rep["fps"] is not None else "no frame rate (one frame)"
    parts = [f"{rep['frames_processed']}/{rep['frames_in']} frames", fps]
    if lost := dropped(rep.get("drops")):  # latest-wins hand-offs of a paced run: frames read but never processed
        parts.append(lost)
    parts += [f"e2e p50 {e2e.get('p50', float('nan')):.1f} ms", f"detection {rep['detection_rate']:.2f}"]
    if "epe_mean_mm" in rep:
        parts.append(f"EPE {rep['epe_mean_mm']:.1f} mm")
    if "ratio_to_mediapipe" in rep:
        parts.append(f"x{rep['ratio_to_mediapipe']:.2f} of MediaPipe alone")
    paced = rep.get("mediapipe_alone", {}).get("paced", {})
    if paced.get("frames") and e2e:
        gap = e2e["p95"] - paced["end_to_end_ms_p95"]
        parts.append(f"e2e p95 {abs(gap):.1f} ms {'below' if gap < 0 else 'above'} MediaPipe alone (paced)")
    return f"{lead}: " + ", ".join(parts)


@app.command()
def echo(
    address: Annotated[str | None, typer.Option(help="PUB endpoint (default tcp://127.0.0.1:5560)")] = None,
    control: Annotated[str | None, typer.Option(help="control endpoint: ask it for the PUB port")] = None,
    topic: Annotated[list[str] | None, typer.Option(help="topic prefix (repeatable); default: all")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="stop after N messages")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    timeout: cli_record.IdleTimeout = 30.0,
    curve_server_key: Annotated[Path | None, typer.Option(help="CurveZMQ: the server's .key")] = None,
    curve_client_key: Annotated[Path | None, typer.Option(help="CurveZMQ: this client's .key_secret")] = None,
) -> None:
    """Print what arrives on the stream."""
    from streamhand.stream import protocol
    from streamhand.stream.client import PoseSubscriber
    from streamhand.stream.security import SecurityError

    hint = (("is `streamhand run` running, with its --control-port where --control points? " if control else
             "is `streamhand run` running, publishing where --address points (its --port), or give --control? ")
            + "--timeout 0 waits forever")  # fmt: skip
    try:
        keys = {"curve_server_key": _opt(curve_server_key), "curve_client_key": _opt(curve_client_key)}
        wanted = tuple(topic or [""])
        # `status` read too (not printed unless asked): its last one says whether the stream ended or went quiet
        quiet_status = not any(protocol.TOPIC_STATUS.startswith(t) for t in wanted)
        sub = PoseSubscriber(address, topics=wanted + ((protocol.TOPIC_STATUS,) if quiet_status else ()),
                             timeout=timeout or None, control=control, raw=True, **keys)  # fmt: skip
    except TimeoutError as e:
        fail(f"{e}: {hint}", 1)
    except (SecurityError, ValueError) as e:
        fail(str(e))
    topics = "all topics" if not topic or "" in topic else ", ".join(topic)  # "": every topic's prefix
    limit = f"; giving up after {timeout:g} s without a message" if timeout else ""
    typer.echo(f"waiting for {topics} on {sub.address}{limit} (Ctrl-C stops)", err=True)
    n = 0
    states: dict[str, object] = {}  # camera id -> the source_state of its last status (None: none yet)
    try:
        for m in sub:
            camera = m.data.get("camera")
            cam_id = str(camera.get("id")) if isinstance(camera, dict) else None
            if m.topic == "status":
                states[str(cam_id)] = m.data.get("source_state")
            elif cam_id is not None:
                states.setdefault(cam_id, None)
            if quiet_status and m.topic == protocol.TOPIC_STATUS:
                continue
            if as_json:
                typer.echo(json.dumps({"topic": m.topic, **m.data}))
            else:
                d = m.data
                extra = ""
                if "joints_cam" in d:
                    w = d["joints_cam"][0]
                    extra = f" track {d['track_id']} wrist ({w[0]:+.3f}, {w[1]:+.3f}, {w[2]:.3f}) m {d['root_source']}"
                elif "hands" in d:
                    extra = f" hands {len(d['hands'])}"
                cam = d.get("camera")
                cam = f" camera {cam.get('id')}" if isinstance(cam, dict) and cam.get("id") else ""
                typer.echo(f"{m.topic} seq {d.get('seq')} frame {d.get('frame_id', '-')}{cam}{extra}")
            n += 1
            if count is not None and n >= count:
                break
    except TimeoutError as e:
        if states and all(v in ("ended", "stopped") for v in states.values()):  # each camera said it ended: not a fault
            typer.echo(f"the stream ended ({', '.join(sorted({str(v) for v in states.values()}))}) after {n} "
                       f"messages; nothing since for {timeout:g} s", err=True)  # fmt: skip
            return
        fail(f"{e}: {hint}" if n == 0 else f"{e} (after {n} messages)", 1)
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()


_PORT_HELP = "--foxglove's server port (default 8765); --rerun's viewer port (default 9876)"


@app.command()
def view(
    address: Annotated[str | None, typer.Option(help="PUB endpoint (default tcp://127.0.0.1:5560)")] = None,
    control: Annotated[str | None, typer.Option(help="control endpoint: ask it for the PUB port")] = None,
    curve_server_key: Annotated[Path | None, typer.Option(help="CurveZMQ: the server's .key")] = None,
    curve_client_key: Annotated[Path | None, typer.Option(help="CurveZMQ: this client's .key_secret")] = None,
    rerun: Annotated[bool, typer.Option("--rerun", help="to Rerun: a viewer, or --save FILE.rrd")] = False,
    foxglove: Annotated[bool, typer.Option("--foxglove", help="serve it to Foxglove over WebSocket")] = False,
    save: Annotated[Path | None, typer.Option(help="with --rerun: write a recording (.rrd) instead")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help=_PORT_HELP)] = None,
    count: Annotated[int | None, typer.Option(min=1, help="with --rerun/--foxglove: stop after N hand poses")] = None,
) -> None:
    """Live 3D skeleton (and the 2D landmarks) from the stream, in a window, Rerun or Foxglove (docs/viewers.md)."""
    from streamhand.stream.client import PoseSubscriber, check_endpoint
    from streamhand.stream.security import SecurityError
    from streamhand.viz.viewer import DisplayError, _require_display, view_stream

    _view_options(rerun, foxglove, save, port, count)
    topics = ("hand.pose", "hand.frame", "status", "log.") if rerun or foxglove else ("hand.pose", "hand.frame")
    if control is not None and not (rerun or foxglove):  # the display before a lookup that may wait for ever
        try:
            check_endpoint(control, "--control")
            _require_display(_WINDOW_HINT)
        except (ValueError, DisplayError) as e:
            fail(str(e))
    try:  # the stream's options are checked first, then the display
        keys = {"curve_server_key": _opt(curve_server_key), "curve_client_key": _opt(curve_client_key)}
        if control is not None:
            typer.echo(f"asking {control} for the stream's port (Ctrl-C stops)", err=True)
        sub = PoseSubscriber(address, topics=topics, control=control, raw=True, timeout=0.05, control_timeout=None,
                             **keys)  # fmt: skip
    except (SecurityError, ValueError, TimeoutError) as e:
        fail(str(e))
    if rerun or foxglove:
        raise typer.Exit(_view_in(sub, rerun, save, port, count))
    try:
        if control is None:
            _require_display(_WINDOW_HINT)
    except DisplayError as e:
        sub.close()
        fail(str(e))
    try:
        view_stream(sub, sub.address)
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()


#: what ``view`` says to use instead of its window where no display can show one
_WINDOW_HINT = "use 'streamhand echo' to see the stream as text"


def _view_options(rerun: bool, foxglove: bool, save: Path | None, port: int | None, count: int | None) -> None:
    """``view``'s viewer options: together, then ``--save``'s path; one line and exit 2 before any work."""
    if rerun and foxglove:
        fail("choose one of --rerun and --foxglove")
    if save is not None and not rerun:
        fail(f"--save {save}: a Rerun recording; give it with --rerun")
    if port is not None and not (foxglove or (rerun and save is None)):
        fail(f"--port {port}: the Foxglove server's port (with --foxglove) or the Rerun viewer's (with --rerun and "
             "no --save); the stream's own address is --address")  # fmt: skip
    if count is not None and not (rerun or foxglove):
        fail(f"--count {count}: give it with --rerun or --foxglove (the window runs until it is closed)")
    if save is not None:
        from streamhand.viz.rerun_log import RerunError, check_rrd

        try:
            check_rrd(save, "--save")
        except RerunError as e:
            fail(str(e))


def _view_in(sub, rerun: bool, save: Path | None, port: int | None, count: int | None) -> int:
    """``view --rerun`` / ``--foxglove``: until Ctrl-C, SIGTERM or ``count`` hand poses; a viewer that cannot be
    opened (no SDK, no viewer or display, a busy port) is one line and exit 2."""
    import threading

    from streamhand.viz import foxglove_bridge, rerun_log

    stop = threading.Event()
    on_stop_signals(stop.set)
    say = lambda text: typer.echo(text, err=True)  # noqa: E731
    try:
        if rerun:
            rerun_log.view(sub, save, port, count, stop, say)
        else:
            foxglove_bridge.view(sub, port, count, stop, say)
    except (rerun_log.RerunError, foxglove_bridge.FoxgloveError) as e:
        fail(str(e))
    except OutputUnfinished as e:  # --save logged to its end, but the name cannot be taken: where it stays, and exit 1
        fail(str(e), 1)
    finally:
        sub.close()
    return 0


app.command()(cli_record.record)
app.command()(cli_record.replay)


@app.command("calibrate-hand")
def calibrate_hand(
    length: Annotated[float | None, typer.Option(help="your hand length (m), wrist crease to middle fingertip")] = None,
    realsense: Annotated[bool, typer.Option("--realsense", help="measure it with an Intel RealSense (depth)")] = False,
    serial: Annotated[str | None, typer.Option(help="RealSense serial number")] = None,
    source: Annotated[str | None, typer.Option(help="another source with depth (demo)")] = None,
    frames: Annotated[int | None, typer.Option(min=10, help="frames to measure over (default 90)")] = None,
    model: Annotated[Path | None, typer.Option(help="checkpoint (.pt) or a shipped model's name (`info`)")] = None,
    show_only: Annotated[bool, typer.Option("--show-only", help="print the stored calibration and exit")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Store your own hand length once; every run then uses it (unless --hand-size says otherwise)."""
    _setup_logging(verbose)
    from streamhand.place.hand_size import (
        DEFAULT_HAND_LENGTH_M,
        CalibrationError,
        calibration_path,
        check_length,
        load_hand_length,
        save_hand_length,
    )

    measuring = [o for o, v in (("--realsense", realsense), ("--serial", serial), ("--source", source),
                                ("--frames", frames), ("--model", model)) if v not in (None, False)]  # fmt: skip
    try:
        if show_only:
            if length is not None or measuring:
                fail("--show-only prints the stored calibration; give it alone")
            cal = load_hand_length()
            typer.echo(f"{calibration_path()}: " + (f"{cal:.3f} m" if cal else "no calibration (0.185 m is used)"))
            return
        if length is not None:
            if measuring:
                fail(f"give either --length or a depth source to measure with, not both ({', '.join(measuring)} "
                     "measure)")  # fmt: skip
            p = save_hand_length(check_length(length), "manual")
            typer.echo(f"hand length {length:.3f} m stored in {p}")
            return
        kind = "realsense" if (realsense or serial is not None) else source
        if kind == "realsense" and source not in (None, "realsense"):
            fail(f"--source {source} and --realsense/--serial: choose one source")
        if kind is None:
            fail("give --length M (measured: wrist crease to middle fingertip) or measure with --realsense")
        if kind not in ("realsense", "demo"):
            fail(f"--source {kind}: the hand is measured with depth; use --realsense (or --source demo to try it)")
    except CalibrationError as e:
        fail(str(e))
    # the hand is placed by depth while it is measured: no stored length is read (a broken one is being replaced)
    cfg = _build_config(None, {"source.kind": kind, "source.realsense_serial": serial, "source.realtime": True,
                               "model.path": str(model) if model else None,
                               "model.hand_length_m": DEFAULT_HAND_LENGTH_M})  # fmt: skip
    raise typer.Exit(_measure_hand(cfg, frames or 90))


def _measure_hand(cfg, frames: int) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from streamhand.app import RunError, make_detector, make_lifter, read_model
    from streamhand.capture.base import SourceError
    from streamhand.capture.factory import make_source
    from streamhand.place.hand_size import CalibrationError, measure_hand_length, save_hand_length

    try:
        model = read_model(cfg)
        src = make_source(cfg.source)
        src.open()
    except (SourceError, RunError) as e:
        fail(str(e))
    try:
        lifter = make_lifter(cfg, src.has_depth, src.name, n_samples=0, model=model)[0]
        typer.echo("hold one hand open, palm to the camera, 0.3-0.8 m away", err=True)
        with make_detector(cfg, True) as det, Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("measuring", total=frames)
            est = measure_hand_length(src, det, lifter, frames, lambda i: bar.update(task, completed=i + 1))
        length, spread = est.result()
        p = save_hand_length(length, "depth", len(est.values), spread)
    except (CalibrationError, RunError) as e:
        fail(str(e))
    finally:
        src.close()
    typer.echo(f"hand length {length:.3f} m (+-{spread:.3f}, median of {len(est.values)} frames) stored in {p}")
    return 0


@app.command()
def bench(
    backends: Annotated[
        str, typer.Option(help="comma list of torch,onnxruntime,tensorrt")
    ] = "torch,onnxruntime,tensorrt",
    modalities: Annotated[str, typer.Option(help="modality sets, ';' between sets")] = "2d;world;2d,world;rgb",
    batch: Annotated[str, typer.Option(help="batch sizes (1-4096)")] = "1,2,8",
    detectors: Annotated[str, typer.Option(help="mediapipe,network-onnxruntime,network-torch[-cuda]; '' for none")] = (
        "mediapipe,network-onnxruntime"
    ),
    iters: Annotated[int, typer.Option(
        min=5, help="timed calls per row (the rgb path's rows a quarter of them, at least 10; each detector at "
        "least 20 frames)")] = 100,
    threads: Annotated[int, typer.Option(min=1, max=64, help="CPU threads per backend")] = 1,
    samples: Annotated[int | None, typer.Option(
        min=0, max=256, help="posterior samples for joint_std (default: as a run takes them, 0 where the model's "
        "error model judges the experts, else 16)")] = None,
    image_size: Annotated[int, typer.Option(min=32, max=512, help="RGB crop side for the rgb path")] = 256,
    soak: Annotated[
        float | None, typer.Option(parser=cli_record.number_in(0.1, None, "minutes"),
                                   help="instead: minutes of the whole pipeline, for leaks")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures here")] = None,
    model: Annotated[Path | None, typer.Option(help="checkpoint (.pt) or a shipped model's name (`info`)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Latency and throughput per backend, modality set, batch size and detector, side by side (or --soak)."""
    _setup_logging(verbose)
    check_output_or_fail(json_out, "--json")
    _not_one_sample(samples)
    if soak is not None:
        import inspect

        defaults = {n: p.default for n, p in inspect.signature(bench).parameters.items()}
        asked = {"backends": backends, "modalities": modalities, "batch": batch, "detectors": detectors,
                 "iters": iters, "threads": threads, "samples": samples, "image_size": image_size}  # fmt: skip
        given = [f"--{n.replace('_', '-')}" for n, v in asked.items() if v != defaults[n]]
        if given:
            fail(f"--soak runs the whole pipeline as `run` does (its model with --model); {', '.join(given)} "
                 "time the models alone, without --soak")  # fmt: skip
        raise typer.Exit(_soak(soak, json_out, model))
    from rich.console import Console

    try:
        from streamhand.checkpoint import CheckpointError
        from streamhand.tools.bench import bench_detectors, bench_models, document, table
    except ImportError as e:  # it times the models from their checkpoints; a run's report times every stage
        fail_without_torch("bench (it times the models from their checkpoints; `run --report` times a run's "
                           "stages without it)", e)  # fmt: skip
    names, sets, sizes, dets = _bench_plan(backends, modalities, batch, detectors)
    err = Console(stderr=True)
    show = lambda r: err.print(f"  {r.what} {r.backend} {r.modalities} b{r.batch}: p50 {r.p50_ms:.3f} ms")  # noqa: E731
    try:
        rows = bench_models(names, sets, sizes, str(model) if model else None, iters, max(3, iters // 10), threads,
                            samples, image_size, show)  # fmt: skip
        rows += bench_detectors(dets, max(20, iters), show) if dets else []
    except (CheckpointError, ValueError) as e:
        fail(str(e))
    if not rows:
        fail("nothing was measured: no backend or detector asked for is available here (the warnings above say "
             "why)", 1)  # fmt: skip
    Console(width=max(120, Console().width)).print(table(rows, threads))
    if json_out is not None:
        raise typer.Exit(_write_at_end(json_out, json.dumps(document(rows, threads), indent=1), "--json"))


def _bench_plan(backends: str, modalities: str, batch: str, detectors: str) -> tuple[list, list, list, list]:
    """bench's lists, each checked before anything is timed: backends, modality sets, batch sizes, detectors."""
    from streamhand.tools.bench import parse_detector

    try:
        sizes = [int(b) for b in batch.split(",") if b.strip()]
        if not sizes or min(sizes) < 1 or max(sizes) > 4096:
            raise ValueError
    except ValueError:
        fail(f"--batch {batch!r}: give batch sizes of 1 to 4096, e.g. 1,2,8")
    names = [b.strip() for b in backends.split(",")]
    if any(b not in ("torch", "onnxruntime", "tensorrt") for b in names):
        fail(f"--backends {backends!r}: choose from torch, onnxruntime, tensorrt")
    sets = [tuple(_modalities(s) or ()) for s in modalities.split(";") if s.strip()]
    if not sets:
        fail(f"--modalities {modalities!r}: give one or more sets, e.g. '2d;2d,world'")
    dets = [d.strip() for d in detectors.split(",")] if detectors.strip() else []
    try:
        for d in dets:
            parse_detector(d)
    except ValueError as e:
        fail(f"--detectors {detectors!r}: {e}")
    return names, sets, sizes, dets


def _not_one_sample(samples: int | None) -> None:
    """``--samples 1`` refused as a run's setting is (:func:`streamhand.runtime_config.not_one_sample`)."""
    try:
        not_one_sample(samples)
    except ValueError as e:
        fail(f"--samples {samples}: {e}")


def _soak(minutes: float, json_out: Path | None, model: Path | None) -> int:
    """Soak: the demo through the whole pipeline with a fast and a stalling subscriber; memory, threads, fds."""
    from streamhand.tools.soak import soak as run_soak

    def show(s: dict) -> None:
        typer.echo(f"{s['t_s'] / 60:5.1f} min  rss {s['rss_mb']:.1f} MB  threads {s['threads']}  fds {s['fds']}  "
                   f"frames {s['frames']}  fast-subscriber gaps {s['fast_gaps']}", err=True)  # fmt: skip

    from streamhand.app import RunError

    try:
        res = run_soak(minutes, sample_s=min(30.0, max(minutes * 60 / 20, 2.0)), on_sample=show,
                       model=str(model) if model else None)  # fmt: skip
    except RunError as e:
        fail(str(e))
    text = json.dumps(json_finite(res), indent=1)
    typer.echo(text)
    failed = 1 if res["errors"] else 0
    if json_out is not None:
        failed |= _write_at_end(json_out, text, "--json")
    return failed


@app.command("build-engine")
def build_engine(
    model: Annotated[Path | None, typer.Option(help="checkpoint (.pt) or a shipped model's name (`info`)")] = None,
    modalities: Annotated[
        str | None, typer.Option(help="comma list of 2d,world,rgb,depth,cloud (default: all)")
    ] = None,
    precision: Annotated[str, typer.Option(help="fp32 | fp16 | int8")] = "fp16",
    batch: Annotated[str, typer.Option(help="MIN,OPT,MAX hands per call")] = "1,2,8",
    workspace: Annotated[int, typer.Option(min=16, max=1 << 20, help="TensorRT workspace (MiB)")] = 1024,
    timing_cache: Annotated[Path | None, typer.Option(help="default: OUT/timing.cache")] = None,
    samples: Annotated[int | None, typer.Option(
        min=0, max=256, help="posterior samples for joint_std (default: as a run takes them, 0 where the model's "
        "error model judges the experts, else 16)")] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("engines"),
    require_engine: Annotated[bool, typer.Option("--require-engine", help="exit 1 if no engine is built")] = False,
    hand_networks: Annotated[bool, typer.Option("--hand-networks", help="also MediaPipe's hand networks")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Export the model to ONNX and, with TensorRT and an NVIDIA GPU, build a TensorRT engine and its sidecar."""
    _setup_logging(verbose)
    try:
        from streamhand.checkpoint import CheckpointError
        from streamhand.export.engine_build import build, build_hand_networks
        from streamhand.export.onnx_export import ExportError
        from streamhand.export.tensorrt_build import EngineBuildError, EngineOptions
    except ImportError as e:
        fail_without_torch("build-engine (it exports the model's ONNX graph from its checkpoint)", e)

    if precision not in ("fp32", "fp16", "int8"):
        fail(f"--precision {precision!r}: choose fp32, fp16 or int8")
    if hand_networks and precision == "int8":  # said before the model's engine is built, not after
        fail("--hand-networks --precision int8: int8 is not offered for the hand networks; use fp16 or fp32")
    try:
        lo, opt, hi = (int(v) for v in batch.split(","))
    except ValueError:
        fail(f"--batch {batch!r}: give MIN,OPT,MAX, e.g. 1,2,8")
    mods = tuple(_modalities(modalities) or ()) or None
    _not_one_sample(samples)
    check_output_or_fail(out, "--out", folder=True)
    check_output_or_fail(timing_cache, "--timing-cache")
    opts = EngineOptions(precision, (lo, opt, hi), workspace, timing_cache or out / "timing.cache")
    try:
        res = build(str(model) if model else None, mods, opts, out, samples)
        if hand_networks:
            hands = build_hand_networks(opts, out)
            res.onnx += hands.onnx
    except (CheckpointError, ExportError, ValueError) as e:
        fail(str(e))
    except EngineBuildError as e:
        for line in str(e).splitlines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(1) from None
    for p in res.onnx:
        typer.echo(f"onnx    {p}")
    if res.engine is None:
        typer.echo(f"no engine: {res.missing}", err=True)
        raise typer.Exit(1 if require_engine else 0)
    typer.echo(f"engine  {res.engine}\nsidecar {res.sidecar}")


@app.command()
def keys(
    out: Annotated[Path, typer.Option(help="folder to write the pair into")] = Path("keys"),
    name: Annotated[str, typer.Option(
        help="the pair's name: NAME.key (public), NAME.key_secret (a .key suffix given is dropped)")] = "server",
) -> None:
    """Make a CurveZMQ key pair for --curve-server-key (the server) or a client's --curve-client-key."""
    from streamhand.outputs import OutputError, check_output_dir
    from streamhand.stream.security import SecurityError, make_keys

    try:
        check_output_dir(out, "--out")
        pub, sec = make_keys(out, name)
    except (SecurityError, OutputError) as e:
        fail(str(e))
    typer.echo(f"public key {pub} (give it to the other side), secret key {sec} (keep it)")


@app.command()
def proxy(
    frontend_port: Annotated[int, typer.Option(min=1, max=65535, help="where `run --connect` connects")] = 5570,
    backend_port: Annotated[int, typer.Option(min=1, max=65535, help="where subscribers connect")] = 5560,
    bind: Annotated[str, typer.Option(help="address to bind both ports")] = "127.0.0.1",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Forward several `streamhand run --connect` publishers (one per camera) to subscribers at one address."""
    _setup_logging(verbose)
    import threading

    from streamhand.stream.publish import PortInUse, run_proxy

    if frontend_port == backend_port:
        fail("--frontend-port and --backend-port must differ")
    stop = threading.Event()
    on_stop_signals(stop.set)
    said = (f"proxy: publishers connect to {tcp_endpoint(bind, frontend_port)}, subscribers to "
            f"{tcp_endpoint(bind, backend_port)} (Ctrl-C stops)")  # fmt: skip

    def ready() -> None:  # both ports bound: where they are, and whether the network reaches them
        typer.echo(said, err=True)
        warn_if_open(bind, "both ports (any publisher may send through the proxy, any subscriber receive) are")

    try:
        run_proxy(bind, frontend_port, backend_port, stop, on_ready=ready)
    except PortInUse as e:
        fail(str(e))


@app.command()
def precompile() -> None:
    """Compile the per-frame arithmetic now and keep its machine code on disk, so that no later run compiles it
    (`.ci/setup.sh` does this after installing; for a container, point NUMBA_CACHE_DIR at a writable volume first)."""
    import time

    check_output_or_fail(os.environ.get("NUMBA_CACHE_DIR") or None, "NUMBA_CACHE_DIR", folder=True)  # not a fallback
    from streamhand import jit
    from streamhand.run.place_step import precompile as compile_all
    from streamhand.tools.about import compiled_state

    if not jit.COMPILED:
        typer.echo(
            "nothing to compile: the per-frame arithmetic runs as plain Python (numba missing or NUMBA_DISABLE_JIT set)"
        )
        return
    t0 = time.perf_counter()
    compile_all()
    if jit.UNCACHED:
        fail("compiled, but not kept: no folder numba may write its cache to; set NUMBA_CACHE_DIR to one and run again")
    typer.echo(f"per-frame arithmetic ready in {time.perf_counter() - t0:.1f} s: {compiled_state()}")


@app.command()
def info() -> None:
    """Versions, available backends and the shipped models' cards."""
    from streamhand.tools.about import describe

    for line in describe():
        typer.echo(line)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
