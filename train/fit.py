"""The training loop: seeded synthetic batches (optionally made by worker processes), Adam, KL warm-up,
progress bar, periodic evaluation, atomic checkpoints with embedded config and metrics, exact resume.

On CPU or one CUDA GPU (bf16 autocast on either with ``precision: bf16``; fp32 on a CPU without bf16 arithmetic at
speed, :func:`precision_here`); under ``torchrun`` one process per GPU with DistributedDataParallel. Checkpoints hold
CPU tensors, so they load on any device.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from streamhand.checkpoint import save_checkpoint
from streamhand.models import HandPoseModel, build_model
from train.config import MACHINE_FIELDS, TrainConfig
from train.datasets.pairs import PoseBatch
from train.datasets.synthetic import batches, pooled
from train.dcmls import DiscriminatorStep, dcmls_loss
from train.distributed import Placement, leave, place
from train.evaluate import evaluate_synthetic
from train.losses import training_loss
from train.progress import Heartbeat, progress_bar

log = logging.getLogger(__name__)


class Diverged(RuntimeError):
    """The loss stopped being a number: every later step would only spread it through the weights."""


#: the files a run writes in its folder (``<out_dir>/<name>``): what ``--overwrite`` discards, and nothing else
RUN_FILES = ("last.pt", "last.pt.tmp", "history.json")


def discard_run(folder: Path) -> list[Path]:
    """Delete the files an earlier run wrote in ``folder`` (:data:`RUN_FILES`; anything else there is kept), so that
    a run started again over it leaves no part of the old one beside its own. Returns the files deleted."""
    gone = [folder / f for f in RUN_FILES if (folder / f).is_file()]
    for f in gone:
        f.unlink()
    return gone


def _make_folder(folder: Path) -> list[Path]:
    """Make ``folder`` (and the folders above it that are missing); returns those this call made, deepest first."""
    made = []
    for p in (folder, *folder.parents):
        if p.exists():
            break
        made.append(p)
    folder.mkdir(parents=True, exist_ok=True)
    return made


def _remove_if_empty(made: list[Path]) -> None:
    """Remove the folders a run made (``made``, deepest first) where it left them empty: a run that failed or was
    stopped before its first checkpoint leaves no empty folder behind. A folder holding anything, and those above
    it, are kept; a folder that was there before the run is never in ``made``."""
    for d in made:
        try:
            d.rmdir()  # only an empty folder is removed
        except OSError:
            return


def _lr_at(cfg: TrainConfig, step: int) -> float:
    if cfg.lr_schedule == "cosine":
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step / cfg.steps, 1.0))))
    return cfg.lr


class TrainStep(torch.nn.Module):
    """The loss as a module's forward, so that DistributedDataParallel sees (and synchronises) every step."""

    def __init__(self, model: HandPoseModel, cfg: TrainConfig):
        super().__init__()
        self.model, self.cfg = model, cfg
        lc = cfg.loss
        self.weights = {"3d": lc.weight_3d, "2d": lc.weight_2d, "heatmap": lc.weight_heatmap, "cloud": lc.weight_cloud}

    def forward(self, b: PoseBatch, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
        n = len(b.x2d)
        k = n if self.cfg.labelled_fraction >= 1.0 else round(self.cfg.labelled_fraction * n)
        loss, logs = None, {}
        for s, labelled in ((slice(0, k), True), (slice(k, n), False)):  # the first k keep their 3D labels
            if s.stop == s.start:
                continue
            part_loss, part_logs = self._loss(b.take(s), labelled, beta)
            w = (s.stop - s.start) / n
            loss = part_loss * w if loss is None else loss + part_loss * w
            logs.update({k2 if labelled else f"unlabelled_{k2}": v for k2, v in part_logs.items()})
        logs["loss"] = float(loss.detach())
        return loss, logs

    def tensors(self, b: PoseBatch, labelled: bool = True) -> tuple[dict, dict]:
        """A batch's encoder inputs and decoder targets on the model's device."""
        dev = next(self.model.parameters()).device

        def put(x: torch.Tensor) -> torch.Tensor:
            return x.to(dev, non_blocking=True)

        inputs = {"2d": put(b.x2d)} if "2d" in self.model.encoders else {}
        if "world" in self.model.encoders:
            inputs["world"] = put(b.xworld)
        targets = {}
        if labelled:
            targets["3d"] = put(b.y3d)
            if "3d" in self.model.encoders:
                inputs["3d"] = targets["3d"]
        if "2d" in self.model.decoders:
            targets["2d"] = put(b.y2d)
        for m, img in b.images.items():  # the image experts' crops; their reconstruction where it has a decoder
            x = put(img)
            if m in self.model.modalities:
                inputs[m] = x
            if m in self.model.decoders:
                targets[m] = x
        return inputs, targets

    def _loss(self, b: PoseBatch, labelled: bool, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
        inputs, targets = self.tensors(b, labelled)
        dev = next(self.model.parameters()).device
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16"):
            lc = self.cfg.loss
            if self.cfg.model.architecture == "dcmls":
                return dcmls_loss(self.model, inputs, targets, beta, self.weights, lc.recon_3d)
            return training_loss(self.model, inputs, targets, beta, self.weights, lc.objective, lc.recon_3d,
                                 lc.fused_kl)  # fmt: skip


def _validate(model: HandPoseModel, cfg: TrainConfig):
    """Synthetic validation hands, or the published setting's test split (its true 2D)."""
    if cfg.data.crops:  # image experts: the fused run-time experts on rendered crops
        from train.evaluate import evaluate_fused

        return evaluate_fused(model, cfg.data, n=cfg.eval_n, seed=10_000 + cfg.seed)
    if cfg.data.kind == "synthetic":
        return evaluate_synthetic(model, n=cfg.eval_n, seed=10_000 + cfg.seed)
    from train.datasets.published import published_hands
    from train.evaluate import evaluate_handset

    return evaluate_handset(model, published_hands(cfg.data, "test"))


def init_from(model: HandPoseModel, path: str | Path) -> list[str]:
    """Start ``model`` from a checkpoint's weights (a path or a shipped model's name). Experts or decoders the
    checkpoint lacks (a new image expert beside trained keypoint ones) keep their fresh initialisation; any other
    difference is an error. Returns the modules that were not in the checkpoint."""
    from streamhand.checkpoint import resolve_model

    path = resolve_model(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a file of another kind: pickle, zip and weights-only errors alike
        raise ValueError(f"{path}: not a streamhand checkpoint ({type(e).__name__})") from None
    state = raw.get("state_dict") if isinstance(raw, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a streamhand checkpoint (no state_dict)")
    own = model.state_dict()
    wrong = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise ValueError(f"{path}: its weights do not fit this model ({', '.join(wrong[:3])}); "
                         "z_dim, hidden and hidden_layers must match")  # fmt: skip
    missing = model.load_state_dict(state, strict=False).missing_keys
    new = sorted({".".join(k.split(".")[:2]) for k in missing})
    log.info("initialised from %s%s", path, f" (new: {', '.join(new)})" if new else "")
    return new


def freeze(model: HandPoseModel, prefixes: list[str]) -> None:
    """Stop training the parameters whose names start with one of ``prefixes`` (e.g. ``encoders.2d``)."""
    names = [n for n, _ in model.named_parameters()]
    for p in prefixes:
        if not any(n == p or n.startswith(p + ".") for n in names):
            mods = sorted({".".join(n.split(".")[:2]) for n in names})
            raise ValueError(f"frozen: {p!r} names no part of this model (it has {', '.join(mods)})")
    for n, param in model.named_parameters():
        if any(n == p or n.startswith(p + ".") for p in prefixes):
            param.requires_grad_(False)


def _pool(stream, model: HandPoseModel, cfg: TrainConfig, start: int, where: Placement, progress: bool):
    """``data.pool_samples`` made once and replayed; crops of an image expert with a frozen trunk become its
    features as they arrive (``image_encoder: mediapipe``), so each crop's trunk runs once, not once a pass."""
    trunks = {m: e for m, e in model.encoders.items() if hasattr(e, "features")}

    def convert(b: PoseBatch) -> PoseBatch:
        for m, enc in trunks.items():
            if m in b.images:
                b.images[m] = torch.cat([enc.features(x.to(where.device)).cpu() for x in b.images[m].split(64)])
        return b

    n = cfg.data.pool_samples
    log.info("before step 1: making %d samples once (replayed every pass)%s", n,
             f"; their {', '.join(trunks)} crops become the frozen trunk's features" if trunks else "")  # fmt: skip
    cols = [TextColumn("[bold]pool"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with progress_bar(*cols, disable=not progress) as bar:
        task = bar.add_task("pool", total=n)
        beat = Heartbeat(bar, f"pool of {cfg.name}", n, unit="sample ")

        def made(k: int) -> None:
            bar.update(task, completed=k)
            beat(k)

        out = pooled(stream, n, cfg.batch_size, cfg.seed, start, convert, made)
    stream.close()  # the pool is made: stop the data workers
    return out


def fit(cfg: TrainConfig, resume: str | Path | None = None, progress: bool = True, overwrite: bool = False,
        steps_from: str | None = None) -> Path:  # fmt: skip
    """Train per ``cfg``; returns the path of the final checkpoint (``<out_dir>/<name>/last.pt``). With
    ``overwrite`` the files of a run kept in that folder are discarded as training starts (:func:`discard_run`);
    ``steps_from`` says where ``cfg.steps`` came from for messages (``--steps``; None: the recipe)."""
    where = place(cfg.device)
    try:
        return _fit(cfg, where, resume, progress and where.main, overwrite, steps_from)
    finally:
        leave()


def _packaged_hint(path: str | Path) -> str:
    """How to start a new run from the weights at ``path`` (a packaged or shipped model): the recipe's
    ``init_from``, by the shipped model's name where it is one."""
    from streamhand.checkpoint import shipped_models

    here = Path(path).resolve()
    name = next((n for n, p in shipped_models().items() if Path(p).resolve() == here), None)
    return f"init_from: {name or path}"


def _resume_state(path: str | Path, cfg: TrainConfig, steps_from: str | None = None) -> dict:
    """The training state saved in ``path``, checked against the recipe before any of it is used: a ValueError
    (one line naming ``--resume``) for a file that is not a training checkpoint (a packaged or shipped model has
    weights but no run's training state), one whose model differs from the recipe's, or one whose run already
    reached the steps asked (``cfg.steps``, from ``steps_from``: ``--steps``, or None for the recipe)."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a file that is not its own
        raise ValueError(f"--resume {path}: not a readable training checkpoint ({type(e).__name__})") from None
    if not isinstance(raw, dict) or "state_dict" not in raw or "step" not in raw:
        raise ValueError(f"--resume {path}: not a training checkpoint (no state_dict and step); "
                         "resume from a run's last.pt")  # fmt: skip
    if "optimizer" not in raw or "torch_rng" not in raw:
        raise ValueError(f"--resume {path}: a packaged model (its weights without a run's optimizer and random "
                         f"state), not a run's last.pt; to train from its weights, start a run with "
                         f"`{_packaged_hint(path)}` in the recipe")  # fmt: skip
    saved = (raw.get("train_config") or {}).get("model") or raw.get("model_config") or {}
    want = cfg.model.model_dump(mode="json")
    differ = sorted(k for k in want if k in saved and saved[k] != want[k])
    if differ:
        shown = ", ".join(f"{k}: {saved[k]!r} there, {want[k]!r} here" for k in differ[:3])
        raise ValueError(f"--resume {path}: its model differs from the recipe's ({shown})")
    then = raw.get("train_config") or {}
    at = int(raw["step"])
    if at >= cfg.steps:
        asked = f"the {cfg.steps} steps asked ({steps_from or 'the recipe'})"
        own = then.get("steps")
        done = (f"that run already finished its {at} steps" if isinstance(own, int) and at >= own
                else f"that run is already at step {at}" + (f" of its {own}" if isinstance(own, int) else ""))
        raise ValueError(f"--resume {path}: {done}, {'past' if at > cfg.steps else 'at'} {asked}; give --steps N "
                         f"above {at} to train it further")  # fmt: skip
    how = cfg.model_dump(mode="json")
    # what a run may change when it continues: how long, where, on what machine; the model is checked above; the
    # rest is the recipe
    moved = sorted(k for k in how if k in then and then[k] != how[k]
                   and k not in ("model", "steps", "out_dir", *MACHINE_FIELDS))  # fmt: skip
    if moved:
        log.warning("--resume %s: that run's recipe differs from this one in %s: it continues under this one",
                    path, ", ".join(moved))  # fmt: skip
    return raw


def precision_here(cfg: TrainConfig, device: torch.device, cpuinfo: Path = Path("/proc/cpuinfo")) -> TrainConfig:
    """The recipe as it trains on ``device``: ``precision: bf16`` on a CPU whose bfloat16 arithmetic takes PyTorch's
    slow path (no AVX-512, AMX or ARM BF16: :func:`streamhand.cpu.bf16_at_speed`), or one the system does not
    describe (no /proc/cpuinfo: Windows, macOS), trains in fp32 instead, said in a warning and recorded in the
    checkpoints' recipe."""
    from streamhand.cpu import bf16_at_speed

    if cfg.precision != "bf16" or device.type != "cpu":
        return cfg
    fast = bf16_at_speed(cpuinfo)
    if fast:
        return cfg
    why = ("this CPU has no bfloat16 arithmetic at speed (no AVX-512, AMX or ARM BF16)" if fast is False else
           "this system does not list the CPU's instruction sets (Windows, macOS), so bfloat16 at speed is not known")
    log.warning("precision bf16: %s, where a training step takes about 30 times as long as in fp32 without it: "
                "training in fp32", why)  # fmt: skip
    return cfg.model_copy(update={"precision": "fp32"})


def _fit(cfg: TrainConfig, where: Placement, resume: str | Path | None, progress: bool, overwrite: bool = False,
         steps_from: str | None = None) -> Path:  # fmt: skip
    """:func:`fit` in this process (one of several under ``torchrun``)."""
    cfg = precision_here(cfg, where.device)
    out = Path(cfg.out_dir) / cfg.name  # made once everything before the first step has worked
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = build_model(cfg.model)
    if cfg.init_from and resume is None:
        init_from(model, cfg.init_from)
    freeze(model, cfg.frozen)
    model.to(where.device)
    step_fn: torch.nn.Module = TrainStep(model, cfg)
    if where.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [where.device.index] if where.device.type == "cuda" else None
        step_fn = DistributedDataParallel(step_fn, device_ids=ids, find_unused_parameters=True)
    disc = DiscriminatorStep(model, cfg.lr) if cfg.model.architecture == "dcmls" else None
    if disc is not None and where.world > 1:
        raise ValueError("dcmls trains in one process (its discriminators are updated outside the model's step)")
    own = {id(p) for p in disc.parameters} if disc is not None else set()
    trainable = [p for p in model.parameters() if p.requires_grad and id(p) not in own]
    opt = torch.optim.Adam(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, history, running = 0, [], None
    if resume is not None:
        raw = _resume_state(resume, cfg, steps_from)
        model.load_state_dict(raw["state_dict"])
        if "optimizer" in raw:
            opt.load_state_dict(raw["optimizer"])
        start = int(raw.get("step", 0))
        history = list(raw.get("history", []))
        running = raw.get("running_loss")  # the smoothed loss as the run left it (None: a checkpoint from before)
        if "torch_rng" in raw:
            torch.set_rng_state(raw["torch_rng"])
        log.info("resumed from %s at step %d", resume, start)
    model.train()
    mp = None
    if cfg.data.dataset == "frames":
        from train.datasets.frame_pairs import load_frame_pairs

        crop = (cfg.model.image_size, cfg.model.crop_view) if "rgb" in cfg.data.crops else None
        mp = load_frame_pairs(cfg.data.root, cfg.data.mediapipe_cache, progress, crop)
    elif cfg.data.mediapipe_pairs:
        from train.datasets.mediapipe_pairs import cache_path, load_shards, shards_of

        d = cfg.data
        missing = [k for k, s in shards_of(d.mediapipe_pairs, d.mediapipe_seed, d.mediapipe_shards)
                   if not cache_path(d.mediapipe_cache, k, s).is_file()]  # fmt: skip
        if missing:
            log.info("before step 1: rendering %d hands and labelling them with MediaPipe (about 8-10 per second "
                     "on one core; cached in %s for the next run; `python -m train mediapipe-pairs` makes the "
                     "shards in parallel)", sum(missing), d.mediapipe_cache)  # fmt: skip
        mp = load_shards(d.mediapipe_cache, d.mediapipe_pairs, d.mediapipe_seed, d.mediapipe_shards)
        log.info("%d MediaPipe-labelled hands in the mix", len(mp["left"]))
    pool = cfg.data.pool_samples > 0  # a pool is made from the stream's start, a resumed run's too
    data = batches(cfg.seed, cfg.data, cfg.batch_size, 0 if pool else start, mp, cfg.workers, where.rank)
    if pool:
        data = _pool(data, model, cfg, start, where, progress)
    metrics: dict = history[-1] if history else {}
    made = _make_folder(out) if where.main else []
    if overwrite and where.main:  # started again: nothing of the old run is kept beside this one's files
        gone = discard_run(out)
        if gone:
            log.info("--overwrite: discarded the earlier run's %s", ", ".join(str(f) for f in gone))
    try:
        return _train(cfg, where, model, step_fn, disc, opt, data, out, resume, start, history, metrics, running,
                      progress)  # fmt: skip
    except BaseException:  # failed or stopped: a folder this run made and left empty goes
        _remove_if_empty(made)
        raise


def _train(cfg: TrainConfig, where: Placement, model: HandPoseModel, step_fn: torch.nn.Module,
           disc: DiscriminatorStep | None, opt: torch.optim.Optimizer, data: Iterator[PoseBatch], out: Path,
           resume: str | Path | None, start: int, history: list, metrics: dict, running: float | None,
           progress: bool) -> Path:  # fmt: skip
    """The steps from ``start`` to ``cfg.steps``, with evaluation and checkpoints into ``out``; the smoothed loss
    continues from ``running`` (a resumed run's, as it was saved)."""
    t0 = time.time()
    log.info("training on %s%s, %s, %d data worker(s)", where.device,
             f" x{where.world} processes" if where.world > 1 else "", cfg.precision, cfg.workers)  # fmt: skip

    def save(path: Path, step: int) -> None:
        save_checkpoint(
            path, model, train_config=cfg.model_dump(mode="json"), metrics=metrics, step=step,
            history=history, optimizer=opt.state_dict(), torch_rng=torch.get_rng_state(), running_loss=running,
            data={"kind": "synthetic", "seed": cfg.seed, "samples_seen": step * cfg.batch_size,
                  "labelled_hands": cfg.data.dataset, **({"root": cfg.data.root} if cfg.data.root else {})},
        )  # fmt: skip

    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeRemainingColumn()]  # fmt: skip
    with progress_bar(*cols, disable=not progress) as bar:
        task = bar.add_task(f"train {cfg.name}", total=cfg.steps, completed=start, info="")
        beat = Heartbeat(bar, f"train {cfg.name}", cfg.steps, unit="step ")
        train_s, rate = 0.0, 0.0  # seconds spent on batches and steps (not evaluation or saving)
        # the checkpoint this run's out folder keeps: the one it continues, until it saves its own
        saved = start if resume is not None and Path(resume).resolve() == (out / "last.pt").resolve() else 0
        done = start
        try:
            for step in range(start, cfg.steps):
                t_step = time.perf_counter()
                b = next(data)
                for g in opt.param_groups:
                    g["lr"] = _lr_at(cfg, step)
                beta = cfg.loss.beta * min(1.0, (step + 1) / max(cfg.loss.warmup_steps, 1))
                if disc is not None:  # the min-max of DCMLS: the discriminators' step, then the rest's
                    disc(*step_fn.tensors(b))
                loss, logs = step_fn(b, beta)
                if not math.isfinite(logs["loss"]):  # before the step: the weights stay as they were
                    kept = f"the last checkpoint, of step {saved}, is kept" if saved else "no checkpoint was saved"
                    raise Diverged(
                        f"the loss became {logs['loss']} at step {step + 1} (learning rate {_lr_at(cfg, step):g}); "
                        f"{kept}: lower lr, or check the recipe's loss weights"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                running = logs["loss"] if running is None else 0.98 * running + 0.02 * logs["loss"]
                done = step + 1
                train_s += time.perf_counter() - t_step
                rate = (done - start) * cfg.batch_size * where.world / max(train_s, 1e-9)
                if not where.main:
                    continue
                if done % cfg.eval_every == 0 or done == cfg.steps:
                    m = _validate(model, cfg)
                    metrics = {"step": done, "loss": running, "val_epe_mean_mm": m.epe_mean_mm,
                               "val_epe_median_mm": m.epe_median_mm, "val_auc_20_50": m.auc_20_50,
                               "elapsed_s": time.time() - t0, "samples_per_s": rate, "device": str(where.device),
                               "processes": where.world}  # fmt: skip
                    history.append(metrics)
                    log.info("step %d loss %.4f val EPE %.2f mm", done, running, m.epe_mean_mm)
                if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                    save(out / "last.pt", done)
                    saved = done
                if done % 50 == 0 or done == cfg.steps:
                    ep = metrics.get("val_epe_mean_mm")
                    info = f"loss {running:.3f}  {rate:,.0f} samples/s" + (f"  val EPE {ep:.2f} mm" if ep else "")
                    bar.update(task, completed=done, info=info)
                    beat(done, info, train_s / (done - start))
        except KeyboardInterrupt:
            if where.main:
                kept = out / "last.pt"
                log.warning("interrupted at step %d of %d; %s", done, cfg.steps,
                            f"the last checkpoint, of step {saved}, is kept: --resume {kept} continues"
                            if saved else "this run saved no checkpoint yet")  # fmt: skip
            raise
    data.close()  # stops the data workers
    if where.main:
        (out / "history.json").write_text(json.dumps(history, indent=1))
    return out / "last.pt"
