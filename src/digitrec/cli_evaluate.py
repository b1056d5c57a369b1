"""The `digitrec` commands that score models: evaluate, evaluate-images, evaluate-read, robustness."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli_options import (READ_PROCESSES_FROM, backend_option, data_option, device_option, echo_report, model_option,
                          processes_option, progress_bar, reader_option, worker_processes)


@click.command()
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
    with progress_bar(len(labels), "image", quiet) as bar:
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


@click.command("evaluate-images")
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
    echo_report(report, format_report, as_json)


@click.command("evaluate-read")
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
@model_option
@reader_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, every image's reading included.")
@click.option("--gallery", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of the wrong readings (most confident first), with their boxes.")
@processes_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate_read(folder, model_path, reader_path, as_json, gallery, processes, quiet):
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
    from .evaluate_read import evaluate_readings, format_report, read_labels, save_gallery
    from .reading_pool import read_files

    rows = read_labels(folder)
    files = [file for file, _ in rows]
    # As `digitrec read` shares a folder: this process and one worker per other core (a wrong --reader: one line).
    with (read_files([str(Path(folder) / f) for f in files], model=model_path, reader=reader_path, names=files,
                     processes=worker_processes(processes, len(files), READ_PROCESSES_FROM)) as read,
          progress_bar(len(rows), "image", quiet or as_json, read) as readings):
        report, readings, labels = evaluate_readings(list(readings), rows)
    if gallery:
        report["gallery"] = str(save_gallery(folder, readings, labels, gallery))
    echo_report(report, format_report, as_json)


@click.command("robustness")
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
    with progress_bar(len(paths) * (1 + len(CORRUPTIONS)) * len(labels), "image", quiet) as bar:
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
