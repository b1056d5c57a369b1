"""One model's training loop over in-memory tensors, with exact resume.

The whole dataset lives on the training device as one tensor; a batch is a slice of a seeded
permutation, so there is no DataLoader and no per-sample Python. Every epoch rewrites `OUT/last.pt`
(the model and its `TrainState`) and `OUT/model.pt` (the weights that scored best on the validation
split) together, then appends a line to `OUT/metrics.jsonl`. Ctrl-C stops at the next batch
boundary, saves `last.pt`, and `train_model(resume=OUT)` continues to exactly the numbers an
uninterrupted run gets. Under torchrun, every rank trains and only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .augment import augment_batch
from .checkpoint import (atomic_save, checkpoint_bytes, initial_weights, load_checkpoint, make_checkpoint,
                         read_checkpoint, require_digit_model)
from .data import MNIST, load_mnist
from .device import resolve_device
from .errors import CheckpointError, ConfigError, OutputError
from .evaluate import accuracy_and_loss, predict_logits
from .fonts import with_font_digits
from .model_file import MNIST_MEAN, MNIST_STD, Checkpoint, normalise
from .models import count_parameters, create_model, model_tasks
from .optim import make_optimizer, make_schedule, steps_per_batch
from .recipes import DEFAULT_RECIPE, RECIPES, TrainConfig
from .storage import append_line, atomic_write, atomic_write_all, remove_stale_temps, writable_folder
from .tensors import split_train_val, to_float_images

LAST, BEST, METRICS = "last.pt", "model.pt", "metrics.jsonl"  # the files of a run folder


@dataclass
class TrainResult:
    """What a run reports: its folder, epochs done, best validation and test accuracy, time, history."""

    out: Path
    epochs_done: int
    best_val_accuracy: float
    test_accuracy: float | None
    train_time_s: float
    interrupted: bool = False
    history: list[dict] = field(default_factory=list)


@dataclass
class TrainState:
    """Everything training changes, in one place: `state_dict()` is what last.pt keeps beside the
    model's weights, and `load_state_dict()` puts it back so a resumed run continues bit for bit."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler | None
    gen: torch.Generator  # batch order and augmentation (the same on every rank)
    world: int = 1  # processes that trained it; a resume needs as many
    epoch: int = 0  # full epochs done
    step: int = 0  # batches done in the current epoch
    best_val: float = -1.0
    history: list[dict] = field(default_factory=list)  # one record per epoch, as in metrics.jsonl
    elapsed: float = 0.0  # seconds spent training, over every session of the run
    loss_sum: float = 0.0  # the current epoch's loss summed over its images so far (this rank's)
    seen: int = 0  # ... and their number
    epoch_gen_state: torch.Tensor | None = None  # `gen` when the epoch began: its permutation comes from here
    interrupted: bool = False

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": self.schedule.state_dict() if self.schedule is not None else {},
                "epoch": self.epoch, "step": self.step, "best_val": self.best_val, "history": self.history,
                "elapsed": self.elapsed, "loss_sum": self.loss_sum, "seen": self.seen,
                "epoch_gen_state": self.epoch_gen_state, "world": self.world, "gen_state": self.gen.get_state(),
                "torch_rng_state": torch.get_rng_state(), "interrupted": self.interrupted}

    def load_state_dict(self, ts: dict) -> None:
        """Restore a saved state (the model's weights are loaded apart, from the checkpoint)."""
        self.optimizer.load_state_dict(ts["optimizer"])
        if self.schedule is not None:
            self.schedule.load_state_dict(ts["scheduler"])
        self.epoch, self.step, self.best_val = ts["epoch"], ts["step"], ts["best_val"]
        self.history, self.elapsed = list(ts["history"]), ts["elapsed"]
        self.loss_sum, self.seen = ts["loss_sum"], ts["seen"]
        self.epoch_gen_state = ts["epoch_gen_state"]
        self.gen.set_state(ts["gen_state"])
        torch.set_rng_state(ts["torch_rng_state"])


@dataclass
class _Run:
    """What stays fixed while a run trains: its settings, data on the device, and the processes."""

    cfg: TrainConfig
    device: torch.device
    rank: int
    world: int
    X: torch.Tensor  # (N, 1, 28, 28) training images in [0, 1], on the device
    Y: torch.Tensor
    Xv: torch.Tensor  # validation images, uint8 on the CPU (scored in batches)
    Yv: torch.Tensor
    steps_per_epoch: int
    local_batch: int  # this rank's share of a batch
    net: nn.Module  # the model as trained: wrapped in DDP and/or compiled
    use_amp: bool
    meta: dict  # recorded in every checkpoint: config, data fingerprint, command, processes
    data: MNIST  # the whole dataset: its test set scores the best model at the end
    teacher: Checkpoint | None = None  # --teacher, in eval mode on the device

    @property
    def main(self) -> bool:  # only rank 0 writes files, metrics and progress
        return self.rank == 0

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)


class StopOnInterrupt:
    """Turn the first Ctrl-C into a flag checked between batches (so an optimizer step is never cut in
    half); a second Ctrl-C interrupts at once. Signals can only be caught on the main thread."""

    def __enter__(self):
        self.requested = False
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._old)

    def __exit__(self, *exc):
        # Put the old handler back, unless a Ctrl-C already did and that handler has changed it
        # since (the CLI's ignores every Ctrl-C after the one that stopped it).
        if self._old is not None and signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, self._old)


def train_model(cfg: TrainConfig | None = None, *, data: MNIST | None = None, resume: str | Path | None = None,
                progress: bool = True, command: str | None = None) -> TrainResult:
    """Train one model as `cfg` says (or continue the run saved in `resume`) and return its metrics.

    Writes OUT/metrics.jsonl, OUT/last.pt and OUT/model.pt (best on validation, with its test accuracy).
    `command`, if given, is recorded in the checkpoints as the command line that made them.
    """
    saved = None
    if resume is not None:
        cfg, saved = _read_last(Path(resume))
    run, st = _setup(cfg or RECIPES[DEFAULT_RECIPE], data, saved, command)
    if run.cfg.threads:
        torch.set_num_threads(run.cfg.threads)
    try:
        with StopOnInterrupt() as stop:
            while st.epoch < run.cfg.epochs and not st.interrupted:
                _train_epoch(run, st, stop, progress)
            if st.interrupted:
                _save(run, st)
        return _finish(run, st)
    except OutputError as e:  # a full disk, say: what was saved before it is whole, and says so
        raise OutputError(f"{e}; {_saved_so_far(run.out)}") from None


def _saved_so_far(out: Path) -> str:
    """Where a run that could not write stands: resumable from its last.pt, or nothing saved."""
    if not (out / LAST).exists():
        return "nothing of this run was saved"
    epoch = read_checkpoint(out / LAST)["train_state"]["epoch"]
    return f"the run is saved up to epoch {epoch}: once it can be written, continue with `digitrec train --resume {out}`"


def _read_last(resume: Path) -> tuple[TrainConfig, dict]:
    """The config and the saved state of the run in folder `resume`."""
    last = resume / LAST
    saved = read_checkpoint(last)
    if not isinstance(saved, dict) or "train_state" not in saved:
        raise CheckpointError(f"{last}: not a digitrec training state; resume needs the last.pt of a `digitrec train` run")
    config = dict(saved["config"])
    config["arch_args"] = dict(config.get("arch_args", {}))
    return TrainConfig(**{**config, "out": str(resume)}), saved


def _setup(cfg: TrainConfig, data: MNIST | None, saved: dict | None, command: str | None) -> tuple[_Run, TrainState]:
    """Check the settings, join torchrun's group, put the data on the device, build the model and
    its TrainState, and load `saved` (a last.pt) over them."""
    cfg.validate(model_tasks())
    device = resolve_device(cfg.device)
    rank, world, _ = distributed.distributed_env()
    if rank == 0:  # before the data loads: a folder that cannot be written is one line now, not after an epoch
        writable_folder(cfg.out)
    if world > 1:  # launched by torchrun: data-parallel over `world` processes
        device = distributed.init_distributed(device)
        if cfg.batch_size % world:
            raise ConfigError(f"batch size {cfg.batch_size} must be divisible by the {world} processes")
    data = data or load_mnist(cfg.data_dir)
    train_idx, val_idx = split_train_val(len(data.train_labels), cfg.val_size)
    if cfg.subset:
        train_idx = train_idx[: cfg.subset]
    # Validation stays MNIST's held-out digits alone: the fonts' are training images only.
    images, labels, fonts = with_font_digits(data.train_images[train_idx], data.train_labels[train_idx],
                                             cfg.fonts, cfg.font_share)
    # With several processes each takes every world-th image of the epoch's (shared) permutation and
    # batch_size / world of them per step, so the global batch and the step count match one process.
    local_batch = cfg.batch_size // world
    steps_per_epoch = math.ceil(len(labels) // world / local_batch)  # the last, smaller batch is kept
    st, net = _build(cfg, device, world, steps_per_epoch)
    if saved is not None:
        if saved["train_state"].get("world", 1) != world:
            raise ConfigError(f"{cfg.out} was trained with {saved['train_state'].get('world', 1)} process(es); "
                              "resume it with the same number")
        st.model.load_state_dict(saved["state_dict"])
        st.load_state_dict(saved["train_state"])
        command = saved.get("command") or command

    meta = dict(config=dataclasses.asdict(cfg), data_sha256=data.fingerprint,
                extra={**({"command": command} if command else {}), **({"processes": world} if world > 1 else {}),
                           **({"fonts": fonts} if fonts else {})})
    use_amp = cfg.amp and device.type == "cuda" and torch.cuda.is_bf16_supported()
    run = _Run(cfg, device, rank, world, to_float_images(images, device), labels.to(device),
               data.train_images[val_idx], data.train_labels[val_idx],
               steps_per_epoch, local_batch, net, use_amp, meta, data,
               _load_teacher(cfg.teacher, device) if cfg.teacher else None)
    if run.main:
        _tidy_run_folder(run.out, st.history)
    return run, st


def _load_teacher(path: str, device: torch.device) -> Checkpoint:
    """--teacher's model, in eval mode on the device, laid out as the student is for fast convolutions."""
    teacher = require_digit_model(load_checkpoint(path, device))
    teacher.model = _fast_layout(teacher.model, device)
    return teacher


def _fast_layout(model: nn.Module, device: torch.device) -> nn.Module:
    """`model`, channels-last where it has convolutions: ~2x faster on CPU, and for cuDNN."""
    if device.type in ("cpu", "cuda") and any(p.dim() == 4 for p in model.parameters()):
        model = model.to(memory_format=torch.channels_last)
    return model


def _tidy_run_folder(out: Path, history: list[dict]) -> None:
    """Remove the temp files of a process killed while saving, and make metrics.jsonl say what
    last.pt says: a line per epoch it holds (one killed after its metrics line but before its
    last.pt repeats that epoch: the line must not be there twice); none for a fresh run."""
    remove_stale_temps(out, (LAST, BEST, METRICS))
    if history:
        atomic_write(out / METRICS, "".join(json.dumps(rec) + "\n" for rec in history).encode())
    else:
        (out / METRICS).unlink(missing_ok=True)


def _build(cfg: TrainConfig, device: torch.device, world: int, steps_per_epoch: int) -> tuple[TrainState, nn.Module]:
    """A fresh TrainState (seeded model, optimizer, schedule, generator) and the model as trained."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = create_model(cfg.arch, **cfg.arch_args)
    if cfg.init:
        model.load_state_dict(initial_weights(cfg.init, cfg.arch, cfg.arch_args))
    model = _fast_layout(model.to(device), device)
    net = distributed.wrap(model, device) if world > 1 else model
    if cfg.compile:
        net = torch.compile(net)
    opt = make_optimizer(cfg.optimizer, model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                         momentum=cfg.momentum)
    sched = make_schedule(cfg.schedule, opt, lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                          step_gamma=cfg.step_gamma)
    return TrainState(model, opt, sched, gen, world=world, epoch_gen_state=gen.get_state()), net


def _epoch_order(run: _Run, st: TrainState) -> torch.Tensor:
    """This rank's images of the epoch, in order: its share of a permutation drawn from the generator
    as it stood when the epoch began (so a resumed epoch gets the same one)."""
    mid_epoch = st.gen.get_state()
    st.gen.set_state(st.epoch_gen_state)
    perm = torch.randperm(len(run.Y), generator=st.gen)
    if st.step > 0:  # resuming mid-epoch: the rest of the sequence continues where it stopped
        st.gen.set_state(mid_epoch)
    if run.world > 1:
        perm = perm[run.rank:len(run.Y) // run.world * run.world:run.world]
    return perm.to(run.device)


def _train_step(run: _Run, st: TrainState, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """One optimizer step on a batch of images in [0, 1]; returns the batch's mean loss."""
    cfg = run.cfg
    xb = augment_batch(xb, cfg.augment, st.gen, elastic=cfg.elastic, labels=yb, styles=cfg.styles, glyphs=cfg.glyphs,
                       noise=cfg.noise, extremes=cfg.extremes)
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.use_amp):
        loss = F.cross_entropy(run.net(normalise(xb)), _targets(run, xb, yb), label_smoothing=cfg.label_smoothing)
    st.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    st.optimizer.step()
    if st.schedule is not None and steps_per_batch(cfg.schedule):
        st.schedule.step()
    return loss


def _targets(run: _Run, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """The labels (B,), or with a teacher the (B, 10) mix of their one-hot rows and its probabilities
    on the same augmented images (raw softmax, not calibrated: the softer, the more it tells)."""
    if run.teacher is None:
        return yb
    t = run.teacher
    with torch.no_grad():
        soft = F.softmax(t.model(normalise(xb, t.mean, t.std)).float(), dim=1)  # (B, 10)
    return (1 - run.cfg.distill) * F.one_hot(yb, soft.shape[1]).float() + run.cfg.distill * soft


def _train_epoch(run: _Run, st: TrainState, stop: StopOnInterrupt, progress: bool) -> None:
    """The batches of one epoch (the rest of it, after a resume), then its validation and saves;
    a Ctrl-C sets `st.interrupted` and leaves the epoch unfinished."""
    st.model.train()
    t0 = time.perf_counter()
    perm = _epoch_order(run, st)
    bar = tqdm(total=run.steps_per_epoch, initial=st.step, desc=f"epoch {st.epoch + 1}/{run.cfg.epochs}",
               disable=None if (progress and run.main) else True, leave=False, unit="batch", dynamic_ncols=True)
    first_step = st.step
    while st.step < run.steps_per_epoch and not st.interrupted:
        idx = perm[st.step * run.local_batch:(st.step + 1) * run.local_batch]
        loss = _train_step(run, st, run.X[idx], run.Y[idx])
        st.loss_sum += loss.item() * len(idx)
        st.seen += len(idx)
        st.step += 1
        bar.update(1)
        if st.step % 20 == 0:
            rate = (st.step - first_step) * run.cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{st.loss_sum / st.seen:.4f}", img_s=f"{rate:,.0f}")
        # Ctrl-C reaches every rank at slightly different moments: stop together, or hang.
        st.interrupted = stop.requested if run.world == 1 else distributed.all_sum([float(stop.requested)], run.device)[0] > 0
    bar.close()
    st.elapsed += time.perf_counter() - t0
    if not st.interrupted:
        _end_epoch(run, st, t0, progress)


def _end_epoch(run: _Run, st: TrainState, t0: float, progress: bool) -> None:
    """Validate, keep the best model and save last.pt, then record the epoch (metrics.jsonl, progress line)."""
    if st.schedule is not None and run.cfg.schedule == "step":
        st.schedule.step()
    val_acc, val_loss = _validate(run, st.model)
    st.epoch += 1
    loss_sum, seen = distributed.all_sum([st.loss_sum, st.seen], run.device) if run.world > 1 else (st.loss_sum, st.seen)
    took = time.perf_counter() - t0
    rec = {"epoch": st.epoch, "train_loss": loss_sum / max(seen, 1), "val_accuracy": val_acc, "val_loss": val_loss,
           "lr": st.optimizer.param_groups[0]["lr"], "epoch_time_s": round(took, 3), "elapsed_s": round(st.elapsed, 3),
           "images_per_s": round(len(run.Y) // run.world * run.world / max(time.perf_counter() - t0, 1e-9))}
    st.history.append(rec)
    st.step, st.loss_sum, st.seen = 0, 0.0, 0
    st.epoch_gen_state = st.gen.get_state()
    best = None
    if val_acc > st.best_val or not len(run.Yv):  # without a validation split, the last epoch is "best"
        st.best_val = val_acc
        best = make_checkpoint(st.model, run.cfg.arch, run.cfg.arch_args, config=run.meta["config"],
                               data_sha256=run.meta["data_sha256"],
                               metrics={"val": {"accuracy": val_acc, "loss": val_loss, "epoch": st.epoch}},
                               extra={**run.meta["extra"], "train_time_s": st.elapsed,
                                      "parameters": count_parameters(st.model)})
    _save(run, st, best)
    if run.main:  # after last.pt: a line in metrics.jsonl is an epoch a resumed run will not repeat
        append_line(run.out / METRICS, json.dumps(rec))
        if progress:
            tqdm.write(f"epoch {st.epoch}/{run.cfg.epochs}  loss {rec['train_loss']:.4f}  val acc {val_acc:.4f}  "
                       f"{rec['epoch_time_s']:.1f}s  {rec['images_per_s']:,} img/s", file=sys.stderr)


def _validate(run: _Run, model: nn.Module) -> tuple[float, float]:
    """(accuracy, mean loss) on the validation split; under torchrun each rank scores a share."""
    if not len(run.Yv):
        return float("nan"), float("nan")
    if run.world == 1:
        return accuracy_and_loss(model, run.Xv, run.Yv, MNIST_MEAN, MNIST_STD, device=run.device)
    distributed.broadcast_buffers(model)  # every rank scores (and rank 0 saves) rank 0's batch-norm statistics
    logits = predict_logits(model, run.Xv[run.rank::run.world], MNIST_MEAN, MNIST_STD, device=run.device)
    yv = run.Yv[run.rank::run.world]
    right, loss, count = distributed.all_sum([(logits.argmax(1) == yv).sum().item(),
                                              F.cross_entropy(logits, yv, reduction="sum").item(), len(yv)], run.device)
    return right / count, loss / count


def _save(run: _Run, st: TrainState, best: dict | None = None) -> None:
    """Save last.pt, and model.pt when `best` is given, as one step: both are written in full before
    either is renamed, model.pt first. A full disk leaves the previous pair, which resumes; a kill
    between the renames leaves model.pt an epoch ahead, which the resumed run writes again alike."""
    if not run.main:
        return
    last = make_checkpoint(st.model, run.cfg.arch, run.cfg.arch_args, config=run.meta["config"],
                           data_sha256=run.meta["data_sha256"], metrics={"val": {"accuracy": st.best_val}},
                           extra={**run.meta["extra"], "train_state": st.state_dict()})
    files = [(run.out / BEST, checkpoint_bytes(best))] if best is not None else []
    atomic_write_all(files + [(run.out / LAST, checkpoint_bytes(last))])


def _finish(run: _Run, st: TrainState) -> TrainResult:
    """Score the best model on the test set (reported, never used to choose) and record it in model.pt."""
    test_acc = None
    if run.main and not st.interrupted and (run.out / BEST).exists():
        best = read_checkpoint(run.out / BEST)
        best_model = create_model(run.cfg.arch, **run.cfg.arch_args).to(run.device)
        best_model.load_state_dict(best["state_dict"])
        test_acc, test_loss = accuracy_and_loss(best_model, run.data.test_images, run.data.test_labels,
                                                MNIST_MEAN, MNIST_STD, device=run.device)
        best["metrics"]["test"] = {"accuracy": test_acc, "loss": test_loss}
        best["train_time_s"] = st.elapsed
        atomic_save(best, run.out / BEST)
    if run.world > 1:
        distributed.barrier()  # the others wait until rank 0 has written the final model
    return TrainResult(run.out, st.epoch, st.best_val, test_acc, st.elapsed, st.interrupted, st.history)
