"""The `digitrec` commands that read users' images: predict, read, predict-cluster."""

from __future__ import annotations

import json
import os
import sys

import click

from .cli_options import (backend_option, device_option, emit_error, min_confidence_option, model_option,
                          processes_option, progress_bar, reader_option, worker_processes, READ_PROCESSES_FROM)
from .errors import OutputError


@click.command()
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

    inputs = expand_paths(paths)
    processes = worker_processes(processes, len(inputs))
    onnx = onnx_file(model_path, backend, device)
    if onnx is not None:  # an .onnx file, or the shipped model's export: onnxruntime, and no torch to import
        # A batch is classified once the worker processes have preprocessed it and wait for the next
        # one, so the model may use as many threads as there are processes ($DIGITREC_THREADS rules).
        threads = None if os.environ.get("DIGITREC_THREADS") else min(processes, os.cpu_count() or 1)
        rec = load_onnx_model(onnx, min_confidence=min_confidence, threads=threads)
    else:
        from .device import use_inference_threads
        from .loading import load_model

        use_inference_threads()
        rec = load_model(model_path, device=device, min_confidence=min_confidence, backend=backend)
    failed, writes = False, _Writes()
    saved: set[str] = set()
    rec.processes = processes
    # Answers on a terminal are their own progress; into a file or a pipe, a bar on stderr shows it.
    with progress_bar(len(inputs), "image", quiet or sys.stdout.isatty()) as bar:
        for i in range(0, len(inputs), batch_size):
            chunk = inputs[i:i + batch_size]
            files = [p for p, err in chunk if err is None]
            preds = iter(rec.predict(files, keep_preprocessed=bool(save_preprocessed)))
            for path, err in chunk:
                if err is not None:
                    failed = True
                    emit_error(path, err, as_json)
                    continue
                p = next(preds)
                if p.error:
                    failed = True
                    emit_error(path, p.error, as_json)
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


@click.command()
@click.argument("paths", nargs=-1, required=True)
@model_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image per line.")
@click.option("--annotate", type=click.Path(file_okay=False), default=None,
              help="Write each image with the digits' boxes and readings drawn on it into this folder.")
@click.option("--all", "every", is_flag=True,
              help="Every number in each image (a form's fields, a register's rows), in reading order.")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=None,
              help="Mark numbers whose confidence (the probability that the whole number is right) is below "
                   "this as uncertain (\"uncertain\" in JSON); `digitrec evaluate-read` shows how accurate the "
                   "readings kept are at each share set aside.")
@reader_option
@backend_option("auto")
@processes_option
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bar (shown on a terminal while the answers go to a file or a pipe).")
def read(paths, model_path, as_json, annotate, every, min_confidence, reader_path, backend, processes, quiet):
    """Read the handwritten number (the digits along a line) in each image, or with --all every
    number in it.

    \b
    Examples:
      digitrec read meter.jpg                        # -> meter.jpg: 2026
      digitrec read forms/ --json --annotate seen/
      digitrec read register.jpg --all               # -> register.jpg #1: 17, register.jpg #2: 18, ...
      digitrec read amounts/ --min-confidence 0.9    # -> amounts/17.jpg: 1500?  confidence 0.62 (uncertain) ...

    Exit code 1 if any input could not be read; the others are still read.
    """
    from .files import annotate as draw_boxes, expand_paths
    from .read import page_to_dict
    from .reading_pool import read_files

    failed, writes = False, _Writes()
    taken: set[str] = set()
    inputs = expand_paths(paths)
    readable = [path for path, err in inputs if err is None]
    processes = worker_processes(processes, len(readable), READ_PROCESSES_FROM)
    # A wrong --reader is one error, raised on entry, not one per image.
    with (read_files(readable, model=model_path, reader=reader_path, backend=backend, processes=processes,
                     every=every) as readings,
          progress_bar(len(inputs), "image", quiet or sys.stdout.isatty()) as bar):  # as predict's
        for path, err in inputs:
            r = next(readings) if err is None else None
            bar.update(1)
            err = err or next((one.error for one in (r if every else [r]) if one.error), None)
            if err:
                failed = True
                emit_error(path, err, as_json)
                continue
            where = writes(lambda: draw_boxes(path, r, annotate, taken)) if annotate else None
            out = page_to_dict(path, r) if every else r.to_dict()
            if min_confidence is not None:
                for one, d in zip(r, out["numbers"]) if every else [(r, out)]:
                    d["uncertain"] = _uncertain(one, min_confidence)
            if where:
                out["annotated"] = where
            if as_json:
                click.echo(json.dumps(out))
            elif every:
                for k, one in enumerate(r, 1):
                    click.echo(_reading_line(f"{path} #{k}", one, _uncertain(one, min_confidence)))
                if not r:
                    click.echo(f"{path}: no digits found")
            else:
                click.echo(_reading_line(path, r, _uncertain(r, min_confidence)))
    writes.done(failed)


@click.command("predict-cluster")
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", required=True, help="Folder (or URI, as s3://bucket/results) for the result files.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True,
              help="JSON lines or Parquet; one row per image, several files as Ray writes them.")
@click.option("--numbers", is_flag=True, help="Read whole numbers, as `digitrec read` does, instead of one digit.")
@click.option("--all", "every", is_flag=True,
              help="With --numbers: every number on each page, as `digitrec read --all`: a row per number, with its box.")
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
def predict_cluster(paths, out, fmt, numbers, every, model_path, reader_path, backend, min_confidence, workers,
                    batch_size, address, force):
    """Read the digit (or --numbers) in many images on a Ray cluster with Ray Data, and write the
    results as JSON lines or Parquet. Needs `pip install 'digitrec[ray]'`.

    PATHS are files, folders and globs as for `predict` (on a cluster, on storage every node sees),
    or URIs Ray reads (s3://, gs://). Each row holds the image's path and what `predict --json`
    (or `read --json`) gives for it; an image that cannot be read has `error` set. With --numbers
    --all, a row per number found (`number`: 1, 2, ... in reading order, and its `box`); a page with
    none has one row, its `number` null.

    \b
    Examples:
      digitrec predict-cluster scans/ --out results/
      digitrec predict-cluster s3://forms/scans/ --out s3://forms/results/ --format parquet --address auto --workers 64
      digitrec predict-cluster registers/ --numbers --all --out rows/ --format parquet

    Exit code 1 if any path named no file; the others are still read.
    """
    from .cluster import predict_cluster as run

    if every and not numbers:
        raise click.UsageError("--all reads every number on a page: use it with --numbers")
    result = run(paths, out, fmt=fmt, task=("page" if every else "number") if numbers else "digit", model=model_path, reader=reader_path,
                 backend=backend, min_confidence=min_confidence, workers=workers, batch_size=batch_size,
                 address=address, force=force)
    for path, why in result["missing"]:
        emit_error(path, why, False)
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


def _reading_line(path: str, r, uncertain: bool = False) -> str:
    """`path: 397500  confidence 0.91 (digits 1.00 0.98 ...)  written 3.975,00` (the marks, when any
    were read): the number's confidence, then each digit's; an uncertain reading is marked as
    `predict` marks an uncertain digit."""
    if not r.digits:
        return f"{path}: no digits found"
    conf = " ".join(f"{d.confidence:.2f}" for d in r.digits)
    mark, extra = ("?", " (uncertain)") if uncertain else ("", "")
    return (f"{path}: {r.text}{mark}  confidence {r.confidence:.2f}{extra} (digits {conf})"
            + (f"  written {r.formatted}" if r.formatted != r.text else ""))


def _uncertain(r, min_confidence: float | None) -> bool:
    """Whether a reading with digits falls below --min-confidence (nothing read is no reading to doubt)."""
    return min_confidence is not None and bool(r.digits) and r.confidence < min_confidence
