"""The `digitrec` commands that make models: train, train-reader, ensemble, calibrate, augment-preview."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli_options import command_line, config_options, data_option, device_option, progress_bar
from .memory import keep_freed_memory
from .recipes import ReaderConfig, TrainConfig, config_from_flags, recipe_help


@click.command()
@click.option("--recipe", default=None, help=recipe_help())
@config_options(TrainConfig, shared={"device": device_option, "data_dir": data_option})
@click.option("--resume", type=click.Path(file_okay=False), default=None,
              help="Continue the run saved in this folder (its last.pt) with its own settings.")
@click.option("--force", is_flag=True, help="Overwrite a finished or interrupted run in --out.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or per-epoch lines.")
def train(recipe, resume, force, quiet, **flags):
    """Train a model on MNIST and save OUT/model.pt (best on validation) and OUT/last.pt.

    \b
    Examples:
      digitrec train                                  # the default (fast) cnn recipe
      digitrec train --recipe tutorial                # the tutorial's SimpleNN recipe
      digitrec train --arch mlp --optimizer adam --lr 0.001 --batch-size 64 --epochs 5   # = tutorial
      digitrec train --resume runs/fast               # continue after Ctrl-C
      digitrec train --device cuda --recipe best      # on a GPU
      torchrun --nproc_per_node 2 -m digitrec train   # data-parallel over 2 processes
    """
    # Imported here, as in every command: they import torch, which `digitrec --help` should not wait for.
    from .distributed import distributed_env
    from .train import prepare_run_dir, train as run_training

    keep_freed_memory()  # this process only trains: each step reuses the memory the last one freed
    if resume:
        if recipe or any(v is not None for k, v in flags.items() if k not in ("device",)) or flags["device"] != "auto":
            raise click.UsageError("--resume continues a run with its saved settings; drop the other options")
        result = run_training(resume=resume, progress=not quiet, command=command_line())
    else:
        cfg = config_from_flags(recipe, **flags)
        prepare_run_dir(cfg.out, force)
        result = run_training(cfg, progress=not quiet, command=command_line())
    if result.interrupted:
        click.echo(f"interrupted after {result.epochs_done} full epoch(s); state saved to {result.out / 'last.pt'}. "
                   f"Continue with: digitrec train --resume {result.out}", err=True)
        sys.exit(130)
    if distributed_env()[0] != 0:  # under torchrun, only rank 0 reports
        return
    click.echo(f"best validation accuracy {result.best_val_accuracy:.4f}; test accuracy {result.test_accuracy:.4f}; "
               f"{result.epochs_done} epochs in {result.train_time_s:.1f}s; saved {result.out / 'model.pt'}")


@click.command("train-reader")
@config_options(ReaderConfig)
@data_option
@device_option
@click.option("--out", type=click.Path(file_okay=False), default="runs/reader", show_default=True, help="Run folder.")
@click.option("--force", is_flag=True, help="Overwrite a reader already in --out.")
@click.option("--resume", is_flag=True, help="Continue the run in --out (its last.pt) with its own settings.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or per-validation lines.")
def train_reader(out, force, resume, quiet, data_dir, device, **flags):
    """Train the line reader behind `digitrec read` and save OUT/reader.pt.

    It learns from lines composed on the fly from MNIST's training digits (clear gaps, touching,
    overlapping; sizes, baselines, slant and stroke noise varied; marks such as . , - / : = written
    between and after them, a sign such as $ or # before them; guide lines and printed textures left in the ink) and is chosen on
    lines made of the 5,000 digits held out for validation. Ctrl-C saves OUT/last.pt; --resume
    continues from it.

    \b
    Examples:
      digitrec train-reader                         # the shipped reader's settings
      digitrec train-reader --resume                # continue runs/reader after Ctrl-C
      digitrec train-reader --device cuda           # lines composed and read on a GPU
      digitrec read --reader runs/reader/reader.pt number.jpg
    """
    from .reader_train import READER, prepare_reader_dir, train_reader as run

    if resume and (force or any(v is not None for v in flags.values())):
        raise click.UsageError("--resume continues a run with its saved settings; drop the other options")
    if not resume:
        prepare_reader_dir(out, force)
    cfg = None if resume else ReaderConfig(**{k: v for k, v in flags.items() if v is not None})
    keep_freed_memory()  # this process only trains: each step reuses the memory the last one freed
    try:
        metrics = run(cfg, out, data_dir=data_dir, command=command_line(), progress=not quiet, resume=resume,
                      device=device)
    except KeyboardInterrupt:
        if not (Path(out) / "last.pt").exists():  # stopped while the data loaded: nothing to continue
            click.echo("interrupted before the first step; nothing saved", err=True)
            sys.exit(130)
        click.echo(f"interrupted; state saved to {Path(out) / 'last.pt'}. Continue with: digitrec train-reader "
                   f"--out {out} --resume", err=True)
        sys.exit(130)
    click.echo(f"validation lines read exactly {metrics['val']['line_accuracy']:.4f}; "
               f"{metrics['train_seconds']:.0f}s; saved {Path(out) / READER}")


@click.command()
@click.argument("model_paths", metavar="MODEL...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Where to write the ensemble checkpoint.")
@click.option("--tilt", "tilts", type=float, multiple=True, metavar="DEGREES",
              help="Also show every member the digit turned by this angle, probabilities averaged (test-time "
                   "augmentation; repeat it: --tilt 8 --tilt -8).")
@data_option
@device_option
def ensemble(model_paths, out, tilts, data_dir, device):
    """Combine trained digit models into one ensemble checkpoint (probabilities averaged), and
    report its accuracy on the validation split and the test set. One model with --tilt reads
    each digit upright and turned.

    \b
    Examples:
      digitrec ensemble runs/ensemble/model.pt runs/robust/model.pt --out runs/five/model.pt
      digitrec ensemble runs/robust/model.pt --tilt 8 --tilt -8 --out runs/robust-tilted/model.pt
    """
    from .data import load_mnist
    from .ensemble import combine_checkpoints

    ckpt = combine_checkpoints(list(model_paths), out, load_mnist(data_dir), device=device, command=command_line(),
                               tilts=tilts)
    m = ckpt["metrics"]
    n = len(ckpt["arch_args"]["members"])
    views = f", {len(tilts) + 1} views each" if tilts else ""
    click.echo(f"{n} member{'s' * (n != 1)}{views}: validation accuracy {m['val']['accuracy']:.4f}; "
               f"test accuracy {m['test']['accuracy']:.4f}; saved {out}")


@click.command()
@click.argument("model_path", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the calibrated checkpoint here [default: MODEL_PATH, in place].")
@click.option("--styled", type=click.IntRange(min=0), default=1500, show_default=True,
              help="Validation digits also rendered as photos and scans and preprocessed for the fit (a digit model).")
@click.option("--digits-model", type=click.Path(dir_okay=False), default=None,
              help="For a line reader: the digit model it reads with [default: the shipped one].")
@click.option("--vote-with", type=click.Path(dir_okay=False), multiple=True,
              help="For a line reader: another reader that votes with it on unsure readings, as `digitrec read "
                   "--reader MODEL_PATH --reader FILE` reads (give it once per reader).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@data_option
def calibrate(model_path, out, styled, digits_model, vote_with, quiet, data_dir):
    """Make a model's confidences probabilities: fit its calibration on held-out digits and keep it.

    A digit model gets a temperature, fitted on the validation split it was trained without (as
    MNIST has it, and rendered as photos and scans), never on the test set. A line reader
    (`digitrec train-reader`'s reader.pt) gets a temperature for its digits and a map for its
    numbers' confidence, fitted on 1,536 numbers written with those validation digits (as read with
    the readers of --vote-with voting, which the shipped reader is calibrated for). predict,
    read, serve and export apply them from then on; `digitrec evaluate` and `evaluate-read`
    report the calibration error they leave.

    \b
    Example:
      digitrec calibrate runs/best/model.pt
      digitrec evaluate --model runs/best/model.pt --figures runs/best/figures   # reliability.png
      digitrec calibrate runs/reader/reader.pt --vote-with runs/reader-b/reader.pt
    """
    from .calibration import READING_SET, calibrate as fit, calibrate_reader, save_calibrated
    from .checkpoint import load_checkpoint
    from .data import load_mnist
    from .loading import load_model
    from .read import NumberReader

    ck, data = load_checkpoint(model_path), load_mnist(data_dir)
    if ck.task == "line":
        with progress_bar(READING_SET, "number", quiet) as bar:
            voters = [load_checkpoint(p) for p in vote_with]
            record = calibrate_reader(NumberReader(load_model(digits_model), [ck, *voters]), data, progress=bar.update)
    else:
        record = fit(ck, data, styled=styled)
    path = save_calibrated(model_path, record, out)
    b, a = record["before"], record["after"]
    click.echo(f"temperature {record['temperature']:.4g}" + (f", number map {record['number']}" if "number" in record else "")
               + f": calibration error (ECE) {b['ece']:.4f} -> {a['ece']:.4f}"
               + (f", NLL {b['nll']:.4f} -> {a['nll']:.4f}" if "nll" in b else "")
               + f" on {record['n']} held-out {'numbers' if 'number' in record else 'digits'}; wrote {path}")


@click.command("augment-preview")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="PNG file to write.")
@click.option("--n", type=click.IntRange(1, 64), default=16, show_default=True, help="Digits per row.")
@click.option("--strength", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Augmentation strength (1 = what training uses).")
@click.option("--seed", type=int, default=0, show_default=True, help="Which digits, and which random augmentations.")
@click.option("--scale", type=click.IntRange(1, 8), default=3, show_default=True, help="Pixels per MNIST pixel.")
@data_option
def augment_preview(out, n, strength, seed, scale, data_dir):
    """Write a grid of training digits under each augmentation, one row per kind.

    \b
    Example:
      digitrec augment-preview --out grid.png --strength 1.5
    """
    from .augment import preview, preview_digits, preview_grid
    from .data import load_mnist

    data = load_mnist(data_dir)
    rows = preview(*preview_digits(data.train_images, data.train_labels, n), strength=strength, seed=seed)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    preview_grid(rows, scale=scale).save(out)
    click.echo(f"wrote {out}: {len(rows)} rows x {n} digits")
