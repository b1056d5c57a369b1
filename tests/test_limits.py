"""The budgets concurrent requests share, and the worker threads that hold them (`limits`)."""

import asyncio
import contextlib
import threading
import time

import pytest

from digitrec.limits import Budget, Refused, Workers


def test_a_budget_refuses_413_over_all_of_it_and_503_when_too_little_is_free():
    budget = Budget(100, "pixels")
    with pytest.raises(Refused) as over:
        budget.take(101)
    assert over.value.status == 413
    with budget.hold(60):
        with pytest.raises(Refused) as full:
            budget.take(41)
        assert full.value.status == 503 and full.value.headers == {"Retry-After": "1"}
    assert budget.in_use == 0


def test_cancelled_work_gives_its_pixels_back_even_if_it_never_started():
    async def main():
        workers = Workers(1, Budget(100, "pixels"))
        gate = threading.Event()
        running = asyncio.ensure_future(workers.map(lambda items: [gate.wait(30)], [0], 60, chunk=1))
        queued = asyncio.ensure_future(workers.map(lambda items: items, [0], 40, chunk=1))  # behind it, on one thread
        while workers.pixels.in_use < 100:
            await asyncio.sleep(0.01)
        queued.cancel()  # as when its request times out, or its client leaves
        with contextlib.suppress(asyncio.CancelledError):
            await queued  # the cancellation has reached the request (it is delivered by the loop, not at once)
        gate.set()
        assert await running == [True]
        deadline = time.time() + 30
        while workers.pixels.in_use and time.time() < deadline:
            await asyncio.sleep(0.01)
        return workers.pixels.in_use, workers.images_done

    in_use, done = asyncio.run(main())
    assert in_use == 0 and done == 1  # the cancelled work was never done, and holds nothing
