"""The HTTP API and the draw-a-digit page (FastAPI), on the library's predict path.

    POST /v1/predict   one or more images (multipart files, or a raw image body) -> per image
                       digit (null if none found), confidence, probabilities[, preprocessed]
    POST /v1/read      the same inputs -> per image the number read (text) and each digit's box
                       (?all=true: every number in the image, in reading order)
    GET  /v1/model     the model's metadata
    GET  /healthz      liveness
    GET  /             the page: draw a digit, or drop a photo
    GET  /docs         OpenAPI documentation (Swagger UI, and ReDoc at /redoc, served locally)

The model loads once per worker process (`serve(..., workers=N)`: each builds its own app with
`app_from_environment`). Requests are decoded and preprocessed on worker threads, then their 28x28
images join a queue that one task drains into a single forward pass (concurrent requests share
it). Work for a request that timed out or whose client left stops. Every refusal is a 4xx or 503
with a JSON body {"error": ...}: too large a body (413), too many pixels (413), no image or an
unreadable one (400/422), wrong content type (415), too slow (408), a Host not served (400), the
server full (503), no such path (404) or method (405), a bad query parameter (422); see `limits`
and `forms`. The server's own file paths appear in no response.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
from dataclasses import asdict, dataclass, field
from importlib import resources

import numpy as np
from PIL import Image

from . import __version__
from .batching import Batcher
from .connections import HostCheck, WorkerHeader, run, run_workers, server
from .device import use_inference_threads
from .errors import require
from .forms import form_files
from .images import header_check
from .limits import Budget, Limits, Refused, Workers, body_claim, discard_body, read_body
from .loading import load_model
from .predict import Prediction, Recogniser
from .read import NumberReader, load_line_readers, page_to_dict

# The serve extra: FastAPI and python-multipart (its form parser). Without them, importing this
# module says in one line which extra installs them.
require("fastapi", "serve")
require("python_multipart", "serve")
require("fastapi_offline", "serve")  # Swagger UI and ReDoc's files, so /docs works without the internet
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import HTMLResponse, JSONResponse  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402
from fastapi_offline import FastAPIOffline  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402


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
    """What GET /v1/model says: the checkpoint's own account of itself, and what runs it. No local
    paths: the model's file by name only, and not the folders or command it was trained with."""
    ck = rec.checkpoint
    meta = ck.meta
    config = {k: v for k, v in meta.get("config", {}).items() if k not in ("data_dir", "out")}
    info = {"arch": ck.arch, "arch_args": ck.arch_args, "backend": ck.backend,
            "normalization": {"mean": ck.mean, "std": ck.std}, "classes": ck.classes, "input_size": ck.input_size,
            "metrics": meta.get("metrics", {}), "config": config,
            "file": ck.path.name if ck.path else None, "digitrec_version": __version__}
    if ck.backend == "torch":
        info["parameters"] = ck.parameters
    return info


async def _images_of(request: Request, body: bytes, limits: Limits) -> list[tuple[str, bytes]]:
    """(name, bytes) of each image in a multipart form (any field names) or the raw body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        files = await form_files(request.headers, body, limits.max_images)
        if not files:
            raise Refused(400, "no image in the request: send files in a multipart form (any field name)")
        return files
    if ctype.startswith("image/") or ctype in ("application/octet-stream", ""):
        if not body:
            raise Refused(400, "empty request body: send an image, raw or as a multipart file")
        return [("body", body)]
    raise Refused(415, f"unsupported content type {ctype!r}: send an image (image/png, image/jpeg, ...) "
                       "or multipart/form-data with image files")


async def _answer(request: Request, limits: Limits, bodies: Budget, work) -> dict:
    """The refusals both endpoints share, around `work(files, too_big, pixels) -> results`: body
    size and the bodies in flight, content type, image count, pixel counts (checked once per image),
    every image failing, time. The work is cancelled when the client leaves or time runs out."""
    async def handle():
        files = await _images_of(request, await read_body(request, limits), limits)
        if len(files) > limits.max_images:
            raise Refused(413, f"{len(files)} images in one request, more than the {limits.max_images} allowed")
        checks = [header_check(data, limits.max_pixels) for _, data in files]  # each header opened once
        too_big, pixels = [why for why, _ in checks], sum(n for _, n in checks)
        results = await _unless_client_leaves(request, work(files, too_big, pixels))
        if all("error" in r for r in results):
            one = len(results) == 1
            message = f"{results[0]['filename']}: {results[0]['error']}" if one else "no image in the request could be read"
            raise Refused(413 if any(too_big) else 422, message, results)
        return results

    with bodies.hold(body_claim(request, limits)):
        try:
            return {"results": await asyncio.wait_for(handle(), limits.timeout_s)}
        except asyncio.TimeoutError:
            raise Refused(408, f"request took longer than {limits.timeout_s:g} s; send smaller images") from None


async def _unless_client_leaves(request: Request, work):
    """Await `work`, cancelled if the client disconnects first: nobody is left to answer."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, gone):
            t.cancel()  # a no-op for the one that finished; both when this request was cancelled
    if not task.done() or task.cancelled():
        raise Refused(499, "the client closed the connection before the answer")
    return task.result()


async def _disconnected(request: Request) -> None:
    """Return when the client has gone. Called once the body is read, so every message left to
    receive is the disconnect (or the end of the exchange after the response)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _predict(rec: Recogniser, batcher: Batcher, workers: Workers, files, too_big, pixels: int,
                   with_view: bool) -> list[dict]:
    """Preprocess on worker threads; classify together with whatever other requests queued up."""
    todo = [data for (_, data), big in zip(files, too_big) if big is None]
    prepared = iter(await workers.map(rec.prepare, todo, pixels, chunk=rec.workers) if todo else [])
    preds = [Prediction(source=name, error=big) if big else next(prepared) for (name, _), big in zip(files, too_big)]
    ready = [p for p in preds if p.preprocessed is not None]
    if ready:
        rec.finish(ready, await batcher.classify(np.stack([p.preprocessed.image for p in ready])))
    return [_result(p, name, with_view) for p, (name, _) in zip(preds, files)]


async def _read(reader: NumberReader, workers: Workers, files, too_big, pixels: int, every: bool) -> list[dict]:
    """Read each image's number (`every`: all its numbers) on a worker thread, one image at a time."""
    def read_each(named: list[tuple[str, bytes]]) -> list:
        return [reader.read_all(data, name=name) if every else reader.read(data, name=name) for name, data in named]

    todo = [(name, data) for (name, data), big in zip(files, too_big) if big is None]
    read = iter(await workers.map(read_each, todo, pixels, chunk=1) if todo else [])
    results = []
    for (name, _), big in zip(files, too_big):
        if big:
            r = {"error": big}
        else:
            got = next(read)
            r = page_to_dict(name, got) if every else got.to_dict()
        r.pop("path", None)
        results.append({"filename": name, **r})
    return results


def _answer_errors_as_json(app: FastAPI, limits: Limits) -> None:
    """Every refusal as {"error": ...}: ours (`Refused`), and FastAPI's own, which would otherwise
    answer {"detail": ...}: no such path (404), wrong method (405), a bad query parameter (422)."""
    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused):
        await discard_body(request, limits)
        body = {"error": exc.message}
        if exc.results is not None:
            body["results"] = exc.results
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        path = request.url.path[:200]
        message = {404: f"nothing at {path}: see /docs for the API",
                   405: f"{request.method} is not allowed on {path}; use {(exc.headers or {}).get('Allow', '')}"}
        return await refused(request, Refused(exc.status_code, message.get(exc.status_code, str(exc.detail)),
                                              headers=exc.headers))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = [f"{' '.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return await refused(request, Refused(422, "; ".join(problems)))


def create_app(rec: Recogniser, *, reader: NumberReader | None = None, limits: Limits = Limits(),
               allowed_hosts=("*",)) -> FastAPI:
    """The FastAPI application serving `rec` (digits) and `reader` (numbers; default: the shipped
    line readers with `rec`, on onnxruntime when `rec` runs there), answering requests whose Host is
    one of `allowed_hosts`."""
    batcher = Batcher(rec)
    reader = reader or NumberReader(rec, load_line_readers(backend="auto" if rec.runs == "onnx" else "torch"))
    bodies = Budget(limits.bytes_in_flight, "bytes of request bodies")
    workers = Workers(max(4, os.cpu_count() or 1), Budget(limits.pixels_in_flight, "decoded pixels"))

    async def lifespan(app):
        task = asyncio.create_task(batcher.run())
        while batcher.queue is None:
            await asyncio.sleep(0)
        yield
        task.cancel()
        batcher.pool.shutdown(wait=False)
        workers.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPIOffline(title="digitrec", version=__version__, lifespan=lifespan,
                         description="Read handwritten digits: POST images to /v1/predict.")
    app.state.batcher, app.state.limits, app.state.workers, app.state.bodies = batcher, limits, workers, bodies
    app.add_middleware(HostCheck, allowed=allowed_hosts)
    app.add_middleware(WorkerHeader)
    web = resources.files("digitrec") / "web"
    app.mount("/static", StaticFiles(directory=str(web)), name="static")

    _answer_errors_as_json(app, limits)
    @app.post("/v1/predict", summary="Read the digit in one or more images")
    async def predict(request: Request, preprocessed: bool = False):
        """Send images as multipart files (any field names) or one image as the raw body. Each result
        has `digit` (null when no digit was found), `confidence`, `probabilities` (ten, for 0-9),
        `uncertain`, `no_digit`, and with `?preprocessed=true` the 28x28 view the model got, as a PNG
        data URL. An image that cannot be read gets an `error` instead."""
        return await _answer(request, limits, bodies, lambda files, too_big, pixels: _predict(
            rec, batcher, workers, files, too_big, pixels, preprocessed))

    @app.post("/v1/read", summary="Read the handwritten number in one or more images")
    async def read_number(request: Request, all: bool = False):  # noqa: A002 (the query parameter's name)
        """Images as for /v1/predict. Each result has `text` (the digits read, left to right) and
        `digits`, a list of {digit, confidence, box: [x0, y0, x1, y1]} in the image's pixels; with
        `?all=true`, `numbers`: every number in the image, each so, in reading order."""
        return await _answer(request, limits, bodies, lambda files, too_big, pixels: _read(
            reader, workers, files, too_big, pixels, all))

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


SETTINGS_ENV = "DIGITREC_SERVE_SETTINGS"  # how the worker processes get their settings (JSON)


@dataclass(frozen=True)
class ServeSettings:
    """What a server's app is built from: the model, what runs it, the limits, the Host names
    answered. A worker process builds its own app from them (`app_from_environment`)."""

    model: str | None = None  # a checkpoint or .onnx; None: the shipped model
    backend: str = "auto"  # the shipped models' ONNX exports where onnxruntime is installed
    limits: Limits = field(default_factory=Limits)
    allowed_hosts: tuple[str, ...] = ("*",)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        d = json.loads(text)
        return cls(d["model"], d["backend"], Limits(**d["limits"]), tuple(d["allowed_hosts"]))


def app_from_environment() -> FastAPI:
    """The app factory of each worker process (uvicorn's `digitrec.serve:app_from_environment`):
    its own model, batcher and threads, from the `ServeSettings` that `serve` left in the
    environment, which the worker processes inherit."""
    settings = ServeSettings.from_json(os.environ[SETTINGS_ENV])
    use_inference_threads()  # the model's batches on one thread; preprocessing threads use the other cores
    rec = load_model(settings.model, backend=settings.backend)
    return create_app(rec, limits=settings.limits, allowed_hosts=settings.allowed_hosts)


def serve(settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          rec: Recogniser | None = None, log_level: str = "info") -> None:
    """Run the server until SIGTERM or Ctrl-C (see `connections`). One worker serves from this
    process (with `rec` when given, already loaded); several are processes of their own behind
    the one port, each loading the model and answering as one server does."""
    if workers == 1:
        app = create_app(rec or load_model(settings.model, backend=settings.backend), limits=settings.limits,
                         allowed_hosts=settings.allowed_hosts)
        run(server(app, host=host, port=port, limits=settings.limits, log_level=log_level))
        return
    os.environ[SETTINGS_ENV] = settings.to_json()
    run_workers(f"{__name__}:{app_from_environment.__name__}", workers, host=host, port=port,
                limits=settings.limits, log_level=log_level)
