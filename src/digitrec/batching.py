"""Classify the preprocessed images of concurrent server requests in shared forward passes."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .predict import Recogniser


class Batcher:
    """Classify the preprocessed images of concurrent requests together.

    Each request puts its (k, 28, 28) images on a queue; one task takes whatever has queued up
    (up to `max_batch` images) and runs one forward pass on a single worker thread, so the model
    is never called from two threads at once and a burst of requests costs few passes."""

    def __init__(self, rec: Recogniser, max_batch: int = 256):
        self.rec, self.max_batch = rec, max_batch
        self.queue: asyncio.Queue | None = None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="digitrec-model")
        self.passes = 0  # forward passes run, for tests and the load benchmark

    async def run(self) -> None:
        self.queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            n = len(items[0][0])
            while not self.queue.empty() and n < self.max_batch:
                items.append(self.queue.get_nowait())
                n += len(items[-1][0])
            items = [(x, fut) for x, fut in items if not fut.done()]  # drop requests cancelled meanwhile
            if not items:
                continue
            try:
                probs = await loop.run_in_executor(self.pool, self.rec.probabilities, np.concatenate([x for x, _ in items]))
                self.passes += 1
                start = 0
                for x, fut in items:
                    if not fut.done():
                        fut.set_result(probs[start:start + len(x)])
                    start += len(x)
            except Exception as e:  # never let one bad pass kill the loop that serves everyone
                for _, fut in items:
                    if not fut.done():
                        fut.set_exception(e)

    async def classify(self, images: np.ndarray):
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((images, fut))
        return await fut
