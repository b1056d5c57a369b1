"""A map over many items shared by this process and spawned worker processes, in order.

    pool = spawn_pool(1)                                  # one worker process, kept for many calls
    for result in shared_map(preprocess, paths, pool, 1):   # computed here and there, in order
        ...

Finding ink is numpy and OpenCV work that holds the GIL for much of its time, so threads do not
scale it; processes do. A pool of N workers leaves this process idle while they start (each imports
numpy, OpenCV and digitrec, and may load a model: half a second or more), and then waits on the slowest. Here this
process works too, from the first item: it takes items from the front of the list while the
workers take chunks from the back, smaller as the work left shrinks, so the work meets in the
middle and nobody waits for long.
Workers are spawned, not forked: a fork would copy the model runtime's threads in whatever state
they are.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from .morphology import use_one_image_thread

CHUNK = 16  # items a worker takes at a time, at most (fewer as the work left shrinks: `shared_map`)


def spawn_pool(workers: int, initializer: Callable | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """`workers` spawned processes for `shared_map`, each running `initializer(*initargs)` first.
    They are started now (an executor starts them at its first task), so that they import and load
    while this process gets on with its own share."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                               initargs=(initializer, initargs))
    for _ in range(workers):
        pool.submit(int)
    return pool


def shared_map(fn: Callable, items: Sequence, pool: ProcessPoolExecutor | None, workers: int) -> Iterator:
    """`fn(item)` for each of `items`, in order, computed here and by the `workers` processes of
    `pool` (`spawn_pool`; None or 0 workers: here alone). `fn` must be a module-level function
    (the workers import it), and whatever it needs set up must be set up here too."""
    if pool is None or workers < 1 or len(items) < 4 * (workers + 1):
        yield from map(fn, items)
        return
    front, back = 0, len(items)  # items[front:back] are nobody's yet: this process eats the front, workers the back
    taken: dict[int, tuple[int, Future]] = {}  # a worker's chunk: start -> (end, its result)
    busy: list[Future] = []  # the workers' chunks not done yet: each worker has its next one ready
    try:
        while front < len(items):
            busy = [f for f in busy if not f.done()]
            while back > front and len(busy) < 2 * workers:
                # Chunks shrink with the work left (guided scheduling): where the two ends meet, this
                # process waits for at most a worker's last few items, not two whole chunks of them.
                size = max(1, min(CHUNK, (back - front) // (4 * (workers + 1))))
                back -= size
                taken[back] = (back + size, pool.submit(_run_chunk, fn, items[back:back + size]))
                busy.append(taken[back][1])
            if front < back:
                yield fn(items[front])
                front += 1
            else:
                end, result = taken.pop(front)
                yield from result.result()
                front = end
    finally:
        for _, f in taken.values():  # stopped early: what was not started is not wanted
            f.cancel()


def _start(initializer: Callable | None, initargs: tuple) -> None:
    """A worker's start: one OpenCV thread (each worker is a core's worth of image work), then `initializer`."""
    use_one_image_thread()
    if initializer is not None:
        initializer(*initargs)


def _run_chunk(fn: Callable, chunk: Sequence) -> list:
    return [fn(item) for item in chunk]
