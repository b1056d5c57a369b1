"""The library API: load a model once, read the digit in any number of user images.

    import digitrec
    rec = digitrec.load_model()            # the model shipped with the package
    for p in rec.predict(["photo.jpg", pil_image, numpy_array]):
        print(p.digit, p.confidence)

Every image goes through `preprocess.preprocess` (the MNIST recipe) and the images that could be
read are classified in batches. An image that cannot be read, or holds no digit, gets a Prediction
with `error` set or `digit=None`, so one bad file never stops the others.

This module does not import torch: a `Recogniser` runs an ONNX model on onnxruntime as it is, and
`loading.TorchRecogniser` (what `loading.load_model` gives for a PyTorch model) adds the torch
call. So a one-image `digitrec predict` with the shipped model's ONNX export starts in half a
second rather than waiting a second for `import torch` (`onnx_file` decides which runs).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CheckpointError, DigitrecError
from .images import describe
from .model_file import Checkpoint, normalise, shipped_onnx_path
from .onnx_model import load_onnx, onnx_installed
from .preprocess import NoDigitFound, Preprocessed, preprocess
from .workers import shared_map, spawn_pool

BACKENDS = ("auto", "torch", "onnx")


@dataclass
class Prediction:
    """What the model read in one image."""

    source: str  # the path, or a description of the in-memory image
    digit: int | None = None  # None when no digit was found or the image could not be read
    confidence: float = 0.0  # probability of `digit`
    probabilities: list[float] = field(default_factory=list)  # ten, for digits 0..9
    uncertain: bool = False  # confidence below the recogniser's min_confidence
    error: str | None = None  # why the image could not be read
    no_digit: bool = False  # the image was read but holds no digit
    digits_found: int = 0  # digit-sized marks side by side in the image: more than 1 is a number (`read`)
    preprocessed: Preprocessed | None = field(default=None, repr=False)

    def top(self, k: int) -> list[tuple[int, float]]:
        """The k most probable digits with their probabilities, best first."""
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(int(d), float(self.probabilities[d])) for d in order]

    def to_dict(self, top_k: int = 0) -> dict:
        d = {"path": self.source, "digit": self.digit, "confidence": round(self.confidence, 6),
             "probabilities": [round(p, 6) for p in self.probabilities], "uncertain": self.uncertain,
             "digits_found": self.digits_found}
        if self.no_digit:
            d["no_digit"] = True
        if self.error:
            d = {"path": self.source, "error": self.error}
        elif top_k:
            d["top_k"] = [{"digit": k, "probability": round(p, 6)} for k, p in self.top(top_k)]
        return d


class Recogniser:
    """A loaded digit model plus its preprocessing; call `predict` with paths, PIL images or arrays.

    This class runs an ONNX model (onnxruntime); `loading.TorchRecogniser` runs a PyTorch one."""

    runs = "onnx"  # the checkpoint backend this class can call

    def __init__(self, checkpoint: Checkpoint, *, min_confidence: float = 0.0, batch_size: int = 256,
                 workers: int | None = None, processes: int = 1):
        if checkpoint.backend != self.runs:
            raise CheckpointError(f"{checkpoint.path}: a {checkpoint.backend} model, which {type(self).__name__} does "
                                  "not run; load it with loading.load_model")
        self.checkpoint = checkpoint.require("digit")
        self.model = checkpoint.model  # onnx_model.OnnxModel here; a torch module in TorchRecogniser
        self.min_confidence = min_confidence
        self.batch_size = batch_size
        self.workers = workers or min(8, os.cpu_count() or 1)
        # Processes that decode and preprocess files, for large folders (`prepare`): this one and
        # processes - 1 workers; 1: this one alone.
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    @property
    def mean(self) -> float:
        return self.checkpoint.mean

    @property
    def std(self) -> float:
        return self.checkpoint.std

    @property
    def temperature(self) -> float:
        return self.checkpoint.temperature

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The model's logits (N, 10) for a normalised float32 batch (N, 1, 28, 28)."""
        return self.model(x)

    def probabilities(self, images) -> np.ndarray:
        """Class probabilities (N, 10), float32, for MNIST-style images (N, 28, 28) in [0, 1], white
        on black (a numpy array or a CPU tensor), calibrated by the checkpoint's temperature."""
        x = np.asarray(images, dtype=np.float32).reshape(-1, 1, 28, 28)
        out = [softmax(np.asarray(self.logits(normalise(x[i:i + self.batch_size], self.mean, self.std)), np.float32)
                        / np.float32(self.temperature)) for i in range(0, len(x), self.batch_size)]
        return np.concatenate(out) if out else np.empty((0, 10), np.float32)

    def predict(self, images, *, keep_preprocessed: bool = False) -> list[Prediction]:
        """Read the digit in each image (a path, bytes, a binary file object, PIL image or array, or
        a list of them)."""
        preds = self.prepare(images)
        ready = [p for p in preds if p.preprocessed is not None]
        if ready:
            self.finish(ready, self.probabilities(np.stack([p.preprocessed.image for p in ready])))
        if not keep_preprocessed:
            for p in preds:
                p.preprocessed = None
        return preds

    def prepare(self, images) -> list[Prediction]:
        """Decode and preprocess: a Prediction per image with `preprocessed` set, or `error` or
        `no_digit`. The first half of `predict`; the server batches the second across requests."""
        if isinstance(images, (str, Path, bytes)) or not isinstance(images, (list, tuple)):
            images = [images]
        preds = [Prediction(source=describe(source, i)) for i, source in enumerate(images)]
        # Decoding and preprocessing are numpy/OpenCV/Pillow work that holds the GIL for much of
        # its time, so many files are shared between this process and worker processes; fewer go
        # to threads, which cost nothing to start and gain where the GIL is released.
        if self.processes > 1 and len(images) >= 8 * self.processes and all(isinstance(s, (str, Path)) for s in images):
            outcomes = list(shared_map(_preprocess_safely, images, self._processes(), self.processes - 1))
        elif len(images) > 1 and self.workers > 1:
            with ThreadPoolExecutor(self.workers) as pool:
                outcomes = list(pool.map(_preprocess_safely, images))
        else:
            outcomes = [_preprocess_safely(source) for source in images]
        for p, outcome in zip(preds, outcomes):
            if isinstance(outcome, Preprocessed):
                p.preprocessed = outcome
                p.digits_found = outcome.digits_found
            elif isinstance(outcome, NoDigitFound):
                p.no_digit = True
            else:
                p.error = outcome
        return preds

    def _processes(self) -> ProcessPoolExecutor:
        """The worker processes (all but this one of `processes`), started on first use and kept
        for the next batch."""
        if self._pool is None:
            self._pool = spawn_pool(self.processes - 1)
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def finish(self, preds: list[Prediction], probs: np.ndarray) -> None:
        """Fill in digit, confidence and probabilities from rows of class probabilities (N, 10)."""
        for p, row in zip(preds, probs):
            if not np.isfinite(row).all():  # never a NaN answer, and never invalid JSON
                p.error = "the model gave no valid probabilities for this image (is the model file damaged?)"
                continue
            p.probabilities = [float(v) for v in row]
            p.digit = int(row.argmax())
            p.confidence = float(row.max())
            p.uncertain = p.confidence < self.min_confidence


def _preprocess_safely(source) -> Preprocessed | NoDigitFound | str:
    """The preprocessed image, NoDigitFound, or the error message for this input."""
    try:
        return preprocess(source)
    except NoDigitFound as e:
        # Without its traceback: the traceback's frames hold the decoded image, and the frame that
        # returns `e` closes a reference cycle, so a photo's worth of memory would wait for the GC.
        return e.with_traceback(None)
    except DigitrecError as e:
        return str(e)
    except Exception as e:  # a bug of ours must not cost the user the other images' answers
        return f"internal error while reading this image ({type(e).__name__}: {e}); please report it"


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of logits ((N, 10) or (10,)), in their own precision."""
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def onnx_file(path: str | Path | None = None, backend: str = "auto", device: str = "auto",
              task: str = "digit") -> Path | None:
    """The .onnx file that runs as the model at `path` without PyTorch, or None when PyTorch must
    load it. An .onnx file always runs so. The shipped model for `task` ("digit"; "line" or "line-b":
    the readers behind `read`) runs as its ONNX export when `path` is None, with backend "onnx", and with
    "auto" when onnxruntime and onnx are installed and the device is the CPU ("auto" or "cpu"): the
    same weights and calibration, and no `import torch`."""
    if backend not in BACKENDS:
        raise CheckpointError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if path is not None:
        return Path(path) if Path(path).suffix.lower() == ".onnx" else None
    shipped = shipped_onnx_path(task)
    on_cpu = (device or "auto").strip().lower() in ("auto", "cpu")
    if backend == "onnx" or (backend == "auto" and on_cpu and onnx_installed()):
        return shipped if shipped.is_file() else None
    return None


def load_onnx_model(path: str | Path, *, min_confidence: float = 0.0, threads: int | None = None) -> Recogniser:
    """A Recogniser for an .onnx digit model (an `onnx_file`), run by onnxruntime on `threads` CPU
    threads (one unless $DIGITREC_THREADS says); imports no torch."""
    return Recogniser(load_onnx(path, threads), min_confidence=min_confidence)
