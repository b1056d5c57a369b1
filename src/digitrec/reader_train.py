"""Training the line reader (`linecnn`, behind `digitrec read`) on lines composed from MNIST digits.

Each step draws a fresh batch of lines from `lines.compose_lines` (one length per batch), so the
reader never sees the same line twice; it is chosen on validation lines made only of the digits the
split holds out. It shares the digit trainer's pieces: the optimizer and schedule factories
(`optim`), the validation split and normalisation (`tensors`), checkpoint saving, a progress bar
with a line per validation on stderr, and OUT/metrics.jsonl with one record per validation.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import atomic_save, init_record, initial_checkpoint, make_checkpoint, read_checkpoint
from .ctc import BLANK, CLASSES, decode
from .data import MNIST, load_mnist
from .errors import CheckpointError, ConfigError
from .fonts import with_font_digits
from .framing import STRIP_HEIGHT
from .lines import compose_lines
from .loop import StopOnInterrupt
from .model_file import MNIST_MEAN, MNIST_STD, normalise
from .models import create_model
from .optim import make_optimizer, make_schedule
from .recipes import ReaderConfig
from .storage import append_line, remove_stale_temps, writable_folder
from .device import resolve_device
from .tensors import randint, split_train_val

__all__ = ["ReaderConfig", "line_accuracy", "prepare_reader_dir", "train_reader", "READER"]

READER, LAST, METRICS = "reader.pt", "last.pt", "metrics.jsonl"
VAL_SEED = 1234  # validation lines are drawn once, from their own generator: the same for every run


def prepare_reader_dir(out: str | Path, force: bool = False) -> None:
    """Refuse a folder that already holds a reader or a run of one unless `force` (the new one then
    replaces it)."""
    if ((Path(out) / READER).exists() or (Path(out) / LAST).exists()) and not force:
        raise ConfigError(f"{out} already holds a reader; continue its run with --resume, overwrite it with --force "
                          "or choose another --out")


def line_accuracy(model: nn.Module, batches, mean: float = MNIST_MEAN, std: float = MNIST_STD) -> float:
    """Share of lines read exactly (every digit and mark right, none missing or extra), over batches
    of (x, targets, lengths) as `compose_lines` makes them."""
    right = total = 0
    model.eval()
    with torch.inference_mode():
        for x, targets, lengths in batches:
            for j, digits in enumerate(decode(model(normalise(x, mean, std)).float().cpu().numpy())):
                right += [d.symbol for d in digits] == targets[j, :lengths[j]].tolist()
            total += len(x)
    return right / max(total, 1)


def train_reader(cfg: ReaderConfig | None, out: str | Path, *, data: MNIST | None = None, data_dir=None,
                 progress: bool = True, command: str | None = None, resume: bool = False,
                 device: str = "cpu") -> dict:
    """Train `linecnn` on composed lines from MNIST's training digits (less `val_size` held out for
    validation lines); save OUT/reader.pt (the best on validation) and return its metrics.

    At every validation OUT/last.pt keeps the whole state (weights, optimizer, schedule, RNG, the
    best so far), and Ctrl-C saves it too; `resume=True` continues the run in OUT with its own
    settings (`cfg` is then ignored) to the numbers an uninterrupted run gets.

    On a GPU (`device`) the digits, the composed lines and the model live there; the random draws
    stay on one CPU generator, so a seed makes the same random choices on every device."""
    out = writable_folder(out)  # before the data loads: a folder that cannot be written is one line at once
    remove_stale_temps(out, (READER, LAST))  # left by a process killed while saving
    saved = _load_state(out) if resume else None
    cfg = ReaderConfig(**{**saved["config"], "channels": tuple(saved["config"]["channels"])}) if saved else cfg
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    dev = resolve_device(device)
    data = data or load_mnist(data_dir)
    tr, va = split_train_val(len(data.train_images), cfg.val_size)
    images, labels, fonts = with_font_digits(data.train_images[tr], data.train_labels[tr], cfg.fonts, cfg.font_share)
    images, labels = images.to(dev), labels.to(dev)
    val = [(x.to(dev), y, n) for x, y, n in _validation_lines(data.train_images[va], data.train_labels[va], cfg)]
    arch = {"channels": list(cfg.channels), "hidden": cfg.hidden, "classes": BLANK + 1}
    run = _Run(cfg, {**arch, "lstm": cfg.lstm} if cfg.lstm else arch, dev)  # older readers' arguments stay as they were
    if saved:
        run.load(saved)
    _trim_metrics(out, run.step)
    every = max(1, cfg.steps // 10)
    t0 = time.perf_counter() - run.elapsed
    bar = tqdm(total=cfg.steps, initial=run.step, disable=None if progress else True, leave=False, unit="step",
               dynamic_ncols=True)
    with StopOnInterrupt() as stop:  # Ctrl-C stops between steps, so a step is never cut in half
        while run.step < cfg.steps:
            loss = _train_step(run.model, run.opt, run.sched, images, labels, cfg, run.gen)
            run.step, run.seen = run.step + 1, run.seen + cfg.batch_size
            bar.update(1)
            run.elapsed = time.perf_counter() - t0
            if run.step % every == 0 or run.step == cfg.steps:
                _validate(run, val, loss.item(), out, progress)
                atomic_save(run.state(command), out / LAST)
            if stop.requested:
                bar.close()
                atomic_save(run.state(command), out / LAST)
                raise KeyboardInterrupt
    bar.close()
    run.model.load_state_dict(run.best_state)
    metrics = {"val": {"line_accuracy": run.best, "lines": sum(len(v[0]) for v in val)},
               "train_seconds": time.perf_counter() - t0, "train_lines": run.seen, "device": str(dev)}
    extra = {"classes": list(CLASSES) + ["blank"], "input_size": [1, STRIP_HEIGHT, 0], "fonts": fonts,
             **({"command": command} if command else {}), **({"init": run.init} if run.init else {})}
    ckpt = make_checkpoint(run.model, "linecnn", run.arch_args, config=dataclasses.asdict(cfg), metrics=metrics, extra=extra)
    atomic_save(ckpt, out / READER)
    return metrics


class _Run:
    """A reader run's changing state: model, optimizer, schedule, RNG, step, the best so far."""

    def __init__(self, cfg: ReaderConfig, arch_args: dict, device: torch.device):
        self.cfg, self.arch_args = cfg, arch_args
        self.model = create_model("linecnn", **arch_args)
        # What it starts from is recorded now, not when the run ends: a file gone by then fails here, not after it.
        start = initial_checkpoint(cfg.init, "linecnn", arch_args) if cfg.init else None
        self.init = init_record(start, cfg.init) if start else None
        if start:
            self.model.load_state_dict(start["state_dict"])
        self.model.to(device)  # before the optimizer, whose state then lives beside the weights
        self.opt = make_optimizer("adamw", self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = make_schedule("onecycle", self.opt, lr=cfg.lr, total_steps=cfg.steps, pct_start=0.15)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.step, self.seen, self.elapsed, self.best, self.best_state = 0, 0, 0.0, -1.0, None

    def state(self, command: str | None) -> dict:
        rs = {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "gen_state": self.gen.get_state(),
              "torch_rng_state": torch.get_rng_state(), "step": self.step, "seen": self.seen, "elapsed": self.elapsed,
              "best": self.best, "best_state": self.best_state}
        return make_checkpoint(self.model, "linecnn", self.arch_args, config=dataclasses.asdict(self.cfg),
                               extra={"reader_state": rs, **({"command": command} if command else {})})

    def load(self, saved: dict) -> None:
        rs = saved["reader_state"]
        self.model.load_state_dict(saved["state_dict"])
        self.opt.load_state_dict(rs["optimizer"])
        self.sched.load_state_dict(rs["scheduler"])
        self.gen.set_state(rs["gen_state"])
        torch.set_rng_state(rs["torch_rng_state"])
        self.step, self.seen, self.elapsed = rs["step"], rs["seen"], rs["elapsed"]
        self.best, self.best_state = rs["best"], rs["best_state"]


def _load_state(out: Path) -> dict:
    last = out / LAST
    saved = read_checkpoint(last)
    if not isinstance(saved, dict) or "reader_state" not in saved:
        raise CheckpointError(f"{last}: not a reader's training state; --resume needs the folder of a "
                              "`digitrec train-reader` run")
    return saved


def _validate(run: _Run, val: list, loss: float, out: Path, progress: bool) -> None:
    acc = line_accuracy(run.model, val)
    rec = {"step": run.step, "loss": loss, "val_line_accuracy": acc, "lr": run.opt.param_groups[0]["lr"],
           "elapsed_s": round(run.elapsed, 3), "lines_per_s": round(run.seen / max(run.elapsed, 1e-9))}
    _record(out, rec, run.cfg, progress)
    if acc > run.best:
        run.best, run.best_state = acc, {k: v.clone() for k, v in run.model.state_dict().items()}


def _trim_metrics(out: Path, step: int) -> None:
    """Keep OUT/metrics.jsonl's records up to `step` (all of them gone for a fresh run), so a
    resumed run never repeats a validation line."""
    path = out / METRICS
    lines = path.read_text().splitlines() if path.exists() and step else []
    path.write_text("".join(ln + "\n" for ln in lines if json.loads(ln)["step"] <= step))


def _validation_lines(images: torch.Tensor, labels: torch.Tensor, cfg: ReaderConfig) -> list[tuple]:
    """The same number of lines of each length 1..max_digits (at least one), each length its own batch."""
    vgen = torch.Generator().manual_seed(VAL_SEED)
    each = max(1, cfg.val_lines // cfg.max_digits)
    with torch.no_grad():
        return [compose_lines(images, labels, each, min_digits=k, max_digits=k, gen=vgen,
                              **_line_style(cfg)) for k in range(1, cfg.max_digits + 1)]


def _line_style(cfg: ReaderConfig) -> dict:
    """How training and validation lines are written and cluttered (`lines.compose_lines`)."""
    return {"noise": cfg.noise, "marks": cfg.marks, "styles": cfg.styles, "flag_length": cfg.flag_length,
            "sevens": cfg.sevens, "clutter": cfg.clutter, "slant": cfg.slant, "glyphs": cfg.glyphs,
            "glyph_digits": cfg.glyph_digits,
            "stretch": cfg.stretch, "line_stretch": cfg.line_stretch, "joins": cfg.joins,
            "printed_signs": cfg.printed_signs, "small_tail": cfg.small_tail,
            "zero_chains": cfg.zero_chains}


def _train_step(model: nn.Module, opt, sched, images: torch.Tensor, labels: torch.Tensor, cfg: ReaderConfig,
                gen: torch.Generator) -> torch.Tensor:
    """One optimizer step on a fresh batch of composed lines; returns its CTC loss."""
    model.train()
    # One length per batch: lines of a batch are about equally wide, so little is padding.
    k = int(randint(1, cfg.max_digits + 1, (1,), gen, "cpu"))
    with torch.no_grad():
        x, y, n = compose_lines(images, labels, cfg.batch_size, min_digits=k, max_digits=k, augment=cfg.augment,
                                gen=gen, **_line_style(cfg))
    logp = model(normalise(x))  # (B, T, classes)
    frames = torch.full((len(x),), logp.shape[1], dtype=torch.long, device=x.device)
    loss = F.ctc_loss(logp.transpose(0, 1), y, frames, n, blank=BLANK, zero_infinity=True)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    sched.step()
    return loss


def _record(out: Path, rec: dict, cfg: ReaderConfig, progress: bool) -> None:
    """One validation: a line of OUT/metrics.jsonl and, with progress, one on stderr."""
    append_line(out / METRICS, json.dumps(rec))
    if progress:
        tqdm.write(f"step {rec['step']}/{cfg.steps}  loss {rec['loss']:.4f}  val lines {rec['val_line_accuracy']:.4f}  "
                   f"{rec['lines_per_s']:.0f} lines/s", file=sys.stderr)
