"""Read many files in worker processes, each with its own reader: `digitrec read` on big folders.

    for reading in read_files(paths, processes=2):   # in the order of `paths`
        print(reading.text)

Finding a line's ink is numpy and OpenCV work that holds the GIL for much of its time, so threads
do not scale it; processes do (the 300 bank checks on 2 cores: see README). Each process is
spawned, not forked (a fork would copy the model runtime's threads in whatever state they are), and
loads the models once.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .read import NumberReader, Readers, Reading, load_reader, reader_paths

_reader: NumberReader | None = None  # a worker process's own reader, loaded by `_start`


def _start(model: str | None, reader: list[str] | None, backend: str) -> None:
    global _reader
    _reader = load_reader(model, reader, backend=backend)


def _read(path: str) -> Reading:
    return _reader.read(path, name=path)


def read_files(paths: list[str], *, model: str | Path | None = None, reader: Readers = None,
               backend: str = "auto", processes: int = 2) -> Iterator[Reading]:
    """The readings of `paths` in their order, read by `processes` worker processes, each loading
    the digit model `model` and the line reader(s) `reader` (as `load_reader` takes them)."""
    args = (None if model is None else str(model), reader_paths(reader) or None, backend)
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                             initargs=args) as pool:
        yield from pool.map(_read, paths, chunksize=max(1, len(paths) // (8 * processes)))
