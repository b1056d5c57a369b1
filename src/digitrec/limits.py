"""What one request may ask of the server, and what all requests together may hold at once.

A request is refused with `Refused` (answered as {"error": ...}): too large a body or image (413),
more than the server's budget (413), the server full (503, with Retry-After), too slow (408).
Budgets bound what concurrent requests hold together, so memory stays bounded under any mix of
requests: the bytes of their bodies, and the pixels of their images while they are decoded. A
request's images are decoded on `Workers` threads that stop between chunks of images once the
request is cancelled (timed out, or its client left), and its pixels stay in the budget until its
thread has stopped, not merely until the request was answered.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import require
from .memory import release_freed_memory

require("fastapi", "serve")
from starlette.requests import ClientDisconnect, Request  # noqa: E402

DISCARD_S = 5.0  # the longest a refused body is read for before the connection is closed anyway
TRIM_PIXELS = 4_000_000  # after work this large, freed memory is handed back to the system


@dataclass(frozen=True)
class Limits:
    """What requests may ask of the server, one at a time and all together."""

    max_body_bytes: int = 10 * 2**20  # the whole request body
    max_pixels: int = 25_000_000  # per image, checked from the header before decoding
    max_images: int = 32  # per request
    timeout_s: float = 15.0  # per request, queueing included
    # Decoded at once by all requests: preprocessing a photo peaks near 30 bytes a pixel (it looks
    # again at 4x the working resolution), so about 1.5 GB.
    pixels_in_flight: int = 50_000_000
    bytes_in_flight: int = 80 * 2**20  # request bodies held at once (8 of the largest)
    discard_bytes: int = 64 * 2**20  # of a refused body, read and dropped so the client sees the refusal
    header_timeout_s: float = 10.0  # for a request's headers to arrive (a slowloris trickles them)


class Refused(Exception):
    """A request the server will not do: answered with `status` and {"error": message}."""

    def __init__(self, status: int, message: str, results: list | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.results, self.headers = status, message, results, headers


class Budget:
    """A quantity that concurrent requests share (body bytes, decoded pixels), held whole or refused:
    a request that needs more than all of it is refused with 413, one that finds too little of it
    free with 503 and Retry-After (waiting would only pile the requests up)."""

    def __init__(self, total: int, unit: str):
        self.total, self.unit, self.in_use = total, unit, 0
        self._lock = threading.Lock()  # given back from worker threads as well as the event loop

    def take(self, n: int) -> None:
        with self._lock:
            if n > self.total:
                raise Refused(413, f"this request needs {n:,} {self.unit}, more than the {self.total:,} the "
                                   "server holds at once; send fewer or smaller images")
            if self.in_use + n > self.total:
                raise Refused(503, f"the server is busy ({self.in_use:,} of {self.total:,} {self.unit} in use); "
                                   "try again in a moment", headers={"Retry-After": "1"})
            self.in_use += n

    def give(self, n: int) -> None:
        with self._lock:
            self.in_use -= n

    @contextmanager
    def hold(self, n: int):
        self.take(n)
        try:
            yield
        finally:
            self.give(n)


class Workers:
    """The threads that decode and preprocess images, shared by all requests."""

    def __init__(self, threads: int, pixels: Budget):
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="digitrec-prepare")
        self.pixels = pixels
        self.images_done = 0  # images worked on, for tests and benchmarks
        self._lock = threading.Lock()

    async def map(self, fn, items: list, pixels: int, chunk: int) -> list:
        """fn(items[i:i + chunk]) -> list for each chunk in turn on one thread, the lists joined.
        `pixels` are held in the budget until the thread is done. If the request is cancelled
        meanwhile, the thread stops before its next chunk (what it is decoding cannot be stopped)."""
        self.pixels.take(pixels)
        stop = threading.Event()

        def work() -> list:
            out = []
            try:
                for i in range(0, len(items), chunk):
                    if stop.is_set():
                        break
                    out += fn(items[i:i + chunk])
                    with self._lock:
                        self.images_done += len(items[i:i + chunk])
                return out
            finally:
                self.pixels.give(pixels)
                if pixels >= TRIM_PIXELS:
                    release_freed_memory()

        # Shielded: cancelling the wrapper would cancel a job still queued, and then nothing would
        # give its pixels back. Told to stop instead, it runs, stops at once and gives them back.
        job = asyncio.wrap_future(self.pool.submit(work))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            stop.set()
            job.add_done_callback(lambda done: done.exception())  # nobody awaits it now
            raise


def body_claim(request: Request, limits: Limits) -> int:
    """The bytes to hold in the body budget for this request: its declared length, else the most
    it may send. Refuses (413) a declared length over the limit before anything is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise Refused(413, f"request body is {int(declared):,} bytes, more than the {limits.max_body_bytes:,} allowed")
    return int(declared) if declared.isdigit() else limits.max_body_bytes


async def read_body(request: Request, limits: Limits) -> bytes:
    """The whole body, refused (413) as soon as it runs over the limit."""
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            request.state.body_started = True
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise Refused(413, f"request body is more than the {limits.max_body_bytes:,} bytes allowed")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Refused(499, "the client closed the connection before sending the whole body") from None
    request.state.body_read = True
    return b"".join(chunks)


async def discard_body(request: Request, limits: Limits) -> None:
    """Read and drop what is left of a refused request's body, up to `limits.discard_bytes` and
    DISCARD_S seconds. A client that sends its whole body before reading (urllib, requests) would
    otherwise see a connection reset instead of the refusal: closing a socket with unread data
    resets it. A client that waits for "100 Continue" has sent nothing and gets the refusal."""
    state = request.state
    if getattr(state, "body_read", False) or (request.headers.get("expect", "").lower() == "100-continue"
                                              and not getattr(state, "body_started", False)):
        return

    async def drain():
        size = 0
        while size <= limits.discard_bytes:
            message = await request.receive()
            size += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    try:
        await asyncio.wait_for(drain(), DISCARD_S)
    except asyncio.TimeoutError:
        pass
