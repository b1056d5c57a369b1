"""The `digitrec` command line: a thin layer of click commands over the library.

Every command turns a `DigitrecError` into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

import click

from . import __version__
from .errors import USER_ERRNOS, DigitrecError, OutputError, os_error_message
# recipes imports no torch, so `digitrec --help` stays quick.
from .recipes import ReaderConfig, TrainConfig, config_from_flags, matching_recipe, recipe_help

# From this many files, `predict` decodes and preprocesses them in one process per core: 1,000
# photos on 2 cores run 1.4x faster; the processes' start (about 0.4 s) is not worth it for fewer.
PROCESSES_FROM = 500


class _Group(click.Group):
    """Report bad input (DigitrecError) and what the system refused (no permission, a full disk) as
    click errors: one line, exit code 1, no traceback. Ctrl-C is one line and exit code 130, the
    shell's convention, rather than click's "Aborted!" and 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DigitrecError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            if e.errno not in USER_ERRNOS:
                raise  # anything else is a bug of ours: its traceback is what to report
            raise click.ClickException(os_error_message(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            raise click.exceptions.Exit(130) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="digitrec")
def cli():
    """Recognise handwritten digits: train, evaluate and inspect MNIST models."""


def data_option(f):
    return click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                        help="Folder with the MNIST files (default: $DIGITREC_DATA, then ~/.cache/digitrec/mnist; "
                             "downloaded there if missing).")(f)


def model_option(f):
    return click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
                        help="Checkpoint: a digitrec model.pt, the tutorial's mnist_model.pth or (for predict "
                             "and serve) an exported .onnx [default: the model shipped with digitrec].")(f)


def backend_option(default: str = "torch"):
    return click.option("--backend", type=click.Choice(["auto", "torch", "onnx"]), default=default, show_default=True,
                        help="Run the model with PyTorch or with onnxruntime; auto: the shipped model's ONNX export "
                             "on the CPU where onnxruntime is installed, else PyTorch.")


def reader_option(f):
    return click.option("--reader", "reader_path", type=click.Path(dir_okay=False), default=None,
                        help="Line reader checkpoint from `digitrec train-reader` [default: the one shipped "
                             "with digitrec].")(f)


def processes_option(f):
    return click.option("--processes", type=click.IntRange(min=0), default=0,
                        help=f"Worker processes that decode and look at the files [default: 0, one per core for "
                             f"{PROCESSES_FROM} files or more, else this one].")(f)


def _worker_processes(asked: int, files: int) -> int:
    """--processes as given, or (0) one per core for PROCESSES_FROM files or more, else this one."""
    return asked or ((os.cpu_count() or 1) if files >= PROCESSES_FROM else 1)


def min_confidence_option(f):
    return click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                        help="Mark answers below this confidence as uncertain.")(f)


def device_option(f):
    return click.option("--device", default="auto", show_default=True,
                        help="auto, cpu, cuda, cuda:N or mps.")(f)


def config_options(cls, shared: dict | None = None):
    """Options for the fields of config dataclass `cls` that carry help in their metadata (see
    `recipes`), in field order: `--batch-size` for `batch_size`, its type, range and choices from the
    field, and None when not given, so that the recipe's value stands. `shared` maps field names to
    the shared option decorators used instead (--device, --data-dir)."""
    shared = shared or {}

    def decorate(f):
        for fld in reversed(dataclasses.fields(cls)):  # click lists options in the reverse order of decoration
            if fld.name in shared:
                f = shared[fld.name](f)
            elif "help" in fld.metadata:
                f = _field_option(fld)(f)
        return f
    return decorate


class IntTuple(click.ParamType):
    """N positive whole numbers, comma-separated ("32,64,128"), as a tuple."""

    name = "N,N,..."

    def __init__(self, n: int):
        self.n = n

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            out = tuple(int(v) for v in str(value).split(","))
        except ValueError:
            out = ()
        if len(out) != self.n or min(out) < 1:
            self.fail(f"{value!r} is not {self.n} positive whole numbers separated by commas", param, ctx)
        return out


def _field_option(fld: dataclasses.Field):
    meta, flag = fld.metadata, "--" + fld.name.replace("_", "-")
    ftype = fld.type if isinstance(fld.type, str) else fld.type.__name__  # a string under `from __future__ import annotations`
    if ftype == "bool":
        return click.option(f"{flag}/--no-{flag[2:]}", default=None, help=meta["help"])
    limits = {k: meta[k] for k in ("min", "max") if k in meta}
    if "ints" in meta:
        kind = IntTuple(meta["ints"])
    elif "choices" in meta:
        kind = click.Choice(meta["choices"])
    elif meta.get("path") == "file":
        kind = click.Path(dir_okay=False, exists=True)
    elif meta.get("path"):
        kind = click.Path(file_okay=False)
    elif ftype == "int":
        kind = click.IntRange(**limits) if limits else int
    elif ftype == "float":
        kind = click.FloatRange(**limits, min_open=meta.get("min_open", False)) if limits else float
    else:
        kind = str
    return click.option(flag, type=kind, default=None, help=meta["help"])


@cli.command()
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

    if resume:
        if recipe or any(v is not None for k, v in flags.items() if k not in ("device",)) or flags["device"] != "auto":
            raise click.UsageError("--resume continues a run with its saved settings; drop the other options")
        result = run_training(resume=resume, progress=not quiet, command=_command())
    else:
        cfg = config_from_flags(recipe, **flags)
        prepare_run_dir(cfg.out, force)
        result = run_training(cfg, progress=not quiet, command=_command())
    if result.interrupted:
        click.echo(f"interrupted after {result.epochs_done} full epoch(s); state saved to {result.out / 'last.pt'}. "
                   f"Continue with: digitrec train --resume {result.out}", err=True)
        sys.exit(130)
    if distributed_env()[0] != 0:  # under torchrun, only rank 0 reports
        return
    click.echo(f"best validation accuracy {result.best_val_accuracy:.4f}; test accuracy {result.test_accuracy:.4f}; "
               f"{result.epochs_done} epochs in {result.train_time_s:.1f}s; saved {result.out / 'model.pt'}")


@cli.command("train-reader")
@config_options(ReaderConfig)
@data_option
@click.option("--out", type=click.Path(file_okay=False), default="runs/reader", show_default=True, help="Run folder.")
@click.option("--force", is_flag=True, help="Overwrite a reader already in --out.")
@click.option("--resume", is_flag=True, help="Continue the run in --out (its last.pt) with its own settings.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or per-validation lines.")
def train_reader(out, force, resume, quiet, data_dir, **flags):
    """Train the line reader behind `digitrec read` and save OUT/reader.pt.

    It learns from lines composed on the fly from MNIST's training digits (clear gaps, touching,
    overlapping; sizes, baselines, slant and stroke noise varied; marks such as . , - / : = written
    between and after them; guide lines and printed textures left in the ink) and is chosen on
    lines made of the 5,000 digits held out for validation. Ctrl-C saves OUT/last.pt; --resume
    continues from it.

    \b
    Examples:
      digitrec train-reader                         # the shipped reader's settings
      digitrec train-reader --resume                # continue runs/reader after Ctrl-C
      digitrec read --reader runs/reader/reader.pt number.jpg
    """
    from .reader_train import READER, prepare_reader_dir, train_reader as run

    if resume and (force or any(v is not None for v in flags.values())):
        raise click.UsageError("--resume continues a run with its saved settings; drop the other options")
    if not resume:
        prepare_reader_dir(out, force)
    cfg = None if resume else ReaderConfig(**{k: v for k, v in flags.items() if v is not None})
    try:
        metrics = run(cfg, out, data_dir=data_dir, command=_command(), progress=not quiet, resume=resume)
    except KeyboardInterrupt:
        click.echo(f"interrupted; state saved to {Path(out) / 'last.pt'}. Continue with: digitrec train-reader "
                   f"--out {out} --resume", err=True)
        sys.exit(130)
    click.echo(f"validation lines read exactly {metrics['val']['line_accuracy']:.4f}; "
               f"{metrics['train_seconds']:.0f}s; saved {Path(out) / READER}")


@cli.command()
@model_option
@data_option
@device_option
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Test images per forward pass (lower it if memory is short).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--figures", type=click.Path(file_okay=False), default=None,
              help="Write confusion_matrix.png, misclassified.png and reliability.png into this folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate(model_path, data_dir, device, batch_size, as_json, figures, quiet):
    """Score a model on the MNIST test set: accuracy, per-class figures, confusion matrix, errors.

    \b
    Example:
      digitrec evaluate --model runs/fast/model.pt --figures runs/fast/figures
    """
    from .data import load_split
    from .device import resolve_device
    from .evaluate import evaluate_checkpoint, format_report, save_figures
    from .loading import load
    from .model_file import shipped_path

    dev = resolve_device(device)
    model_path = model_path or shipped_path()
    ckpt = load(model_path, device=dev)
    images, labels = load_split("test", data_dir)  # only the test files: scoring needs no training images
    with _progress(len(labels), "image", quiet) as bar:
        report = evaluate_checkpoint(ckpt, images, labels, device=dev, batch_size=batch_size, progress=bar.update)
    report["model"] = str(model_path)
    if figures:
        report["figures"] = [str(p) for p in save_figures(report, images, ckpt.classes, figures)]
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(f"model {model_path} ({ckpt.arch}, {ckpt.kind})")
        click.echo(format_report(report, ckpt.classes))
        for p in report.get("figures", []):
            click.echo(f"wrote {p}")


@cli.command()
@click.argument("model_paths", metavar="MODEL...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Where to write the ensemble checkpoint.")
@data_option
@device_option
def ensemble(model_paths, out, data_dir, device):
    """Combine trained digit models into one ensemble checkpoint (probabilities averaged), and
    report its accuracy on the validation split and the test set.

    \b
    Example:
      digitrec ensemble runs/ensemble/model.pt runs/robust/model.pt --out runs/five/model.pt
    """
    from .data import load_mnist
    from .ensemble import combine_checkpoints

    ckpt = combine_checkpoints(list(model_paths), out, load_mnist(data_dir), device=device, command=_command())
    m = ckpt["metrics"]
    click.echo(f"{len(ckpt['arch_args']['members'])} members: validation accuracy {m['val']['accuracy']:.4f}; "
               f"test accuracy {m['test']['accuracy']:.4f}; saved {out}")


@cli.command()
@click.argument("model_path", metavar="[MODEL]", type=click.Path(dir_okay=False), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as one JSON object.")
def info(model_path, as_json):
    """Show what a checkpoint says about itself: architecture, normalisation, config, metrics.

    \b
    Examples:
      digitrec info                       # the model shipped with digitrec
      digitrec info runs/fast/model.pt
    """
    from .loading import load
    from .model_file import shipped_path

    model_path = model_path or shipped_path()
    meta = load(model_path, task=None).describe()
    if meta["task"] == "digit" and "config" in meta:  # the recipe that trains it again, beside the name it ran under
        meta = _insert_after(meta, "config", "matches_recipe", matching_recipe(meta["config"]))
    if as_json:
        click.echo(json.dumps(meta, default=str))
        return
    click.echo(_as_text(meta))


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@model_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image per line.")
@click.option("--top-k", type=click.IntRange(1, 10), default=None, help="Also show the K most probable digits.")
@min_confidence_option
@click.option("--save-preprocessed", type=click.Path(file_okay=False), default=None,
              help="Write the 28x28 view the model got for each image into this folder.")
@device_option
@backend_option("auto")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="Images decoded, preprocessed and classified together; answers are printed per batch.")
@processes_option
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bar (shown on a terminal while the answers go to a file or a pipe).")
def predict(paths, model_path, as_json, top_k, min_confidence, save_preprocessed, device, backend, batch_size,
            processes, quiet):
    """Read the handwritten digit in each image: files, folders (recursively) and globs.

    \b
    Examples:
      digitrec predict photo.jpg
      digitrec predict scans/ 'more/*.png' --json --top-k 3
      digitrec predict photo.jpg --model mnist_model.pth --save-preprocessed seen/

    Exit code 1 if any input could not be read; the others are still predicted.
    """
    from .files import expand_paths, save_preprocessed_image
    from .predict import load_onnx_model, onnx_file

    onnx = onnx_file(model_path, backend, device)
    if onnx is not None:  # an .onnx file, or the shipped model's export: onnxruntime, and no torch to import
        rec = load_onnx_model(onnx, min_confidence=min_confidence)
    else:
        from .device import use_inference_threads
        from .loading import load_model

        use_inference_threads()
        rec = load_model(model_path, device=device, min_confidence=min_confidence, backend=backend)
    failed, writes = False, _Writes()
    saved: set[str] = set()
    inputs = expand_paths(paths)
    rec.processes = _worker_processes(processes, len(inputs))
    # Answers on a terminal are their own progress; into a file or a pipe, a bar on stderr shows it.
    with _progress(len(inputs), "image", quiet or sys.stdout.isatty()) as bar:
        for i in range(0, len(inputs), batch_size):
            chunk = inputs[i:i + batch_size]
            files = [p for p, err in chunk if err is None]
            preds = iter(rec.predict(files, keep_preprocessed=bool(save_preprocessed)))
            for path, err in chunk:
                if err is not None:
                    failed = True
                    _emit_error(path, err, as_json)
                    continue
                p = next(preds)
                if p.error:
                    failed = True
                    _emit_error(path, p.error, as_json)
                    continue
                out = p.to_dict(top_k or 0)
                if save_preprocessed and p.preprocessed is not None:
                    where = writes(lambda: save_preprocessed_image(p.preprocessed.image, path, save_preprocessed, saved))
                    if where:
                        out["preprocessed"] = where
                click.echo(json.dumps(out) if as_json else _prediction_line(path, p, top_k, out.get("preprocessed")))
            bar.update(len(chunk))
    rec.close()
    writes.done(failed)


def _prediction_line(path: str, p, top_k: int | None, saved_as: str | None) -> str:
    """`path: 7  confidence 0.999`, with what else there is to say about the answer."""
    if p.digit is None:
        return f"{path}: no digit found"
    mark, extra = ("?", " (uncertain)") if p.uncertain else ("", "")
    line = f"{path}: {p.digit}{mark}  confidence {p.confidence:.3f}{extra}"
    if top_k:
        line += "  top: " + ", ".join(f"{d} {q:.3f}" for d, q in p.top(top_k))
    if p.digits_found > 1:
        line += f"  ({p.digits_found} digits found: a number is read by `digitrec read {path}`)"
    if saved_as:
        line += f"  (saved as {saved_as})"  # same-named inputs get -2, -3: say which
    return line


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@model_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image per line.")
@click.option("--annotate", type=click.Path(file_okay=False), default=None,
              help="Write each image with the digits' boxes and readings drawn on it into this folder.")
@reader_option
@backend_option("auto")
@processes_option
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bar (shown on a terminal while the answers go to a file or a pipe).")
def read(paths, model_path, as_json, annotate, reader_path, backend, processes, quiet):
    """Read the handwritten number (the digits along a line) in each image.

    \b
    Examples:
      digitrec read meter.jpg                        # -> meter.jpg: 2026
      digitrec read forms/ --json --annotate seen/

    Exit code 1 if any input could not be read; the others are still read.
    """
    from .files import annotate as draw_boxes, expand_paths
    from .read import load_reader

    reader = load_reader(model_path, reader_path, backend=backend)  # a wrong --reader is one error, not one per image
    if reader.uses_torch:  # the shipped ONNX exports (--backend auto) import no torch at all
        from .device import use_inference_threads

        use_inference_threads()
    failed, writes = False, _Writes()
    taken: set[str] = set()
    inputs = expand_paths(paths)
    readable = [path for path, err in inputs if err is None]
    processes = _worker_processes(processes, len(readable))
    if processes > 1:
        from .reading_pool import read_files

        readings = read_files(readable, model=model_path, reader=reader_path, backend=backend, processes=processes)
    else:
        readings = (reader.read(path, name=path) for path in readable)
    with _progress(len(inputs), "image", quiet or sys.stdout.isatty()) as bar:  # as predict's
        for path, err in inputs:
            r = next(readings) if err is None else None
            bar.update(1)
            if r is None or r.error:
                failed = True
                _emit_error(path, err or r.error, as_json)
                continue
            out = r.to_dict()
            where = writes(lambda: draw_boxes(path, r, annotate, taken)) if annotate else None
            if where:
                out["annotated"] = where
            click.echo(json.dumps(out) if as_json else _reading_line(path, r))
    writes.done(failed)


@cli.command("predict-cluster")
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", required=True, help="Folder (or URI, as s3://bucket/results) for the result files.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True,
              help="JSON lines or Parquet; one row per image, several files as Ray writes them.")
@click.option("--numbers", is_flag=True, help="Read whole numbers, as `digitrec read` does, instead of one digit.")
@model_option
@reader_option
@backend_option()
@min_confidence_option
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Ray actors, one CPU and one loaded model each.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Images per batch handed to an actor.")
@click.option("--address", default=None,
              help="Ray cluster to run on: auto, or ray://HOST:10001 [default: start a local Ray on 127.0.0.1].")
@click.option("--force", is_flag=True, help="Replace what --out already holds.")
def predict_cluster(paths, out, fmt, numbers, model_path, reader_path, backend, min_confidence, workers, batch_size,
                    address, force):
    """Read the digit (or --numbers) in many images on a Ray cluster with Ray Data, and write the
    results as JSON lines or Parquet. Needs `pip install 'digitrec[ray]'`.

    PATHS are files, folders and globs as for `predict` (on a cluster, on storage every node sees),
    or URIs Ray reads (s3://, gs://). Each row holds the image's path and what `predict --json`
    (or `read --json`) gives for it; an image that cannot be read has `error` set.

    \b
    Examples:
      digitrec predict-cluster scans/ --out results/
      digitrec predict-cluster s3://forms/scans/ --out s3://forms/results/ --format parquet --address auto --workers 64

    Exit code 1 if any path named no file; the others are still read.
    """
    from .cluster import predict_cluster as run

    result = run(paths, out, fmt=fmt, task="number" if numbers else "digit", model=model_path, reader=reader_path,
                 backend=backend, min_confidence=min_confidence, workers=workers, batch_size=batch_size,
                 address=address, force=force)
    for path, why in result["missing"]:
        _emit_error(path, why, False)
    click.echo(f"{result['images']} images read into {result['out']} ({fmt})")
    if result["missing"]:
        sys.exit(1)


class _Writes:
    """The files a command writes beside its answers (--save-preprocessed, --annotate): the first
    that cannot be written stops the writing and is reported once, after every answer is printed."""

    def __init__(self):
        self.error: OutputError | None = None

    def __call__(self, write) -> str | None:
        """str(write()), or None once a write has failed."""
        if self.error is None:
            try:
                return str(write())
            except OutputError as e:
                self.error = e
        return None

    def done(self, failed: bool) -> None:
        """End the command: with the failed write's one line, else exit code 1 when an input failed."""
        if self.error is not None:
            raise self.error
        if failed:
            sys.exit(1)


def _reading_line(path: str, r) -> str:
    """`path: 397500  confidence 0.91 (digits 1.00 0.98 ...)  written 3.975,00` (the marks, when any
    were read): the number's confidence, then each digit's."""
    if not r.digits:
        return f"{path}: no digits found"
    conf = " ".join(f"{d.confidence:.2f}" for d in r.digits)
    return (f"{path}: {r.text}  confidence {r.confidence:.2f} (digits {conf})"
            + (f"  written {r.formatted}" if r.formatted != r.text else ""))


@cli.command("evaluate-images")
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
@model_option
@backend_option()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, every image's answer included.")
@click.option("--gallery", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of the wrong answers (most confident first) beside what the model saw.")
def evaluate_images(folder, model_path, backend, as_json, gallery):
    """Score single-digit reading on your own labelled images: FOLDER holds the images and a
    labels.csv with the columns `file,label` (the digit, 0-9, in each image).

    Reports accuracy, the calibration error of the confidences (ECE, 15 bins), and accuracy at
    coverage: how often the answers kept are right when the least confident are set aside first
    (for a person to check), which is what `predict --min-confidence` does.

    \b
    Examples:
      digitrec evaluate-images my-digits/
      digitrec evaluate-images ../shared/data/user-digits --gallery errors.png --json
    """
    from .device import use_inference_threads
    from .evaluate_images import evaluate_images as run, format_report, save_error_gallery
    from .loading import load_model

    use_inference_threads()
    report, preds, labels = run(load_model(model_path, backend=backend), folder)
    if gallery:
        report["gallery"] = str(save_error_gallery(folder, preds, labels, gallery))
    _echo_report(report, format_report, as_json)


@cli.command("evaluate-read")
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
@model_option
@reader_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, every image's reading included.")
@click.option("--gallery", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of the wrong readings (most confident first), with their boxes.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate_read(folder, model_path, reader_path, as_json, gallery, quiet):
    """Score number reading on your own labelled images: FOLDER holds the images and a labels.csv
    with the columns `file,text` (the digits written in each image).

    Reports the share of numbers read whole, the digit error rate (edit distance / digits), and
    accuracy at coverage: how often the readings kept are right when the least confident are set
    aside first (for a person to check).

    \b
    Examples:
      digitrec evaluate-read my-forms/
      digitrec evaluate-read ../shared/data/number-strings/bank-checks --gallery worst.png --json
    """
    from tqdm.auto import tqdm

    from .device import use_inference_threads
    from .evaluate_read import evaluate_folder, format_report, save_gallery
    from .read import load_reader

    use_inference_threads()
    reader = load_reader(model_path, reader_path)
    bar = None if quiet or as_json else (lambda rows: tqdm(rows, unit="image", leave=False, file=sys.stderr))
    report, readings, labels = evaluate_folder(reader, folder, progress=bar)
    if gallery:
        report["gallery"] = str(save_gallery(folder, readings, labels, gallery))
    _echo_report(report, format_report, as_json)


def _echo_report(report: dict, format_report, as_json: bool) -> None:
    """An evaluate-* report as one JSON object, or as text with the gallery it wrote."""
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(format_report(report))
    if report.get("gallery"):
        click.echo(f"wrote {report['gallery']}")


@cli.command()
@model_option
@backend_option("auto")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 for all).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on.")
@click.option("--max-body-mb", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Largest request body accepted.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=25_000_000, show_default=True,
              help="Largest image accepted, in pixels.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=15.0, show_default=True,
              help="Seconds a request may take.")
@click.option("--max-pixels-in-flight", type=click.IntRange(min=1), default=50_000_000, show_default=True,
              help="Pixels decoded at once by all requests together (up to 30 bytes of memory each); a request "
                   "over it gets 413, one that finds the server full 503.")
@click.option("--allowed-hosts", default=None,
              help="Host names the server answers, comma-separated ('*' any, '*.example.com' its subdomains) "
                   "[default: localhost, 127.0.0.1 and ::1 when bound to loopback, else any].")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes serving behind the one port, each with its own copy of the model.")
def serve(model_path, backend, host, port, max_body_mb, max_pixels, timeout_s, max_pixels_in_flight, allowed_hosts,
          workers):
    """Serve the HTTP API and the draw-a-digit page. SIGTERM or Ctrl-C stops it after answering
    the requests in flight (exit code 0, or 130 for Ctrl-C).

    \b
    Examples:
      digitrec serve                           # http://127.0.0.1:8000/ (API docs at /docs)
      digitrec serve --backend onnx --port 9000
      digitrec serve --host 0.0.0.0 --allowed-hosts digits.example.com
      digitrec serve --workers 2               # two processes, each with the model
      curl -F file=@photo.jpg http://127.0.0.1:8000/v1/predict
    """
    if max_pixels_in_flight < max_pixels:
        raise click.BadParameter(f"must be at least --max-pixels ({max_pixels:,}), or an image within it could "
                                 "never be read", param_hint="--max-pixels-in-flight")
    try:
        from .connections import default_allowed_hosts
        from .device import use_inference_threads
        from .limits import Limits
        from .loading import load_model
        from .serve import ServeSettings
        from .serve import serve as run_server

        use_inference_threads()  # the model's batches on one thread; preprocessing threads use the other cores
        rec = load_model(model_path, backend=backend)  # also with --workers: a bad model is one line, before they start
        body = int(max_body_mb * 2**20)
        limits = Limits(max_body_bytes=body, max_pixels=max_pixels, timeout_s=timeout_s,
                        pixels_in_flight=max_pixels_in_flight, bytes_in_flight=8 * body)
        hosts = [h.strip() for h in allowed_hosts.split(",") if h.strip()] if allowed_hosts else None
        settings = ServeSettings(model_path, backend, limits, tuple(hosts or default_allowed_hosts(host)))
        ck = rec.checkpoint
        click.echo(f"serving {ck.path} ({ck.arch}, {ck.backend}) on http://{host}:{port}/"
                   + (f" with {workers} worker processes" if workers > 1 else ""), err=True)
        run_server(settings, host=host, port=port, workers=workers, rec=rec)
    except KeyboardInterrupt:  # Ctrl-C, while loading or once the server has answered what it had
        sys.exit(130)


@cli.command()
@model_option
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Where to write the .onnx file.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def export(model_path, out, force):
    """Export a model to ONNX, with its normalisation, class names and metrics in the file's metadata.

    \b
    Examples:
      digitrec export --out digitrec.onnx                     # the shipped model
      digitrec export --model runs/best/model.pt --out best.onnx
      digitrec export --model runs/reader/reader.pt --out reader.onnx   # a line reader: any width
      digitrec predict --model best.onnx photo.jpg            # runs on onnxruntime
    """
    from .export import export_onnx
    from .loading import load

    if Path(out).exists() and not force:
        raise click.UsageError(f"{out} exists; pass --force to overwrite it, or choose another --out")
    path = export_onnx(load(model_path, task=None), out)  # a digit model or a line reader
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@cli.command()
@click.argument("model_path", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the calibrated checkpoint here [default: MODEL_PATH, in place].")
@click.option("--styled", type=click.IntRange(min=0), default=1500, show_default=True,
              help="Validation digits also rendered as photos and scans and preprocessed for the fit (a digit model).")
@click.option("--digits-model", type=click.Path(dir_okay=False), default=None,
              help="For a line reader: the digit model it reads with [default: the shipped one].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@data_option
def calibrate(model_path, out, styled, digits_model, quiet, data_dir):
    """Make a model's confidences probabilities: fit its calibration on held-out digits and keep it.

    A digit model gets a temperature, fitted on the validation split it was trained without (as
    MNIST has it, and rendered as photos and scans), never on the test set. A line reader
    (`digitrec train-reader`'s reader.pt) gets a temperature for its digits and a map for its
    numbers' confidence, fitted on 1,536 numbers written with those validation digits. predict,
    read, serve and export apply them from then on; `digitrec evaluate` and `evaluate-read`
    report the calibration error they leave.

    \b
    Example:
      digitrec calibrate runs/best/model.pt
      digitrec evaluate --model runs/best/model.pt --figures runs/best/figures   # reliability.png
      digitrec calibrate runs/reader/reader.pt
    """
    from .calibration import READING_SET, calibrate as fit, calibrate_reader, save_calibrated
    from .checkpoint import load_checkpoint
    from .data import load_mnist
    from .loading import load_model
    from .read import NumberReader

    ck, data = load_checkpoint(model_path), load_mnist(data_dir)
    if ck.task == "line":
        with _progress(READING_SET, "number", quiet) as bar:
            record = calibrate_reader(NumberReader(load_model(digits_model), ck), data, progress=bar.update)
    else:
        record = fit(ck, data, styled=styled)
    path = save_calibrated(model_path, record, out)
    b, a = record["before"], record["after"]
    click.echo(f"temperature {record['temperature']:.4g}" + (f", number map {record['number']}" if "number" in record else "")
               + f": calibration error (ECE) {b['ece']:.4f} -> {a['ece']:.4f}"
               + (f", NLL {b['nll']:.4f} -> {a['nll']:.4f}" if "nll" in b else "")
               + f" on {record['n']} held-out {'numbers' if 'number' in record else 'digits'}; wrote {path}")


def _progress(total: int, unit: str, quiet: bool):
    """A progress bar with a count and an ETA on stderr, shown only on a terminal and without -q
    (so `--json` into a pipe stays clean)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, leave=False, file=sys.stderr,
                disable=True if quiet else None)  # None: off when stderr is not a terminal


def _command() -> str:
    """The command line as typed, recorded in checkpoints so a model says how it was made."""
    import shlex

    return "digitrec " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _insert_after(d: dict, after: str, key: str, value) -> dict:
    """`d` with `key: value` placed right after the key `after`."""
    items = list(d.items())
    at = [k for k, _ in items].index(after) + 1
    return dict(items[:at] + [(key, value)] + items[at:])


def _as_text(meta: dict) -> str:
    """key: value lines, one level of nesting indented, deeper values as JSON."""
    lines = []
    for key, value in meta.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {json.dumps(v, default=str) if isinstance(v, (dict, list)) else v}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)


def _emit_error(path: str, message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"path": path, "error": message}))
    else:
        click.echo(f"error: {message if path in message else f'{path}: {message}'}", err=True)  # named once


@cli.command("augment-preview")
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


@cli.command("robustness")
@click.option("--model", "model_paths", multiple=True, type=click.Path(dir_okay=False),
              help="Checkpoint to test; repeat to compare several [default: the shipped model].")
@data_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random corruptions.")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="The MNIST test set, or the 5,000 training images every recipe holds out for validation "
                   "(to choose between models without looking at the test set).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N images.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per model.")
@click.option("--chart", type=click.Path(dir_okay=False), default=None, help="Write a bar chart PNG.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def robustness_cmd(model_paths, data_dir, seed, split, limit, as_json, chart, quiet):
    """Accuracy on the MNIST test set under the 15 corruptions of MNIST-C (Mu & Gilmer, 2019).

    \b
    Examples:
      digitrec robustness
      digitrec robustness --model runs/fast/model.pt --model mnist_model.pth --chart robustness.png
      digitrec robustness --split val --model runs/a/model.pt --model runs/b/model.pt
    """
    from .loading import load_model
    from .model_file import shipped_path
    from .robustness import CORRUPTIONS, format_table, robustness, save_chart, split_images

    images, labels = split_images(split, limit, data_dir)
    paths = list(model_paths) or [str(shipped_path())]
    with _progress(len(paths) * (1 + len(CORRUPTIONS)) * len(labels), "image", quiet) as bar:
        results = {p: robustness(load_model(p), images, labels, seed=seed, progress=bar.update) for p in paths}
    if as_json:
        for p, r in results.items():
            click.echo(json.dumps({"model": p, "split": split, "n": len(labels), "seed": seed, **r}))
    else:
        click.echo(format_table(results))
    if chart:
        save_chart(results, chart, split, len(labels))
        if not as_json:
            click.echo(f"wrote {chart}")


@cli.command("models")
def models_cmd():
    """List the model architectures with their parameter counts: with the registry's default
    arguments (`train --arch NAME`), and as each recipe that uses it builds it.

    \b
    Example:
      digitrec models
    """
    from .models import count_parameters, create_model, list_models, model_description
    from .recipes import RECIPES

    for name in list_models():
        size = "" if name == "ensemble" else f"{count_parameters(create_model(name)):,} parameters"
        click.echo(f"{name:<13} {size:>20}  {model_description(name)}")
        for recipe, cfg in RECIPES.items():
            if cfg.arch == name and cfg.arch_args:
                built = count_parameters(create_model(name, **cfg.arch_args))
                click.echo(f"{'':<13} {built:>9,} parameters  as `--recipe {recipe}` builds it ({cfg.arch_args})")


def main() -> None:
    signal.signal(signal.SIGINT, _stop_once)
    try:
        try:
            cli(prog_name="digitrec")
        finally:
            # On the way out, a Ctrl-C would land in the interpreter's shutdown (torch's atexit
            # callbacks: "Exception ignored in ...") and turn exit code 130 into death by SIGINT.
            _ignore_ctrl_c()
    except KeyboardInterrupt:  # the one Ctrl-C, landed after click had finished
        sys.exit(130)


def _stop_once(signum, frame):
    """Ctrl-C: stop now (a KeyboardInterrupt: one line and exit code 130, see _Group) and ignore
    the ones that follow, so that the way out is not cut short. Training first asks to stop
    between batches (loop.StopOnInterrupt), then hands a second Ctrl-C to this."""
    _ignore_ctrl_c()
    raise KeyboardInterrupt


def _ignore_ctrl_c() -> None:
    while True:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return
        except KeyboardInterrupt:  # one that had just arrived: signal.signal runs pending handlers first
            continue
