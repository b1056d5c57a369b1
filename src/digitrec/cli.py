"""The `digitrec` command line: a thin layer of click commands over the library.

Every command turns a `DigitrecError` into one line on stderr and a non-zero exit code. The
commands live by what they do (`cli_train`, `cli_evaluate`, `cli_predict`; their shared options in
`cli_options`); this module holds the group, the commands that describe and serve models, and
the entry point with its Ctrl-C handling.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import click

from . import __version__, cli_evaluate, cli_predict, cli_train
from .cli_options import backend_option, model_option
from .errors import USER_ERRNOS, DigitrecError, os_error_message
# recipes imports no torch, so `digitrec --help` stays quick.
from .recipes import matching_recipe


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
    """Read handwritten digits and numbers in your images (photos, scans, drawings), with
    confidences you can act on; serve them over HTTP; train and evaluate the models.

    \b
    Start here:
      digitrec predict photo.jpg           # one digit per image
      digitrec read check-amount.jpg       # a whole number along a line
      digitrec serve                       # HTTP API and a page to draw a digit on
    """


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


# The commands of the other cli_ modules join the group here (click lists them by name).
for command in (cli_train.train, cli_train.train_reader, cli_train.ensemble, cli_train.calibrate,
                cli_train.augment_preview, cli_evaluate.evaluate, cli_evaluate.evaluate_images,
                cli_evaluate.evaluate_read, cli_evaluate.robustness_cmd, cli_predict.predict, cli_predict.read,
                cli_predict.predict_cluster):
    cli.add_command(command)


def main() -> None:
    signal.signal(signal.SIGINT, _stop_once)
    # OpenCV on one thread in this process and the ones it starts (the server's workers, the pools'):
    # see `morphology.use_one_image_thread`. Set before OpenCV is imported, which reads it then.
    os.environ.setdefault("OPENCV_FOR_THREADS_NUM", "1")
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
