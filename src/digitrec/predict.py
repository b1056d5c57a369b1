"""The library API: load a model once, read the digit in any number of user images.

    import digitrec
    rec = digitrec.load_model()            # the model shipped with the package
    for p in rec.predict(["photo.jpg", pil_image, numpy_array]):
        print(p.digit, p.confidence)

Every image goes through `preprocess.preprocess` (the MNIST recipe) and the images that could be
read are classified in batches. An image that cannot be read, or holds no digit, gets a Prediction
with `error` set or `digit=None`, so one bad file never stops the others.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoint import Checkpoint
from .device import resolve_device
from .errors import DigitrecError
from .images import describe
from .loading import load
from .preprocess import NoDigitFound, Preprocessed, preprocess
from .tensors import normalise


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
    """A loaded digit model plus its preprocessing; call `predict` with paths, PIL images or arrays."""

    def __init__(self, checkpoint: Checkpoint, *, device: str | torch.device = "cpu", min_confidence: float = 0.0,
                 batch_size: int = 256, workers: int | None = None):
        self.checkpoint = checkpoint.require("digit")
        # onnxruntime runs on the CPU here, whatever device was asked for.
        on_cpu = checkpoint.backend == "onnx"
        self.device = torch.device("cpu") if on_cpu else device if isinstance(device, torch.device) else resolve_device(device)
        model = checkpoint.model
        if checkpoint.backend == "torch":
            model = model.to(self.device).eval()
            if self.device.type == "cpu" and any(p.dim() == 4 for p in model.parameters()):
                model = model.to(memory_format=torch.channels_last)  # oneDNN's fast layout: ~1.4x on CPU
        self.model = model  # a torch module, or an onnxruntime session behind the same call (export.OnnxModel)
        self.min_confidence = min_confidence
        self.batch_size = batch_size
        self.workers = workers or min(8, os.cpu_count() or 1)

    @property
    def mean(self) -> float:
        return self.checkpoint.mean

    @property
    def std(self) -> float:
        return self.checkpoint.std

    @property
    def temperature(self) -> float:
        return self.checkpoint.temperature

    @torch.no_grad()
    def probabilities(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, 10) for MNIST-style images (N, 28, 28) in [0, 1], white on black,
        calibrated by the checkpoint's temperature."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32)).reshape(-1, 1, 28, 28)
        out = []
        for i in range(0, len(x), self.batch_size):
            xb = normalise(x[i:i + self.batch_size], self.mean, self.std).to(self.device)
            out.append((self.model(xb).float() / self.temperature).softmax(1).cpu())
        return torch.cat(out) if out else torch.empty(0, 10)

    def predict(self, images, *, keep_preprocessed: bool = False) -> list[Prediction]:
        """Read the digit in each image (a path, bytes, PIL image or array, or a list of them)."""
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
        # Decoding and preprocessing are numpy/scipy/Pillow work that releases the GIL: threads
        # keep every core busy without copying images between processes.
        if len(images) > 1 and self.workers > 1:
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

    def finish(self, preds: list[Prediction], probs: torch.Tensor) -> None:
        """Fill in digit, confidence and probabilities from rows of class probabilities (N, 10)."""
        for p, row in zip(preds, probs):
            if not bool(torch.isfinite(row).all()):  # never a NaN answer, and never invalid JSON
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


def load_model(path: str | Path | None = None, *, device: str = "cpu", min_confidence: float = 0.0,
               backend: str = "torch") -> Recogniser:
    """A Recogniser for the digit model at `path`: a digitrec model.pt, the tutorial's mnist_model.pth,
    or an .onnx file from `digitrec export`; the model shipped with the package when `path` is None.
    backend="onnx" runs the model on onnxruntime (a checkpoint is converted in memory)."""
    dev = resolve_device(device)
    return Recogniser(load(path, task="digit", backend=backend, device=dev), device=dev, min_confidence=min_confidence)
