"""Read many files in this process and worker processes, each with its own reader: `digitrec read`.

    with read_files(paths, processes=2) as readings:   # the readers are loaded here, before the first
        for reading in readings:                       # in the order of `paths`
            print(reading.text)

Finding a line's ink is numpy and OpenCV work that holds the GIL for much of its time, so threads
do not scale it; processes do (the 300 bank checks on 2 cores: see README). The work is shared as
`workers.shared_map` shares it; each process loads the models once, the workers while this one does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .read import NumberReader, Readers, Reading, load_reader, reader_paths
from .workers import shared_map, spawn_pool

_reader: NumberReader | None = None  # this process's own reader, loaded by `_start`
_every = False  # read every number in an image (`NumberReader.read_all`), not one
_failed: Exception | None = None  # why a worker's reader could not be loaded (`_start_worker`)


def _start(model: str | None, reader: list[str] | None, backend: str, every: bool = False) -> None:
    global _reader, _every
    _reader, _every = load_reader(model, reader, backend=backend), every
    if _reader.uses_torch:  # one thread a process: left to torch, each would take every core (30% slower on 2)
        from .device import use_inference_threads  # imports torch: the ONNX exports (the default) need none

        use_inference_threads()


def _start_worker(*args) -> None:
    """A worker's `_start`. A model that cannot be loaded fails this process's own `_start` too and
    is reported there, once; the worker keeps the error (no traceback of its own on stderr) and
    raises it only if it is given work all the same."""
    global _failed
    try:
        _start(*args)
    except Exception as e:  # noqa: BLE001 (whatever it is, it is raised again by `_read`)
        _failed = e


def _read(item: tuple[str, str]) -> Reading | list[Reading]:
    if _reader is None:
        raise _failed
    path, name = item
    return _reader.read_all(path, name=name) if _every else _reader.read(path, name=name)


@contextmanager
def read_files(paths: list[str], *, model: str | Path | None = None, reader: Readers = None, backend: str = "auto",
               processes: int = 2, every: bool = False, names: list[str] | None = None
               ) -> Iterator[Iterator[Reading | list[Reading]]]:
    """The readings of `paths` in their order, read by this process and `processes - 1` worker
    processes, each loading the digit model `model` and the line reader(s) `reader` (as
    `load_reader` takes them); with `every`, each path's list of readings (`NumberReader.read_all`).
    `names`: what each reading calls its image (default: its path).
    The workers are spawned first and load while this process does; a model that cannot be
    loaded raises here, on entry, once."""
    args = (None if model is None else str(model), reader_paths(reader) or None, backend, every)
    pool = spawn_pool(processes - 1, _start_worker, args) if processes > 1 else None
    try:
        _start(*args)
        yield shared_map(_read, list(zip(paths, names or paths)), pool, processes - 1)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
