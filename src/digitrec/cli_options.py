"""What the `digitrec` commands share: their common options, options generated from the config
dataclasses (`recipes`), and small helpers for progress, errors and reports."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import click

# From this many files, `predict` decodes and preprocesses them in one process per core: 1,000
# photos on 2 cores run 1.4x faster; the processes' start (about 0.4 s) is not worth it for fewer.
PROCESSES_FROM = 500
# `read` spends about 10 ms on a check-sized image, three times `predict`'s, so a second process
# pays for its start sooner: on 2 cores the bank checks' first 100 read as fast either way, all
# 300 in 2.6 s instead of 3.6 s.
READ_PROCESSES_FROM = 100


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
    return click.option("--reader", "reader_path", type=click.Path(dir_okay=False), multiple=True,
                        callback=lambda ctx, param, value: value or None,
                        help="Line reader checkpoint from `digitrec train-reader`; give it again for readers "
                             "that vote on unsure readings [default: the two shipped with digitrec].")(f)


def processes_option(f):
    return click.option("--processes", type=click.IntRange(min=0), default=0,
                        help=f"Worker processes that decode and look at the files [default: 0, one per core for "
                             f"{PROCESSES_FROM} files or more ({READ_PROCESSES_FROM} for read), else this one].")(f)


def worker_processes(asked: int, files: int, start_from: int = PROCESSES_FROM) -> int:
    """--processes as given, or (0) one per core for `start_from` files or more, else this one."""
    return asked or ((os.cpu_count() or 1) if files >= start_from else 1)


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


def progress_bar(total: int, unit: str, quiet: bool, iterable=None):
    """A progress bar with a count and an ETA on stderr, shown only on a terminal and without -q
    (so `--json` into a pipe stays clean); over `iterable` when one is given."""
    from tqdm import tqdm  # a terminal's bar: tqdm.auto would import asyncio for notebooks, 30 ms of a cold start

    return tqdm(iterable, total=total, unit=unit, unit_scale=True, leave=False, file=sys.stderr,
                disable=True if quiet else None)  # None: off when stderr is not a terminal


def command_line() -> str:
    """The command line as typed, recorded in checkpoints so a model says how it was made."""
    import shlex

    return "digitrec " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def emit_error(path: str, message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"path": path, "error": message}))
    else:
        click.echo(f"error: {message if path in message else f'{path}: {message}'}", err=True)  # named once


def echo_report(report: dict, format_report, as_json: bool) -> None:
    """An evaluate-* report as one JSON object, or as text with the gallery it wrote."""
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(format_report(report))
    if report.get("gallery"):
        click.echo(f"wrote {report['gallery']}")
