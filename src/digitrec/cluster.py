"""Read digits (or numbers) in many image files on a Ray cluster, with Ray Data doing the scheduling.

    from digitrec.cluster import predict_cluster
    predict_cluster(["scans/"], "results/", fmt="parquet", address="auto")

Ray Data reads the files' bytes (`read_binary_files`), a pool of actors runs the same library
path as `digitrec predict` (`loading.load_model`, then `Recogniser.predict` on the bytes; or
`read.load_reader` and `NumberReader.read` for whole numbers, `NumberReader.read_all` for every
number on a page) with the model loaded once per actor, and the rows are written as JSON lines or
Parquet, several files per folder as Ray writes them. Needs the `ray` extra (`pip install
'digitrec[ray]'`); ray is imported only when called.
"""

from __future__ import annotations

import os
from pathlib import Path

from .device import use_inference_threads
from .errors import ConfigError, DigitrecError, OutputError, require
from .files import IMAGE_SUFFIXES, expand_paths
from .loading import load_model
from .morphology import use_one_image_thread
from .read import Readers, load_reader, reader_paths

FORMATS = ("jsonl", "parquet")
TASKS = ("digit", "number", "page")


def predict_cluster(inputs, out: str | Path, *, fmt: str = "jsonl", task: str = "digit", model: str | None = None,
                    reader: Readers = None, backend: str = "torch", min_confidence: float = 0.0,
                    workers: int = 2, batch_size: int = 64, address: str | None = None,
                    force: bool = False) -> dict:
    """Read every image that `inputs` names (files, folders, globs as `digitrec predict` takes them;
    or URIs such as s3://bucket/scans/, listed by Ray) with `workers` actors of one CPU each, and
    write one row per image into the folder `out` (fmt "jsonl" or "parquet"). `task`: "digit" (as
    `digitrec predict`), "number" (as `digitrec read`) or "page" (as `digitrec read --all`: a row per
    number found, numbered in reading order, with its box; a page with none found has one row,
    its `number` null).

    Connects to the Ray cluster at `address` ("auto", "ray://host:10001"), or starts a local one
    when None; an already initialised Ray is used as it is. Returns {"images", "missing", "out"}:
    the number of images sent, and (path, why) for inputs that named no readable file."""
    if fmt not in FORMATS or task not in TASKS:
        raise ConfigError(f"fmt must be one of {FORMATS} and task one of {TASKS}, got {fmt!r}, {task!r}")
    files, missing = _list_inputs(inputs)
    if not files:
        raise DigitrecError("no image files to read: " + "; ".join(why for _, why in missing))
    _check_out(out, force)
    _start_ray(address)
    from ray.data import ActorPoolStrategy, read_binary_files

    # Reading bytes waits on the disk, not a CPU: asking for one would leave the read nothing to
    # run on once the actors hold every CPU (on a 2-CPU machine with 2 actors, a deadlock). Asking
    # for none, it needs a cap: uncapped, Ray started a Python process per read task (32 for 3,000
    # files), which cost a 2-core machine 50 s; one reader per actor keeps them fed.
    ds = read_binary_files(files, include_paths=True, num_cpus=0, concurrency=workers,
                           file_extensions=None if _all_local(files) else _extensions())
    # The actors may start in another folder or on another machine: give them absolute paths.
    model = os.path.abspath(model) if model and os.path.isfile(model) else model
    reader = [os.path.abspath(p) if os.path.isfile(p) else p for p in reader_paths(reader)] or None
    ds = ds.map_batches(Predictor, fn_constructor_kwargs={"task": task, "model": model, "reader": reader,
                                                          "backend": backend, "min_confidence": min_confidence},
                        batch_size=batch_size, batch_format="pyarrow", num_cpus=1,
                        compute=ActorPoolStrategy(size=workers))
    _write(ds, str(out), fmt, force)
    return {"images": len(files), "missing": missing, "out": str(out)}


def _start_ray(address: str | None) -> None:
    """Connect to the cluster at `address`, or start a Ray of this machine's own when None (never
    joining one that happens to run here: that is what `address="auto"` asks for). A Ray that is
    already initialised, as a caller's own `ray.init(...)` leaves it, is used as it is."""
    if not address:
        # Ray swaps a node address of 127.0.0.1 for the machine's reachable one unless clusters
        # are off (as on macOS), which it reads once, when imported: so before the import. Then
        # every Ray process listens on 127.0.0.1 only. No usage report sent out (Ray's default) on
        # the user's behalf either; a cluster keeps its own settings.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = require("ray", "ray")
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)


def _write(ds, out: str, fmt: str, force: bool) -> None:
    """Run the pipeline, writing its rows into `out`; --force replaces what it holds."""
    from ray.data import SaveMode

    mode = SaveMode.OVERWRITE if force else SaveMode.APPEND
    if fmt == "parquet":
        ds.write_parquet(out, mode=mode)
    else:
        ds.write_json(out, mode=mode)


class Predictor:
    """The Ray Data actor: loads the model once, then turns batches of file bytes into result rows.
    One thread per actor (preprocessing and torch): Ray gives each actor one CPU, and more threads
    would fight the other actors for it."""

    def __init__(self, task: str = "digit", model: str | None = None, reader: list[str] | None = None,
                 backend: str = "torch", min_confidence: float = 0.0):
        use_inference_threads(1)
        use_one_image_thread()
        self.task = task
        self.schema = _schemas()[task]
        if task != "digit":
            self.reader = load_reader(model, reader, backend=backend)
        else:
            self.rec = load_model(model, backend=backend, min_confidence=min_confidence)
            self.rec.workers = 1

    def __call__(self, batch):
        """A pyarrow Table with `path` and `bytes` columns -> a pyarrow Table of result rows."""
        import pyarrow as pa

        paths = batch.column("path").to_pylist()
        data = batch.column("bytes").to_pylist()
        if self.task == "number":
            rows = [_reading_row(path, self.reader.read(b, name=path)) for path, b in zip(paths, data)]
            return pa.Table.from_pylist(rows, schema=self.schema)
        if self.task == "page":
            rows = [row for path, b in zip(paths, data) for row in _page_rows(path, self.reader.read_all(b, name=path))]
            return pa.Table.from_pylist(rows, schema=self.schema)
        rows = [_prediction_row(path, p) for path, p in zip(paths, self.rec.predict(data))]
        return pa.Table.from_pylist(rows, schema=self.schema)


def _prediction_row(path: str, p) -> dict:
    """A Prediction as a row of the digit schema: the fields of `digitrec predict --json`, unrounded,
    every column present (null where it does not apply), so that Parquet gets one schema."""
    return {"path": path, "digit": p.digit, "confidence": p.confidence, "probabilities": p.probabilities,
            "uncertain": p.uncertain, "digits_found": p.digits_found, "no_digit": p.no_digit, "error": p.error}


def _reading_row(path: str, r) -> dict:
    """A Reading as a row of the number schema: `digitrec read --json`'s text and confidences, no boxes."""
    return {"path": path, "text": r.text, "formatted": r.formatted, "confidence": r.confidence,
            "digits": [d.digit for d in r.digits], "digit_confidences": [d.confidence for d in r.digits],
            "error": r.error}


def _page_rows(path: str, readings: list) -> list[dict]:
    """`NumberReader.read_all`'s readings of one page as rows of the page schema: the number schema's
    fields, the number's place in reading order (1, 2, ...) and its box (x0, y0, x1, y1) in the page's
    pixels. A page with no number, or one that could not be read, is one row with `number` null."""
    if not readings:
        return [{"path": path, "number": None, "box": None}]
    if readings[0].error:
        return [{**_reading_row(path, readings[0]), "number": None, "box": None}]
    return [{**_reading_row(path, r), "number": k, "box": list(r.box)} for k, r in enumerate(readings, 1)]


def _schemas() -> dict:
    """The rows' pyarrow schemas by task: fixed, so that every block and file agrees even
    when a batch holds only errors. pyarrow comes with the ray extra, hence built when needed."""
    import pyarrow as pa

    digit = pa.schema([("path", pa.string()), ("digit", pa.int64()), ("confidence", pa.float64()),
                       ("probabilities", pa.list_(pa.float64())), ("uncertain", pa.bool_()),
                       ("digits_found", pa.int64()), ("no_digit", pa.bool_()), ("error", pa.string())])
    number = pa.schema([("path", pa.string()), ("text", pa.string()), ("formatted", pa.string()),
                        ("confidence", pa.float64()), ("digits", pa.list_(pa.int64())),
                        ("digit_confidences", pa.list_(pa.float64())), ("error", pa.string())])
    page = pa.schema([*number, ("number", pa.int64()), ("box", pa.list_(pa.int64()))])
    return {"digit": digit, "number": number, "page": page}


def _list_inputs(inputs) -> tuple[list[str], list[tuple[str, str]]]:
    """Absolute paths of the local images `inputs` name (as `digitrec predict` finds them) plus URIs
    as given; and (input, why) for the inputs that name nothing."""
    files, missing = [], []
    for raw in [str(i) for i in inputs]:
        if "://" in raw:  # s3://, gs://, ...: Ray lists them, and filters by IMAGE_SUFFIXES
            files.append(raw)
            continue
        for path, err in expand_paths([raw]):
            if err is None and not os.path.isfile(path):
                err = f"{path}: no such file"
            if err is None:
                files.append(os.path.abspath(path))
            else:
                missing.append((path, err))
    return files, missing


def _all_local(files: list[str]) -> bool:
    return not any("://" in f for f in files)


def _extensions() -> list[str]:
    return sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)


def _check_out(out, force: bool) -> None:
    """Refuse to mix a new run's files into an earlier run's results, unless `force` replaces them."""
    if "://" in str(out) or force:
        return
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out}: exists and is not empty; choose another --out, or --force to replace it")
