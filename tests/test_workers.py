"""`workers.shared_map`: a map shared by this process and spawned worker processes, in order."""

import os

import cv2
import pytest

from digitrec.workers import shared_map, spawn_pool


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


@pytest.fixture(scope="module")
def pool():
    p = spawn_pool(1)
    yield p
    p.shutdown()


def test_results_come_in_order_computed_here_and_in_the_worker(pool):
    items = list(range(400))
    out = list(shared_map(_pid_and_square, items, pool, 1))
    assert [sq for _, sq in out] == [x * x for x in items]
    pids = {pid for pid, _ in out}
    assert os.getpid() in pids and len(pids) == 2  # this process worked too, beside the worker
    # The pool is kept: a second call uses the same worker.
    again = {pid for pid, _ in shared_map(_pid_and_square, items, pool, 1)}
    assert again == pids


def test_without_a_pool_or_with_few_items_everything_is_computed_here(pool):
    assert {pid for pid, _ in shared_map(_pid_and_square, range(100), None, 0)} == {os.getpid()}
    assert [sq for _, sq in shared_map(_pid_and_square, [3, 4], pool, 1)] == [9, 16]


def test_stopping_early_leaves_the_pool_usable(pool):
    it = shared_map(_pid_and_square, list(range(1000)), pool, 1)
    assert [next(it)[1] for _ in range(5)] == [0, 1, 4, 9, 16]
    it.close()  # the chunks not started are cancelled
    assert [sq for _, sq in shared_map(_pid_and_square, list(range(50)), pool, 1)] == [x * x for x in range(50)]


@pytest.mark.parametrize("n", [8, 9, 17, 33, 130])
def test_every_item_once_in_order_whatever_the_chunks(pool, n):
    # Chunks shrink as the work left does, down to single items where the two ends meet.
    assert [sq for _, sq in shared_map(_pid_and_square, list(range(n)), pool, 1)] == [x * x for x in range(n)]


def _opencv_threads(_) -> int:
    return cv2.getNumThreads()


def test_a_worker_runs_opencv_on_one_thread(pool):
    # Each worker is a core's worth of image work: OpenCV's own pool would spin beside it.
    assert pool.submit(_opencv_threads, 0).result() == 1
