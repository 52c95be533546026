"""``python -m train fit|eval``: train a recipe or evaluate a checkpoint."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from streamhand.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from streamhand.configio import ConfigError, load_yaml
from streamhand.errors import check_distinct_or_fail, check_output_or_fail, commands, fail

log = logging.getLogger(__name__)
app = typer.Typer(cls=commands("python -m train"), add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, help="streamhand offline training")  # fmt: skip


def _check_folder(path: Path | None, option: str) -> None:
    """One line and exit 2 if a folder to read from is not one."""
    if path is not None and not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        fail(f"{option}: {path} is not a folder ({what})")


def _checkpoint_or_fail(path: Path | str) -> Checkpoint:
    """The checkpoint at ``path`` (or a shipped model's name), or one line and exit 2."""
    try:
        return load_checkpoint(path)
    except CheckpointError as e:
        fail(str(e))


def _checkpoint_file_or_fail(path: Path) -> Checkpoint:
    """The checkpoint file at ``path``, which a command rewrites in place, or one line and exit 2: a shipped model's
    name is refused (its files belong to the installed package), as is anything that is not a checkpoint."""
    from streamhand.model_files import shipped_models

    if not path.is_file():
        shipped = shipped_models().get(str(path))
        if shipped is not None:
            fail(f"--checkpoint {path}: this command rewrites the checkpoint in place, and a shipped model's files "
                 f"belong to the package; copy it (cp {shipped} mine.pt) and give --checkpoint mine.pt")  # fmt: skip
        fail(f"--checkpoint {path}: checkpoint not found (this command rewrites a checkpoint file in place)")
    return _checkpoint_or_fail(path)


def _stop_as_ctrl_c(*_: object) -> None:
    """SIGTERM handled as Ctrl-C: training stops between steps and says what is kept (exit 130)."""
    raise KeyboardInterrupt


def _write_at_end(path: Path, text: str) -> None:
    """Write a result after the work (already printed); a failure is one line and exit 1."""
    from streamhand.outputs import OutputError, write_text_atomic

    try:
        write_text_atomic(path, text, "--json")
    except OutputError as e:
        fail(str(e), 1)


def _no_constant(name: str) -> float:
    """JSON has no NaN or Infinity (Python's reader takes them): a card holding one would not be JSON."""
    raise ValueError(f"{name} is not a JSON number")


def _json_kind(value: object) -> str:
    """What a JSON document holds, in JSON's words (for a message)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    kinds = {list: "an array", str: "a string", int: "a number", float: "a number"}
    return kinds.get(type(value), "an object")


def _png_or_fail(path: Path | None, option: str) -> None:
    """A figure's file: a ``.png`` that can be written (one line and exit 2 before any work, else)."""
    if path is not None and path.is_dir():
        fail(f"{option} {path}: is a folder; give a file name, e.g. {path / 'figure.png'}")
    if path is not None and path.suffix.lower() != ".png":
        fail(f"{option} {path}: the figure is a PNG; name a .png file")
    check_output_or_fail(path, option)


@app.command()
def fit(
    config: Annotated[Path, typer.Option(help="training recipe (YAML)")],
    resume: Annotated[Path | None, typer.Option(help="checkpoint to continue from")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="override the recipe's step count")] = None,
    out_dir: Annotated[str | None, typer.Option(help="override the output folder")] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, help="override the recipe's seed (runs to pool with `ensemble`)")
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="start again over a kept run of this name")] = False,
) -> None:
    """Train a model from a YAML recipe."""
    from train.config import TrainConfig
    from train.datasets.published import missing_data
    from train.fit import Diverged
    from train.fit import fit as run_fit

    overrides = {k: v for k, v in {"steps": steps, "out_dir": out_dir, "seed": seed}.items() if v is not None}
    try:
        cfg = load_yaml(TrainConfig, config, overrides, empty="an empty recipe; start from one in configs/train/ "
                        "(every key has a default, but a recipe says at least its name)")  # fmt: skip
    except ConfigError as e:
        fail(str(e))
    if resume is not None and not resume.is_file():
        fail(f"--resume: checkpoint not found: {resume}")
    kept = Path(cfg.out_dir) / cfg.name / "last.pt"
    continues = resume is not None and resume.resolve() == kept.resolve()
    if kept.exists() and not (continues or overwrite):
        fail(f"{kept}: a run of this name is kept there; --resume {kept} continues it, --overwrite starts it again, "
             "or give another --out-dir")  # fmt: skip
    if continues and overwrite:
        fail(f"--resume {resume} --overwrite: --resume continues the run kept there, --overwrite discards it; "
             "give one")  # fmt: skip
    lacking = missing_data(cfg.data)
    if lacking is not None:  # before anything is built or made
        fail(f"{config}: {lacking}")
    check_output_or_fail(cfg.out_dir, "--out-dir" if out_dir is not None else f"{config}: out_dir", folder=True)
    if cfg.data.dataset == "frames" or cfg.data.mediapipe_pairs:  # labelled hands are cached there
        check_output_or_fail(cfg.data.mediapipe_cache, f"{config}: data.mediapipe_cache", folder=True)
    signal.signal(signal.SIGTERM, _stop_as_ctrl_c)  # a batch system's stop: the same clean stop as Ctrl-C
    try:
        path = run_fit(cfg, resume=resume, progress=not no_progress, overwrite=overwrite,
                       steps_from="--steps" if steps is not None else None)  # fmt: skip
    except (ValueError, FileNotFoundError) as e:  # a device this machine lacks, a dataset file that is missing
        fail(str(e))
    except Diverged as e:  # the recipe ran, and went wrong: exit 1
        fail(str(e), code=1)
    typer.echo(f"checkpoint: {path}")


@app.command("eval")
def evaluate(
    checkpoint: Annotated[Path, typer.Option(help="checkpoint (.pt)")],
    data: Annotated[str, typer.Option(help="dataset: synthetic | rhd | stb | freihand | frames")] = "synthetic",
    root: Annotated[Path | None, typer.Option(help="dataset folder (rhd, stb, freihand, frames)")] = None,
    n: Annotated[int | None, typer.Option(min=1, help="hands (default 2000; not with --data frames)")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="their seed (default 1234; not with --data frames)")] = None,
    noise_px: Annotated[float | None, typer.Option(
        min=0.0, max=50.0, help="2D noise added to the truth (default 2 px; not with --data frames)")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the metrics here")] = None,
    keypoints: Annotated[
        str | None, typer.Option(help="frames: 2D from mediapipe (default, the real detector) or the truth's exact 2D")
    ] = None,
    modalities: Annotated[
        str | None, typer.Option(help="frames, synthetic: experts to fuse, comma list of 2d,world,rgb,depth")
    ] = None,
    hand_size: Annotated[float | None, typer.Option(help="frames: hand length, wrist to middle tip (m)")] = None,
    pck_png: Annotated[Path | None, typer.Option(help="draw the PCK curve(s) into this PNG")] = None,
) -> None:
    """Evaluate the 2D -> 3D path (EPE after wrist alignment, ground-truth scale), or with --data frames the
    runtime's whole path on a folder of your own frames with 3D truth."""
    from train.datasets.real import LOADERS
    from train.evaluate import evaluate_handset, evaluate_synthetic, write_pose_pck_png
    from train.published import comparison_lines

    check_output_or_fail(json_out, "--json")
    _png_or_fail(pck_png, "--pck-png")
    check_distinct_or_fail([(json_out, "--json"), (pck_png, "--pck-png")], [(checkpoint, "--checkpoint")])
    if data != "synthetic" and data != "frames" and data not in LOADERS:
        fail(f"--data {data!r}: choose synthetic, {', '.join(LOADERS)}, frames")
    if data != "synthetic" and root is None:
        fail(f"--data {data} needs --root (the dataset folder)")
    if data == "synthetic" and root is not None:
        fail(f"--root {root}: --data synthetic reads no folder (--root is for {', '.join(LOADERS)}, frames)")
    _check_folder(root, "--root")
    if data == "frames":
        assert root is not None
        unused = [f for f, v in (("--n", n), ("--seed", seed), ("--noise-px", noise_px)) if v is not None]
        if unused:
            fail(f"{', '.join(unused)}: --data frames evaluates every frame as it is (no sampling, no added noise)")
        _eval_frames(checkpoint, root, keypoints or "mediapipe", modalities, hand_size, json_out, pck_png)
        return
    n, seed, noise_px = n or 2000, 1234 if seed is None else seed, 2.0 if noise_px is None else noise_px
    given = [f for f, v in (("--keypoints", keypoints), ("--hand-size", hand_size)) if v is not None]
    if modalities is not None and data not in ("synthetic", "rhd", "stb"):
        fail("--modalities: for --data frames, synthetic, rhd or stb only")
    if given:
        fail(f"{', '.join(given)}: for --data frames only")
    ckpt = _checkpoint_or_fail(checkpoint)
    extra, cal, task = {}, None, "2D -> 3D"
    images = any(m in ckpt.model.encoders for m in ("rgb", "depth"))
    if data in ("synthetic", "rhd", "stb") and (modalities or images):
        from train.config import DataConfig
        from train.datasets.images import ImageDataError
        from train.evaluate import evaluate_fused

        mods = tuple(m.strip() for m in modalities.split(",")) if modalities else None
        bad = [m for m in mods or () if m not in ckpt.model.modalities or m == "3d"]
        if bad:
            fail(f"--modalities {','.join(bad)}: the model's run-time encoders are "
                  f"{','.join(m for m in ckpt.model.modalities if m != '3d')}")  # fmt: skip
        where = {} if data == "synthetic" else {"kind": data, f"{data}_root": str(root)}
        try:
            m = evaluate_fused(ckpt.model, DataConfig(**where), n=n, seed=seed, noise_px=noise_px, modalities=mods)
        except (ImageDataError, FileNotFoundError, ValueError) as e:
            fail(f"--data {data}: {e}")
        extra["modalities"] = list(mods or [x for x in ckpt.model.modalities if x != "3d"])
        if "rgb" in extra["modalities"]:
            task = "RGB -> 3D"
    elif data == "synthetic":
        cal = (ckpt.meta.get("std_calibration") or {}).get("2d")
        m = evaluate_synthetic(ckpt.model, n=n, seed=seed, noise_px=noise_px, uncertainty_samples=16,
                               std_calibration=cal)  # fmt: skip
        extra["epe_procrustes_mean_mm"] = evaluate_synthetic(
            ckpt.model, n, seed, noise_px, align="procrustes"
        ).epe_mean_mm
    else:
        try:
            hands = LOADERS[data](root)
        except (FileNotFoundError, ImportError, KeyError, ValueError) as e:
            fail(f"--data {data}: {e}")
        if len(hands) == 0:
            fail(f"--data {data}: no usable hands under {root}")
        m = evaluate_handset(ckpt.model, hands, noise_px=noise_px, seed=seed)
    result = {"checkpoint": str(checkpoint), "data": data, "seed": seed, "noise_px": noise_px,
              "model_id": ckpt.model_id, **m.as_dict(), **extra}  # fmt: skip
    typer.echo(f"EPE mean {m.epe_mean_mm:.2f} mm  median {m.epe_median_mm:.2f} mm  AUC(20-50) {m.auc_20_50:.3f}  "
               f"AUC(0-50) {m.auc_0_50:.3f}  n={m.n}")  # fmt: skip
    typer.echo("per joint (mm): " + " ".join(f"{v:.1f}" for v in m.per_joint_mm))
    for line in comparison_lines(data, task, m.epe_mean_mm, m.auc_20_50):
        typer.echo(line)
    if pck_png is not None:
        from train.published import PUBLISHED

        png = write_pose_pck_png(m.pck_thresholds_mm, m.pck, f"{data}, {ckpt.model_id}", pck_png, PUBLISHED.get(data))
        result["pck_png"] = str(png)
        typer.echo(f"PCK curve: {png}")
    if m.uncertainty is not None:
        u = m.uncertainty
        typer.echo(
            f"joint_std ({'calibrated' if cal else 'raw spread'}, 16 samples) vs error, wrist left out: "
            f"Spearman {u.spearman:.2f}; within 1 std {u.within_1std:.2f}, within 2 std {u.within_2std:.2f} "
            f"(a calibrated Gaussian: {u.gaussian_within_1std:.2f}, {u.gaussian_within_2std:.2f})"
        )
    if json_out is not None:
        _write_at_end(json_out, json.dumps(result, indent=1))


def _eval_frames(
    checkpoint: Path,
    root: Path,
    keypoints: str,
    modalities: str | None,
    hand_size: float | None,
    json_out: Path | None,
    pck_png: Path | None,
) -> None:
    """``eval --data frames``: load the folder, the model and the detector, measure, print, write."""
    from streamhand.infer import Lifter
    from streamhand.infer.select import make_backend
    from streamhand.place.hand_size import CalibrationError, check_length, resolve_hand_length
    from train.datasets.frames import FrameDataError, load_frames
    from train.evaluate import evaluate_frames, frames_modalities, frames_report_lines, write_pck_png

    try:
        frames = load_frames(root)
    except FrameDataError as e:
        fail(f"--data frames: {e}")
    try:
        configured = check_length(hand_size) if hand_size is not None else None
    except CalibrationError as e:
        fail(f"--hand-size: {e}")
    try:
        length, source = resolve_hand_length(configured)
    except CalibrationError as e:  # a broken calibration file
        fail(str(e))
    try:
        backend = make_backend("torch", str(checkpoint), 16, 1)
    except (CheckpointError, ValueError) as e:
        fail(str(e))
    requested = tuple(m.strip() for m in modalities.split(",") if m.strip()) if modalities is not None else None
    try:
        mods = frames_modalities(tuple(backend.modalities), keypoints, requested)
    except ValueError as e:
        fail(str(e))
    log.info("%d frames from %s; %s keypoints; modalities %s; hand length %.3f m (%s)",
             len(frames), root, keypoints, ",".join(mods), length, source)  # fmt: skip
    try:
        result = evaluate_frames(frames, Lifter(backend, length), keypoints, mods)
    except FrameDataError as e:
        fail(f"--data frames: {e}")
    result = {"checkpoint": str(checkpoint), "data": "frames", "root": str(root), "model_id": backend.model_id,
              "hand_length_source": source, **result}  # fmt: skip
    for line in frames_report_lines(result):
        typer.echo(line)
    if json_out is not None:
        _write_at_end(json_out, json.dumps(result, indent=1))
    if pck_png is not None and not any(d.get("pck_rel") for d in result["systems"].values()):
        typer.echo(f"no PCK figure: no hand was found to draw a curve of ({pck_png} not written)")
    elif pck_png is not None:
        typer.echo(f"PCK curves: {write_pck_png(result, pck_png)}")


@app.command("synth-report")
def synth_report_cmd(
    n: Annotated[int, typer.Option(min=1, help="rendered 640x480 frames for the detection check")] = 200,
    checkpoint: Annotated[Path | None, typer.Option(help="lift MediaPipe's 2D with this model")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here")] = None,
    frames: Annotated[
        Path | None,
        typer.Option(
            help="real frames with 3D truth (eval --data frames' folder): the same figures on them, and on renders "
            "of their own poses"
        ),
    ] = None,
    flip_average: Annotated[
        bool,
        typer.Option("--flip-average", help="read the renders as `run --flip-average` does (MediaPipe's networks, "
                     "each hand with its mirrored crop)"),
    ] = False,
) -> None:
    """Sampler/renderer speed, MediaPipe detection rate on rendered hands, closed-loop EPE; with --frames the same
    figures on real frames beside the renders', and MediaPipe's on renders of those frames' own poses and views."""
    from train.datasets.frames import FrameDataError, load_frames
    from train.synth_report import as_dict, report_lines, synth_report

    check_output_or_fail(json_out, "--json")
    _check_folder(frames, "--frames")
    check_distinct_or_fail([(json_out, "--json")], [(checkpoint, "--checkpoint")])
    fs = None
    if frames is not None:
        try:
            fs = load_frames(frames)
            for i in range(len(fs)):  # every picture read now: a bad one is said before the renders, not after
                fs.image(i)
        except FrameDataError as e:
            fail(f"--frames: {e}")
    if checkpoint is not None:
        reads = _checkpoint_or_fail(checkpoint).model.modalities
        if not {"2d", "world"} & set(reads):  # the closed loop lifts MediaPipe's landmarks of each render
            fail(f"--checkpoint {checkpoint}: synth-report lifts MediaPipe's landmarks (a 2d or world expert); this "
                 f"model reads {', '.join(reads)}")  # fmt: skip
    try:  # progress goes to standard error (a bar on a terminal, a log line a minute elsewhere)
        rep = as_dict(synth_report(n, str(checkpoint) if checkpoint else None, True, fs, flip_average))
    except FrameDataError as e:  # an image that cannot be read
        fail(f"--frames: {e}")
    for line in report_lines(rep):
        typer.echo(line)
    if json_out is not None:
        _write_at_end(json_out, json.dumps(rep, indent=1))


@app.command("hard-hands")
def hard_hands_cmd(
    checkpoint: Annotated[Path | None, typer.Option(help="model to judge (default: the shipped default)")] = None,
    n: Annotated[int, typer.Option(min=1, help="rendered frames per kind")] = 60,
    seed: Annotated[int, typer.Option(min=0, help="the renders' seed (the same hands in every kind)")] = 5150,
    kinds: Annotated[str | None, typer.Option(help="comma list of clean,drawing,blur,glove,hidden (default: all)")] = (
        None
    ),
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures here")] = None,
    examples_png: Annotated[Path | None, typer.Option(help="draw one example of each kind")] = None,
    flip_average: Annotated[
        bool, typer.Option("--flip-average", help="read the hands as `run --flip-average` does")
    ] = False,
) -> None:
    """Hands the model cannot read well (drawn, blurred, gloved, partly hidden renders): is joint_std at least half
    the error there?"""
    from train.hard_hands import KINDS, examples, hard_hands, report_lines
    from train.synth_report import write_png

    check_output_or_fail(json_out, "--json")
    _png_or_fail(examples_png, "--examples-png")
    check_distinct_or_fail([(json_out, "--json"), (examples_png, "--examples-png")], [(checkpoint, "--checkpoint")])
    chosen = tuple(k.strip() for k in kinds.split(",")) if kinds is not None else tuple(KINDS)
    bad = [k for k in chosen if k not in KINDS]
    if bad or not chosen:
        fail(f"--kinds {kinds!r}: choose from {', '.join(KINDS)}")
    if checkpoint is not None:
        _checkpoint_or_fail(checkpoint)
    rep = hard_hands(str(checkpoint) if checkpoint else None, n, seed, chosen, True, flip_average)
    for line in report_lines(rep):
        typer.echo(line)
    if json_out is not None:
        _write_at_end(json_out, json.dumps(rep, indent=1))
    if examples_png is not None:
        try:
            write_png(examples(seed), examples_png)
        except OSError as e:
            fail(f"--examples-png: {e}", 1)


@app.command("tune-smoothing")
def tune_smoothing_cmd(
    seeds: Annotated[str, typer.Option(help="comma list of demo seeds (1 or more) to draw the tuning clips with")] = (
        "1,2,3"
    ),
    frames: Annotated[int, typer.Option(min=10, max=1800, help="frames per clip (30 a second)")] = 120,
    model: Annotated[str, typer.Option(help="model to run the clips with (a shipped name or a checkpoint)")] = (
        "default"
    ),
    slack_mm: Annotated[
        float, typer.Option(min=0.0, help="settings within this (mm) of the least error compete on jitter")
    ] = 0.05,
    json_out: Annotated[Path | None, typer.Option("--json", help="write every setting's figures here")] = None,
) -> None:
    """Choose the One Euro filter's settings on rendered clips other than the demo's: each clip run once unsmoothed
    through the pipeline, the filter replayed over a grid and scored as a run report scores the demo."""
    from streamhand.app import RunError
    from streamhand.runtime_config import SmoothConfig
    from train.tune_smoothing import report_lines, tune

    check_output_or_fail(json_out, "--json")
    try:
        chosen = sorted({int(s) for s in seeds.split(",")})
    except ValueError:
        fail(f"--seeds {seeds!r}: a comma list of whole numbers, such as 1,2,3")
    if not chosen or min(chosen) < 1:
        fail(f"--seeds {seeds!r}: a comma list of whole numbers 1 or more, such as 1,2,3 (0 is the demo itself, "
             "whose figures judge the choice)")  # fmt: skip
    _checkpoint_or_fail(model)  # before any clip is rendered
    d = SmoothConfig()
    try:
        rep = tune(chosen, frames, model, slack_mm, (d.min_cutoff, d.beta, d.d_cutoff))
    except RunError as e:  # a model that cannot be read, no renderer for the clips
        fail(str(e))
    for line in report_lines(rep):
        typer.echo(line)
    if json_out is not None:
        _write_at_end(json_out, json.dumps(rep, indent=1))


@app.command("render-sheet")
def render_sheet_cmd(
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("sheet.png"),
    n: Annotated[int, typer.Option(min=1, max=1000, help="rendered hands")] = 24,
    seed: Annotated[int, typer.Option(min=0, help="sampler and renderer seed")] = 0,
    size: Annotated[int, typer.Option(min=16, max=1024, help="tile side (pixels)")] = 256,
    cols: Annotated[int, typer.Option(min=1, max=100, help="tiles a row")] = 6,
    depth: Annotated[bool, typer.Option("--depth", help="a row of depth crops under each row of colour")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
) -> None:
    """A contact sheet of rendered hands (poses, skin, handedness, backgrounds), each cropped around the hand."""
    from train.synth_report import render_sheet, sheet_shape, write_png

    _png_or_fail(out, "--out")
    h, w = sheet_shape(n, size, cols, depth)
    if h * w > 100_000_000:
        fail(f"--n {n} --size {size} --cols {cols}: a {w}x{h} sheet is too large")
    sheet = render_sheet(n, seed, size, cols, depth, progress=not no_progress)
    try:
        path = write_png(sheet, out)
    except OSError as e:
        fail(f"--out {out}: {e.strerror or e}")
    typer.echo(f"render sheet ({n} hands, {w}x{h}): {path}")


@app.command("mediapipe-pairs")
def mediapipe_pairs_cmd(
    n: Annotated[int, typer.Option(min=1, help="hands to render and label")] = 3000,
    seed: Annotated[int, typer.Option(min=0, help="sampler seed (a recipe's shards use mediapipe_seed + i)")] = 4242,
    cache: Annotated[Path, typer.Option(help="cache folder (a recipe's data.mediapipe_cache)")] = Path("runs/cache"),
) -> None:
    """Render hands, label them with the real MediaPipe (2D and world landmarks), cache the pairs."""
    from train.datasets.mediapipe_pairs import cache_path, load_or_generate

    check_output_or_fail(cache, "--cache", folder=True)
    data = load_or_generate(cache, n, seed)
    typer.echo(f"{len(data['left'])} of {n} rendered hands found by MediaPipe: {cache_path(cache, n, seed)}")


_WORLD_HELP = ("world input: simulated (at MediaPipe's level on real photographs), mediapipe (its own on the renders) "
               "or scaled (its own, their error scaled to the simulated level)")  # fmt: skip


@app.command("calibrate-std")
def calibrate_std_cmd(
    checkpoint: Annotated[Path, typer.Option(help="trained checkpoint (.pt), updated in place")],
    n: Annotated[int, typer.Option(min=10, help="held-out rendered hands to label with MediaPipe")] = 1500,
    seed: Annotated[int, typer.Option(min=0, help="their seed (apart from the recipe's mediapipe_seed)")] = 9100,
    cache: Annotated[Path, typer.Option(help="cache folder for the labelled renders")] = Path("runs/cache"),
    world: Annotated[str, typer.Option(help=_WORLD_HELP)] = "simulated",
) -> None:
    """Fit the joint_std calibration (per joint, per fused expert set) and store it in the checkpoint."""
    from train.calibrate_std import WORLDS, calibrate, write_calibration
    from train.datasets.mediapipe_pairs import load_or_generate

    _checkpoint_file_or_fail(checkpoint)
    if world not in WORLDS:
        fail(f"--world must be {', '.join(WORLDS)}, not {world!r}")
    check_output_or_fail(cache, "--cache", folder=True)
    pairs = load_or_generate(cache, n, seed)
    if len(pairs["left"]) < 10:
        fail(f"only {len(pairs['left'])} of {n} renders were found by MediaPipe; use a larger --n")
    cal = calibrate(checkpoint, WORLDS[world](pairs, seed))
    write_calibration(checkpoint, cal, {"n": n, "seed": seed, "world": world})  # not --cache: where, not what
    for key, c in cal.items():
        dis = f", c {np.mean(c['c'][1:]):.2f}" if "c" in c else ""
        b = np.mean(c["b"][1:])
        typer.echo(f"{key}: a {np.mean(c['a'][1:]):.2f}{dis} (means over joints), b {b:.3f} bone lengths")
    typer.echo(f"calibration stored in {checkpoint}")


_KEEP_MISNAMED_HELP = "fit on the renders MediaPipe named the wrong hand too (default: those it named right)"
_WEIGH_DISAGREEMENT_HELP = (
    "let the fit weigh the experts' disagreement (default: 0; on renders and on real photographs it points at "
    "different hands: docs/evaluation.md)"
)


@app.command("fit-error-model")
def fit_error_model_cmd(
    checkpoint: Annotated[Path, typer.Option(help="trained checkpoint (.pt), updated in place")],
    n: Annotated[int, typer.Option(min=20, help="rendered hands to label with MediaPipe and fit on")] = 4000,
    seed: Annotated[int, typer.Option(min=0, help="their seed (shards use seed, seed + 1, ...)")] = 9200,
    shards: Annotated[int, typer.Option(min=1, help="caches the fitting renders are made in (in parallel)")] = 2,
    held_n: Annotated[int, typer.Option(min=20, help="other rendered hands, to set the coverage and judge")] = 1500,
    held_seed: Annotated[int, typer.Option(min=0, help="their seed (keep it apart from --seed)")] = 9100,
    cache: Annotated[Path, typer.Option(help="cache folder for the labelled renders")] = Path("runs/cache"),
    world: Annotated[str, typer.Option(help=_WORLD_HELP)] = "scaled",
    keep_misnamed: Annotated[bool, typer.Option("--keep-misnamed", help=_KEEP_MISNAMED_HELP)] = False,
    weigh_disagreement: Annotated[bool, typer.Option("--weigh-disagreement", help=_WEIGH_DISAGREEMENT_HELP)] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the held-out figures here")] = None,
    reliability_png: Annotated[Path | None, typer.Option(help="draw predicted vs actual error by decile")] = None,
) -> None:
    """Fit the error model (joint_std, quality, confidence; per fused expert set) and store it in the checkpoint."""
    from streamhand.infer.lifter import Lifter
    from streamhand.infer.torch_backend import TorchBackend
    from train.calibrate_std import WORLDS, expert_sets, pair_crops, write_meta
    from train.datasets.mediapipe_pairs import load_or_generate, shards_of
    from train.error_model import fit_error_models, write_reliability_png

    ck = _checkpoint_file_or_fail(checkpoint)
    if world not in WORLDS:
        fail(f"--world must be {', '.join(WORLDS)}, not {world!r}")
    if seed <= held_seed < seed + shards:
        fail(f"--held-seed {held_seed} is one of the fitting renders' seeds ({seed}-{seed + shards - 1})")
    check_output_or_fail(cache, "--cache", folder=True)
    check_output_or_fail(json_out, "--json")
    _png_or_fail(reliability_png, "--reliability-png")
    check_distinct_or_fail([(json_out, "--json"), (reliability_png, "--reliability-png")],
                           [(checkpoint, "--checkpoint")])  # fmt: skip

    def labelled(parts: list[tuple[int, int]]) -> dict[str, np.ndarray]:
        got = [load_or_generate(cache, k, s) for k, s in parts]
        got = [WORLDS[world](p, s) for p, (_k, s) in zip(got, parts)]
        pairs = {k: np.concatenate([p[k] for p in got]) for k in got[0]}
        if len(pairs["left"]) < 20:
            fail(f"only {len(pairs['left'])} of {sum(k for k, _ in parts)} renders were found by MediaPipe; use more")
        return pairs

    fit_pairs, held_pairs = labelled(shards_of(n, seed, shards)), labelled([(held_n, held_seed)])
    backend = TorchBackend(ck, n_samples=16, max_batch=256)
    image_mods = [m for m in ("rgb", "depth") if m in backend.modalities]
    if image_mods:
        fit_pairs = {**fit_pairs, "images": pair_crops(fit_pairs, image_mods, backend.image_size,
                                                       view=backend.crop_view)}  # fmt: skip
        held_pairs = {**held_pairs, "images": pair_crops(held_pairs, image_mods, backend.image_size, seed=1,
                                                         view=backend.crop_view)}  # fmt: skip
    models, report = fit_error_models(Lifter(backend), fit_pairs, held_pairs, expert_sets(backend.modalities),
                                      keep_misnamed, weigh_disagreement)  # fmt: skip
    ran = {"n": n, "seed": seed, "shards": shards, "held_n": held_n, "held_seed": held_seed, "world": world,
           "keep_misnamed": keep_misnamed, "weigh_disagreement": weigh_disagreement}  # fmt: skip (not --cache: where)
    write_meta(checkpoint, error_model=models, error_model_options=ran)  # the options: for the model card
    for key, r in report.items():
        e, c = r["error_model"], r["checkpoint_std"]
        typer.echo(f"{key} ({r['hands']} held-out hands, error {e['error_mm']:.1f} mm): error model std_r "
                   f"{e['std_r']:.2f} std_f {e['std_f']:.2f} cov1 {e['cov1']:.2f} cov2 {e['cov2']:.2f}; "
                   f"the checkpoint's joint_std {c['std_r']:.2f} / {c['std_f']:.2f} / {c['cov1']:.2f} / "
                   f"{c['cov2']:.2f}")  # fmt: skip
    if json_out is not None:
        _write_at_end(json_out, json.dumps(report, indent=1))
    if reliability_png is not None:
        write_reliability_png(report, reliability_png)
    typer.echo(f"error model stored in {checkpoint}")


@app.command()
def card(
    checkpoint: Annotated[Path, typer.Option(help="trained checkpoint (.pt)")],
    out: Annotated[Path, typer.Option(help="shipped weights to write (.pt; the card goes beside it as .json)")],
    metrics: Annotated[list[Path], typer.Option(help="JSON files of measured metrics to embed (repeatable)")] = [],  # noqa: B006
    summary: Annotated[str, typer.Option(help="one line describing the model")] = "",
    half: Annotated[bool, typer.Option("--half", help="store the weights in float16 (half the file)")] = False,
) -> None:
    """Package a checkpoint as a shipped model with its model card."""
    from train.model_card import package

    if out.suffix.lower() != ".pt":  # the card is written beside the weights as .json: a .json --out was both
        fail(f"--out {out}: the shipped weights are a .pt file (the card goes beside them as .json); give a name "
             "ending in .pt")  # fmt: skip
    check_output_or_fail(out, "--out")
    check_output_or_fail(out.with_suffix(".json"), "--out")
    check_distinct_or_fail([(out, "--out"), (out.with_suffix(".json"), "--out (its card)")],
                           [(checkpoint, "--checkpoint"), *((m, "--metrics") for m in metrics)])  # fmt: skip
    _checkpoint_or_fail(checkpoint)
    merged: dict = {}
    for m in metrics:
        if not m.is_file():
            fail(f"--metrics: file not found: {m}")
        if m.stem in merged:  # the card keys each file's figures by its name
            fail(f"--metrics {m}: another file of that name ({m.stem}) is given too; rename one")
        try:
            merged[m.stem] = json.loads(m.read_text(), parse_constant=_no_constant)
        except (ValueError, OSError) as e:  # not JSON, not text, a folder, unreadable, NaN
            why = str(e) if "not a JSON number" in str(e) else type(e).__name__
            fail(f"--metrics {m}: not a readable JSON file ({why})")
        if not isinstance(merged[m.stem], dict):  # a card keys each file's figures by name: an object of them
            fail(f"--metrics {m}: a card embeds a JSON object of figures (such as {{\"epe_mm\": 12.3}}); this "
                 f"file holds {_json_kind(merged[m.stem])}")  # fmt: skip
    pt, js = package(checkpoint, out, merged, summary, half)
    typer.echo(f"wrote {pt} ({pt.stat().st_size / 1e6:.1f} MB) and {js}")


@app.command()
def ensemble(
    checkpoints: Annotated[
        list[Path], typer.Argument(help="two or more runs of one recipe that differ in seed (checkpoints or shipped "
                                   "models' names)")
    ],
    out: Annotated[Path, typer.Option(help="the pooled checkpoint to write (.pt)")],
) -> None:
    """Pool several runs' image experts (one recipe, other seeds) into one model; then fit its calibration and
    error model (calibrate-std, fit-error-model) as for any trained checkpoint."""
    from train.ensemble import write_ensemble

    if out.suffix.lower() != ".pt":
        fail(f"--out {out}: the pooled model is a checkpoint; give a name ending in .pt")
    if any(Path(c).is_file() and Path(c).resolve() == out.resolve() for c in checkpoints):
        fail(f"--out {out}: one of the runs to pool; give a new file")
    check_output_or_fail(out, "--out")
    try:
        path, record = write_ensemble([str(c) for c in checkpoints], out)
    except (CheckpointError, ValueError) as e:
        fail(str(e))
    members = ", ".join(f"{m['model_id']} (seed {m['seed']})" for m in record["members"])
    typer.echo(f"wrote {path}: {' and '.join(record['pooled'])} experts of {members} pooled")


@app.command("latent-walk")
def latent_walk_cmd(
    checkpoint: Annotated[Path, typer.Option(help="checkpoint (.pt)")],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("latent_walk.png"),
    modality: Annotated[str, typer.Option(help="encoder the two hands go through: 2d | world | 3d")] = "2d",
    steps: Annotated[int, typer.Option(min=2, max=32)] = 8,
    seed: Annotated[int, typer.Option(min=0, help="which two synthetic hands")] = 0,
) -> None:
    """Decode a straight walk between two encoded hands to 3D skeletons (and images, with an image decoder)."""
    from train.latent import latent_walk, write_walk_png

    _png_or_fail(out, "--out")
    try:
        ck = load_checkpoint(checkpoint)
        walk = latent_walk(ck.model, modality, steps, seed)
    except (CheckpointError, ValueError) as e:
        fail(str(e))
    typer.echo(f"latent walk: {write_walk_png(walk, out)}")


@app.command()
def embed(
    checkpoint: Annotated[Path, typer.Option(help="checkpoint (.pt)")],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("latent_embed.png"),
    n: Annotated[int, typer.Option(min=10, max=20000, help="hands")] = 300,
    seed: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """A 2D embedding (PCA) of each expert's latent for the same hands, coloured by modality."""
    from train.latent import embed as run_embed
    from train.latent import write_embed_png

    _png_or_fail(out, "--out")
    try:
        emb = run_embed(load_checkpoint(checkpoint).model, n, seed)
    except (CheckpointError, ValueError) as e:
        fail(str(e))
    same = f"{emb['same_hand']:.3f}" if emb["same_hand"] == emb["same_hand"] else "n/a (one expert)"
    typer.echo(f"mean latent distance: two experts of one hand {same}, one expert of two hands "
               f"{emb['other_hand']:.3f}")  # fmt: skip
    typer.echo(f"embedding: {write_embed_png(emb, out)}")


@app.command()
def compare(
    steps: Annotated[int, typer.Option(min=1, help="training steps of each model")] = 1000,
    out: Annotated[Path, typer.Option(help="where the models are written")] = Path("runs/compare"),
    only: Annotated[str | None, typer.Option(help="comma list of models (default: all)")] = None,
    image_size: Annotated[int, typer.Option(min=32, max=512, help="RGB crop side (a power of two, 32-512)")] = 32,
    batch_size: Annotated[int, typer.Option(min=2)] = 32,
    n_test: Annotated[int, typer.Option(min=10, help="synthetic test hands")] = 300,
    frames: Annotated[Path | None, typer.Option(help="a folder of real frames with 3D truth (see eval)")] = None,
    rhd_root: Annotated[Path | None, typer.Option(help="RHD v2, to measure each model on its test split")] = None,
    stb_root: Annotated[Path | None, typer.Option(help="STB, to measure each model on B1")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the table's figures here")] = None,
    workers: Annotated[int, typer.Option(min=0, max=64, help="processes rendering batches ahead")] = 2,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="train again over models kept in --out")] = False,
) -> None:
    """Train the seed models (cross-modal VAE, Yang et al.'s S1-S4, DCMLS) at one small budget on the same
    synthetic renders and print one table of their errors beside the papers'."""
    from dataclasses import asdict

    from train.compare import SEED_MODELS, Interrupted, table_lines
    from train.compare import compare as run_compare

    names = [n.strip() for n in only.split(",")] if only is not None else None
    bad = [n for n in names or [] if n not in SEED_MODELS]
    if bad:
        fail(f"--only {only!r}: choose from {', '.join(SEED_MODELS)}")
    if image_size & (image_size - 1):
        fail(f"--image-size {image_size}: the compact image encoder takes a power of two (32, 64, 128, 256, 512)")
    check_output_or_fail(out, "--out", folder=True)
    check_output_or_fail(json_out, "--json")
    for option, folder in (("--frames", frames), ("--rhd-root", rhd_root), ("--stb-root", stb_root)):
        _check_folder(folder, option)
    if frames is not None:
        from train.datasets.frames import FrameDataError, load_frames

        try:
            load_frames(frames)
        except FrameDataError as e:
            fail(f"--frames: {e}")
    needed = [(rhd_root, "--rhd-root", Path("evaluation") / "anno_evaluation.pickle")]
    needed += [(stb_root, "--stb-root", Path("labels") / f"{seq}_SK.mat") for seq in ("B1Counting", "B1Random")]
    for root, option, part in needed:  # before any model is trained
        if root is not None and not (root / part).is_file():
            fail(f"{option} {root}: {part} not found (the dataset's own layout)")
    kept = [n for n in names or SEED_MODELS if (out / n.replace(" ", "_").lower() / "last.pt").is_file()]  # recipe()
    if kept and not overwrite:
        fail(f"--out {out}: the models {', '.join(kept)} are kept there; give another --out or --overwrite")
    roots = {k: str(v) for k, v in (("rhd", rhd_root), ("stb", stb_root)) if v is not None}
    stopped = None
    try:
        rows = run_compare(steps, out, names, image_size, batch_size, n_test, frames, roots, not no_progress, workers)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    except Interrupted as e:  # Ctrl-C: the models finished before it are still measured
        rows, stopped = e.rows, e.at
    if rows:
        for line in table_lines(rows):
            typer.echo(line)
        if json_out is not None:
            _write_at_end(json_out, json.dumps([asdict(r) for r in rows], indent=1))
    if stopped is not None:
        typer.echo(f"stopped: {stopped} was interrupted; the table holds the models finished before it", err=True)
        raise typer.Exit(130)


def main() -> None:
    from streamhand.entry import tolerant_output

    tolerant_output()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    app()


if __name__ == "__main__":
    main()
