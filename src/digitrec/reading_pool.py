"""Read many files in this process and worker processes, each with its own reader: `digitrec read`
on big folders.

    for reading in read_files(paths, processes=2):   # in the order of `paths`
        print(reading.text)

Finding a line's ink is numpy and OpenCV work that holds the GIL for much of its time, so threads
do not scale it; processes do (the 300 bank checks on 2 cores: see README). The work is shared as
`workers.shared_map` shares it; each process loads the models once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .read import NumberReader, Readers, Reading, load_reader, reader_paths
from .workers import shared_map, spawn_pool

_reader: NumberReader | None = None  # a worker process's own reader, loaded by `_start`
_every = False  # read every number in an image (`NumberReader.read_all`), not one


def _start(model: str | None, reader: list[str] | None, backend: str, every: bool = False) -> None:
    global _reader, _every
    _reader, _every = load_reader(model, reader, backend=backend), every


def _read(path: str) -> Reading | list[Reading]:
    return _reader.read_all(path, name=path) if _every else _reader.read(path, name=path)


def read_files(paths: list[str], *, model: str | Path | None = None, reader: Readers = None,
               backend: str = "auto", processes: int = 2, every: bool = False) -> Iterator[Reading | list[Reading]]:
    """The readings of `paths` in their order, read by this process and `processes - 1` worker
    processes, each loading the digit model `model` and the line reader(s) `reader` (as
    `load_reader` takes them); with `every`, each path's list of readings (`NumberReader.read_all`)."""
    args = (None if model is None else str(model), reader_paths(reader) or None, backend, every)
    pool = spawn_pool(processes - 1, _start, args) if processes > 1 else None  # they load while this one does
    try:
        _start(*args)
        yield from shared_map(_read, paths, pool, processes - 1)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
