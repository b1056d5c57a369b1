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
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .checkpoint import Checkpoint, load_checkpoint, require_digit_model
from .device import resolve_device
from .errors import CheckpointError, DigitrecError
from .preprocess import NoDigitFound, Preprocessed, preprocess

SHIPPED_MODEL = "digitrec-digits.pt"  # inside the package's weights/ folder
SHIPPED_READER = "digitrec-reader.pt"  # the line reader behind `read`


def shipped_model_path() -> Path:
    """Path of the model that ships inside the package."""
    return Path(str(resources.files("digitrec") / "weights" / SHIPPED_MODEL))


def shipped_reader_path() -> Path:
    """Path of the line reader (for whole numbers) that ships inside the package."""
    return Path(str(resources.files("digitrec") / "weights" / SHIPPED_READER))


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
    preprocessed: Preprocessed | None = field(default=None, repr=False)

    def top(self, k: int) -> list[tuple[int, float]]:
        """The k most probable digits with their probabilities, best first."""
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(int(d), float(self.probabilities[d])) for d in order]

    def to_dict(self, top_k: int = 0) -> dict:
        d = {"path": self.source, "digit": self.digit, "confidence": round(self.confidence, 6),
             "probabilities": [round(p, 6) for p in self.probabilities], "uncertain": self.uncertain}
        if self.no_digit:
            d["no_digit"] = True
        if self.error:
            d = {"path": self.source, "error": self.error}
        elif top_k:
            d["top_k"] = [{"digit": k, "probability": round(p, 6)} for k, p in self.top(top_k)]
        return d


class Recogniser:
    """A loaded model plus its preprocessing; call `predict` with paths, PIL images or arrays."""

    def __init__(self, checkpoint: Checkpoint, *, device: str | torch.device = "cpu", min_confidence: float = 0.0,
                 batch_size: int = 256, workers: int | None = None, reader: str | Path | None = None):
        self.checkpoint = checkpoint
        self.reader_path = Path(reader) if reader else None  # None: the shipped line reader
        self._reader: Checkpoint | None = None
        self._reader_lock = threading.Lock()  # the server's first requests may arrive together
        self.device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
        model = checkpoint.model
        if isinstance(model, torch.nn.Module):
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

    @torch.no_grad()
    def probabilities(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, 10) for MNIST-style images (N, 28, 28) in [0, 1], white on black."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32)).reshape(-1, 1, 28, 28)
        out = []
        for i in range(0, len(x), self.batch_size):
            xb = ((x[i:i + self.batch_size] - self.mean) / self.std).to(self.device)
            out.append(self.model(xb).float().softmax(1).cpu())
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
        preds = [Prediction(source=_describe(source, i)) for i, source in enumerate(images)]
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
            elif isinstance(outcome, NoDigitFound):
                p.no_digit = True
            else:
                p.error = outcome
        return preds

    def finish(self, preds: list[Prediction], probs: torch.Tensor) -> None:
        """Fill in digit, confidence and probabilities from rows of class probabilities (N, 10)."""
        for p, row in zip(preds, probs):
            p.probabilities = [float(v) for v in row]
            p.digit = int(row.argmax())
            p.confidence = float(row.max())
            p.uncertain = p.confidence < self.min_confidence

    @property
    def reader(self) -> Checkpoint:
        """The line reader (`linecnn`) behind `read`, loaded on first use."""
        with self._reader_lock:
            if self._reader is None:
                path = self.reader_path or shipped_reader_path()
                ckpt = load_checkpoint(path)
                if ckpt.arch != "linecnn":
                    raise CheckpointError(f"{path}: a {ckpt.arch} digit model, not a line reader; pass a reader.pt "
                                          "written by `digitrec train-reader`")
                self._reader = ckpt
            return self._reader

    @torch.no_grad()
    def read_line(self, strip: np.ndarray) -> torch.Tensor:
        """The line reader's log-probabilities (T, 11) for a framed line (28, W) in [0, 1]."""
        r = self.reader
        x = (torch.as_tensor(strip, dtype=torch.float32)[None, None] - r.mean) / r.std
        return r.model(x)[0]

    def read(self, image, *, name: str | None = None):
        """Read the handwritten number in one image: a `read.Reading` with `text` and, per digit,
        its digit, confidence and box."""
        from .read import read

        return read(self, image, name=name)

    def predict_one(self, image) -> Prediction:
        return self.predict([image])[0]


def _preprocess_safely(source) -> Preprocessed | NoDigitFound | str:
    """The preprocessed image, NoDigitFound, or the error message for this input."""
    try:
        return preprocess(source)
    except NoDigitFound as e:
        return e
    except DigitrecError as e:
        return str(e)
    except Exception as e:  # a bug of ours must not cost the user the other images' answers
        return f"internal error while reading this image ({type(e).__name__}: {e}); please report it"


def _describe(source, i: int) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return f"<{type(source).__name__} #{i}>"


BACKENDS = ("torch", "onnx")


def load_model(path: str | Path | None = None, *, device: str = "cpu", min_confidence: float = 0.0,
               backend: str = "torch", reader: str | Path | None = None) -> Recogniser:
    """A Recogniser for the model at `path`: a digitrec model.pt, the tutorial's mnist_model.pth, or
    an .onnx file from `digitrec export`; the model shipped with the package when `path` is None.
    backend="onnx" runs the model on onnxruntime (a checkpoint is converted in memory). `reader` is
    the line reader `read` uses (a reader.pt from `digitrec train-reader`; default: the shipped one)."""
    if backend not in BACKENDS:
        raise CheckpointError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if path is None:
        path = shipped_model_path()
        if not path.is_file():
            raise CheckpointError(f"the shipped model is missing from this installation ({path}); "
                                  "reinstall digitrec or pass --model")
    if Path(path).suffix.lower() == ".onnx":
        from .export import load_onnx

        return Recogniser(load_onnx(path), min_confidence=min_confidence, reader=reader)
    dev = resolve_device(device)
    if backend == "onnx":
        from .export import as_onnx

        return Recogniser(as_onnx(require_digit_model(load_checkpoint(path))), min_confidence=min_confidence,
                          reader=reader)
    return Recogniser(require_digit_model(load_checkpoint(path, device=dev)), device=dev, min_confidence=min_confidence,
                      reader=reader)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}


def expand_paths(paths) -> list[tuple[str, str | None]]:
    """Files as given, folders walked recursively for images, globs expanded (sorted, deduplicated).
    Returns (path, error) pairs: error is set for a path that matches nothing."""
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()

    def add(p: str, err: str | None = None):
        if err is not None or p not in seen:
            seen.add(p)
            out.append((p, err))

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                add(str(raw), f"{raw}: folder has no image files")
            for f in found:
                add(f)
        elif p.exists() or not any(c in str(raw) for c in "*?["):
            add(str(raw))  # a missing plain path is reported when it is read
        else:
            import glob

            matches = sorted(m for m in glob.glob(str(raw), recursive=True) if Path(m).is_file())
            if not matches:
                add(str(raw), f"{raw}: no files match")
            for m in matches:
                add(m)
    return out


def unique_png_path(source: str, out_dir: str | Path, taken: set[str]) -> Path:
    """OUT_DIR/<source's stem>.png, creating OUT_DIR; a name already in `taken` gets a -2, -3, ... suffix."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(source).stem or "image"
    name, k = f"{stem}.png", 1
    while name in taken:
        k += 1
        name = f"{stem}-{k}.png"
    taken.add(name)
    return out_dir / name


def save_preprocessed_image(image: np.ndarray, source: str, out_dir: str | Path, taken: set[str]) -> Path:
    """Write the 28x28 view as a PNG named after its source; a name already taken gets a suffix."""
    from PIL import Image

    path = unique_png_path(source, out_dir, taken)
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), mode="L").save(path)
    return path
