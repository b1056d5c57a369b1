"""The HTTP API and the draw-a-digit page (FastAPI), on the library's predict path.

    POST /v1/predict   one or more images (multipart files, or a raw image body) -> per image
                       digit (null if none found), confidence, probabilities[, preprocessed]
    POST /v1/read      the same inputs -> per image the number read (text) and each digit's box
    GET  /v1/model     the model's metadata
    GET  /healthz      liveness
    GET  /             the page: draw a digit, or drop a photo
    GET  /docs         OpenAPI documentation

The model loads once. Requests are decoded and preprocessed on worker threads, then their 28x28
images join a queue that one task drains into a single forward pass (concurrent requests share
it). Every refusal is a 4xx with a JSON body {"error": ...}: too large a body (413), too many
pixels (413), no image or an unreadable one (400/422), wrong content type (415), too slow (408).
"""

from __future__ import annotations

import asyncio
import base64
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources

import numpy as np
from PIL import Image

from . import __version__
from .errors import require
from .images import header_pixels
from .loading import load
from .models import count_parameters
from .predict import Prediction, Recogniser
from .read import NumberReader

# The serve extra: FastAPI and python-multipart (its form parser). Without them, importing this
# module says in one line which extra installs them.
require("fastapi", "serve")
require("python_multipart", "serve")
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import HTMLResponse, JSONResponse  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server."""

    max_body_bytes: int = 10 * 2**20  # the whole request body
    max_pixels: int = 25_000_000  # per image, checked from the header before decoding
    max_images: int = 32  # per request
    timeout_s: float = 15.0  # per request, queueing included


class Refused(Exception):
    def __init__(self, status: int, message: str, results: list | None = None):
        super().__init__(message)
        self.status, self.message, self.results = status, message, results


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


def _png_data_url(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), mode="L").save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _result(p: Prediction, name: str, with_view: bool) -> dict:
    d = p.to_dict()
    d.pop("path", None)
    d = {"filename": name, **d}
    if "error" not in d:
        d.setdefault("no_digit", False)
    if with_view and p.preprocessed is not None:
        d["preprocessed"] = _png_data_url(p.preprocessed.image)
    return d


def model_info(rec: Recogniser) -> dict:
    """What GET /v1/model says: the checkpoint's own account of itself, and what runs it."""
    ck = rec.checkpoint
    meta = ck.meta
    info = {"arch": ck.arch, "arch_args": ck.arch_args, "backend": ck.backend,
            "normalization": {"mean": ck.mean, "std": ck.std}, "classes": ck.classes, "input_size": ck.input_size,
            "metrics": meta.get("metrics", {}), "config": meta.get("config", {}), "command": meta.get("command"),
            "path": str(ck.path) if ck.path else None, "digitrec_version": __version__}
    if ck.backend == "torch":
        info["parameters"] = count_parameters(ck.model)
    return info


async def _read_body(request: Request, limits: Limits) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise Refused(413, f"request body is {int(declared):,} bytes, more than the {limits.max_body_bytes:,} allowed")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise Refused(413, f"request body is more than the {limits.max_body_bytes:,} bytes allowed")
        chunks.append(chunk)
    return b"".join(chunks)


async def _images_of(request: Request, body: bytes, limits: Limits) -> list[tuple[str, bytes]]:
    """(name, bytes) of each image in a multipart form (any field names) or the raw body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        async def replay():  # the body is already read (with its size limit); parse it from memory
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=limits.max_images, max_fields=limits.max_images)
        except Exception as e:
            if "too many files" in str(e).lower():
                raise Refused(413, f"more than the {limits.max_images} images allowed in one request") from None
            raise Refused(400, f"malformed multipart body ({' '.join(str(e).split())[:120] or type(e).__name__})") from None
        files = [(v.filename or k, await v.read()) for k, v in form.multi_items() if hasattr(v, "read")]
        if not files:
            raise Refused(400, "no image in the request: send files in a multipart form (any field name)")
        return files
    if ctype.startswith("image/") or ctype in ("application/octet-stream", ""):
        if not body:
            raise Refused(400, "empty request body: send an image, raw or as a multipart file")
        return [("body", body)]
    raise Refused(415, f"unsupported content type {ctype!r}: send an image (image/png, image/jpeg, ...) "
                       "or multipart/form-data with image files")


async def _answer(request: Request, limits: Limits, work) -> dict:
    """The refusals both endpoints share, around `work(files, too_big) -> results`: body size,
    content type, image count, pixel counts (checked once per image), every image failing, time."""
    async def handle():
        files = await _images_of(request, await _read_body(request, limits), limits)
        if len(files) > limits.max_images:
            raise Refused(413, f"{len(files)} images in one request, more than the {limits.max_images} allowed")
        too_big = [header_pixels(data, limits.max_pixels) for _, data in files]
        results = await work(files, too_big)
        if all("error" in r for r in results):
            message = results[0]["error"] if len(results) == 1 else "no image in the request could be read"
            raise Refused(413 if any(too_big) else 422, message, results)
        return results

    try:
        return {"results": await asyncio.wait_for(handle(), limits.timeout_s)}
    except asyncio.TimeoutError:
        raise Refused(408, f"request took longer than {limits.timeout_s:g} s; send smaller images") from None


async def _predict(rec: Recogniser, batcher: Batcher, files, too_big, with_view: bool) -> list[dict]:
    """Preprocess on worker threads; classify together with whatever other requests queued up."""
    todo = [data for (_, data), big in zip(files, too_big) if big is None]
    prepared = iter(await run_in_threadpool(rec.prepare, todo) if todo else [])
    preds = [Prediction(source=name, error=big) if big else next(prepared) for (name, _), big in zip(files, too_big)]
    ready = [p for p in preds if p.preprocessed is not None]
    if ready:
        rec.finish(ready, await batcher.classify(np.stack([p.preprocessed.image for p in ready])))
    return [_result(p, name, with_view) for p, (name, _) in zip(preds, files)]


async def _read(reader: NumberReader, files, too_big) -> list[dict]:
    results = []
    for (name, data), big in zip(files, too_big):
        r = {"error": big} if big else (await run_in_threadpool(reader.read, data, name=name)).to_dict()
        r.pop("path", None)
        results.append({"filename": name, **r})
    return results


def create_app(rec: Recogniser, *, reader: NumberReader | None = None, limits: Limits = Limits()) -> FastAPI:
    """The FastAPI application serving `rec` (digits) and `reader` (numbers; default: the shipped
    line reader with `rec`)."""
    batcher = Batcher(rec)
    reader = reader or NumberReader(rec, load(task="line"))

    async def lifespan(app):
        task = asyncio.create_task(batcher.run())
        while batcher.queue is None:
            await asyncio.sleep(0)
        yield
        task.cancel()
        batcher.pool.shutdown(wait=False)

    app = FastAPI(title="digitrec", version=__version__, lifespan=lifespan,
                  description="Read handwritten digits: POST images to /v1/predict.")
    app.state.batcher, app.state.limits = batcher, limits
    web = resources.files("digitrec") / "web"
    app.mount("/static", StaticFiles(directory=str(web)), name="static")

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused):
        body = {"error": exc.message}
        if exc.results is not None:
            body["results"] = exc.results
        return JSONResponse(body, status_code=exc.status)

    @app.post("/v1/predict", summary="Read the digit in one or more images")
    async def predict(request: Request, preprocessed: bool = False):
        """Send images as multipart files (any field names) or one image as the raw body. Each result
        has `digit` (null when no digit was found), `confidence`, `probabilities` (ten, for 0-9),
        `uncertain`, `no_digit`, and with `?preprocessed=true` the 28x28 view the model got, as a PNG
        data URL. An image that cannot be read gets an `error` instead."""
        return await _answer(request, limits, lambda files, too_big: _predict(rec, batcher, files, too_big, preprocessed))

    @app.post("/v1/read", summary="Read the handwritten number in one or more images")
    async def read_number(request: Request):
        """Images as for /v1/predict. Each result has `text` (the digits read, left to right) and
        `digits`, a list of {digit, confidence, box: [x0, y0, x1, y1]} in the image's pixels."""
        return await _answer(request, limits, lambda files, too_big: _read(reader, files, too_big))

    @app.get("/v1/model", summary="The model's metadata")
    async def model():
        return model_info(rec)

    @app.get("/healthz", summary="Liveness")
    async def healthz():
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return (web / "index.html").read_text(encoding="utf-8")

    return app


def serve(rec: Recogniser, *, reader: NumberReader | None = None, host: str = "127.0.0.1", port: int = 8000,
          limits: Limits = Limits(), log_level: str = "info") -> None:
    """Run the server until interrupted."""
    uvicorn = require("uvicorn", "serve")  # a server to run the app: not needed to build or test it
    uvicorn.run(create_app(rec, reader=reader, limits=limits), host=host, port=port, log_level=log_level)
